package pipelinefile

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/parser"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/schemas"
	"github.com/gantry-ci/gantry/services/internal/yamldoc"
)

// Defaults and limits of the pipeline file.
const (
	DefaultPool           = "default"
	DefaultRunOrder       = 1
	DefaultTimeoutSeconds = 3600
	MaxTimeoutSeconds     = 28800
	MaxRunOrder           = 999

	// MaxFileSize is the largest pipeline file Parse reads.
	MaxFileSize = 256 << 10
	// MaxNodes bounds the values of the document once YAML aliases are
	// expanded, so that a few lines of nested aliases cannot exhaust memory.
	MaxNodes = 100_000
)

// Parse reads a pipeline file (YAML, or JSON, which is YAML) and returns the
// definition with defaults applied: pool "default", runOrder 1,
// timeoutSeconds 3600. The filename is used only in messages.
//
// It reports every problem it finds at once, as a *ParseError whose problems
// name file:line:column and the field, e.g.
//
//	pipeline.yaml:12:9: stages[1].actions[0].runOrder: must be >= 1, got 0
//
// Each problem wraps ErrSyntax, ErrTooLarge, ErrSchema (with ErrUnknownField,
// ErrMissingField or events.ErrInvalidName), ErrDuplicateName,
// ErrDuplicateArtifact, ErrInputNotProduced or ErrMissingConfiguration. A YAML
// syntax error stops parsing, so it is reported alone. Any other error (the
// embedded schema failing to load) is returned as it is.
//
// A definition Parse returns has only valid names (events.ValidName), unique
// stage names, unique action names per stage, unique output artifacts, and
// every input produced by an action of an earlier stage or an earlier runOrder
// group of the same stage.
func Parse(filename string, data []byte) (events.Definition, error) {
	info, err := loadSchema()
	if err != nil {
		return events.Definition{}, fmt.Errorf("pipelinefile: %w", err)
	}
	c := &checker{file: filename, schema: info, reported: map[string]bool{}}
	def, ok := c.parse(data)
	if !ok || len(c.problems) > 0 {
		return events.Definition{}, c.err()
	}
	return def, nil
}

// checker collects the problems of one file.
type checker struct {
	file     string
	schema   *schemaInfo
	loc      *locator
	doc      any
	problems []*Problem
	// reported holds paths whose value conversion already failed, so the
	// schema's complaint about the stand-in value is not reported again.
	reported map[string]bool
	nodes    int
}

func (c *checker) add(p fieldPath, msg string, errs ...error) {
	pos := c.loc.position(p)
	c.problems = append(c.problems, &Problem{
		File: c.file, Line: pos.Line, Column: pos.Column,
		Path: p.String(), Message: msg, Errs: errs,
	})
}

func (c *checker) addAt(line, col int, msg string, errs ...error) {
	c.problems = append(c.problems, &Problem{File: c.file, Line: line, Column: col, Message: msg, Errs: errs})
}

// err returns the problems in file order, each once.
func (c *checker) err() error {
	slices.SortStableFunc(c.problems, func(a, b *Problem) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column),
			cmp.Compare(a.Path, b.Path), cmp.Compare(a.Message, b.Message))
	})
	c.problems = slices.CompactFunc(c.problems, func(a, b *Problem) bool { return a.Error() == b.Error() })
	return &ParseError{File: c.file, Problems: c.problems}
}

// parse runs every step; ok is false when a step failed so badly that the
// later ones cannot run (the problem is recorded).
func (c *checker) parse(data []byte) (events.Definition, bool) {
	c.loc = newLocator(nil)
	if len(data) > MaxFileSize {
		c.addAt(0, 0, fmt.Sprintf("file is %d bytes, more than the limit of %d", len(data), MaxFileSize), ErrTooLarge)
		return events.Definition{}, false
	}
	if !utf8.Valid(data) {
		at := yamldoc.InvalidUTF8(data)
		c.addAt(at.Line, at.Col, "file is not valid UTF-8", ErrSyntax)
		return events.Definition{}, false
	}
	// 1. YAML syntax, within the structure limits.
	tokens := lexer.Tokenize(string(data))
	if pos, msg := checkStructure(tokens); msg != "" {
		c.addAt(pos.Line, pos.Column, msg, ErrTooLarge)
		return events.Definition{}, false
	}
	f, err := parser.Parse(tokens, 0)
	if err != nil {
		c.yamlError(err)
		return events.Definition{}, false
	}
	var body ast.Node
	for _, d := range f.Docs {
		if d == nil || d.Body == nil {
			continue
		}
		if body != nil {
			pos := nodePos(d.Body)
			if d.Start != nil && d.Start.Position != nil {
				pos = *d.Start.Position
			}
			c.addAt(pos.Line, pos.Column, "a pipeline file holds one YAML document; found a second one", ErrSyntax)
			return events.Definition{}, false
		}
		body = d.Body
	}
	if body == nil {
		c.addAt(1, 1, "file is empty; a pipeline needs at least name and stages", ErrSyntax)
		return events.Definition{}, false
	}
	c.loc = newLocator(body)
	var raw any
	if err := yaml.NodeToValue(body, &raw); err != nil {
		c.yamlError(err)
		return events.Definition{}, false
	}
	// 2. The schema, on plain JSON values: numbers as json.Number, no NaN.
	c.doc = c.convert(raw, nil)
	if c.nodes > MaxNodes {
		return events.Definition{}, false
	}
	details, err := c.schema.validator.Details(schemas.Pipeline, c.doc)
	if err != nil {
		c.addAt(1, 1, err.Error(), ErrSchema)
		return events.Definition{}, false
	}
	for _, d := range details {
		c.schemaProblems(d)
	}
	// 3. What the schema cannot say, on whatever could be read.
	def, paths := c.extract()
	c.semantics(def, paths)
	c.triggerSemantics(def)
	c.gates(def, paths)
	if len(c.problems) > 0 {
		return events.Definition{}, false
	}
	// 4. Defaults, then a last check of what the definition promises.
	applyDefaults(&def)
	c.invariants(def, paths)
	return def, true
}

// yamlError records an error of the YAML parser or decoder at its position.
func (c *checker) yamlError(err error) {
	var ye yaml.Error
	if errors.As(err, &ye) {
		line, col := 0, 0
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			line, col = tk.Position.Line, tk.Position.Column
		}
		c.addAt(line, col, ye.GetMessage(), ErrSyntax)
		return
	}
	if errors.Is(err, yaml.ErrExceededMaxDepth) {
		c.addAt(0, 0, "values nested too deeply", ErrTooLarge)
		return
	}
	c.addAt(0, 0, err.Error(), ErrSyntax)
}

// convert turns a decoded YAML value into the form the schema validator
// takes, counting values so that alias expansion stays bounded.
func (c *checker) convert(v any, p fieldPath) any {
	c.nodes++
	if c.nodes == MaxNodes+1 {
		c.addAt(0, 0, fmt.Sprintf("more than %d values once aliases are expanded", MaxNodes), ErrTooLarge)
	}
	if c.nodes > MaxNodes {
		return nil
	}
	switch v := v.(type) {
	case nil, string, bool:
		return v
	case int:
		return json.Number(strconv.Itoa(v))
	case int64:
		return json.Number(strconv.FormatInt(v, 10))
	case uint64:
		return json.Number(strconv.FormatUint(v, 10))
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			c.bad(p, fmt.Sprintf("must be a finite number, got %s", c.sourceText(p, v)))
			return nil
		}
		return json.Number(strconv.FormatFloat(v, 'g', -1, 64))
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = c.convert(x, p.idx(i))
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = c.convert(x, p.key(k))
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			ks := fmt.Sprint(k)
			out[ks] = c.convert(x, p.key(ks))
		}
		return out
	case time.Time:
		// An explicit !!timestamp; any other date is read as a string.
		c.bad(p, "timestamps are not allowed; quote the value to make it a string")
		return nil
	default:
		c.bad(p, fmt.Sprintf("unsupported YAML value of type %T", v))
		return nil
	}
}

func (c *checker) bad(p fieldPath, msg string) {
	c.reported[p.String()] = true
	c.add(p, msg, ErrSchema)
}

// actionPaths remembers where each action came from, for messages.
type actionPaths struct {
	path    fieldPath
	inputs  []fieldPath // where in the file each kept input is named
	outputs []fieldPath
}

// extract reads the definition from the document, leniently: a value of the
// wrong type (which the schema reported) is left out, so the semantic checks
// can still run on the rest. paths[i][j] is where stage i's action j is.
func (c *checker) extract() (events.Definition, [][]actionPaths) {
	var def events.Definition
	root, _ := c.doc.(map[string]any)
	def.Name, _ = root["name"].(string)
	if vars, ok := root["variables"].(map[string]any); ok {
		def.Variables = stringValues(vars)
	}
	def.Triggers = extractTriggers(root)
	def.ExecutionMode, _ = root["executionMode"].(string)
	stages, _ := root["stages"].([]any)
	paths := make([][]actionPaths, 0, len(stages))
	for i, s := range stages {
		sm, _ := s.(map[string]any)
		st := events.StageDef{}
		st.Name, _ = sm["name"].(string)
		st.DependsOn, _ = names(sm["dependsOn"])
		if of, ok := sm["onFailure"].(map[string]any); ok {
			result, _ := of["result"].(string)
			st.OnFailure = &events.OnFailure{Result: result, Retries: intField(of["retries"])}
		}
		actions, _ := sm["actions"].([]any)
		ap := make([]actionPaths, 0, len(actions))
		for j, a := range actions {
			am, _ := a.(map[string]any)
			p := actionPaths{path: fieldPath{}.key("stages").idx(i).key("actions").idx(j)}
			act := events.ActionDef{}
			act.Name, _ = am["name"].(string)
			act.Type, _ = am["type"].(string)
			act.Pool, _ = am["pool"].(string)
			act.Namespace, _ = am["namespace"].(string)
			act.RunOrder = intField(am["runOrder"])
			act.TimeoutSeconds = intField(am["timeoutSeconds"])
			act.Inputs, p.inputs = c.artifacts(am, p.path, "inputs", "inputArtifacts")
			act.Outputs, p.outputs = c.artifacts(am, p.path, "outputs", "outputArtifacts")
			if cfg, ok := am["configuration"].(map[string]any); ok {
				act.Configuration = stringValues(cfg)
			}
			if sec, ok := am["secrets"].(map[string]any); ok {
				act.Secrets = stringValues(sec)
			}
			st.Actions = append(st.Actions, act)
			ap = append(ap, p)
		}
		st.BeforeEntry = extractCondition(sm["beforeEntry"])
		st.OnSuccess = extractCondition(sm["onSuccess"])
		def.Stages = append(def.Stages, st)
		paths = append(paths, ap)
	}
	return def, paths
}

// stringValues keeps the string values of a mapping; nil when there are none.
func stringValues(m map[string]any) map[string]string {
	var out map[string]string
	for k, v := range m {
		if s, ok := v.(string); ok {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = s
		}
	}
	return out
}

// names keeps the string items of a list, with their indexes.
func names(v any) ([]string, []int) {
	list, _ := v.([]any)
	var out []string
	var idx []int
	for i, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
			idx = append(idx, i)
		}
	}
	return out, idx
}

// artifacts reads an action's artifact list from either of its spellings:
// Gantry's short one (inputs: [src]) or CodePipeline's (inputArtifacts:
// [{name: src}], or plain names), so a CodePipeline user's file reads as
// written. It keeps the valid-looking names with where each is written;
// the schema reported the rest.
func (c *checker) artifacts(am map[string]any, at fieldPath, short, long string) ([]string, []fieldPath) {
	list, key := am[short], short
	if l, ok := am[long]; ok {
		if _, both := am[short]; both {
			c.add(at.key(long), fmt.Sprintf("use %s or %s, not both (they are the same list)", short, long), ErrSchema)
		}
		list, key = l, long
	}
	items, _ := list.([]any)
	var out []string
	var where []fieldPath
	seen := map[string]fieldPath{}
	for i, x := range items {
		p := at.key(key).idx(i)
		name, ok := x.(string)
		if m, isMap := x.(map[string]any); isMap && key == long {
			name, ok = m["name"].(string)
			p = p.key("name")
		}
		if !ok {
			continue
		}
		if first, dup := seen[name]; dup {
			// The schema's uniqueItems catches an item written twice alike;
			// a name and {name: it} (paths of different lengths) are two
			// items naming one artifact.
			if len(first) != len(p) {
				errs := []error{ErrSchema}
				if short == "outputs" {
					errs = append(errs, ErrDuplicateArtifact)
				}
				c.add(p, fmt.Sprintf("%q is listed twice (also at %s)", name, first), errs...)
			}
			continue
		}
		seen[name] = p
		out = append(out, name)
		where = append(where, p)
	}
	return out, where
}

// intField reads an integer, 0 when absent or not an integer.
func intField(v any) int {
	n, ok := v.(json.Number)
	if !ok {
		return 0
	}
	i, err := strconv.ParseInt(string(n), 10, 32)
	if err != nil {
		return 0
	}
	return int(i)
}

func applyDefaults(def *events.Definition) {
	for i := range def.Stages {
		for j := range def.Stages[i].Actions {
			a := &def.Stages[i].Actions[j]
			if a.Pool == "" {
				a.Pool = DefaultPool
			}
			if a.RunOrder == 0 {
				a.RunOrder = DefaultRunOrder
			}
			if a.TimeoutSeconds == 0 {
				a.TimeoutSeconds = DefaultTimeoutSeconds
				if a.Type == events.KindApproval {
					a.TimeoutSeconds = events.DefaultApprovalTimeoutSeconds
				}
			}
		}
	}
}
