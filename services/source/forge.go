package source

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/services/triggerfilter"
)

// Forges whose webhooks the source service receives, as the routes
// /webhooks/<forge> spell them.
const (
	ForgeGitHub = "github"
	ForgeGitLab = "gitlab"
	ForgeGitea  = "gitea"
)

// Forges lists them.
var Forges = []string{ForgeGitHub, ForgeGitLab, ForgeGitea}

// Webhook errors. A delivery refused with ErrSignature answers 401 and
// publishes nothing.
var (
	// ErrSignature: the delivery is unsigned, mis-signed, or its forge or
	// repository has no secret configured.
	ErrSignature = errors.New("webhook signature does not verify")
	// ErrIgnoredEvent: a well-formed delivery of an event that starts no
	// run (a ping, an issue comment, a branch deletion).
	ErrIgnoredEvent = errors.New("webhook event starts no run")
	// ErrBadPayload: the body is not the forge's JSON payload.
	ErrBadPayload = errors.New("bad webhook payload")
)

// Delivery is one webhook delivery, normalized across forges.
type Delivery struct {
	Forge string
	// ID is the forge's delivery ID (X-GitHub-Delivery, X-Gitlab-Event-UUID,
	// X-Gitea-Delivery), for logs and events only: redeliveries are
	// recognized by their content (TriggerID), which does not depend on it.
	ID string
	// Repository is the forge's full name of the repository (owner/name).
	Repository string
	// URLs are its clone and web URLs, for matching host/owner/name and for
	// fetching when the payload lacks the changed files.
	URLs []string
	// Event is push, tag or pullRequest; Action a pull request's action.
	Event, Action string
	// Ref is the pushed ref (refs/heads/x, refs/tags/v1) or, for a pull
	// request, its target branch as refs/heads/x.
	Ref string
	// Commit is the pushed commit or the pull request's head; Base is the
	// commit before the push or the pull request's base, for git diff.
	Commit, Base string
	// HeadRef is a pull request's source branch as refs/heads/x (in the
	// forge's repository; a fork's branch is not there).
	HeadRef string
	// Number is a pull request's number.
	Number int
	// Files are the changed files, when FilesKnown.
	Files      []string
	FilesKnown bool
	// Time is when the change happened by the payload (head commit time,
	// pull request update time), zero when it has none. It is not the
	// run's time: the run ID carries the time of the first delivery, and
	// redeliveries are recognized by their trigger ID within the triggers
	// stream's duplicate window (24 hours by default).
	Time time.Time
	// Actor is who pushed or acted.
	Actor string
}

// Change is the delivery as the trigger filter sees it.
func (d Delivery) Change() triggerfilter.Change {
	c := triggerfilter.Change{Repository: triggerfilter.Names(d.Repository, d.URLs...), Event: d.Event, Action: d.Action,
		Files: d.Files, FilesKnown: d.FilesKnown}
	switch d.Event {
	case events.TriggerEventTag:
		c.Tag = strings.TrimPrefix(d.Ref, "refs/tags/")
	default:
		c.Branch = strings.TrimPrefix(d.Ref, "refs/heads/")
	}
	return c
}

// zeroSHA is a ref that did not exist (before a branch was created) or no
// longer exists (after it was deleted).
func zeroSHA(s string) bool { return s == "" || strings.Trim(s, "0") == "" }

var shaPattern = regexp.MustCompile(`^[0-9a-f]{7,64}$`)

// validSHA keeps what goes to git an object name and nothing else.
func validSHA(s string) bool { return shaPattern.MatchString(s) }

// maxRefLen bounds a ref, as the trigger schema does.
const maxRefLen = 256

// payloadCommitLimit: GitHub and GitLab list at most 20 commits in a push
// payload, so a push of 20 or more may lack some changed files.
const payloadCommitLimit = 20

type commitFiles struct {
	ID        string   `json:"id"`
	Timestamp string   `json:"timestamp"`
	Added     []string `json:"added"`
	Modified  []string `json:"modified"`
	Removed   []string `json:"removed"`
}

// filesOf collects the changed files of a push payload's commits, each once;
// known is false when the list may be cut short.
func filesOf(commits []commitFiles, total int) (files []string, known bool) {
	seen := map[string]bool{}
	for _, c := range commits {
		for _, list := range [][]string{c.Added, c.Modified, c.Removed} {
			for _, f := range list {
				if !seen[f] {
					seen[f] = true
					files = append(files, f)
				}
			}
		}
	}
	if len(commits) == 0 || len(commits) >= payloadCommitLimit || total > len(commits) {
		return files, false
	}
	for _, c := range commits {
		// A payload without the lists (Gitea's documented example, older
		// servers) says nothing about the files, which is not "none".
		if c.Added == nil && c.Modified == nil && c.Removed == nil {
			return files, false
		}
	}
	return files, true
}

func parseTime(s string) time.Time {
	for _, layout := range []string{time.RFC3339, "2006-01-02 15:04:05 MST", "2006-01-02 15:04:05 -0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// pushEvent classifies a pushed ref; deletions start no run.
func pushEvent(ref, after string) (string, error) {
	if zeroSHA(after) {
		return "", fmt.Errorf("%w: %s was deleted", ErrIgnoredEvent, ref)
	}
	switch {
	case strings.HasPrefix(ref, "refs/tags/"):
		return events.TriggerEventTag, nil
	case strings.HasPrefix(ref, "refs/heads/"):
		return events.TriggerEventPush, nil
	}
	return "", fmt.Errorf("%w: ref %q is neither a branch nor a tag", ErrIgnoredEvent, ref)
}

// hmacHex verifies a hex HMAC-SHA256 of body in constant time.
func hmacHex(secret, body []byte, sig string) bool {
	want, err := hex.DecodeString(strings.TrimSpace(sig))
	if err != nil || len(want) != sha256.Size {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hmac.Equal(m.Sum(nil), want)
}

// Sign returns the hex HMAC-SHA256 of body: what GitHub sends after
// "sha256=" in X-Hub-Signature-256 and Gitea in X-Gitea-Signature.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// verify checks a delivery's signature with the secret of its forge and
// repository.
func verify(forge string, h http.Header, body, secret []byte) error {
	if len(secret) == 0 {
		return fmt.Errorf("%w: no secret is configured for this %s repository", ErrSignature, forge)
	}
	switch forge {
	case ForgeGitHub:
		sig, ok := strings.CutPrefix(h.Get("X-Hub-Signature-256"), "sha256=")
		if !ok || !hmacHex(secret, body, sig) {
			return fmt.Errorf("%w: X-Hub-Signature-256 is missing or wrong", ErrSignature)
		}
	case ForgeGitLab:
		tok := h.Get("X-Gitlab-Token")
		if tok == "" || subtle.ConstantTimeCompare([]byte(tok), secret) != 1 {
			return fmt.Errorf("%w: X-Gitlab-Token is missing or wrong", ErrSignature)
		}
	case ForgeGitea:
		if !hmacHex(secret, body, h.Get("X-Gitea-Signature")) {
			return fmt.Errorf("%w: X-Gitea-Signature is missing or wrong", ErrSignature)
		}
	default:
		return fmt.Errorf("%w: unknown forge %q", ErrSignature, forge)
	}
	return nil
}

// repositoryOf reads only the repository's full name from a payload, to
// pick the secret that then verifies the whole body.
func repositoryOf(forge string, body []byte) string {
	var p struct {
		Repository struct {
			FullName string `json:"full_name"`
		} `json:"repository"`
		Project struct {
			Path string `json:"path_with_namespace"`
		} `json:"project"`
	}
	if json.Unmarshal(body, &p) != nil {
		return ""
	}
	if forge == ForgeGitLab {
		return p.Project.Path
	}
	return p.Repository.FullName
}

// ParseDelivery reads a verified delivery of a forge.
func ParseDelivery(forge string, h http.Header, body []byte) (Delivery, error) {
	var d Delivery
	var err error
	switch forge {
	case ForgeGitHub:
		d, err = parseGitHub(h.Get("X-GitHub-Event"), body)
		d.ID = h.Get("X-GitHub-Delivery")
	case ForgeGitLab:
		d, err = parseGitLab(h.Get("X-Gitlab-Event"), body)
		d.ID = cmpOr(h.Get("X-Gitlab-Event-UUID"), h.Get("X-Gitlab-Webhook-UUID"))
	case ForgeGitea:
		d, err = parseGitea(h.Get("X-Gitea-Event"), body)
		d.ID = h.Get("X-Gitea-Delivery")
	default:
		return Delivery{}, fmt.Errorf("%w: unknown forge %q", ErrBadPayload, forge)
	}
	if err != nil {
		return Delivery{}, err
	}
	d.Forge = forge
	d.ID = events.Truncate(d.ID, 256)
	if d.Repository == "" || len(d.Repository) > events.MaxRepositoryLen {
		return Delivery{}, fmt.Errorf("%w: repository name %q is empty or too long", ErrBadPayload, events.Truncate(d.Repository, 80))
	}
	// A trigger's ref is at most 256 characters: refuse a longer one here
	// (400) rather than fail to publish it (500, redelivered forever).
	if len(d.Ref) > maxRefLen || len(d.HeadRef) > maxRefLen {
		return Delivery{}, fmt.Errorf("%w: ref longer than %d bytes", ErrBadPayload, maxRefLen)
	}
	if !validSHA(d.Commit) {
		return Delivery{}, fmt.Errorf("%w: commit %q is not a SHA", ErrBadPayload, d.Commit)
	}
	if !validSHA(d.Base) || zeroSHA(d.Base) {
		d.Base = "" // a new branch, or a payload without one
	}
	return d, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func decode(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: %w", ErrBadPayload, err)
	}
	return nil
}

// githubRepo is the repository object of GitHub and Gitea payloads.
type githubRepo struct {
	FullName string `json:"full_name"`
	CloneURL string `json:"clone_url"`
	SSHURL   string `json:"ssh_url"`
	HTMLURL  string `json:"html_url"`
}

func (r githubRepo) urls() []string { return []string{r.CloneURL, r.SSHURL, r.HTMLURL} }

type githubPush struct {
	Ref        string        `json:"ref"`
	Before     string        `json:"before"`
	After      string        `json:"after"`
	Commits    []commitFiles `json:"commits"`
	HeadCommit *commitFiles  `json:"head_commit"`
	Repository githubRepo    `json:"repository"`
	Pusher     struct {
		Name string `json:"name"`
	} `json:"pusher"`
	Sender struct {
		Login string `json:"login"`
	} `json:"sender"`
}

func (p githubPush) delivery() (Delivery, error) {
	ev, err := pushEvent(p.Ref, p.After)
	if err != nil {
		return Delivery{}, err
	}
	d := Delivery{Repository: p.Repository.FullName, URLs: p.Repository.urls(), Event: ev, Ref: p.Ref,
		Commit: p.After, Base: p.Before, Actor: cmpOr(p.Pusher.Name, p.Sender.Login)}
	if ev == events.TriggerEventPush {
		d.Files, d.FilesKnown = filesOf(p.Commits, 0)
	}
	for _, c := range p.Commits {
		if c.ID == p.After {
			d.Time = parseTime(c.Timestamp) // Gitea's documented payload has no head_commit
		}
	}
	if p.HeadCommit != nil {
		d.Time = parseTime(p.HeadCommit.Timestamp)
		if ev == events.TriggerEventTag && validSHA(p.HeadCommit.ID) {
			d.Commit = p.HeadCommit.ID // after is the tag object of an annotated tag
		}
	}
	return d, nil
}

// githubPR is the pull_request payload of GitHub and Gitea.
type githubPR struct {
	Action      string `json:"action"`
	Number      int    `json:"number"`
	PullRequest struct {
		UpdatedAt string `json:"updated_at"`
		Head      struct {
			Ref string `json:"ref"`
			SHA string `json:"sha"`
		} `json:"head"`
		Base struct {
			Ref string `json:"ref"`
			SHA string `json:"sha"`
		} `json:"base"`
		MergeBase string `json:"merge_base"`
	} `json:"pull_request"`
	Repository githubRepo `json:"repository"`
	Sender     struct {
		Login string `json:"login"`
	} `json:"sender"`
}

func (p githubPR) delivery(actions map[string]string) (Delivery, error) {
	action, ok := actions[p.Action]
	if !ok {
		return Delivery{}, fmt.Errorf("%w: pull request action %q", ErrIgnoredEvent, p.Action)
	}
	pr := p.PullRequest
	return Delivery{Repository: p.Repository.FullName, URLs: p.Repository.urls(), Event: events.TriggerEventPullRequest,
		Action: action, Ref: "refs/heads/" + pr.Base.Ref, HeadRef: "refs/heads/" + pr.Head.Ref, Commit: pr.Head.SHA, Base: cmpOr(pr.MergeBase, pr.Base.SHA),
		Number: p.Number, Time: parseTime(pr.UpdatedAt), Actor: p.Sender.Login}, nil
}

func parseGitHub(event string, body []byte) (Delivery, error) {
	switch event {
	case "push":
		var p githubPush
		if err := decode(body, &p); err != nil {
			return Delivery{}, err
		}
		return p.delivery()
	case "pull_request":
		var p githubPR
		if err := decode(body, &p); err != nil {
			return Delivery{}, err
		}
		return p.delivery(map[string]string{"opened": events.PullRequestOpened, "reopened": events.PullRequestOpened,
			"synchronize": events.PullRequestUpdated, "closed": events.PullRequestClosed})
	}
	return Delivery{}, fmt.Errorf("%w: GitHub event %q", ErrIgnoredEvent, event)
}

func parseGitea(event string, body []byte) (Delivery, error) {
	switch event {
	case "push":
		var p githubPush
		if err := decode(body, &p); err != nil {
			return Delivery{}, err
		}
		return p.delivery()
	case "create":
		// Gitea sends a push for a new tag too; its create event adds nothing.
		return Delivery{}, fmt.Errorf("%w: Gitea create event (the push event covers it)", ErrIgnoredEvent)
	case "pull_request":
		var p githubPR
		if err := decode(body, &p); err != nil {
			return Delivery{}, err
		}
		return p.delivery(map[string]string{"opened": events.PullRequestOpened, "reopened": events.PullRequestOpened,
			"synchronized": events.PullRequestUpdated, "closed": events.PullRequestClosed})
	}
	return Delivery{}, fmt.Errorf("%w: Gitea event %q", ErrIgnoredEvent, event)
}

type gitlabProject struct {
	Path    string `json:"path_with_namespace"`
	HTTPURL string `json:"git_http_url"`
	SSHURL  string `json:"git_ssh_url"`
	WebURL  string `json:"web_url"`
}

func (p gitlabProject) urls() []string { return []string{p.HTTPURL, p.SSHURL, p.WebURL} }

func parseGitLab(event string, body []byte) (Delivery, error) {
	switch event {
	case "Push Hook", "Tag Push Hook":
		var p struct {
			Ref               string        `json:"ref"`
			Before            string        `json:"before"`
			After             string        `json:"after"`
			CheckoutSHA       string        `json:"checkout_sha"`
			UserUsername      string        `json:"user_username"`
			Commits           []commitFiles `json:"commits"`
			TotalCommitsCount int           `json:"total_commits_count"`
			Project           gitlabProject `json:"project"`
		}
		if err := decode(body, &p); err != nil {
			return Delivery{}, err
		}
		ev, err := pushEvent(p.Ref, p.After)
		if err != nil {
			return Delivery{}, err
		}
		// A tag push's after is the tag object; checkout_sha is the commit.
		commit := cmpOr(p.CheckoutSHA, p.After)
		d := Delivery{Repository: p.Project.Path, URLs: p.Project.urls(), Event: ev, Ref: p.Ref,
			Commit: commit, Base: p.Before, Actor: p.UserUsername}
		if ev == events.TriggerEventPush {
			d.Files, d.FilesKnown = filesOf(p.Commits, p.TotalCommitsCount)
		}
		for _, c := range p.Commits {
			if c.ID == commit {
				d.Time = parseTime(c.Timestamp)
			}
		}
		return d, nil
	case "Merge Request Hook":
		var p struct {
			User struct {
				Username string `json:"username"`
			} `json:"user"`
			Project gitlabProject `json:"project"`
			Attrs   struct {
				IID          int    `json:"iid"`
				Action       string `json:"action"`
				TargetBranch string `json:"target_branch"`
				SourceBranch string `json:"source_branch"`
				UpdatedAt    string `json:"updated_at"`
				LastCommit   struct {
					ID string `json:"id"`
				} `json:"last_commit"`
				DiffRefs *struct {
					BaseSHA string `json:"base_sha"`
					HeadSHA string `json:"head_sha"`
				} `json:"diff_refs"`
			} `json:"object_attributes"`
		}
		if err := decode(body, &p); err != nil {
			return Delivery{}, err
		}
		actions := map[string]string{"open": events.PullRequestOpened, "reopen": events.PullRequestOpened,
			"update": events.PullRequestUpdated, "close": events.PullRequestClosed, "merge": events.PullRequestClosed}
		action, ok := actions[p.Attrs.Action]
		if !ok {
			return Delivery{}, fmt.Errorf("%w: merge request action %q", ErrIgnoredEvent, p.Attrs.Action)
		}
		d := Delivery{Repository: p.Project.Path, URLs: p.Project.urls(), Event: events.TriggerEventPullRequest,
			Action: action, Ref: "refs/heads/" + p.Attrs.TargetBranch, HeadRef: "refs/heads/" + p.Attrs.SourceBranch, Commit: p.Attrs.LastCommit.ID,
			Number: p.Attrs.IID, Time: parseTime(p.Attrs.UpdatedAt), Actor: p.User.Username}
		if p.Attrs.DiffRefs != nil {
			d.Base = p.Attrs.DiffRefs.BaseSHA
			d.Commit = cmpOr(p.Attrs.DiffRefs.HeadSHA, d.Commit)
		}
		return d, nil
	}
	return Delivery{}, fmt.Errorf("%w: GitLab event %q", ErrIgnoredEvent, event)
}

// TriggerID derives a change's trigger ID for one pipeline from what the
// change is, not from how it arrived: the same push redelivered, or seen
// by a poll and a webhook, or by two source replicas, has one ID and so
// starts one run.
func TriggerID(pipeline, event, action, ref, commit string, number int) string {
	h := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%s\x00%s\x00%s\x00%d", pipeline, event, action, ref, commit, number))
	return event + "-" + hex.EncodeToString(h[:20])
}
