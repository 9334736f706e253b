package chatops

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"

	"github.com/gantry-ci/gantry/events"
)

// Target kinds.
const (
	// KindSlack posts a formatted message to a Slack-compatible incoming webhook.
	KindSlack = "slack"
	// KindCloudEvents posts the event as a CloudEvent in structured content
	// mode (application/cloudevents+json) to any HTTP endpoint.
	KindCloudEvents = "cloudevents"
)

// Rules are the notification rules, read from a file by `gantry notify
// --rules`. They live in a file of their own rather than in the pipeline
// file: a pipeline's definition is copied into every run.requested event,
// which every worker may read, and webhook URLs are secrets; and who hears
// about a pipeline is the operators' choice, not the commit's.
type Rules struct {
	// BaseURL is where the web UI is served: messages link
	// <BaseURL>/runs/<run>.
	BaseURL string   `yaml:"baseURL"`
	Targets []Target `yaml:"targets"`
	Rules   []Rule   `yaml:"rules"`
	byName  map[string]Target
}

// Target is where notifications go. Its URL is a secret: give it through
// an environment variable (urlEnv) or a file (urlFile); url inline is
// accepted for local tests.
type Target struct {
	Name    string `yaml:"name"`
	Kind    string `yaml:"kind"`
	URL     string `yaml:"url"`
	URLEnv  string `yaml:"urlEnv"`
	URLFile string `yaml:"urlFile"`
	// url is the resolved address.
	url string
}

// Rule sends events of the listed types of the matching pipelines to targets.
type Rule struct {
	// Pipelines are globs (path.Match: `*` matches any run of characters);
	// empty means every pipeline.
	Pipelines []string `yaml:"pipelines"`
	// Types are event type globs, e.g. dev.gantry.run.failed or dev.gantry.stage.*.
	Types   []string `yaml:"types"`
	Targets []string `yaml:"targets"`
}

// ErrBadRules is wrapped by every error about a rules file.
var ErrBadRules = errors.New("notification rules")

// ParseRules reads a rules document; lookupEnv resolves urlEnv (os.LookupEnv
// when nil). Every problem is reported at once, each naming its field.
func ParseRules(data []byte, lookupEnv func(string) (string, bool)) (*Rules, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	var r Rules
	if err := yaml.UnmarshalWithOptions(data, &r, yaml.Strict()); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRules, err)
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrBadRules}, args...)...))
	}
	if r.BaseURL != "" {
		if u, err := url.Parse(r.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("baseURL %q must be an http(s) URL", r.BaseURL)
		}
	}
	r.byName = map[string]Target{}
	for i, t := range r.Targets {
		at := fmt.Sprintf("targets[%d]", i)
		if err := events.CheckName(at+".name", t.Name); err != nil {
			bad("%v", err)
		}
		if _, dup := r.byName[t.Name]; dup {
			bad("%s.name: %q twice", at, t.Name)
		}
		if t.Kind != KindSlack && t.Kind != KindCloudEvents {
			bad("%s.kind: %q must be %s or %s", at, t.Kind, KindSlack, KindCloudEvents)
		}
		n := 0
		for _, s := range []string{t.URL, t.URLEnv, t.URLFile} {
			if s != "" {
				n++
			}
		}
		switch {
		case n != 1:
			bad("%s: give exactly one of url, urlEnv, urlFile", at)
		case t.URL != "":
			t.url = t.URL
		case t.URLEnv != "":
			v, ok := lookupEnv(t.URLEnv)
			if !ok || v == "" {
				bad("%s.urlEnv: environment variable %s is not set", at, t.URLEnv)
			}
			t.url = strings.TrimSpace(v)
		case t.URLFile != "":
			b, err := os.ReadFile(t.URLFile)
			if err != nil {
				bad("%s.urlFile: %v", at, err)
			}
			t.url = strings.TrimSpace(string(b))
		}
		if t.url != "" {
			// The URL is a secret: an error shows only its masked form.
			if u, err := url.Parse(t.url); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				bad("%s: the URL %s is not an http(s) URL", at, MaskURL(t.url))
			}
		}
		r.Targets[i] = t
		r.byName[t.Name] = t
	}
	for i, rule := range r.Rules {
		at := fmt.Sprintf("rules[%d]", i)
		for j, p := range rule.Pipelines {
			if _, err := path.Match(p, ""); err != nil {
				bad("%s.pipelines[%d]: bad glob %q", at, j, p)
			}
		}
		if len(rule.Types) == 0 {
			bad("%s.types: name at least one event type (e.g. %s)", at, events.TypeRunFailed)
		}
		for j, p := range rule.Types {
			if _, err := path.Match(p, ""); err != nil {
				bad("%s.types[%d]: bad glob %q", at, j, p)
			} else if !strings.ContainsAny(p, "*?[") && !slices.Contains(events.Types, p) && !strings.HasPrefix(p, "dev.gantry.") {
				bad("%s.types[%d]: %q is not a Gantry event type", at, j, p)
			}
		}
		if len(rule.Targets) == 0 {
			bad("%s.targets: name at least one target", at)
		}
		for j, name := range rule.Targets {
			if _, ok := r.byName[name]; !ok {
				bad("%s.targets[%d]: no target named %q", at, j, name)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &r, nil
}

// LoadRules reads a rules file.
func LoadRules(file string) (*Rules, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRules, err)
	}
	r, err := ParseRules(data, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return r, nil
}

// Match returns the targets an event of type typ of pipeline goes to,
// each once, in the order the rules name them.
func (r *Rules) Match(pipeline, typ string) []Target {
	if r == nil {
		return nil
	}
	var out []Target
	seen := map[string]bool{}
	for _, rule := range r.Rules {
		if !globAny(rule.Pipelines, pipeline, true) || !globAny(rule.Types, typ, false) {
			continue
		}
		for _, name := range rule.Targets {
			if !seen[name] {
				seen[name] = true
				out = append(out, r.byName[name])
			}
		}
	}
	return out
}

// Target returns the target of that name.
func (r *Rules) Target(name string) (Target, bool) {
	if r == nil {
		return Target{}, false
	}
	t, ok := r.byName[name]
	return t, ok
}

func globAny(globs []string, s string, emptyMatches bool) bool {
	if len(globs) == 0 {
		return emptyMatches
	}
	for _, g := range globs {
		if ok, _ := path.Match(g, s); ok {
			return true
		}
	}
	return false
}

// MaskURL shows a webhook URL without what makes it a secret: scheme and
// host stay, path and query become ***.
func MaskURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "***"
	}
	return u.Scheme + "://" + u.Host + "/***"
}
