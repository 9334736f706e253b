package appspec

import (
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Limits on what Parse accepts.
const (
	// MaxFileSize is the largest appspec in bytes.
	MaxFileSize = 1 << 20
	// MaxNodes bounds the YAML nodes visited, aliases expanded, so that an
	// alias bomb is refused rather than expanded.
	MaxNodes = 100_000
)

// ParseFile reads and parses the appspec at path; messages name the path.
func ParseFile(path string) (*Spec, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return Parse(path, data)
}

// Parse parses an appspec. name is the file name used in messages. The
// error, if any, is a *ParseError listing every problem in file order.
func Parse(name string, data []byte) (*Spec, error) {
	d := &decoder{file: name}
	spec := d.parse(data)
	if len(d.problems) > 0 {
		sort.SliceStable(d.problems, func(i, j int) bool {
			a, b := d.problems[i], d.problems[j]
			if a.Line != b.Line {
				return a.Line < b.Line
			}
			return a.Column < b.Column
		})
		return nil, &ParseError{File: name, Problems: d.problems}
	}
	return spec, nil
}

func (d *decoder) parse(data []byte) *Spec {
	if len(data) > MaxFileSize {
		d.add(pos{}, "", []error{ErrTooLarge}, "the file is larger than %d bytes", MaxFileSize)
		return nil
	}
	if !utf8.Valid(data) {
		d.add(invalidUTF8(data), "", []error{ErrSyntax}, "not valid UTF-8")
		return nil
	}
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		d.yamlError(err)
		return nil
	}
	var bodies []ast.Node
	for _, doc := range f.Docs {
		if doc != nil && doc.Body != nil {
			bodies = append(bodies, doc.Body)
		}
	}
	switch {
	case len(bodies) == 0:
		d.add(pos{}, "", []error{ErrSyntax}, "the file is empty")
		return nil
	case len(bodies) > 1:
		d.add(posOf(bodies[1]), "", []error{ErrSyntax}, "more than one YAML document; an appspec is one document")
		return nil
	}
	body := bodies[0]
	d.collectAnchors(body)
	if d.expandedSize(body, MaxNodes) > MaxNodes {
		d.add(pos{}, "", []error{ErrTooLarge}, "more than %d YAML nodes once aliases are expanded", MaxNodes)
		return nil
	}
	spec := d.spec(body)
	if len(d.problems) == 0 {
		d.schemaCheck(body)
	}
	return spec
}

// topRefused are CodeDeploy keys Gantry does not accept.
var topRefused = map[string]string{
	"permissions": "not supported by Gantry: set owners and modes with chown and chmod in an AfterInstall hook",
	"resources":   "not supported by Gantry: resources belong to ECS and Lambda deployments; Gantry deploys to hosts",
}

// hookRefused are lifecycle events the hooks section may not have.
var hookRefused = map[string]string{
	"Start":                  "Start is the agent's own step and runs no scripts; use " + orList(HookEvents),
	DownloadBundle:           "DownloadBundle is the agent's own step and runs no scripts; use BeforeInstall",
	Install:                  "Install is the agent's own step and runs no scripts; use BeforeInstall or AfterInstall",
	"End":                    "End is the agent's own step and runs no scripts; use ValidateService",
	"BlockTraffic":           "BlockTraffic is a load balancer step and runs no scripts",
	"AllowTraffic":           "AllowTraffic is a load balancer step and runs no scripts",
	"BeforeBlockTraffic":     "not supported by Gantry: load balancer traffic hooks need a load balancer integration; use ApplicationStop",
	"AfterBlockTraffic":      "not supported by Gantry: load balancer traffic hooks need a load balancer integration; use ApplicationStop",
	"BeforeAllowTraffic":     "not supported by Gantry: load balancer traffic hooks need a load balancer integration; use ValidateService",
	"AfterAllowTraffic":      "not supported by Gantry: load balancer traffic hooks need a load balancer integration; use ValidateService",
	"BeforeAllowTestTraffic": "not supported by Gantry: an ECS or Lambda lifecycle event; Gantry deploys to hosts",
	"AfterAllowTestTraffic":  "not supported by Gantry: an ECS or Lambda lifecycle event; Gantry deploys to hosts",
}

func (d *decoder) spec(body ast.Node) *Spec {
	s := &Spec{Version: Version, OS: OSLinux, FileExistsBehavior: Disallow}
	root, ok := d.resolve(body, "")
	if !ok {
		return nil
	}
	at := posOf(root)
	if at.line == 0 {
		at = pos{1, 1}
	}
	d.object(root, "", at, []field{
		{name: "version", required: true, decode: d.version},
		{name: "os", required: true, decode: d.os},
		{name: "files", decode: func(e entry, p string) { s.Files = d.files(e, p) }},
		{name: "file_exists_behavior", decode: func(e entry, p string) {
			if b, ok := d.fileExistsBehavior(e, p); ok {
				s.FileExistsBehavior = b
			}
		}},
		{name: "hooks", decode: func(e entry, p string) { s.EventHooks = d.hooks(e, p) }},
	}, topRefused)
	return s
}

func (d *decoder) version(e entry, path string) {
	n, ok := d.resolve(e.value, path)
	if !ok {
		return
	}
	text, kind, ok := scalar(n)
	switch {
	case ok && kind == "string" && text == Version:
		return
	case ok && kind == "number":
		if f, isNum := number(n); isNum && f == 0 {
			return
		}
		d.add(e.at, path, []error{ErrSchema}, "must be %s, got %s", Version, text)
	case ok:
		d.add(e.at, path, []error{ErrSchema}, "must be %s, got %q", Version, text)
	default:
		d.mustBe(e.at, path, Version, n)
	}
}

func (d *decoder) os(e entry, path string) {
	text, ok := d.str(e, path, "linux")
	if ok && text != OSLinux {
		d.add(e.at, path, []error{ErrSchema}, "must be linux (the only OS Gantry's agent runs on), got %q", text)
	}
}

func (d *decoder) fileExistsBehavior(e entry, path string) (FileExistsBehavior, bool) {
	text, ok := d.str(e, path, "DISALLOW, OVERWRITE or RETAIN")
	if !ok {
		return "", false
	}
	switch b := FileExistsBehavior(text); b {
	case Disallow, Overwrite, Retain:
		return b, true
	}
	d.add(e.at, path, []error{ErrSchema}, "must be DISALLOW, OVERWRITE or RETAIN, got %q", text)
	return "", false
}

func (d *decoder) files(e entry, path string) []File {
	items, ok := d.list(e, path, "files")
	if !ok {
		return nil
	}
	var out []File
	for i, item := range items {
		p := index(path, i)
		at := posOf(item)
		n, ok := d.resolve(item, p)
		if !ok {
			continue
		}
		var f File
		d.object(n, p, at, []field{
			{name: "source", required: true, decode: func(e entry, p string) {
				if text, ok := d.str(e, p, "a path in the bundle"); ok {
					f.Source = text
					d.pathProblem(e.at, p, SourceProblem(text))
				}
			}},
			{name: "destination", required: true, decode: func(e entry, p string) {
				if text, ok := d.str(e, p, "an absolute path on the host"); ok {
					f.Destination = text
					d.pathProblem(e.at, p, DestinationProblem(text))
				}
			}},
		}, nil)
		out = append(out, f)
	}
	return out
}

func (d *decoder) pathProblem(at pos, path, msg string) {
	if msg != "" {
		d.add(at, path, []error{ErrInvalidPath, ErrSchema}, "%s", msg)
	}
}

func (d *decoder) hooks(e entry, path string) map[string][]Hook {
	n, ok := d.resolve(e.value, path)
	if !ok {
		return nil
	}
	out := map[string][]Hook{}
	fields := make([]field, len(HookEvents))
	for i, event := range HookEvents {
		fields[i] = field{name: event, decode: func(e entry, p string) {
			if hooks := d.eventHooks(e, p); hooks != nil {
				out[event] = hooks
			}
		}}
	}
	d.object(n, path, e.at, fields, hookRefused)
	if len(out) == 0 {
		return nil
	}
	return out
}

func (d *decoder) eventHooks(e entry, path string) []Hook {
	items, ok := d.list(e, path, "hooks")
	if !ok {
		return nil
	}
	var out []Hook
	for i, item := range items {
		p := index(path, i)
		at := posOf(item)
		n, ok := d.resolve(item, p)
		if !ok {
			continue
		}
		h := Hook{Timeout: DefaultTimeout}
		d.object(n, p, at, []field{
			{name: "location", required: true, decode: func(e entry, p string) {
				if text, ok := d.str(e, p, "a path in the bundle"); ok {
					h.Location = text
					d.pathProblem(e.at, p, LocationProblem(text))
				}
			}},
			{name: "timeout", decode: func(e entry, p string) {
				if t, ok := d.timeout(e, p); ok {
					h.Timeout = t
				}
			}},
			{name: "runas", decode: func(e entry, p string) {
				if text, ok := d.str(e, p, "a user name"); ok {
					h.RunAs = text
					if !userName.MatchString(text) {
						d.add(e.at, p, []error{ErrSchema}, "invalid user name %q: use letters, digits, ., _ and -, starting with a letter or _, at most 32", text)
					}
				}
			}},
		}, nil)
		out = append(out, h)
	}
	return out
}

// userName is the shape of a runas user; schemas/appspec.json has the same
// pattern.
var userName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9._-]{0,31}$`)

func (d *decoder) timeout(e entry, path string) (int, bool) {
	n, ok := d.resolve(e.value, path)
	if !ok {
		return 0, false
	}
	f, isNum := number(n)
	if !isNum {
		d.mustBe(e.at, path, "a number of seconds", n)
		return 0, false
	}
	text := n.GetToken().Value
	switch {
	case f != math.Trunc(f):
		d.add(e.at, path, []error{ErrSchema}, "must be a whole number of seconds, got %s", text)
	case f < 1:
		d.add(e.at, path, []error{ErrSchema}, "must be at least 1 second, got %s", text)
	case f > MaxTimeout:
		d.add(e.at, path, []error{ErrSchema}, "must be at most %d seconds, got %s", MaxTimeout, text)
	default:
		return int(f), true
	}
	return 0, false
}

// LocationProblem says what is wrong with a hook's location, or returns ""
// for a valid one: a path relative to the bundle's root, without "..".
func LocationProblem(loc string) string {
	switch {
	case loc == "":
		return "must not be empty"
	case strings.ContainsRune(loc, 0):
		return "must not contain a NUL character"
	case strings.HasPrefix(loc, "/"):
		return fmt.Sprintf("%q must be relative to the bundle root, such as scripts/start.sh", loc)
	case hasDotDot(loc):
		return fmt.Sprintf("%q must not contain \"..\": hook scripts must be inside the bundle", loc)
	}
	return ""
}

// SourceProblem says what is wrong with a file's source, or returns "" for
// a valid one: a path in the bundle ("/" or a leading "/" is its root),
// without "..".
func SourceProblem(src string) string {
	switch {
	case src == "":
		return `must not be empty; write "/" for the whole bundle`
	case strings.ContainsRune(src, 0):
		return "must not contain a NUL character"
	case hasDotDot(src):
		return fmt.Sprintf("%q must not contain \"..\": files are copied from inside the bundle", src)
	}
	return ""
}

// DestinationProblem says what is wrong with a file's destination, or
// returns "" for a valid one: an absolute path without "..".
func DestinationProblem(dst string) string {
	switch {
	case dst == "":
		return "must not be empty"
	case strings.ContainsRune(dst, 0):
		return "must not contain a NUL character"
	case !strings.HasPrefix(dst, "/"):
		return fmt.Sprintf("%q must be an absolute path on the host", dst)
	case hasDotDot(dst):
		return fmt.Sprintf("%q must not contain \"..\"", dst)
	}
	return ""
}

func hasDotDot(p string) bool {
	return slices.Contains(strings.Split(p, "/"), "..")
}
