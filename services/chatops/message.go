package chatops

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/gantry-ci/gantry/events"
)

// WebhookMessage is what a Slack-compatible incoming webhook accepts.
type WebhookMessage struct {
	Text   string  `json:"text"`
	Blocks []Block `json:"blocks,omitempty"`
}

// SlackMessage formats a run event for a Slack incoming webhook: one line
// naming the pipeline, a link to the run page, what happened and why.
// codec decodes the payload for the details; an event it does not know is
// still announced by its type.
func SlackMessage(codec *events.Codec, baseURL, pipeline string, raw []byte) WebhookMessage {
	var env events.Envelope
	_ = json.Unmarshal(raw, &env)
	runID := env.Subject
	link := "`" + runID + "`"
	if baseURL != "" {
		link = "<" + RunURL(baseURL, runID) + "|" + runID + ">"
	}
	what := strings.TrimPrefix(env.Type, "dev.gantry.")
	icon, detail := ":information_source:", ""
	if codec != nil {
		if e, err := codec.Decode(raw); err == nil {
			icon, what, detail = describe(e.Payload, what)
		}
	}
	text := fmt.Sprintf("%s *%s* run %s: %s", icon, pipeline, link, what)
	if detail != "" {
		text += "\n" + detail
	}
	return WebhookMessage{Text: text, Blocks: []Block{{Type: "section", Text: BlockText{Type: "mrkdwn", Text: text}}}}
}

func describe(p events.Payload, what string) (icon, summary, detail string) {
	const ok, bad, info = ":white_check_mark:", ":x:", ":information_source:"
	switch v := p.(type) {
	case events.RunRequested:
		who := v.Trigger.Actor
		if who == "" {
			who = v.Trigger.Kind
		}
		return info, "requested by " + Escape(who), ""
	case events.RunStarted:
		return info, "started", ""
	case events.RunSucceeded:
		return ok, "succeeded", ""
	case events.RunFailed:
		s := "failed"
		if v.Stage != "" {
			s += " in stage " + v.Stage
		}
		return bad, s, reasonLine(v.Reason)
	case events.RunStopped:
		return bad, "stopped", reasonLine(v.Reason)
	case events.StageStarted:
		return info, "stage " + v.Stage + " started", ""
	case events.StageSucceeded:
		return ok, "stage " + v.Stage + " succeeded", ""
	case events.StageFailed:
		return bad, "stage " + v.Stage + " failed", reasonLine(v.Reason)
	case events.ActionSucceeded:
		return ok, "action " + v.Stage + "/" + v.Action + " succeeded", ""
	case events.ActionFailed:
		return bad, "action " + v.Stage + "/" + v.Action + " failed", reasonLine(v.Reason)
	}
	return info, what, ""
}

func reasonLine(r string) string {
	if r == "" {
		return ""
	}
	return "> " + Escape(firstLine(r))
}
