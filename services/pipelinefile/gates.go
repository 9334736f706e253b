package pipelinefile

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/services/decider"
)

// Manual approvals and stage conditions in the pipeline file.

// ErrInvalidGate: an approval or a stage condition is set up wrongly (a
// timeout out of range, a result its condition does not allow, a rule
// whose configuration does not fit its type).
var ErrInvalidGate = errors.New("invalid approval or condition")

// approvalSettings are the configuration keys of an approval action.
var approvalSettings = []string{"instructions", "url", "approvers"}

// extractCondition reads a stage's beforeEntry or onSuccess, leniently as
// extract does; nil when absent.
func extractCondition(v any) *events.Condition {
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	c := &events.Condition{}
	c.Result, _ = m["result"].(string)
	rules, _ := m["rules"].([]any)
	for _, r := range rules {
		rm, _ := r.(map[string]any)
		rule := events.Rule{}
		rule.Name, _ = rm["name"].(string)
		rule.Type, _ = rm["type"].(string)
		if cfg, ok := rm["configuration"].(map[string]any); ok {
			rule.Configuration = stringValues(cfg)
		}
		c.Rules = append(c.Rules, rule)
	}
	return c
}

// gates checks approvals and conditions: what the schema cannot say.
func (c *checker) gates(def events.Definition, paths [][]actionPaths) {
	for i, s := range def.Stages {
		for j, a := range s.Actions {
			ap := paths[i][j]
			for _, prefix := range []string{"beforeEntry-", "onSuccess-"} {
				if strings.HasPrefix(a.Name, prefix) {
					c.add(ap.path.key("name"), fmt.Sprintf("action names starting with %s are reserved for the tasks of stage conditions", prefix), ErrInvalidGate)
				}
			}
			c.timeout(a, ap.path)
			if a.Type == events.KindApproval {
				c.approval(a, ap.path)
			}
		}
		c.condition(s.BeforeEntry, stagePath(i).key(events.BeforeEntry), events.BeforeEntry, events.ResultFail, events.ResultSkip)
		c.condition(s.OnSuccess, stagePath(i).key(events.OnSuccess), events.OnSuccess, events.ResultFail, events.ResultRollback)
	}
}

// timeout bounds timeoutSeconds by type: the schema allows up to 60 days,
// which only an approval may wait.
func (c *checker) timeout(a events.ActionDef, p fieldPath) {
	t := a.TimeoutSeconds
	if t == 0 || t > events.MaxApprovalTimeoutSeconds {
		return // absent, or out of the schema's range: it reported it
	}
	if a.Type == events.KindApproval {
		if t < events.MinApprovalTimeoutSeconds {
			c.add(p.key("timeoutSeconds"), fmt.Sprintf("an approval waits %d to %d seconds (5 minutes to 60 days), got %d",
				events.MinApprovalTimeoutSeconds, events.MaxApprovalTimeoutSeconds, t), ErrInvalidGate)
		}
		return
	}
	if t > MaxTimeoutSeconds {
		c.add(p.key("timeoutSeconds"), fmt.Sprintf("must be <= %d, got %d", MaxTimeoutSeconds, t), ErrSchema)
	}
}

// approval checks an approval's configuration: known keys, an http(s)
// url, and no artifacts (a person produces none).
func (c *checker) approval(a events.ActionDef, p fieldPath) {
	for k, v := range a.Configuration {
		kp := p.key("configuration").key(k)
		switch {
		case !slices.Contains(approvalSettings, k):
			c.add(kp, fmt.Sprintf("not a setting of an approval (settings: %s)", strings.Join(approvalSettings, ", ")), ErrInvalidGate)
		case k == "url":
			if refs, _ := decider.References(v); len(refs) > 0 {
				// Checked again once substituted (#{Build.REPORT_URL} may be the whole link).
				if n := len([]rune(v)); n > decider.MaxApprovalURL {
					c.add(kp, fmt.Sprintf("at most %d characters, got %d", decider.MaxApprovalURL, n), ErrInvalidGate)
				}
			} else if !decider.HTTPURL(v) {
				c.add(kp, "must be an http or https URL", ErrInvalidGate)
			} else if n := len([]rune(v)); n > decider.MaxApprovalURL {
				c.add(kp, fmt.Sprintf("at most %d characters, got %d", decider.MaxApprovalURL, n), ErrInvalidGate)
			}
		case k == "instructions" && len([]rune(v)) > events.MaxApprovalText:
			c.add(kp, fmt.Sprintf("at most %d characters", events.MaxApprovalText), ErrInvalidGate)
		case k == "approvers" && strings.Contains(v, "#{"):
			c.add(kp, "approvers are names as written, never a #{...} reference: a variable must not choose who may approve", ErrInvalidGate)
		case k == "approvers":
			names := strings.Split(v, ",")
			for _, name := range names {
				if n := len([]rune(strings.TrimSpace(name))); n > decider.MaxActor {
					c.add(kp, fmt.Sprintf("an approver's name is at most %d characters, got %d", decider.MaxActor, n), ErrInvalidGate)
				}
			}
			if len(names) > decider.MaxApprovers {
				c.add(kp, fmt.Sprintf("at most %d approvers, got %d", decider.MaxApprovers, len(names)), ErrInvalidGate)
			}
		}
	}
	if len(a.Inputs) > 0 || len(a.Outputs) > 0 {
		c.add(p, "an approval reads and produces no artifacts: remove its inputs and outputs", ErrInvalidGate)
	}
}

// condition checks a stage condition: its result for when, unique rule
// names, and each rule's configuration (decider.CheckRule).
func (c *checker) condition(cond *events.Condition, p fieldPath, when string, results ...string) {
	if cond == nil {
		return
	}
	if cond.Result != "" && !slices.Contains(results, cond.Result) {
		c.add(p.key("result"), fmt.Sprintf("%s allows result %s, got %s", when, strings.Join(results, " or "), cond.Result), ErrInvalidGate)
	}
	seen := map[string]int{}
	for k, r := range cond.Rules {
		rp := p.key("rules").idx(k)
		if r.Name == "" || r.Type == "" {
			continue // the schema reported it
		}
		if first, dup := seen[r.Name]; dup {
			c.add(rp.key("name"), fmt.Sprintf("duplicate rule name %q (first at line %d)", r.Name, c.line(p.key("rules").idx(first).key("name"))), ErrDuplicateName)
		}
		seen[r.Name] = k
		if err := decider.CheckRule(r); err != nil {
			at := rp
			if lookup(c.doc, rp.key("configuration")) != nil {
				at = rp.key("configuration")
			}
			c.add(at, strings.TrimPrefix(err.Error(), decider.ErrRule.Error()+": "), ErrInvalidGate)
		}
	}
}
