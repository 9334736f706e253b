package appspec

import (
	"slices"
	"time"
)

// Version is the only appspec version there is.
const Version = "0.0"

// OSLinux is the only operating system Gantry's agent runs on.
const OSLinux = "linux"

// Hook timeouts, in seconds.
const (
	// DefaultTimeout applies to a hook without a timeout.
	DefaultTimeout = 3600
	// MaxTimeout is the longest timeout a hook may have, as in CodeDeploy.
	MaxTimeout = 3600
)

// The lifecycle events of an in-place deployment, in the order the agent
// runs them. DownloadBundle and Install are the agent's own steps (fetch the
// revision; copy its files); the others run the appspec's scripts.
// ApplicationStop runs the scripts of the revision deployed before, as in
// CodeDeploy, since the new revision is not on the host yet.
const (
	ApplicationStop  = "ApplicationStop"
	DownloadBundle   = "DownloadBundle"
	BeforeInstall    = "BeforeInstall"
	Install          = "Install"
	AfterInstall     = "AfterInstall"
	ApplicationStart = "ApplicationStart"
	ValidateService  = "ValidateService"
)

// Lifecycle lists the lifecycle events in the order they run.
var Lifecycle = []string{ApplicationStop, DownloadBundle, BeforeInstall, Install, AfterInstall, ApplicationStart, ValidateService}

// HookEvents lists the lifecycle events that run scripts, in order: the keys
// the hooks section may have.
var HookEvents = []string{ApplicationStop, BeforeInstall, AfterInstall, ApplicationStart, ValidateService}

// FileExistsBehavior says what Install does with a file that is already at
// its destination but was not put there by the previous deployment.
type FileExistsBehavior string

const (
	// Disallow fails the deployment (the default).
	Disallow FileExistsBehavior = "DISALLOW"
	// Overwrite replaces the file with the revision's.
	Overwrite FileExistsBehavior = "OVERWRITE"
	// Retain keeps the file on the host and skips the revision's.
	Retain FileExistsBehavior = "RETAIN"
)

// Spec is a parsed appspec, defaults filled in. Marshalled to JSON it is a
// valid appspec again (JSON is YAML), and Parse of that JSON returns an
// equal Spec.
type Spec struct {
	// Version is always "0.0".
	Version string `json:"version"`
	// OS is always "linux".
	OS string `json:"os"`
	// Files are copied from the bundle during Install, in order. Nil when
	// the appspec has none.
	Files []File `json:"files,omitempty"`
	// FileExistsBehavior is Disallow unless the appspec says otherwise.
	FileExistsBehavior FileExistsBehavior `json:"file_exists_behavior"`
	// EventHooks maps a lifecycle event (one of HookEvents) to its scripts;
	// use Hooks to read it. Nil when the appspec has no hooks.
	EventHooks map[string][]Hook `json:"hooks,omitempty"`
}

// File copies a file or directory of the bundle onto the host.
type File struct {
	// Source is relative to the bundle's root; "/" is the whole bundle and a
	// leading "/" is the root, as in CodeDeploy. Never contains "..".
	Source string `json:"source"`
	// Destination is an absolute path on the host.
	Destination string `json:"destination"`
}

// Hook is one script of a lifecycle event.
type Hook struct {
	// Location is the script's path relative to the bundle's root.
	Location string `json:"location"`
	// Timeout is in seconds: 1 to MaxTimeout, DefaultTimeout if not given.
	Timeout int `json:"timeout"`
	// RunAs is the user the script runs as; empty means the agent's user.
	RunAs string `json:"runas,omitempty"`
}

// TimeoutDuration returns the hook's timeout as a duration.
func (h Hook) TimeoutDuration() time.Duration { return time.Duration(h.Timeout) * time.Second }

// Hooks returns the scripts of a lifecycle event, in the order they run;
// nil for an event without scripts, DownloadBundle and Install included.
func (s *Spec) Hooks(event string) []Hook {
	if s == nil {
		return nil
	}
	return slices.Clone(s.EventHooks[event])
}
