package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/services/agent"
	"github.com/gantry-ci/gantry/services/deploy"
	"github.com/gantry-ci/gantry/services/deploydecider"
	"github.com/gantry-ci/gantry/services/rollback"
)

// listDeployments folds deployments from the deployment log, as `gantry
// deploy list` does, newest first.
func (s *Server) listDeployments(w http.ResponseWriter, r *http.Request) {
	group := r.URL.Query().Get("group")
	if err := checkNames(field{"group", group, false}); err != nil {
		s.fail(w, r, err)
		return
	}
	states, err := deploy.List(r.Context(), s.o.Bus, group)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if states == nil {
		states = []deploydecider.State{}
	}
	slices.Reverse(states)
	writeJSON(w, http.StatusOK, states)
}

// getDeployment is one deployment with each host's lifecycle steps, as
// `gantry deploy show` folds it.
func (s *Server) getDeployment(w http.ResponseWriter, r *http.Request) {
	id, err := name(r, "deployment")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	st, err := deploy.Load(r.Context(), s.o.Bus, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// GroupDoc is a deployment group with its live agents.
type GroupDoc struct {
	deploy.Group
	Agents []agent.Info `json:"agents"`
}

// groupDoc adds to g its live agents: those that heartbeat within the last
// minute and match its selector, as a deployment created now would target.
func groupDoc(ctx context.Context, js jetstream.JetStream, g deploy.Group) (GroupDoc, error) {
	as, err := deploy.Agents(ctx, js, g, time.Minute, time.Now())
	if as == nil {
		as = []agent.Info{}
	}
	return GroupDoc{g, as}, err
}

func (s *Server) listGroups(w http.ResponseWriter, r *http.Request) {
	js := s.o.Bus.JetStream()
	kv, err := js.KeyValue(r.Context(), events.BucketDeployGroups)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := []GroupDoc{}
	keys, err := kv.ListKeys(r.Context())
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		s.fail(w, r, err)
		return
	}
	if keys != nil {
		for k := range keys.Keys() {
			g, err := deploy.GetGroup(r.Context(), js, k)
			if err != nil {
				continue
			}
			// One group's agents failing to list does not hide the others.
			doc, _ := groupDoc(r.Context(), js, g)
			out = append(out, doc)
		}
	}
	slices.SortFunc(out, func(a, b GroupDoc) int { return strings.Compare(a.Name, b.Name) })
	writeJSON(w, http.StatusOK, out)
}

// getGroup is one deployment group with its live agents, as the list
// shows it.
func (s *Server) getGroup(w http.ResponseWriter, r *http.Request) {
	n, err := name(r, "group")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	js := s.o.Bus.JetStream()
	g, err := deploy.GetGroup(r.Context(), js, n)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	doc, err := groupDoc(r.Context(), js, g)
	if err != nil {
		s.fail(w, r, fmt.Errorf("group %s: agents: %w", n, err))
		return
	}
	writeJSON(w, http.StatusOK, doc)
}

// GroupApplied answers PUT /groups/{group}.
type GroupApplied struct {
	Group string `json:"group"`
	// Revision is the group's new revision: the sequence of its entry in
	// the deploygroups bucket, as `gantry deploy group apply` prints it.
	Revision uint64 `json:"revision"`
}

// applyGroup stores a deployment group document (YAML or JSON), as
// `gantry deploy group apply -f FILE` does. Like a pipeline file, a
// document with any problem is refused whole with every problem's line,
// column and field, and nothing is stored.
func (s *Server) applyGroup(w http.ResponseWriter, r *http.Request) {
	n, err := name(r, "group")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	body, err := readFile(r, deploy.MaxGroupSize)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	g, err := deploy.ParseGroup(n+".yaml", body)
	if err != nil {
		refuse(w, problemsOf(err), "fix the document; see docs/deploy.md, Deployment groups")
		return
	}
	if g.Name != n {
		s.fail(w, r, fmt.Errorf("%w: the document names group %q, the path %q", ErrBadRequest, g.Name, n))
		return
	}
	rev, err := deploy.ApplyGroup(r.Context(), s.o.Bus.JetStream(), g)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.o.Log.Info().Str("group", n).Uint64("revision", rev).Str("actor", caller(r).Actor()).Msg("deployment group applied")
	writeJSON(w, http.StatusOK, GroupApplied{Group: n, Revision: rev})
}

// GroupRollbackRequest is the body of POST /groups/{group}/rollback.
type GroupRollbackRequest struct {
	// To is the deployment whose revision to deploy again (default: the
	// group's last known good revision).
	To string `json:"to,omitempty"`
}

// Rolledback answers a group rollback.
type Rolledback struct {
	Deployment string             `json:"deployment"`
	Group      string             `json:"group"`
	RollbackOf string             `json:"rollbackOf,omitempty"`
	Revision   events.ArtifactRef `json:"revision"`
}

// groupRollback starts a deployment of the group's last known good
// revision, as `gantry rollback GROUP` does.
func (s *Server) groupRollback(w http.ResponseWriter, r *http.Request) {
	group, err := name(r, "group")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req GroupRollbackRequest
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := checkNames(field{"to", req.To, false}); err != nil {
		s.fail(w, r, err)
		return
	}
	if _, err := deploy.GetGroup(r.Context(), s.o.Bus.JetStream(), group); err != nil {
		s.fail(w, r, err)
		return
	}
	c, err := rollback.Rollback(r.Context(), s.o.Bus, rollback.Request{Group: group, To: req.To, Actor: caller(r).Actor()})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.o.Log.Info().Str("group", group).Str("deployment", c.Deployment).Str("actor", caller(r).Actor()).Msg("rollback")
	writeJSON(w, http.StatusAccepted, Rolledback{Deployment: c.Deployment, Group: c.Group, RollbackOf: c.RollbackOf, Revision: c.Revision})
}
