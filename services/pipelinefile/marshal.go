package pipelinefile

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"github.com/gantry-ci/gantry/events"
)

// Marshal writes a definition as a pipeline file in the layout the reference
// uses, leaving out values equal to their defaults and quoting every string
// YAML would read as something else.
//
// It returns a *ParseError when the definition is not valid (Marshal parses
// its own output), so for any definition d that Parse returned,
// Parse(Marshal(d)) equals d.
func Marshal(def events.Definition) ([]byte, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\n", scalar(def.Name))
	writeMap(&b, "", "variables", def.Variables)
	if def.ExecutionMode != "" {
		fmt.Fprintf(&b, "executionMode: %s\n", scalar(def.ExecutionMode))
	}
	writeTriggers(&b, def.Triggers)
	b.WriteString("stages:\n")
	for _, s := range def.Stages {
		fmt.Fprintf(&b, "  - name: %s\n", scalar(s.Name))
		writeList(&b, "    ", "dependsOn", s.DependsOn)
		if of := s.OnFailure; of != nil {
			fmt.Fprintf(&b, "    onFailure:\n      result: %s\n", scalar(of.Result))
			if of.Retries != 0 {
				fmt.Fprintf(&b, "      retries: %d\n", of.Retries)
			}
		}
		b.WriteString("    actions:\n")
		for _, a := range s.Actions {
			fmt.Fprintf(&b, "      - name: %s\n", scalar(a.Name))
			const in = "        "
			fmt.Fprintf(&b, in+"type: %s\n", scalar(a.Type))
			if a.Pool != DefaultPool {
				fmt.Fprintf(&b, in+"pool: %s\n", scalar(a.Pool))
			}
			if a.Namespace != "" {
				fmt.Fprintf(&b, in+"namespace: %s\n", scalar(a.Namespace))
			}
			if a.RunOrder != DefaultRunOrder {
				fmt.Fprintf(&b, in+"runOrder: %d\n", a.RunOrder)
			}
			writeList(&b, in, "inputs", a.Inputs)
			writeList(&b, in, "outputs", a.Outputs)
			if a.TimeoutSeconds != DefaultTimeoutSeconds {
				fmt.Fprintf(&b, in+"timeoutSeconds: %d\n", a.TimeoutSeconds)
			}
			writeMap(&b, in, "configuration", a.Configuration)
			writeMap(&b, in, "secrets", a.Secrets)
		}
		writeCondition(&b, events.BeforeEntry, s.BeforeEntry)
		writeCondition(&b, events.OnSuccess, s.OnSuccess)
	}
	out := []byte(b.String())
	if _, err := Parse(def.Name+".yaml", out); err != nil {
		return nil, err
	}
	return out, nil
}

func writeList(b *strings.Builder, indent, key string, items []string) {
	if len(items) == 0 {
		return
	}
	quoted := make([]string, len(items))
	for i, s := range items {
		quoted[i] = scalar(s)
	}
	fmt.Fprintf(b, "%s%s: [%s]\n", indent, key, strings.Join(quoted, ", "))
}

func writeMap(b *strings.Builder, indent, key string, m map[string]string) {
	if len(m) == 0 {
		return
	}
	fmt.Fprintf(b, "%s%s:\n", indent, key)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(b, "%s  %s: %s\n", indent, scalar(k), scalar(m[k]))
	}
}

// plainSafe matches strings YAML reads back as the same string when written
// without quotes, once the reserved words below are excluded: no leading
// digit, sign or indicator, nothing that starts a comment or a mapping.
var plainSafe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_./-]*$`)

// reserved are words YAML 1.1 or 1.2 reads as booleans or null.
var reserved = map[string]bool{
	"true": true, "false": true, "yes": true, "no": true, "on": true, "off": true,
	"y": true, "n": true, "null": true,
}

// scalar writes s plain when that is unambiguous, else double-quoted.
func scalar(s string) string {
	if plainSafe.MatchString(s) && !reserved[strings.ToLower(s)] {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == ' ' || (unicode.IsPrint(r) && r != unicode.ReplacementChar):
			b.WriteRune(r)
		case r <= 0xFFFF:
			b.WriteString(`\u` + fmt.Sprintf("%04X", r))
		default:
			b.WriteString(`\U` + fmt.Sprintf("%08X", r))
		}
	}
	b.WriteByte('"')
	return b.String()
}

// writeCondition writes a stage's beforeEntry or onSuccess.
func writeCondition(b *strings.Builder, key string, c *events.Condition) {
	if c == nil {
		return
	}
	fmt.Fprintf(b, "    %s:\n      result: %s\n      rules:\n", key, scalar(c.Result))
	for _, r := range c.Rules {
		fmt.Fprintf(b, "        - name: %s\n          type: %s\n", scalar(r.Name), scalar(r.Type))
		writeMap(b, "          ", "configuration", r.Configuration)
	}
}
