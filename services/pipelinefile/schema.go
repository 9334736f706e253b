package pipelinefile

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/schemas"
	"github.com/gantry-ci/gantry/services/internal/yamldoc"
)

// schemaInfo is the compiled pipeline schema and the facts the parser reads
// from it to explain violations: which fields each mapping allows and which
// keys variables and configuration accept. Reading them from the schema keeps
// schemas/pipeline.json the one place they are spelled.
type schemaInfo struct {
	validator    *schemas.Validator
	rootFields   []string
	stageFields  []string
	actionFields []string
	variableKey  *regexp.Regexp
	configKey    *regexp.Regexp
	secretKey    *regexp.Regexp
}

var loadSchema = sync.OnceValues(func() (*schemaInfo, error) {
	v, err := schemas.New()
	if err != nil {
		return nil, err
	}
	raw, err := schemas.Read(schemas.Pipeline + ".json")
	if err != nil {
		return nil, err
	}
	var s schemaNode
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("pipeline schema: %w", err)
	}
	stage, action := s.Defs["stage"], s.Defs["action"]
	if stage == nil || action == nil || s.Properties["variables"] == nil || action.Properties["configuration"] == nil {
		return nil, fmt.Errorf("pipeline schema: missing $defs stage or action, or variables or configuration")
	}
	info := &schemaInfo{
		validator:    v,
		rootFields:   s.fields(),
		stageFields:  stage.fields(),
		actionFields: action.fields(),
	}
	if info.variableKey, err = s.Properties["variables"].keyPattern(); err != nil {
		return nil, err
	}
	if info.configKey, err = action.Properties["configuration"].keyPattern(); err != nil {
		return nil, err
	}
	if action.Properties["secrets"] == nil {
		return nil, fmt.Errorf("pipeline schema: missing action secrets")
	}
	if info.secretKey, err = action.Properties["secrets"].keyPattern(); err != nil {
		return nil, err
	}
	return info, nil
})

// schemaNode is the part of a JSON Schema the parser reads.
type schemaNode struct {
	Properties        map[string]*schemaNode `json:"properties"`
	PatternProperties map[string]*schemaNode `json:"patternProperties"`
	Defs              map[string]*schemaNode `json:"$defs"`
}

func (s *schemaNode) fields() []string {
	out := make([]string, 0, len(s.Properties))
	for k := range s.Properties {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (s *schemaNode) keyPattern() (*regexp.Regexp, error) {
	if len(s.PatternProperties) != 1 {
		return nil, fmt.Errorf("pipeline schema: want one patternProperties entry, have %d", len(s.PatternProperties))
	}
	for k := range s.PatternProperties {
		return regexp.Compile(k)
	}
	return nil, nil
}

// mappingKind tells which mapping of the file a path names.
type mappingKind int

const (
	kindOther mappingKind = iota
	kindRoot
	kindVariables
	kindStage
	kindAction
	kindConfiguration
	kindSecrets
)

func kindOf(p fieldPath) mappingKind {
	is := func(i int, key string) bool { return !p[i].isIndex && p[i].key == key }
	switch {
	case len(p) == 0:
		return kindRoot
	case len(p) == 1 && is(0, "variables"):
		return kindVariables
	case len(p) == 2 && is(0, "stages") && p[1].isIndex:
		return kindStage
	case len(p) == 4 && is(0, "stages") && is(2, "actions") && p[3].isIndex:
		return kindAction
	case len(p) == 5 && is(0, "stages") && is(2, "actions") && is(4, "configuration"):
		return kindConfiguration
	case len(p) == 5 && is(0, "stages") && is(2, "actions") && is(4, "secrets"):
		return kindSecrets
	}
	return kindOther
}

// isNameField reports whether the path holds a Gantry name (events.ValidName).
func isNameField(p fieldPath) bool {
	if len(p) == 0 {
		return false
	}
	last := p[len(p)-1]
	if last.isIndex {
		return len(p) >= 2 && !p[len(p)-2].isIndex && isArtifactList(p[len(p)-2].key) && kindOf(p[:len(p)-2]) == kindAction
	}
	if last.key == "name" && len(p) >= 3 && p[len(p)-2].isIndex && isArtifactList(p[len(p)-3].key) && kindOf(p[:len(p)-3]) == kindAction {
		return true // inputArtifacts: [{name: ...}]
	}
	switch last.key {
	case "name":
		k := kindOf(p[:len(p)-1])
		return k == kindRoot || k == kindStage || k == kindAction
	case "type", "pool":
		return kindOf(p[:len(p)-1]) == kindAction
	}
	return false
}

// isArtifactList reports whether an action's key lists artifacts, in
// either spelling.
func isArtifactList(key string) bool {
	switch key {
	case "inputs", "outputs", "inputArtifacts", "outputArtifacts":
		return true
	}
	return false
}

const nameRule = "must be 1-64 letters, digits, '-' or '_' and start with a letter or digit"

var (
	reType      = regexp.MustCompile(`^got (\S+), want (.+)$`)
	reMinimum   = regexp.MustCompile(`^minimum: got \S+, want (\S+)$`)
	reMaximum   = regexp.MustCompile(`^maximum: got \S+, want (\S+)$`)
	reMinItems  = regexp.MustCompile(`^minItems: got (\d+), want (\d+)$`)
	reMaxLength = regexp.MustCompile(`^maxLength: got (\d+), want (\d+)$`)
	reMinLength = regexp.MustCompile(`^minLength: got (\d+), want (\d+)$`)
	reUnique    = regexp.MustCompile(`^items at (\d+) and (\d+) are equal$`)
	reRequired  = regexp.MustCompile(`^missing propert(?:y|ies) (.+)$`)
	reQuoted    = regexp.MustCompile(`'([^'\\]*)'`)
	reAddProps  = regexp.MustCompile(`^additional propert(?:y|ies) .* not allowed$`)
	rePattern   = regexp.MustCompile(` does not match pattern `)
)

// number undoes the validator's digit grouping ("28,800").
func number(s string) string {
	s = strings.ReplaceAll(s, ",", "")
	// The validator writes large bounds in scientific notation with
	// superscript digits (5.184×10⁰⁶); write them out (5184000).
	mant, exp, ok := strings.Cut(s, "×10")
	if !ok {
		return s
	}
	digits := strings.NewReplacer("⁰", "0", "¹", "1", "²", "2", "³", "3", "⁴", "4", "⁵", "5", "⁶", "6", "⁷", "7", "⁸", "8", "⁹", "9", "⁻", "-").Replace(exp)
	f, err := strconv.ParseFloat(mant+"e"+digits, 64)
	if err != nil {
		return s
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// yamlType names a JSON Schema type the way a YAML author thinks of it.
func yamlType(t string) string {
	switch t {
	case "object":
		return "a mapping"
	case "array":
		return "a list"
	case "integer":
		return "an integer"
	case "null":
		return "nothing (null)"
	default:
		return "a " + t
	}
}

// schemaProblems turns one violation from schemas.Details into problems
// that name the field and the value in words, not schema keywords. The
// validator's messages come from santhosh-tekuri/jsonschema/v6, pinned by the
// schemas module; a message this does not recognise is passed on as it is.
func (c *checker) schemaProblems(d schemas.Detail) {
	p := pointerPath(c.doc, d.Pointer)
	if c.reported[p.String()] {
		return // a conversion problem already explains this value
	}
	msg := d.Message
	val := lookup(c.doc, p)
	if _, isString := val.(string); isString && len(p) == 6 && kindOf(p[:5]) == kindSecrets {
		// The value is not repeated: it may be a secret pasted by mistake.
		c.add(p, "not a secret reference: give a secret's name (1-64 letters, digits, '-' or '_') or file: and an absolute path; never the secret itself", ErrSchema)
		return
	}
	switch {
	case reAddProps.MatchString(msg):
		if c.unknownKeys(p) {
			return
		}
		// The validator lists the properties in map order, and a key may
		// itself hold quotes or commas: name the document's own keys that
		// the message quotes, sorted, so one file always gets one message.
		var names []string
		if m, ok := lookup(c.doc, p).(map[string]any); ok {
			for k := range m {
				if strings.Contains(msg, "'"+k+"'") {
					names = append(names, "'"+k+"'")
				}
			}
		}
		if len(names) == 0 {
			for _, m := range reQuoted.FindAllStringSubmatch(msg, -1) {
				names = append(names, "'"+m[1]+"'")
			}
		}
		slices.Sort(names)
		word := "property"
		if len(names) > 1 {
			word = "properties"
		}
		msg = fmt.Sprintf("additional %s %s not allowed", word, strings.Join(names, ", "))
	case reRequired.MatchString(msg):
		for _, m := range reQuoted.FindAllStringSubmatch(reRequired.FindStringSubmatch(msg)[1], -1) {
			c.add(p, fmt.Sprintf("missing required field %q", m[1]), ErrSchema, ErrMissingField)
		}
		return
	case reType.MatchString(msg):
		m := reType.FindStringSubmatch(msg)
		wants := strings.Split(m[2], " or ")
		for i := range wants {
			wants[i] = yamlType(wants[i])
		}
		text := fmt.Sprintf("must be %s, got %s", strings.Join(wants, " or "), strings.TrimPrefix(strings.TrimPrefix(yamlType(m[1]), "a "), "an "))
		switch m[1] {
		case "number", "integer", "boolean":
			src := c.sourceText(p, val)
			text += " " + src
			if m[2] == "string" {
				text += fmt.Sprintf("; quote it: %q", src)
			}
		case "string":
			s, _ := val.(string)
			if len(s) > 40 {
				s = s[:40] + "..."
			}
			text += fmt.Sprintf(" %q", s)
		}
		c.add(p, text, ErrSchema)
		return
	case reMinimum.MatchString(msg):
		c.add(p, fmt.Sprintf("must be >= %s, got %v", number(reMinimum.FindStringSubmatch(msg)[1]), val), ErrSchema)
		return
	case reMaximum.MatchString(msg):
		c.add(p, fmt.Sprintf("must be <= %s, got %v", number(reMaximum.FindStringSubmatch(msg)[1]), val), ErrSchema)
		return
	case reMinItems.MatchString(msg):
		m := reMinItems.FindStringSubmatch(msg)
		text := fmt.Sprintf("must have at least %s items, got %s", m[2], m[1])
		if len(p) > 0 && !p[len(p)-1].isIndex && m[2] == "1" {
			switch p[len(p)-1].key {
			case "stages":
				text = "must have at least one stage"
			case "actions":
				text = "must have at least one action"
			}
		}
		c.add(p, text, ErrSchema)
		return
	case reMaxLength.MatchString(msg):
		m := reMaxLength.FindStringSubmatch(msg)
		c.add(p, fmt.Sprintf("must be at most %s characters long, got %s", m[2], m[1]), ErrSchema)
		return
	case reMinLength.MatchString(msg):
		m := reMinLength.FindStringSubmatch(msg)
		c.add(p, fmt.Sprintf("must be at least %s characters long, got %s", m[2], m[1]), ErrSchema)
		return
	case reUnique.MatchString(msg):
		m := reUnique.FindStringSubmatch(msg)
		i, _ := strconv.Atoi(m[1])
		j, _ := strconv.Atoi(m[2])
		item := lookup(c.doc, p.idx(j))
		errs := []error{ErrSchema}
		if len(p) > 0 && (p[len(p)-1].key == "outputs" || p[len(p)-1].key == "outputArtifacts") {
			errs = append(errs, ErrDuplicateArtifact)
		}
		c.add(p.idx(j), fmt.Sprintf("%q is listed twice (also at %s)", item, p.idx(i)), errs...)
		return
	case rePattern.MatchString(msg) && isNameField(p):
		c.add(p, fmt.Sprintf("%s, got %q", nameRule, val), ErrSchema, events.ErrInvalidName)
		return
	}
	c.add(p, msg, ErrSchema)
}

// unknownKeys reports each key of the mapping at p that its schema does not
// allow, at the key's own position. It returns false when it cannot tell
// which keys those are.
func (c *checker) unknownKeys(p fieldPath) bool {
	m, ok := lookup(c.doc, p).(map[string]any)
	if !ok {
		return false
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var allowed []string
	var pattern *regexp.Regexp
	var rule string
	switch kindOf(p) {
	case kindRoot:
		allowed = c.schema.rootFields
	case kindStage:
		allowed = c.schema.stageFields
	case kindAction:
		allowed = c.schema.actionFields
	case kindVariables:
		pattern, rule = c.schema.variableKey, "invalid variable name %q: use 1-128 letters, digits or '_', not starting with a digit"
	case kindConfiguration:
		pattern, rule = c.schema.configKey, "invalid configuration key %q: use 1-128 letters, digits, '_', '.' or '-', starting with a letter"
	case kindSecrets:
		pattern, rule = c.schema.secretKey, "invalid environment variable name %q: use 1-128 letters, digits or '_', not starting with a digit"
	default:
		return false
	}
	found := false
	for _, k := range keys {
		switch {
		case pattern != nil && !pattern.MatchString(k):
			c.add(p.key(k), fmt.Sprintf(rule, k), ErrSchema)
			found = true
		case allowed != nil && !slices.Contains(allowed, k):
			text := "unknown field"
			if s := suggest(k, allowed); s != "" {
				text += fmt.Sprintf("; did you mean %q?", s)
			} else {
				text += " (allowed: " + strings.Join(allowed, ", ") + ")"
			}
			c.add(p.key(k), text, ErrSchema, ErrUnknownField)
			found = true
		}
	}
	return found
}

// suggest returns the allowed field closest to a mistyped one, or "".
func suggest(got string, allowed []string) string {
	best, bestDist := "", 3
	lg := strings.ToLower(got)
	for _, a := range allowed {
		la := strings.ToLower(a)
		if lg == la || (len(lg) >= 4 && (strings.HasPrefix(la, lg) || strings.HasPrefix(lg, la))) {
			return a
		}
		if d := yamldoc.Distance(lg, la); d < bestDist {
			best, bestDist = a, d
		}
	}
	return best
}

// sourceText is a scalar as written in the file, for hints like quote it: "3".
func (c *checker) sourceText(p fieldPath, val any) string {
	if n, _ := c.loc.find(p); n != nil {
		if n = c.loc.deref(n); n != nil {
			if tk := n.GetToken(); tk != nil && tk.Value != "" {
				return tk.Value
			}
		}
	}
	return fmt.Sprint(val)
}
