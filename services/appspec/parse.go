package appspec

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/goccy/go-yaml/ast"

	"github.com/gantry-ci/gantry/schemas"
	"github.com/gantry-ci/gantry/services/internal/yamldoc"
)

// Limits on what Parse accepts.
const (
	// MaxFileSize is the largest appspec in bytes.
	MaxFileSize = 1 << 20
	// MaxNodes bounds the YAML nodes visited, aliases expanded, so that an
	// alias bomb is refused rather than expanded.
	MaxNodes = 100_000
)

// limits are what Parse accepts.
var limits = yamldoc.Limits{MaxFileSize: MaxFileSize, MaxNodes: MaxNodes, Noun: "an appspec"}

// ParseFile reads and parses the appspec at path; messages name the path.
func ParseFile(path string) (*Spec, error) {
	data, err := yamldoc.ReadFile(path, MaxFileSize)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse parses an appspec. name is the file name used in messages. The
// error, if any, is a *ParseError listing every problem in file order.
func Parse(name string, data []byte) (*Spec, error) {
	d := &decoder{yamldoc.Decoder{File: name, Errs: sentinels}}
	return yamldoc.Parse(&d.Decoder, data, limits, schemas.Appspec, d.spec)
}

// topRefused are CodeDeploy keys Gantry does not accept.
var topRefused = map[string]string{
	"permissions": "not supported by Gantry: set owners and modes with chown and chmod in an AfterInstall hook",
	"resources":   "not supported by Gantry: resources belong to ECS and Lambda deployments; Gantry deploys to hosts",
}

// hookRefused are lifecycle events the hooks section may not have.
var hookRefused = map[string]string{
	"Start":                  "Start is the agent's own step and runs no scripts; use " + yamldoc.OrList(HookEvents),
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
	root, ok := d.Resolve(body, "")
	if !ok {
		return nil
	}
	at := yamldoc.PosOf(root)
	if at.Line == 0 {
		at = yamldoc.Pos{Line: 1, Col: 1}
	}
	d.Object(root, "", at, []field{
		{Name: "version", Required: true, Decode: d.version},
		{Name: "os", Required: true, Decode: d.os},
		{Name: "files", Decode: func(e entry, p string) { s.Files = d.files(e, p) }},
		{Name: "file_exists_behavior", Decode: func(e entry, p string) {
			if b, ok := d.fileExistsBehavior(e, p); ok {
				s.FileExistsBehavior = b
			}
		}},
		{Name: "hooks", Decode: func(e entry, p string) { s.EventHooks = d.hooks(e, p) }},
	}, topRefused)
	return s
}

func (d *decoder) version(e entry, path string) {
	n, ok := d.Resolve(e.Value, path)
	if !ok {
		return
	}
	text, kind, ok := yamldoc.Scalar(n)
	switch {
	case ok && kind == "string" && text == Version:
		return
	case ok && kind == "number":
		if f, isNum := yamldoc.Number(n); isNum && f == 0 {
			return
		}
		d.Add(e.At, path, []error{ErrSchema}, "must be %s, got %s", Version, text)
	case ok:
		d.Add(e.At, path, []error{ErrSchema}, "must be %s, got %q", Version, text)
	default:
		d.MustBe(e.At, path, Version, n)
	}
}

func (d *decoder) os(e entry, path string) {
	text, ok := d.str(e, path, "linux")
	if ok && text != OSLinux {
		d.Add(e.At, path, []error{ErrSchema}, "must be linux (the only OS Gantry's agent runs on), got %q", text)
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
	d.Add(e.At, path, []error{ErrSchema}, "must be DISALLOW, OVERWRITE or RETAIN, got %q", text)
	return "", false
}

func (d *decoder) files(e entry, path string) []File {
	items, ok := d.list(e, path, "files")
	if !ok {
		return nil
	}
	var out []File
	for i, item := range items {
		p := yamldoc.Index(path, i)
		at := yamldoc.PosOf(item)
		n, ok := d.Resolve(item, p)
		if !ok {
			continue
		}
		var f File
		d.Object(n, p, at, []field{
			{Name: "source", Required: true, Decode: func(e entry, p string) {
				if text, ok := d.str(e, p, "a path in the bundle"); ok {
					f.Source = text
					d.pathProblem(e.At, p, SourceProblem(text))
				}
			}},
			{Name: "destination", Required: true, Decode: func(e entry, p string) {
				if text, ok := d.str(e, p, "an absolute path on the host"); ok {
					f.Destination = text
					d.pathProblem(e.At, p, DestinationProblem(text))
				}
			}},
		}, nil)
		out = append(out, f)
	}
	return out
}

func (d *decoder) pathProblem(at yamldoc.Pos, path, msg string) {
	if msg != "" {
		d.Add(at, path, []error{ErrInvalidPath, ErrSchema}, "%s", msg)
	}
}

func (d *decoder) hooks(e entry, path string) map[string][]Hook {
	n, ok := d.Resolve(e.Value, path)
	if !ok {
		return nil
	}
	out := map[string][]Hook{}
	fields := make([]field, len(HookEvents))
	for i, event := range HookEvents {
		fields[i] = field{Name: event, Decode: func(e entry, p string) {
			if hooks := d.eventHooks(e, p); hooks != nil {
				out[event] = hooks
			}
		}}
	}
	d.Object(n, path, e.At, fields, hookRefused)
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
		p := yamldoc.Index(path, i)
		at := yamldoc.PosOf(item)
		n, ok := d.Resolve(item, p)
		if !ok {
			continue
		}
		h := Hook{Timeout: DefaultTimeout}
		d.Object(n, p, at, []field{
			{Name: "location", Required: true, Decode: func(e entry, p string) {
				if text, ok := d.str(e, p, "a path in the bundle"); ok {
					h.Location = text
					d.pathProblem(e.At, p, LocationProblem(text))
				}
			}},
			{Name: "timeout", Decode: func(e entry, p string) {
				if t, ok := d.timeout(e, p); ok {
					h.Timeout = t
				}
			}},
			{Name: "runas", Decode: func(e entry, p string) {
				if text, ok := d.str(e, p, "a user name"); ok {
					h.RunAs = text
					if !userName.MatchString(text) {
						d.Add(e.At, p, []error{ErrSchema}, "invalid user name %q: use letters, digits, ., _ and -, starting with a letter or _, at most 32", text)
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
	n, ok := d.Resolve(e.Value, path)
	if !ok {
		return 0, false
	}
	f, isNum := yamldoc.Number(n)
	if !isNum {
		d.MustBe(e.At, path, "a number of seconds", n)
		return 0, false
	}
	text := n.GetToken().Value
	switch {
	case f != math.Trunc(f):
		d.Add(e.At, path, []error{ErrSchema}, "must be a whole number of seconds, got %s", text)
	case f < 1:
		d.Add(e.At, path, []error{ErrSchema}, "must be at least 1 second, got %s", text)
	case f > MaxTimeout:
		d.Add(e.At, path, []error{ErrSchema}, "must be at most %d seconds, got %s", MaxTimeout, text)
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
