package gateway

import (
	"net/http"

	"github.com/gantry-ci/gantry/schemas"
	"github.com/gantry-ci/gantry/services/gateway/auth"
)

type route struct {
	method, path string
	role         auth.Role
	handler      http.HandlerFunc
}

// routes is the API: the one table both the ServeMux and the OpenAPI
// test read.
func (s *Server) routes() []route {
	const v1 = "/api/v1"
	return []route{
		{"GET", v1 + "/pipelines", auth.Viewer, s.listPipelines},
		{"GET", v1 + "/pipelines/{pipeline}", auth.Viewer, s.getPipeline},
		{"PUT", v1 + "/pipelines/{pipeline}", auth.Admin, s.applyPipeline},
		{"POST", v1 + "/pipelines/validate", auth.Viewer, s.validatePipeline},
		{"POST", v1 + "/pipelines/{pipeline}/runs", auth.Operator, s.startRun},
		{"POST", v1 + "/pipelines/{pipeline}/rollback", auth.Operator, s.stageRollback},
		{"GET", v1 + "/pipelines/{pipeline}/stages", auth.Viewer, s.getStages},
		{"POST", v1 + "/pipelines/{pipeline}/stages/{stage}/disable", auth.Operator, s.stageTransition(true)},
		{"POST", v1 + "/pipelines/{pipeline}/stages/{stage}/enable", auth.Operator, s.stageTransition(false)},
		{"GET", v1 + "/runs", auth.Viewer, s.listRuns},
		{"GET", v1 + "/runs/{run}", auth.Viewer, s.getRun},
		{"GET", v1 + "/runs/{run}/events", auth.Viewer, s.runEvents},
		{"POST", v1 + "/runs/{run}/stop", auth.Operator, s.stopRun},
		{"POST", v1 + "/runs/{run}/retry", auth.Operator, s.retryRun},
		{"POST", v1 + "/runs/{run}/approve", auth.Approver, s.decide(true)},
		{"POST", v1 + "/runs/{run}/reject", auth.Approver, s.decide(false)},
		{"GET", v1 + "/runs/{run}/actions/{stage}/{action}", auth.Viewer, s.getAction},
		{"GET", v1 + "/runs/{run}/actions/{stage}/{action}/logs", auth.Viewer, s.actionLogs},
		{"GET", v1 + "/runs/{run}/artifacts", auth.Viewer, s.listArtifacts},
		{"GET", v1 + "/runs/{run}/artifacts/{name}", auth.Viewer, s.getArtifact},
		{"GET", v1 + "/deployments", auth.Viewer, s.listDeployments},
		{"GET", v1 + "/deployments/{deployment}", auth.Viewer, s.getDeployment},
		{"GET", v1 + "/groups", auth.Viewer, s.listGroups},
		{"GET", v1 + "/groups/{group}", auth.Viewer, s.getGroup},
		{"PUT", v1 + "/groups/{group}", auth.Admin, s.applyGroup},
		{"POST", v1 + "/groups/{group}/rollback", auth.Operator, s.groupRollback},
		{"GET", "/openapi.json", "", s.openAPI},
		{"GET", "/healthz", "", s.healthz},
	}
}

func (s *Server) openAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(schemas.OpenAPI())
}

// healthz answers 200 while the bus connection is up.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	if !s.o.Bus.Conn().IsConnected() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "nats disconnected"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
