package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gantry-ci/gantry/schemas"
)

// The fast validation path.
//
// Validating every event against its JSON Schema with a generic validator
// costs 30-270 µs an event, five to eight times the decode itself, and the
// rebuild and the conductor decode every event of the log. For the run
// event types (fastShapes) the codec instead checks the bytes with a
// hand-written equivalent of their schemas in three steps:
//
//  1. shape: a pass over the envelope's members (parseEnvelope, which also
//     decodes them as encoding/json would) and an allocation-free pass over
//     the data value (walk) check what encoding/json cannot: every member name
//     is known, spelt exactly (encoding/json matches names case-insensitively
//     and folds 'ſ' to 's') and given once; required members are present;
//     every value has the JSON type of its schema (null never does);
//     optional members whose zero value the schema refuses ("" under
//     minLength 1, [] under minItems 1, {} under minProperties 1, 0 under
//     minimum 1 or exclusiveMinimum 0) are not zero, so that after decoding a
//     zero Go value means "absent"; and a float's sign is read from its text,
//     since -1e-400 decodes to -0.
//  2. decode: encoding/json into the typed payload, as before.
//  3. values: the payload's validate method checks the schema's value
//     constraints (patterns, lengths, minimum and maximum, enums, minItems,
//     uniqueItems, map key patterns) on the Go values.
//
// What passes all three is exactly what the schema accepts and encoding/json
// can decode, with one deliberate difference: a member name given twice in
// one object is refused. The schema sees only the last copy, while
// encoding/json merges repeated objects and maps into the first, so the old
// path could decode values it had never validated (FuzzFastPathAgreesWithSchema
// checks the equivalence; fastcodec_test.go has the argument per rule).
// Other types (the deployment events) keep the schema validator.

// fastShapes holds the data shape of every type that has the fast path.
var fastShapes = map[string]*shape{
	TypeRunRequested: obj(
		req("pipeline", str), req("run", str), req("revision", num),
		req("definition", definitionShape), req("trigger", triggerShape),
		opt("variables", varsShape), opt("rollback", rollbackShape)),
	TypeRunStarted:     obj(req("run", str)),
	TypeRunSucceeded:   obj(req("run", str)),
	TypeRunFailed:      obj(req("run", str), opt("stage", str), req("reason", str)),
	TypeStageStarted:   obj(req("run", str), req("stage", str), req("attempt", num)),
	TypeStageSucceeded: obj(req("run", str), req("stage", str), req("attempt", num)),
	TypeStageFailed: obj(req("run", str), req("stage", str), req("attempt", num),
		req("reason", str), opt("rollback", boolean)),
	TypeActionDispatched: obj(req("task", taskShape)),
	TypeActionStarted:    obj(refFields(req("worker", str))...),
	TypeActionHeartbeat:  obj(refFields(req("worker", str), req("beat", num))...),
	TypeActionSucceeded: obj(refFields(opt("worker", str),
		opt("outputs", arr(artifactRefShape)), opt("variables", varsShape), opt("lease", str))...),
	TypeActionFailed:   obj(refFields(opt("worker", str), req("reason", str), opt("lease", str))...),
	TypeArtifactStored: obj(refFields(req("artifact", artifactRefShape))...),
	TypeLogArchived: obj(refFields(req("key", str), req("sha256", str), req("size", num),
		req("lines", num), optKeepZero("truncated", boolean))...),
	TypeTestReported: obj(refFields(req("total", num), req("passed", num), req("failed", num),
		req("skipped", num), req("durationSeconds", nonNegFloat),
		opt("failures", arr(testCaseShape)))...),
}

var (
	str         = &shape{kind: kString}
	num         = &shape{kind: kNumber}
	boolean     = &shape{kind: kBool}
	nonNegFloat = &shape{kind: kNumber, sign: signNonNegative}
	posFloat    = &shape{kind: kNumber, sign: signPositive}
	varsShape   = &shape{kind: kMap, elem: str, key: isVarName}
	// secretsShape: environment variable names to secret references.
	secretsShape = &shape{kind: kMap, elem: str, key: isEnvName}

	artifactRefShape = obj(req("name", str), req("key", str), req("sha256", str), req("size", num))
	triggerShape     = obj(req("id", str), req("kind", str), opt("commit", str), opt("ref", str), opt("actor", str))
	taskShape        = obj(req("id", str), req("pipeline", str), req("run", str), req("stage", str),
		req("action", str), req("attempt", num), req("kind", str), req("pool", str),
		opt("configuration", varsShape), opt("inputs", arr(artifactRefShape)),
		opt("outputs", arr(str)), opt("variables", varsShape), opt("timeoutSeconds", num),
		opt("leaseHash", str), opt("lease", str), opt("secrets", secretsShape))
	actionDefShape = obj(req("name", str), req("type", str), req("pool", str), req("runOrder", num), opt("namespace", str),
		opt("inputs", arr(str)), opt("outputs", arr(str)), opt("configuration", varsShape),
		opt("timeoutSeconds", num), opt("secrets", secretsShape))
	ruleShape      = obj(req("name", str), req("type", str), opt("configuration", varsShape))
	conditionShape = obj(req("result", str), req("rules", arr(ruleShape)))
	onFailureShape = obj(req("result", str), opt("retries", num))
	stageDefShape  = obj(req("name", str), opt("dependsOn", arr(str)), req("actions", arr(actionDefShape)),
		opt("onFailure", onFailureShape), opt("beforeEntry", conditionShape), opt("onSuccess", conditionShape))
	rollbackShape   = obj(req("run", str), req("stage", str), opt("artifacts", arr(artifactRefShape)), opt("cause", str))
	definitionShape = obj(req("name", str), opt("variables", varsShape), req("stages", arr(stageDefShape)),
		opt("triggers", arr(triggerDefShape)), opt("executionMode", str))
	globFilterShape = obj(opt("includes", arr(str)), opt("excludes", arr(str)))
	triggerDefShape = obj(opt("repository", str), opt("events", arr(str)), opt("pullRequestActions", arr(str)),
		opt("branches", globFilterShape), opt("tags", globFilterShape), opt("filePaths", globFilterShape),
		opt("poll", obj(req("interval", str))))
	testCaseShape = obj(opt("suite", str), req("name", str), opt("message", str), opt("durationSeconds", posFloat))
)

func refFields(more ...field) []field {
	return append([]field{req("run", str), req("stage", str), req("action", str), req("attempt", num)}, more...)
}

type jsonKind uint8

const (
	kString jsonKind = iota
	kNumber
	kBool
	kObject // a struct: known members only
	kMap    // string values under names that match key
	kArray
)

type signRule uint8

const (
	signAny         signRule = iota
	signNonNegative          // "minimum": 0 on a float
	signPositive             // "exclusiveMinimum": 0 on a float
)

// shape is the structural part of a schema: JSON types, member names and
// presence. Value constraints live in the payloads' validate methods.
type shape struct {
	kind   jsonKind
	fields []field           // kObject
	elem   *shape            // kArray items, kMap values
	key    func(string) bool // kMap member names
	sign   signRule          // kNumber
}

type field struct {
	name     string
	shape    *shape
	required bool
	// zeroOK is set for the one optional member whose zero value the schema
	// allows (log.archived truncated=false); every other optional member
	// refuses its zero value, so a zero Go value means the member was absent.
	zeroOK bool
}

func obj(fs ...field) *shape {
	if len(fs) > 64 {
		panic("events: shape with more than 64 members")
	}
	return &shape{kind: kObject, fields: fs}
}
func arr(elem *shape) *shape               { return &shape{kind: kArray, elem: elem} }
func req(name string, s *shape) field      { return field{name: name, shape: s, required: true} }
func opt(name string, s *shape) field      { return field{name: name, shape: s} }
func optKeepZero(n string, s *shape) field { return field{name: n, shape: s, zeroOK: true} }

// fieldError is a violation at a JSON pointer; path holds the pointer's
// segments innermost first, as the error bubbles up.
type fieldError struct {
	path []string
	msg  string
}

func (e *fieldError) Error() string {
	var b strings.Builder
	b.WriteString("at /")
	for i := len(e.path) - 1; i >= 0; i-- {
		b.WriteString(e.path[i])
		if i > 0 {
			b.WriteByte('/')
		}
	}
	b.WriteString(": ")
	b.WriteString(e.msg)
	return b.String()
}

// in prefixes the pointer with a segment.
func (e *fieldError) in(seg string) *fieldError {
	if e != nil {
		e.path = append(e.path, seg)
	}
	return e
}

func errorf(format string, args ...any) *fieldError {
	return &fieldError{msg: fmt.Sprintf(format, args...)}
}

// quote renders a value the way the schema validator's messages do.
func quote(s string) string {
	s = strconv.Quote(s)
	s = strings.ReplaceAll(s, `\"`, `"`)
	s = strings.ReplaceAll(s, `'`, `\'`)
	return "'" + s[1:len(s)-1] + "'"
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = quote(s)
	}
	return strings.Join(q, ", ")
}

// scanner walks JSON text that validJSON (encoding/json's Valid, faster)
// has already accepted as syntactically valid; it still reports malformed
// input instead of panicking.
type scanner struct {
	b []byte
	i int
}

func syntaxError() *fieldError { return errorf("malformed JSON") }

func (s *scanner) peek() byte {
	for s.i < len(s.b) {
		switch c := s.b[s.i]; c {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return c
		}
	}
	return 0
}

// str reads a string at s.i; plain reports that its bytes are its value
// (no escapes, ASCII only).
func (s *scanner) str() (raw []byte, plain, ok bool) {
	s.i++
	start, plain := s.i, true
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c == '"':
			raw = s.b[start:s.i]
			s.i++
			return raw, plain, true
		case c == '\\':
			plain = false
			s.i += 2
		default:
			if c >= utf8.RuneSelf {
				plain = false
			}
			s.i++
		}
	}
	return nil, false, false
}

// skip passes over one value of any type.
func (s *scanner) skip() bool {
	switch s.peek() {
	case 0:
		return false
	case '"':
		_, _, ok := s.str()
		return ok
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				if _, _, ok := s.str(); !ok {
					return false
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return true
				}
			}
			s.i++
		}
		return false
	default:
		s.scalar()
		return true
	}
}

// scalar reads a number or a literal.
func (s *scanner) scalar() []byte {
	start := s.i
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return s.b[start:s.i]
		}
		s.i++
	}
	return s.b[start:s.i]
}

// decodeKey returns a member name as encoding/json decodes it.
func decodeKey(raw []byte, plain bool) string {
	if plain {
		return string(raw)
	}
	var k string
	q := make([]byte, 0, len(raw)+2)
	q = append(append(append(q, '"'), raw...), '"')
	if err := json.Unmarshal(q, &k); err != nil {
		return string(raw)
	}
	return k
}

// jsonTypeName names the JSON type of a value starting with c, as the schema
// validator's "got X, want Y" messages do.
func jsonTypeName(c byte) string {
	switch c {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

func isNumberStart(c byte) bool { return c == '-' || (c >= '0' && c <= '9') }

// numberSign classifies a JSON number by its text, exactly: -1 below zero,
// 0 zero (any spelling, -0.0e5 too), 1 above zero.
func numberSign(t []byte) int {
	neg := len(t) > 0 && t[0] == '-'
	for _, c := range t {
		if c == 'e' || c == 'E' {
			break
		}
		if c >= '1' && c <= '9' {
			if neg {
				return -1
			}
			return 1
		}
	}
	return 0
}

// isZeroValue reports that a member's JSON text is its type's zero value:
// "", [], {} or a zero number.
func isZeroValue(v []byte) bool {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return false
	}
	switch v[0] {
	case '"':
		return len(v) == 2
	case '[', '{':
		return len(bytes.TrimSpace(v[1:len(v)-1])) == 0
	case 't', 'f', 'n':
		return false
	}
	return numberSign(v) == 0
}

// walk checks the value at s.i against a shape and consumes it.
func walk(s *scanner, sh *shape) *fieldError {
	c := s.peek()
	want := ""
	switch sh.kind {
	case kString:
		if c == '"' {
			if _, _, ok := s.str(); !ok {
				return syntaxError()
			}
			return nil
		}
		want = "string"
	case kNumber:
		if isNumberStart(c) {
			t := s.scalar()
			switch sign := numberSign(t); {
			case sh.sign == signNonNegative && sign < 0:
				return errorf("minimum: got %s, want 0", t)
			case sh.sign == signPositive && sign <= 0:
				return errorf("exclusiveMinimum: got %s, want 0", t)
			}
			return nil
		}
		want = "number"
	case kBool:
		if c == 't' || c == 'f' {
			s.scalar()
			return nil
		}
		want = "boolean"
	case kArray:
		if c == '[' {
			return walkArray(s, sh)
		}
		want = "array"
	case kObject, kMap:
		if c == '{' {
			return walkObject(s, sh)
		}
		want = "object"
	}
	return errorf("got %s, want %s", jsonTypeName(c), want)
}

func walkArray(s *scanner, sh *shape) *fieldError {
	s.i++
	if s.peek() == ']' {
		s.i++
		return nil
	}
	for n := 0; ; n++ {
		if err := walk(s, sh.elem); err != nil {
			return err.in(strconv.Itoa(n))
		}
		c := s.peek()
		s.i++
		if c == ']' {
			return nil
		}
		if c != ',' {
			return syntaxError()
		}
	}
}

func walkObject(s *scanner, sh *shape) *fieldError {
	s.i++
	var seen uint64
	var keys [][]byte // kMap: names seen, to refuse repeats
	if s.peek() == '}' {
		s.i++
	} else {
		for {
			if s.peek() != '"' {
				return syntaxError()
			}
			raw, plain, ok := s.str()
			if !ok {
				return syntaxError()
			}
			if !plain {
				raw = []byte(decodeKey(raw, false))
			}
			if s.peek() != ':' {
				return syntaxError()
			}
			s.i++
			if sh.kind == kMap {
				if !sh.key(string(raw)) {
					return errorf("additional properties %s not allowed", quote(string(raw)))
				}
				for _, k := range keys {
					if bytes.Equal(k, raw) {
						return errorf("duplicate property %s", quote(string(raw)))
					}
				}
				keys = append(keys, raw)
				if err := walk(s, sh.elem); err != nil {
					return err.in(string(raw))
				}
			} else {
				j := -1
				for n := range sh.fields {
					if sh.fields[n].name == string(raw) {
						j = n
						break
					}
				}
				if j < 0 {
					return errorf("additional properties %s not allowed", quote(string(raw)))
				}
				if seen&(1<<j) != 0 {
					return errorf("duplicate property %s", quote(string(raw)))
				}
				seen |= 1 << j
				f := &sh.fields[j]
				start := s.i
				if err := walk(s, f.shape); err != nil {
					return err.in(f.name)
				}
				if !f.required && !f.zeroOK && isZeroValue(s.b[start:s.i]) {
					return zeroError(f).in(f.name)
				}
			}
			c := s.peek()
			s.i++
			if c == '}' {
				break
			}
			if c != ',' {
				return syntaxError()
			}
		}
	}
	if sh.kind == kObject {
		var missing []string
		for j := range sh.fields {
			if sh.fields[j].required && seen&(1<<j) == 0 {
				missing = append(missing, sh.fields[j].name)
			}
		}
		switch len(missing) {
		case 0:
		case 1:
			return errorf("missing property %s", quote(missing[0]))
		default:
			return errorf("missing properties %s", quoteAll(missing))
		}
	}
	return nil
}

// zeroError is the schema's message for an optional member set to its zero
// value.
func zeroError(f *field) *fieldError {
	switch f.shape.kind {
	case kString:
		return errorf("minLength: got 0, want 1")
	case kArray:
		return errorf("minItems: got 0, want 1")
	case kMap, kObject:
		return errorf("minProperties: got 0, want 1")
	}
	if f.shape.sign == signPositive {
		return errorf("exclusiveMinimum: got 0, want 0")
	}
	return errorf("minimum: got 0, want 1")
}

// Envelope attributes and the JSON type each must have.
var envelopeAttrs = [...]struct {
	name     string
	kind     jsonKind
	required bool
}{
	{"specversion", kString, true}, {"id", kString, true}, {"source", kString, true},
	{"type", kString, true}, {"subject", kString, false}, {"time", kString, true},
	{"datacontenttype", kString, false}, {"dataschema", kString, false}, {"data", kObject, true},
}

const attrDataContentType = 6

// parseEnvelope decodes an envelope the way encoding/json decodes it into
// Envelope (the same string unquoting, time.Time's own UnmarshalJSON, a copy
// of the data bytes), with what encoding/json does not check: member names
// match ^[a-z0-9]{1,20}$ (the schema's propertyNames), so no two differ only
// in case; none is repeated; the attributes have their types and values.
// ok is false when raw is not an envelope of a fast type, or when
// encoding/json would refuse it (the schema path then reports it as before).
func parseEnvelope(raw []byte) (env Envelope, sh *shape, ok bool, ferr *fieldError) {
	if !validJSON(raw) {
		return env, nil, false, nil
	}
	s := &scanner{b: raw}
	if s.peek() != '{' {
		return env, nil, false, nil
	}
	s.i++
	var seen uint64
	var ext [][]byte // extension attribute names
	// Until the type is known to be a fast one, the first violation is only
	// noted: other types keep the schema path's behaviour and messages.
	fail := func(e *fieldError) {
		if ferr == nil {
			ferr = e
		}
	}
	var timeRaw []byte
	if s.peek() == '}' {
		s.i++
	} else {
		for {
			if s.peek() != '"' {
				return env, nil, false, nil
			}
			key, plain, good := s.str()
			if !good {
				return env, nil, false, nil
			}
			if !plain {
				key = []byte(decodeKey(key, false))
			}
			if !isAttrName(key) {
				fail(errorf("propertyNames: %s does not match pattern '^[a-z0-9]{1,20}$'", quote(string(key))))
			}
			if s.peek() != ':' {
				return env, nil, false, nil
			}
			s.i++
			j := -1
			for n := range envelopeAttrs {
				if envelopeAttrs[n].name == string(key) {
					j = n
					break
				}
			}
			c := s.peek()
			start := s.i
			if !s.skip() {
				return env, nil, false, nil
			}
			val := s.b[start:s.i]
			if j < 0 {
				for _, k := range ext {
					if bytes.Equal(k, key) {
						fail(errorf("duplicate property %s", quote(string(key))))
					}
				}
				ext = append(ext, key)
			} else {
				a := &envelopeAttrs[j]
				if seen&(1<<j) != 0 {
					fail(errorf("duplicate property %s", quote(string(key))))
				}
				seen |= 1 << j
				switch {
				case a.kind == kString && c != '"':
					fail(errorf("got %s, want string", jsonTypeName(c)).in(a.name))
				case a.kind == kObject && c != '{':
					fail(errorf("got %s, want object", jsonTypeName(c)).in(a.name))
				case a.name == "time":
					timeRaw = val
				case a.name == "data":
					env.Data = append(json.RawMessage(nil), val...)
				default:
					v, good := unquote(val)
					if !good {
						return env, nil, false, nil
					}
					switch a.name {
					case "specversion":
						env.SpecVersion = v
					case "id":
						env.ID = v
					case "source":
						env.Source = v
					case "type":
						env.Type = v
					case "subject":
						env.Subject = v
					case "datacontenttype":
						env.DataContentType = v
					case "dataschema":
						env.DataSchema = v
					}
				}
			}
			c = s.peek()
			s.i++
			if c == '}' {
				break
			}
			if c != ',' {
				return env, nil, false, nil
			}
		}
	}
	if sh = fastShapes[env.Type]; sh == nil {
		return env, nil, false, nil
	}
	if timeRaw != nil {
		// What encoding/json calls for a time.Time; a time it refuses goes
		// to the schema path, which reports it as it always did.
		if err := env.Time.UnmarshalJSON(timeRaw); err != nil {
			return env, nil, false, nil
		}
	}
	if ferr != nil {
		return env, sh, true, ferr
	}
	var missing []string
	for j := range envelopeAttrs {
		if envelopeAttrs[j].required && seen&(1<<j) == 0 {
			missing = append(missing, envelopeAttrs[j].name)
		}
	}
	switch len(missing) {
	case 0:
	case 1:
		return env, sh, true, errorf("missing property %s", quote(missing[0]))
	default:
		return env, sh, true, errorf("missing properties %s", quoteAll(missing))
	}
	switch {
	case env.SpecVersion != SpecVersion:
		ferr = errorf("'const' failed").in("specversion")
	case utf8.RuneCountInString(env.ID) < 1:
		ferr = errorf("minLength: got 0, want 1").in("id")
	case utf8.RuneCountInString(env.ID) > 512:
		ferr = errorf("maxLength: got %d, want 512", utf8.RuneCountInString(env.ID)).in("id")
	case env.Source == "":
		ferr = errorf("minLength: got 0, want 1").in("source")
	case utf8.RuneCountInString(env.Source) > 256:
		ferr = errorf("maxLength: got %d, want 256", utf8.RuneCountInString(env.Source)).in("source")
	case utf8.RuneCountInString(env.Subject) > 256:
		ferr = errorf("maxLength: got %d, want 256", utf8.RuneCountInString(env.Subject)).in("subject")
	case utf8.RuneCountInString(env.DataSchema) > 1024:
		ferr = errorf("maxLength: got %d, want 1024", utf8.RuneCountInString(env.DataSchema)).in("dataschema")
	case seen&(1<<attrDataContentType) != 0 && env.DataContentType != "application/json":
		ferr = errorf("'const' failed").in("datacontenttype")
	}
	// type: every fast type matches ^dev\.gantry\.[a-z]+(\.[a-z_]+){1,2}$
	// (TestFastPathTypes).
	return env, sh, true, ferr
}

// unquote decodes a JSON string token as encoding/json does.
func unquote(tok []byte) (string, bool) {
	if len(tok) >= 2 && tok[0] == '"' && tok[len(tok)-1] == '"' {
		plain := true
		for _, c := range tok[1 : len(tok)-1] {
			if c == '\\' || c == '"' || c < 0x20 || c >= utf8.RuneSelf {
				plain = false
				break
			}
		}
		if plain {
			return string(tok[1 : len(tok)-1]), true
		}
	}
	var v string
	if err := json.Unmarshal(tok, &v); err != nil {
		return "", false
	}
	return v, true
}

func isAttrName(k []byte) bool {
	if len(k) < 1 || len(k) > 20 {
		return false
	}
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// validator is implemented by the payloads that have the fast path.
type validator interface {
	validate() error
}

// decodeFast decodes and validates an envelope of a fast type. ok is false
// when the bytes are not an envelope of a fast type (or not JSON), and the
// caller must use the schema validator instead.
func decodeFast(raw []byte) (e Event, ok bool, err error) {
	env, sh, ok, ferr := parseEnvelope(raw)
	if !ok {
		return Event{}, false, nil
	}
	if ferr != nil {
		return Event{}, true, fmt.Errorf("%w: %w: envelope: %w", ErrInvalidEvent, schemas.ErrInvalid, ferr)
	}
	s := &scanner{b: env.Data}
	if ferr := walk(s, sh); ferr != nil {
		return Event{}, true, fmt.Errorf("%w: %w: %s: %w", ErrInvalidEvent, schemas.ErrInvalid, env.Type, ferr)
	}
	p, err := newPayload(env.Type)
	if err != nil {
		return Event{}, true, err
	}
	if err := json.Unmarshal(env.Data, p); err != nil {
		return Event{}, true, fmt.Errorf("%w: %s data: %w", ErrInvalidEvent, env.Type, err)
	}
	v := deref(p)
	if err := v.(validator).validate(); err != nil {
		return Event{}, true, fmt.Errorf("%w: %w: %s: %w", ErrInvalidEvent, schemas.ErrInvalid, env.Type, err)
	}
	return Event{Envelope: env, Payload: v}, true, nil
}
