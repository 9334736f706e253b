package buildspec

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/goccy/go-yaml/ast"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/schemas"
	"github.com/gantry-ci/gantry/services/internal/yamldoc"
)

// Limits on what Parse accepts.
const (
	// MaxFileSize is the largest buildspec in bytes.
	MaxFileSize = 1 << 20
	// MaxNodes bounds the YAML nodes visited, aliases expanded, so that an
	// alias bomb is refused rather than expanded.
	MaxNodes = 100_000
)

// limits are what Parse accepts.
var limits = yamldoc.Limits{MaxFileSize: MaxFileSize, MaxNodes: MaxNodes, Noun: "a buildspec"}

// ParseFile reads and parses the buildspec at path; messages name the path.
func ParseFile(path string) (*Spec, error) {
	data, err := yamldoc.ReadFile(path, MaxFileSize)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse parses a buildspec. name is the file name used in messages. The
// error, if any, is a *ParseError listing every problem in file order.
func Parse(name string, data []byte) (*Spec, error) {
	d := &decoder{yamldoc.Decoder{File: name, Errs: sentinels, RefusedFormat: "not supported by Gantry: %s"}}
	return yamldoc.Parse(&d.Decoder, data, limits, schemas.Buildspec, d.spec)
}

// decoder walks a buildspec's AST with the shared strict YAML machinery.
type decoder struct{ yamldoc.Decoder }

type (
	entry = yamldoc.Entry
	field = yamldoc.Field
)

// varName is the shape of an environment variable name; schemas/buildspec.json
// has the same pattern.
var varName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// reportName is the shape of a report name (schemas/defs.json#/$defs/name).
var reportName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

var topUnsupported = map[string]string{
	"run-as":   "commands run as the worker's user",
	"proxy":    "configure the proxy in the worker's environment",
	"batch":    "use pipeline stages and actions for build batches",
	"cache":    "caching between builds is not implemented",
	"fleet":    "choose the worker pool in the pipeline file",
	"hooks":    "hooks are not implemented",
	"platform": "choose the worker pool in the pipeline file",
}

func (d *decoder) spec(body ast.Node) *Spec {
	s := &Spec{Version: Version}
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
		{Name: "env", Decode: func(e entry, p string) { d.env(e, p, &s.Env) }},
		{Name: "phases", Required: true, Decode: func(e entry, p string) { d.phases(e, p, &s.Phases) }},
		{Name: "artifacts", Decode: func(e entry, p string) { s.Artifacts = d.artifacts(e, p) }},
		{Name: "reports", Decode: func(e entry, p string) { s.Reports = d.reports(e, p) }},
	}, topUnsupported)
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
		if f, err := strconv.ParseFloat(text, 64); err == nil && f == 0.2 {
			return
		}
		d.Add(e.At, path, []error{ErrSchema}, "must be %s, got %s", Version, text)
	case ok:
		d.Add(e.At, path, []error{ErrSchema}, "must be %s, got %q", Version, text)
	default:
		d.MustBe(e.At, path, Version, n)
	}
}

func (d *decoder) env(e entry, path string, env *Env) {
	n, ok := d.Resolve(e.Value, path)
	if !ok {
		return
	}
	d.Object(n, path, e.At, []field{
		{Name: "variables", Decode: func(e entry, p string) { env.Variables = d.variables(e, p) }},
		{Name: "exported-variables", Decode: func(e entry, p string) { env.ExportedVariables = d.exported(e, p) }},
		{Name: "secrets", Decode: func(e entry, p string) { env.Secrets = d.secrets(e, p) }},
	}, map[string]string{
		"shell":                 "commands run with bash, or sh where bash is missing",
		"parameter-store":       "use env.secrets: NAME: a secret stored with `gantry secret set`, or file:/path on the worker",
		"secrets-manager":       "use env.secrets: NAME: a secret stored with `gantry secret set`, or file:/path on the worker",
		"git-credential-helper": "configure git in the install phase",
	})
}

func (d *decoder) variables(e entry, path string) map[string]string {
	n, ok := d.Resolve(e.Value, path)
	if !ok {
		return nil
	}
	es, ok := d.Entries(n, path, e.At)
	if !ok {
		return nil
	}
	out := map[string]string{}
	for _, v := range es {
		p := yamldoc.Join(path, v.Key)
		if !varName.MatchString(v.Key) {
			d.Add(v.At, p, []error{ErrSchema}, "invalid variable name: use letters, digits and _, not starting with a digit, at most 128")
		}
		vn, ok := d.Resolve(v.Value, p)
		if !ok {
			continue
		}
		text, _, ok := yamldoc.Scalar(vn)
		switch {
		case !ok:
			hint := ""
			if _, null := vn.(*ast.NullNode); null {
				hint = `; write "" for an empty value`
			}
			d.Add(v.At, p, []error{ErrSchema}, "must be a string, number or boolean, got %s%s", yamldoc.KindOf(vn), hint)
		case strings.ContainsRune(text, 0):
			d.Add(v.At, p, []error{ErrSchema}, "must not contain a NUL character")
		default:
			out[v.Key] = text
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// secrets reads env.secrets: environment variable names to secret
// references (events.ValidSecretRef), never values.
func (d *decoder) secrets(e entry, path string) map[string]string {
	n, ok := d.Resolve(e.Value, path)
	if !ok {
		return nil
	}
	es, ok := d.Entries(n, path, e.At)
	if !ok {
		return nil
	}
	out := map[string]string{}
	for _, v := range es {
		p := yamldoc.Join(path, v.Key)
		if !varName.MatchString(v.Key) {
			d.Add(v.At, p, []error{ErrSchema}, "invalid variable name: use letters, digits and _, not starting with a digit, at most 128")
		}
		vn, ok := d.Resolve(v.Value, p)
		if !ok {
			continue
		}
		text, kind, ok := yamldoc.Scalar(vn)
		switch {
		case !ok || kind != "string":
			d.Add(v.At, p, []error{ErrSchema}, "must be a secret reference (a secret's name, or file:/path), got %s", yamldoc.KindOf(vn))
		case !events.ValidSecretRef(text):
			// The value is not repeated: it may be a secret pasted by mistake.
			d.Add(v.At, p, []error{ErrSchema}, "not a secret reference: give a secret's name (1-64 letters, digits, '-' or '_') or file: and an absolute path; never the secret itself")
		default:
			out[v.Key] = text
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func (d *decoder) exported(e entry, path string) []string {
	items := d.stringList(e, path, "variable names", false, "")
	seen := map[string]yamldoc.Pos{}
	for _, it := range items {
		p := yamldoc.Index(path, it.index)
		if !varName.MatchString(it.text) {
			d.Add(it.at, p, []error{ErrSchema}, "invalid variable name %q: use letters, digits and _, not starting with a digit, at most 128", it.text)
		}
		if first, dup := seen[it.text]; dup {
			d.Add(it.at, p, []error{ErrSchema}, "%s is listed twice (first at line %d)", it.text, first.Line)
			continue
		}
		seen[it.text] = it.at
	}
	return texts(items)
}

// item is one string of a list, with its index and position.
type item struct {
	text  string
	index int
	at    yamldoc.Pos
}

func texts(items []item) []string {
	if len(items) == 0 {
		return nil
	}
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.text
	}
	return out
}

// stringList decodes a list of strings. Numbers and booleans are refused
// (a command "true" must be quoted), so the list means the same to every
// YAML reader and to the schema. hint is added to the message for a mapping
// item.
func (d *decoder) stringList(e entry, path, what string, nonEmpty bool, mapHint string) []item {
	n, ok := d.Resolve(e.Value, path)
	if !ok {
		return nil
	}
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		d.MustBe(e.At, path, "a list of "+what, n)
		return nil
	}
	if len(seq.Values) == 0 {
		if nonEmpty {
			d.Add(e.At, path, []error{ErrSchema}, "must not be an empty list")
		}
		return nil
	}
	var out []item
	for i, node := range seq.Values {
		p := yamldoc.Index(path, i)
		ipos := yamldoc.PosOf(node)
		it, ok := d.Resolve(node, p)
		if !ok {
			continue
		}
		text, kind, ok := yamldoc.Scalar(it)
		switch {
		case ok && kind == "string":
			if strings.ContainsRune(text, 0) {
				d.Add(ipos, p, []error{ErrSchema}, "must not contain a NUL character")
				continue
			}
			out = append(out, item{text: text, index: i, at: ipos})
		case ok:
			d.Add(ipos, p, []error{ErrSchema}, "must be a string, got %s; quote it: %q", yamldoc.KindOf(it), text)
		default:
			hint := ""
			if _, isMap := it.(*ast.MappingNode); isMap || isMappingValue(it) {
				hint = mapHint
			}
			d.Add(ipos, p, []error{ErrSchema}, "must be a string, got %s%s", yamldoc.KindOf(it), hint)
		}
	}
	return out
}

func isMappingValue(n ast.Node) bool {
	_, ok := n.(*ast.MappingValueNode)
	return ok
}

var phaseUnsupported = map[string]string{
	"runtime-versions": "install runtimes with commands",
	"run-as":           "commands run as the worker's user",
}

func (d *decoder) phases(e entry, path string, ph *Phases) {
	n, ok := d.Resolve(e.Value, path)
	if !ok {
		return
	}
	count := 0
	decode := func(dst **Phase) func(entry, string) {
		return func(e entry, p string) {
			count++
			*dst = d.phase(e, p)
		}
	}
	ok = d.Object(n, path, e.At, []field{
		{Name: Install, Decode: decode(&ph.Install)},
		{Name: PreBuild, Decode: decode(&ph.PreBuild)},
		{Name: Build, Decode: decode(&ph.Build)},
		{Name: PostBuild, Decode: decode(&ph.PostBuild)},
	}, nil)
	if ok && count == 0 {
		d.Add(e.At, path, []error{ErrSchema}, "must define at least one of install, pre_build, build or post_build")
	}
}

const commandHint = `; quote a command that contains ": "`

func (d *decoder) phase(e entry, path string) *Phase {
	n, ok := d.Resolve(e.Value, path)
	if !ok {
		return nil
	}
	ph := &Phase{OnFailure: Abort}
	d.Object(n, path, e.At, []field{
		{Name: "commands", Required: true, Decode: func(e entry, p string) {
			ph.Commands = d.commands(e, p)
		}},
		{Name: "finally", Decode: func(e entry, p string) {
			ph.Finally = d.commands(e, p)
		}},
		{Name: "on-failure", Decode: func(e entry, p string) {
			n, ok := d.Resolve(e.Value, p)
			if !ok {
				return
			}
			text, kind, ok := yamldoc.Scalar(n)
			switch {
			case ok && kind == "string" && (text == string(Abort) || text == string(Continue)):
				ph.OnFailure = OnFailure(text)
			case ok:
				d.Add(e.At, p, []error{ErrSchema}, "must be ABORT or CONTINUE, got %q", text)
			default:
				d.MustBe(e.At, p, "ABORT or CONTINUE", n)
			}
		}},
	}, phaseUnsupported)
	return ph
}

func (d *decoder) commands(e entry, path string) []string {
	items := d.stringList(e, path, "commands", true, commandHint)
	for _, it := range items {
		if strings.TrimSpace(it.text) == "" {
			d.Add(it.at, yamldoc.Index(path, it.index), []error{ErrSchema}, "must not be empty")
		}
	}
	return texts(items)
}

func (d *decoder) artifacts(e entry, path string) *Artifacts {
	n, ok := d.Resolve(e.Value, path)
	if !ok {
		return nil
	}
	a := &Artifacts{}
	d.Object(n, path, e.At, []field{
		{Name: "files", Required: true, Decode: func(e entry, p string) { a.Files = d.globs(e, p) }},
		{Name: "base-directory", Decode: func(e entry, p string) { a.BaseDirectory = d.baseDirectory(e, p) }},
		{Name: "discard-paths", Decode: func(e entry, p string) {
			n, ok := d.Resolve(e.Value, p)
			if !ok {
				return
			}
			text, kind, ok := yamldoc.Scalar(n)
			switch {
			case ok && kind == "boolean":
				a.DiscardPaths = n.(*ast.BoolNode).Value
			case ok && kind == "string" && (text == "yes" || text == "no"):
				a.DiscardPaths = text == "yes"
			case ok:
				d.Add(e.At, p, []error{ErrSchema}, "must be yes or no, got %q", text)
			default:
				d.MustBe(e.At, p, "yes or no", n)
			}
		}},
	}, map[string]string{
		"name":                "the pipeline file names output artifacts",
		"secondary-artifacts": "an action has one output artifact; use more actions",
		"exclude-paths":       "list only the files to include",
		"enable-symlinks":     "symlinks are stored as the files they point to",
		"s3-prefix":           "artifacts go to the object store",
	})
	return a
}

func (d *decoder) globs(e entry, path string) []string {
	items := d.stringList(e, path, "file globs", true, "")
	for _, it := range items {
		if msg := GlobProblem(it.text); msg != "" {
			d.Add(it.at, yamldoc.Index(path, it.index), []error{ErrInvalidPath}, "%s", msg)
		}
	}
	return texts(items)
}

func (d *decoder) baseDirectory(e entry, path string) string {
	n, ok := d.Resolve(e.Value, path)
	if !ok {
		return ""
	}
	text, kind, ok := yamldoc.Scalar(n)
	if !ok || kind != "string" {
		d.MustBe(e.At, path, "a string", n)
		return ""
	}
	if msg := DirProblem(text); msg != "" {
		d.Add(e.At, path, []error{ErrInvalidPath}, "%s", msg)
	}
	return text
}

// GlobProblem says what is wrong with a file glob, or returns "" for a valid
// one: a doublestar pattern, relative, without ".." segments.
func GlobProblem(g string) string {
	switch {
	case g == "":
		return "must not be empty"
	case strings.ContainsRune(g, 0):
		return "must not contain a NUL character"
	case strings.HasPrefix(g, "/"):
		return fmt.Sprintf("%q must be relative to the base directory", g)
	case hasDotDot(g):
		return fmt.Sprintf("%q must not contain \"..\"", g)
	case !doublestar.ValidatePattern(g):
		return fmt.Sprintf("%q is not a valid glob pattern", g)
	}
	return ""
}

// DirProblem says what is wrong with a base directory, or returns "" for a
// valid one: relative, without ".." segments.
func DirProblem(dir string) string {
	switch {
	case dir == "":
		return "must not be empty; leave it out to mean the workspace"
	case strings.ContainsRune(dir, 0):
		return "must not contain a NUL character"
	case strings.HasPrefix(dir, "/"):
		return fmt.Sprintf("%q must be relative to the workspace", dir)
	case hasDotDot(dir):
		return fmt.Sprintf("%q must not contain \"..\"", dir)
	}
	return ""
}

func hasDotDot(p string) bool {
	return slices.Contains(strings.Split(p, "/"), "..")
}

func (d *decoder) reports(e entry, path string) map[string]Report {
	n, ok := d.Resolve(e.Value, path)
	if !ok {
		return nil
	}
	es, ok := d.Entries(n, path, e.At)
	if !ok {
		return nil
	}
	out := map[string]Report{}
	for _, re := range es {
		p := yamldoc.Join(path, re.Key)
		if !reportName.MatchString(re.Key) {
			d.Add(re.At, p, []error{ErrSchema}, "invalid report name: use 1-64 letters, digits, - or _, starting with a letter or digit")
		}
		rn, ok := d.Resolve(re.Value, p)
		if !ok {
			continue
		}
		r := Report{FileFormat: FileFormatJUnitXML}
		d.Object(rn, p, re.At, []field{
			{Name: "files", Required: true, Decode: func(e entry, p string) { r.Files = d.globs(e, p) }},
			{Name: "base-directory", Decode: func(e entry, p string) { r.BaseDirectory = d.baseDirectory(e, p) }},
			{Name: "file-format", Decode: func(e entry, p string) {
				n, ok := d.Resolve(e.Value, p)
				if !ok {
					return
				}
				text, _, ok := yamldoc.Scalar(n)
				switch {
				case ok && text == FileFormatJUnitXML:
				case ok:
					d.Add(e.At, p, []error{ErrSchema}, "must be JUNITXML (the only format Gantry reads), got %q", text)
				default:
					d.MustBe(e.At, p, "JUNITXML", n)
				}
			}},
		}, map[string]string{
			"discard-paths": "report files are read where they are",
		})
		out[re.Key] = r
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
