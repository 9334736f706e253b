package worker

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/services/artifact"
	"github.com/gantry-ci/gantry/services/redact"
)

// HeaderPhase names the buildspec phase (or "gantry") a live log line came from.
const HeaderPhase = "Gantry-Phase"

// LogStream receives a task's output line by line: each line is published
// live on the action's log subject and kept in a local file, up to a cap,
// which Archive puts in the object store when the task ends.
type LogStream struct {
	mu        sync.Mutex
	nc        *nats.Conn
	subject   string
	f         *os.File
	path      string
	cap       int64
	written   int64
	lines     int
	truncated bool
	closed    bool
	mask      *redact.Masker
}

func newLogStream(nc *nats.Conn, subject, path string, cap int64) *LogStream {
	return &LogStream{nc: nc, subject: subject, path: path, cap: cap}
}

// file creates the local copy on the first line, so tasks that print
// nothing touch no disk.
func (l *LogStream) file() *os.File {
	if l.f == nil && !l.closed {
		f, err := os.Create(l.path)
		if err != nil {
			l.closed = true // no local copy: lines still stream live
			return nil
		}
		l.f = f
	}
	return l.f
}

// SetMask makes every later line hide the masker's secrets, live and in
// the archive. Handlers that resolve secrets set it before they print
// anything that could hold one; a line is the unit here, so output that can
// split a secret across lines must be masked as a stream before it arrives
// (the build runner does).
func (l *LogStream) SetMask(m *redact.Masker) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mask = m
}

// Line records one line of output. Past the cap, lines are dropped and the
// archive says it was truncated.
func (l *LogStream) Line(phase, line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	line = l.mask.String(line)
	f := l.file()
	n := int64(len(line) + 1)
	if l.written+n > l.cap {
		if !l.truncated {
			l.truncated = true
			msg := fmt.Sprintf("[gantry] log truncated at %d bytes", l.cap)
			if f != nil {
				fmt.Fprintln(f, msg)
			}
			l.publish("gantry", msg)
		}
		return
	}
	l.written += n
	l.lines++
	if f != nil {
		fmt.Fprintf(f, "[%s] %s\n", phase, line)
	}
	l.publish(phase, line)
}

// Printf records a line of Gantry's own about the task.
func (l *LogStream) Printf(format string, args ...any) {
	l.Line("gantry", fmt.Sprintf(format, args...))
}

func (l *LogStream) publish(phase, line string) {
	m := &nats.Msg{Subject: l.subject, Data: []byte(line), Header: nats.Header{}}
	m.Header.Set(HeaderPhase, phase)
	// Live lines are best effort: the archive is the record.
	_ = l.nc.PublishMsg(m)
}

// Archive closes the local file and streams it into the object store. An
// empty log is not archived (ok is false).
func (l *LogStream) Archive(ctx context.Context, store *artifact.Store, key string, ref events.ActionRef) (arch events.LogArchived, ok bool, err error) {
	l.mu.Lock()
	f, was := l.f, l.closed
	l.f, l.closed = nil, true
	lines, truncated := l.lines, l.truncated
	l.mu.Unlock()
	if was {
		return events.LogArchived{}, false, fmt.Errorf("log of %s already archived", key)
	}
	if f == nil {
		return events.LogArchived{}, false, nil // nothing was printed
	}
	defer f.Close()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return events.LogArchived{}, false, fmt.Errorf("rewind task log: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	obj, err := store.Put(ctx, key, f)
	if err != nil {
		return events.LogArchived{}, false, fmt.Errorf("archive log %s: %w", key, err)
	}
	return events.LogArchived{ActionRef: ref, Key: key, SHA256: obj.SHA256,
		Size: obj.Size, Lines: lines, Truncated: truncated}, true, nil
}
