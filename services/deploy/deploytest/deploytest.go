// Package deploytest builds test revisions for deployments: a bundle whose
// ApplicationStart serves its www/ directory (healthz and version both hold
// the revision's version) on the host's "port" label, using the program the
// host's "server" label names as the file server. A test binary becomes
// that server by calling MaybeServe first thing in TestMain, so no
// interpreter has to start on a loaded machine.
package deploytest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/google/uuid"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/services/artifact"
)

// Environment of the file server mode.
const (
	ServeDirEnv  = "GANTRY_TEST_SERVE_DIR"
	ServeAddrEnv = "GANTRY_TEST_SERVE_ADDR"
)

// MaybeServe turns the process into the revision's file server when the
// start script launched it, and never returns then.
func MaybeServe() {
	dir := os.Getenv(ServeDirEnv)
	if dir == "" {
		return
	}
	err := http.ListenAndServe(os.Getenv(ServeAddrEnv), http.FileServer(http.Dir(dir)))
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

// PidFile is where the start script records the server's pid, under the
// agent's install root.
func PidFile(installRoot string) string { return filepath.Join(installRoot, "app.pid") }

const appspecYAML = `version: 0.0
os: linux
files:
  - source: /www
    destination: /srv/app
file_exists_behavior: OVERWRITE
hooks:
  ApplicationStop:
    - location: scripts/stop.sh
      timeout: 10
  BeforeInstall:
    - location: scripts/before.sh
      timeout: %d
  ApplicationStart:
    - location: scripts/start.sh
      timeout: 10
  ValidateService:
    - location: scripts/validate.sh
      timeout: 10
`

const stopSh = `#!/bin/sh
pidf="$GANTRY_INSTALL_ROOT/app.pid"
[ -f "$pidf" ] || exit 0
pid=$(cat "$pidf")
kill "$pid" 2>/dev/null
i=0
# Wait until it is gone or a zombie nobody reaps (no init in a container).
while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
  case "$(sed 's/.*) //' /proc/$pid/stat 2>/dev/null)" in Z*|"") break;; esac
  sleep 0.05; i=$((i+1))
done
rm -f "$pidf"
echo "stopped $pid"
`

const startSh = `#!/bin/sh
cd "$GANTRY_INSTALL_ROOT/srv/app" || exit 1
` + ServeDirEnv + `="$PWD" ` + ServeAddrEnv + `="127.0.0.1:$GANTRY_LABEL_PORT" "$GANTRY_LABEL_SERVER" >/dev/null 2>&1 &
echo $! > "$GANTRY_INSTALL_ROOT/app.pid"
echo "started $LIFECYCLE_EVENT of $APPLICATION_NAME $DEPLOYMENT_ID on $DEPLOYMENT_GROUP_NAME"
`

// Revision describes a test revision.
type Revision struct {
	Version string
	// Before and Validate are the bodies of the BeforeInstall and
	// ValidateService scripts ("true" when empty).
	Before, Validate string
	// BeforeTimeout is BeforeInstall's timeout in seconds (default 60).
	BeforeTimeout int
}

// Files returns the bundle's files by path.
func (r Revision) Files() map[string]string {
	or := func(s string) string {
		if s == "" {
			return "true"
		}
		return s
	}
	timeout := r.BeforeTimeout
	if timeout == 0 {
		timeout = 60
	}
	return map[string]string{
		"appspec.yml":         fmt.Sprintf(appspecYAML, timeout),
		"www/healthz":         r.Version,
		"www/version":         r.Version,
		"scripts/stop.sh":     stopSh,
		"scripts/start.sh":    startSh,
		"scripts/before.sh":   "#!/bin/sh\n" + or(r.Before) + "\n",
		"scripts/validate.sh": "#!/bin/sh\n" + or(r.Validate) + "\n",
	}
}

// Store writes the bundle under dir and stores it as artifact name of
// pipeline/run, under a key of its own.
func (r Revision) Store(ctx context.Context, store *artifact.Store, dir, pipeline, run, name string) (events.ArtifactRef, error) {
	for p, body := range r.Files() {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return events.ArtifactRef{}, err
		}
		if err := os.WriteFile(full, []byte(body), 0o755); err != nil {
			return events.ArtifactRef{}, err
		}
	}
	files, err := artifact.DirFiles(dir)
	if err != nil {
		return events.ArtifactRef{}, err
	}
	// As a build action's first delivery would store it; the upload part
	// is fresh, since keys are write-once and tests store a version twice.
	key := events.ArtifactKey(pipeline, events.ActionRef{Run: run, Stage: "build", Action: "build", Attempt: 1}, uuid.NewString(), name)
	return store.PutDir(ctx, key, name, files)
}
