package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/services/deployplan"
	"github.com/gantry-ci/gantry/services/internal/yamldoc"
)

// Automatic rollback events, named as in CodeDeploy.
const (
	RollbackOnFailure       = "DEPLOYMENT_FAILURE"
	RollbackOnAlarm         = "DEPLOYMENT_STOP_ON_ALARM"
	RollbackOnStopOnRequest = "DEPLOYMENT_STOP_ON_REQUEST"
)

// Sentinel errors.
var (
	// ErrInvalidGroup: a deployment group document is malformed. ParseGroup
	// returns a *GroupParseError whose problems each wrap it and name their
	// line, column and field; Validate names the fields.
	ErrInvalidGroup = errors.New("invalid deployment group")
	// ErrNoGroup: no deployment group of that name was applied.
	ErrNoGroup = errors.New("deployment group not found")
	// ErrNoAgents: no live agent matches the group.
	ErrNoAgents = errors.New("no agents in the deployment group")
	// ErrEnded: the deployment has already ended.
	ErrEnded = errors.New("deployment already ended")
	// ErrGroupBusy: the group has a deployment in progress (a *BusyError
	// names it).
	ErrGroupBusy = errors.New("deployment group busy")
)

// Group is a deployment group document (`gantry deploy group apply -f`):
//
//	name: web
//	application: webshop
//	selector: {role: web}          # agent labels a host must have
//	deploymentConfig: OneAtATime   # AllAtOnce, HalfAtATime, OneAtATime
//	healthCheck:
//	  url: http://127.0.0.1:{{.Labels.port}}/healthz
//	  expectedStatus: 200
//	  intervalSeconds: 1
//	  healthyThreshold: 2
//	  timeoutSeconds: 60
//	alarms: [error-rate]           # alarms that stop a deployment; empty: any alarm
//	autoRollback:
//	  enabled: true
//	  events: [DEPLOYMENT_FAILURE, DEPLOYMENT_STOP_ON_ALARM]
type Group struct {
	Name             string              `json:"name" yaml:"name"`
	Application      string              `json:"application" yaml:"application"`
	Selector         map[string]string   `json:"selector,omitempty" yaml:"selector"`
	DeploymentConfig string              `json:"deploymentConfig,omitempty" yaml:"deploymentConfig"`
	HealthCheck      *events.HealthCheck `json:"healthCheck,omitempty" yaml:"healthCheck"`
	Alarms           []string            `json:"alarms,omitempty" yaml:"alarms"`
	AutoRollback     AutoRollback        `json:"autoRollback" yaml:"autoRollback"`
}

// AutoRollback says when the rollback service redeploys the last known
// good revision.
type AutoRollback struct {
	Enabled bool     `json:"enabled" yaml:"enabled"`
	Events  []string `json:"events,omitempty" yaml:"events"`
}

// RollsBackOn reports whether the group rolls back automatically on ev.
func (g Group) RollsBackOn(ev string) bool {
	return g.AutoRollback.Enabled && slices.Contains(g.AutoRollback.Events, ev)
}

// StopsOnAlarm reports whether an alarm of that name stops the group's
// deployments.
func (g Group) StopsOnAlarm(name string) bool {
	return len(g.Alarms) == 0 || slices.Contains(g.Alarms, name)
}

// Config returns the group's deployment configuration (default OneAtATime).
func (g Group) Config() (deployplan.Config, error) {
	if g.DeploymentConfig == "" {
		return deployplan.OneAtATime, nil
	}
	return deployplan.ConfigByName(g.DeploymentConfig)
}

// Limits on what ParseGroup accepts. A group is a few lines; the bounds
// only keep a hostile document (an API body, an alias bomb) from costing
// memory.
const (
	// MaxGroupSize is the largest group document in bytes.
	MaxGroupSize = 64 << 10
	// maxGroupNodes bounds the YAML nodes, aliases expanded.
	maxGroupNodes = 10_000
)

// GroupProblem is one thing wrong with a group document: "file:line:column:
// field: message". Every problem wraps ErrInvalidGroup.
type GroupProblem = yamldoc.Problem

// GroupParseError holds every problem of one group document, in file order
// (the same type as pipelinefile.ParseError, so one errors.As serves both).
type GroupParseError = yamldoc.ParseError

// groupLimits are what ParseGroup accepts.
var groupLimits = yamldoc.Limits{MaxFileSize: MaxGroupSize, MaxNodes: maxGroupNodes, Noun: "a deployment group"}

// groupSentinels: the shared YAML checks wrap ErrInvalidGroup whatever
// they find, so callers need to test for one error only.
var groupSentinels = yamldoc.Sentinels{Syntax: ErrInvalidGroup, TooLarge: ErrInvalidGroup, Schema: ErrInvalidGroup,
	UnknownField: ErrInvalidGroup, MissingField: ErrInvalidGroup, Unsupported: ErrInvalidGroup}

// ParseGroup reads a group document (YAML, or JSON, which is YAML too)
// strictly: unknown fields are errors. It returns a *GroupParseError that
// names every problem with its line, column and field, e.g.
//
//	web.yml:7:5: autoRollback.events[0]: "ON_FAILURE" must be DEPLOYMENT_FAILURE, …
//
// The YAML library stops at the first value it cannot decode (an unknown
// field, a wrong type), so such a document reports only that one; a
// document that decodes reports every rule Validate breaks.
func ParseGroup(name string, data []byte) (Group, error) {
	d := &yamldoc.Decoder{File: name, Errs: groupSentinels}
	body := d.Load(data, groupLimits)
	if body == nil {
		return Group{}, d.Err()
	}
	var g Group
	if err := yaml.NodeToValue(body, &g, yaml.Strict(), yaml.DisallowUnknownField()); err != nil {
		var ye yaml.Error
		if !errors.As(err, &ye) || ye.GetToken() == nil {
			d.YAMLError(err)
			return Group{}, d.Err()
		}
		// The library reports a position; the field path is found from it
		// so the message names the field as Validate's do.
		pos := ye.GetToken().Position
		field, _ := fieldAt(body, "", pos)
		msg := ye.GetMessage()
		// The library's type message names Go types and struct fields
		// ("Go struct field Group.HealthCheck of type int"); the document's
		// author knows only YAML kinds.
		var te *yaml.TypeError
		if errors.As(err, &te) && te.DstType != nil && te.SrcType != nil {
			msg = fmt.Sprintf("must be %s, got %s", kindOf(te.DstType), kindOf(te.SrcType))
		}
		d.Add(yamldoc.TokenPos(pos), field, []error{ErrInvalidGroup}, "%s", msg)
		return Group{}, d.Err()
	}
	// The generic value tells Locate which pointer tokens are list indexes.
	var doc any
	if err := yaml.NodeToValue(body, &doc); err != nil {
		d.YAMLError(err)
		return Group{}, d.Err()
	}
	for _, p := range g.problems() {
		d.Add(yamldoc.Locate(body, doc, p.ptr), fieldPath(p.ptr), []error{ErrInvalidGroup}, "%s", p.msg)
	}
	if err := d.Err(); err != nil {
		return Group{}, err
	}
	return g, nil
}

// fieldAt returns the field path of the node at pos: a key (an unknown
// field) or a value (one of the wrong type). Children are tried before
// their collection, since a block mapping starts where its first key does.
func fieldAt(n ast.Node, path string, pos *token.Position) (string, bool) {
	if n == nil || pos == nil {
		return "", false
	}
	at := func(n ast.Node) bool {
		tk := n.GetToken()
		return tk != nil && tk.Position != nil && tk.Position.Line == pos.Line && tk.Position.Column == pos.Column
	}
	switch v := n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		values, _ := yamldoc.MappingValues(v)
		for _, mv := range values {
			key, _, _ := yamldoc.Scalar(mv.Key)
			p := yamldoc.Join(path, key)
			if mv.Key != nil && at(mv.Key) {
				return p, true
			}
			if f, ok := fieldAt(mv.Value, p, pos); ok {
				return f, true
			}
		}
	case *ast.SequenceNode:
		for i, c := range v.Values {
			if f, ok := fieldAt(c, yamldoc.Index(path, i), pos); ok {
				return f, true
			}
		}
	case *ast.AnchorNode:
		return fieldAt(v.Value, path, pos)
	case *ast.TagNode:
		if f, ok := fieldAt(v.Value, path, pos); ok {
			return f, true
		}
	}
	if at(n) {
		return path, true
	}
	return "", false
}

// kindOf names a Go type as the YAML kind that decodes into it.
func kindOf(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	}
	return "a " + t.String()
}

// groupProblem is a rule a group breaks: the field as JSON pointer tokens
// (so ParseGroup can find its line) and what is wrong with it.
type groupProblem struct {
	ptr []string
	msg string
}

// fieldPath spells pointer tokens as a field path, autoRollback.events[0].
// A group's only map with free keys (selector) has no rules, so an all-digit
// token is always a list index.
func fieldPath(ptr []string) string {
	path := ""
	for _, tok := range ptr {
		if i, err := strconv.Atoi(tok); err == nil {
			path = yamldoc.Index(path, i)
			continue
		}
		path = yamldoc.Join(path, tok)
	}
	return path
}

// Validate reports every problem of a group at once, each naming its
// field; each wraps ErrInvalidGroup.
func (g Group) Validate() error {
	var errs []error
	for _, p := range g.problems() {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrInvalidGroup, fieldPath(p.ptr), p.msg))
	}
	return errors.Join(errs...)
}

// problems lists the rules g breaks, in document order.
func (g Group) problems() []groupProblem {
	var out []groupProblem
	bad := func(ptr []string, format string, a ...any) {
		out = append(out, groupProblem{ptr, fmt.Sprintf(format, a...)})
	}
	if !events.ValidName(g.Name) {
		bad([]string{"name"}, "%q must be 1-64 letters, digits, '-' or '_'", g.Name)
	}
	if !events.ValidName(g.Application) {
		bad([]string{"application"}, "%q must be 1-64 letters, digits, '-' or '_'", g.Application)
	}
	if _, err := g.Config(); err != nil {
		bad([]string{"deploymentConfig"}, "%v", err)
	}
	if hc := g.HealthCheck; hc != nil {
		if hc.URL == "" {
			bad([]string{"healthCheck", "url"}, "required")
		}
		if hc.ExpectedStatus != 0 && (hc.ExpectedStatus < 100 || hc.ExpectedStatus > 599) {
			bad([]string{"healthCheck", "expectedStatus"}, "%d is not an HTTP status", hc.ExpectedStatus)
		}
		for _, f := range []struct {
			name string
			v    int
		}{{"intervalSeconds", hc.IntervalSeconds}, {"healthyThreshold", hc.HealthyThreshold}, {"timeoutSeconds", hc.TimeoutSeconds}} {
			if f.v < 0 {
				bad([]string{"healthCheck", f.name}, "must not be negative, got %d", f.v)
			}
		}
	}
	for i, e := range g.AutoRollback.Events {
		if e != RollbackOnFailure && e != RollbackOnAlarm && e != RollbackOnStopOnRequest {
			bad([]string{"autoRollback", "events", strconv.Itoa(i)}, "%q must be %s, %s or %s", e, RollbackOnFailure, RollbackOnAlarm, RollbackOnStopOnRequest)
		}
	}
	return out
}

// ApplyGroup stores a group in the deploygroups bucket.
func ApplyGroup(ctx context.Context, js jetstream.JetStream, g Group) (uint64, error) {
	if err := g.Validate(); err != nil {
		return 0, err
	}
	kv, err := js.KeyValue(ctx, events.BucketDeployGroups)
	if err != nil {
		return 0, fmt.Errorf("deploygroups bucket: %w", err)
	}
	b, err := json.Marshal(g)
	if err != nil {
		return 0, err
	}
	return kv.Put(ctx, g.Name, b)
}

// GetGroup reads a group from the deploygroups bucket.
func GetGroup(ctx context.Context, js jetstream.JetStream, name string) (Group, error) {
	kv, err := js.KeyValue(ctx, events.BucketDeployGroups)
	if err != nil {
		return Group{}, fmt.Errorf("deploygroups bucket: %w", err)
	}
	e, err := kv.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Group{}, fmt.Errorf("%w: %s (apply one with `gantry deploy group apply -f FILE`)", ErrNoGroup, name)
	}
	if err != nil {
		return Group{}, err
	}
	var g Group
	d := json.NewDecoder(bytes.NewReader(e.Value()))
	if err := d.Decode(&g); err != nil {
		return Group{}, fmt.Errorf("group %s: %w", name, err)
	}
	return g, nil
}
