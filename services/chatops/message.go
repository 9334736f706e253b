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
	if env.Type == typeActionWaiting {
		icon, what, detail = describeWaiting(env.Data, runID)
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

// typeActionWaiting is the approvals work's events.TypeActionWaiting
// (issue 9), read from its JSON here so that chat hears of a waiting
// approval whether or not this build knows the type.
const typeActionWaiting = "dev.gantry.action.waiting"

// describeWaiting formats a waiting approval with what to look at and the
// command that answers it.
func describeWaiting(data []byte, runID string) (icon, summary, detail string) {
	var w struct {
		Stage        string   `json:"stage"`
		Action       string   `json:"action"`
		Instructions string   `json:"instructions"`
		URL          string   `json:"url"`
		Approvers    []string `json:"approvers"`
		Expires      string   `json:"expires"`
	}
	_ = json.Unmarshal(data, &w)
	summary = "approval " + Escape(w.Stage) + "/" + Escape(w.Action) + " is waiting"
	var lines []string
	if w.Instructions != "" {
		lines = append(lines, "> "+Escape(firstLine(w.Instructions)))
	}
	if strings.HasPrefix(w.URL, "https://") || strings.HasPrefix(w.URL, "http://") {
		lines = append(lines, "<"+Escape(w.URL)+"|"+Escape(w.URL)+">")
	}
	if len(w.Approvers) > 0 {
		lines = append(lines, "approvers: "+Escape(strings.Join(w.Approvers, ", ")))
	}
	answer := "`/gantry approve " + runID + "` or `/gantry reject " + runID + "`"
	if w.Expires != "" {
		answer += " before " + Escape(w.Expires)
	}
	return ":hourglass_flowing_sand:", summary, strings.Join(append(lines, answer), "\n")
}
