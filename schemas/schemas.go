package schemas

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

//go:embed *.json events/*.json
var files embed.FS

// Base is the URI prefix of every embedded schema.
const Base = "https://gantry.dev/schemas/"

// Document schemas (not events).
const (
	Envelope  = "envelope"
	Pipeline  = "pipeline"
	Buildspec = "buildspec"
	Appspec   = "appspec"
)

var (
	// ErrInvalid is returned, wrapped with every violation, when a document
	// does not match its schema.
	ErrInvalid = errors.New("schema validation failed")
	// ErrUnknownSchema is returned when no schema has the requested name.
	ErrUnknownSchema = errors.New("unknown schema")
)

// Validator holds the compiled schemas.
type Validator struct {
	mu       sync.RWMutex
	compiler *jsonschema.Compiler
	compiled map[string]*jsonschema.Schema
	// printer renders violation messages; jsonschema needs a non-nil one.
	printer *message.Printer
}

// New loads every embedded schema. It fails only if an embedded schema is
// itself broken, which a test guards.
func New() (*Validator, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	err := fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || p == openAPIFile {
			return err
		}
		b, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("schema %s: %w", p, err)
		}
		return c.AddResource(Base+p, doc)
	})
	if err != nil {
		return nil, fmt.Errorf("load schemas: %w", err)
	}
	return &Validator{compiler: c, compiled: map[string]*jsonschema.Schema{}, printer: message.NewPrinter(language.English)}, nil
}

// Names lists the embedded schema files, e.g. "pipeline.json" and
// "events/dev.gantry.run.requested.json".
func Names() []string {
	var out []string
	_ = fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && p != openAPIFile {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// Read returns an embedded schema file's bytes.
func Read(name string) ([]byte, error) {
	b, err := files.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownSchema, name)
	}
	return b, nil
}

func (v *Validator) schema(file string) (*jsonschema.Schema, error) {
	v.mu.RLock()
	s, ok := v.compiled[file]
	v.mu.RUnlock()
	if ok {
		return s, nil
	}
	if _, err := fs.Stat(files, file); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownSchema, strings.TrimSuffix(file, ".json"))
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if s, ok := v.compiled[file]; ok {
		return s, nil
	}
	s, err := v.compiler.Compile(Base + file)
	if err != nil {
		return nil, fmt.Errorf("compile schema %s: %w", file, err)
	}
	v.compiled[file] = s
	return s, nil
}

// Validate checks a decoded JSON value (maps, slices, strings, float64 or
// json.Number, bools, nil) against the named document schema.
func (v *Validator) Validate(name string, doc any) error {
	s, err := v.schema(name + ".json")
	if err != nil {
		return err
	}
	return v.wrap(name, s.Validate(doc))
}

// ValidateJSON checks raw JSON against the named document schema.
func (v *Validator) ValidateJSON(name string, raw []byte) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("%w: %s: not JSON: %v", ErrInvalid, name, err)
	}
	return v.Validate(name, doc)
}

// ValidateEvent checks a raw CloudEvents envelope and, by its type, its data.
func (v *Validator) ValidateEvent(raw []byte) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("%w: envelope: not JSON: %v", ErrInvalid, err)
	}
	if err := v.Validate(Envelope, doc); err != nil {
		return err
	}
	m := doc.(map[string]any) // the envelope schema requires an object
	typ, _ := m["type"].(string)
	s, err := v.schema(path.Join("events", typ+".json"))
	if err != nil {
		return err
	}
	return v.wrap(typ, s.Validate(m["data"]))
}

func (v *Validator) wrap(name string, err error) error {
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if errors.As(err, &ve) {
		return fmt.Errorf("%w: %s: %s", ErrInvalid, name, v.flatten(ve))
	}
	return fmt.Errorf("%w: %s: %v", ErrInvalid, name, err)
}

// flatten turns the validation tree into "at /path: message" lines, leaves only,
// so users see the violations rather than the schema's structure.
func (v *Validator) flatten(ve *jsonschema.ValidationError) string {
	var out []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			out = append(out, fmt.Sprintf("at %s: %s", pointer(e.InstanceLocation), e.ErrorKind.LocalizedString(v.printer)))
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	return strings.Join(out, "; ")
}

func pointer(loc []string) string {
	if len(loc) == 0 {
		return "/"
	}
	return "/" + strings.Join(loc, "/")
}

// Detail is one violation with the JSON pointer of the offending value; the
// pipeline parser maps pointers back to YAML lines.
type Detail struct {
	Pointer []string
	Message string
}

// Details validates and returns each violation separately.
func (v *Validator) Details(name string, doc any) ([]Detail, error) {
	s, err := v.schema(name + ".json")
	if err != nil {
		return nil, err
	}
	err = s.Validate(doc)
	if err == nil {
		return nil, nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return nil, fmt.Errorf("validate %s: %w", name, err)
	}
	var out []Detail
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			out = append(out, Detail{Pointer: e.InstanceLocation, Message: e.ErrorKind.LocalizedString(v.printer)})
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	return out, nil
}

// ToAny converts a Go value to the generic form the validator takes.
func ToAny(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return jsonschema.UnmarshalJSON(bytes.NewReader(b))
}
