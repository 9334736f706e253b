package gateway

import (
	"errors"
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
			as, _ := deploy.Agents(r.Context(), js, g, time.Minute, time.Now())
			if as == nil {
				as = []agent.Info{}
			}
			out = append(out, GroupDoc{g, as})
		}
	}
	slices.SortFunc(out, func(a, b GroupDoc) int { return strings.Compare(a.Name, b.Name) })
	writeJSON(w, http.StatusOK, out)
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
	c, err := rollback.Rollback(r.Context(), s.o.Bus, rollback.Request{Group: group, To: req.To})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.o.Log.Info().Str("group", group).Str("deployment", c.Deployment).Str("actor", caller(r).Actor()).Msg("rollback")
	writeJSON(w, http.StatusAccepted, Rolledback{Deployment: c.Deployment, Group: c.Group, RollbackOf: c.RollbackOf, Revision: c.Revision})
}
