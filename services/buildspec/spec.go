package buildspec

// Version is the only buildspec version Gantry reads.
const Version = "0.2"

// Phase names, in the order they run.
const (
	Install   = "install"
	PreBuild  = "pre_build"
	Build     = "build"
	PostBuild = "post_build"
)

// PhaseNames lists the phases in the order they run.
var PhaseNames = []string{Install, PreBuild, Build, PostBuild}

// FileFormatJUnitXML is the only report file format Gantry reads.
const FileFormatJUnitXML = "JUNITXML"

// OnFailure says what happens after a phase fails.
type OnFailure string

const (
	// Abort stops the build after the failed phase's finally commands
	// (a failed build phase still runs post_build, as in CodeBuild).
	Abort OnFailure = "ABORT"
	// Continue runs the next phases as if the phase had succeeded; the build
	// still fails.
	Continue OnFailure = "CONTINUE"
)

// Spec is a parsed buildspec. Marshalled to JSON it is a valid buildspec
// again (JSON is YAML), and Parse of that JSON returns an equal Spec.
type Spec struct {
	// Version is always "0.2".
	Version string `json:"version"`
	Env     Env    `json:"env,omitzero"`
	Phases  Phases `json:"phases"`
	// Artifacts is nil when the buildspec has no artifacts section.
	Artifacts *Artifacts `json:"artifacts,omitempty"`
	// Reports maps a report name to the JUnit files it reads; test actions
	// use them. Nil when there are none.
	Reports map[string]Report `json:"reports,omitempty"`
}

// Env is the buildspec's environment section.
type Env struct {
	// Variables are set for every command. Numbers and booleans are kept as
	// written ("8080", "true"). Nil when there are none.
	Variables map[string]string `json:"variables,omitempty"`
	// ExportedVariables are read after the last phase and become the
	// action's output variables.
	ExportedVariables []string `json:"exported-variables,omitempty"`
	// Secrets maps environment variable names to secret references (a
	// secret's name, or file:/path on the worker), resolved by the worker
	// and masked in its logs. Nil when there are none.
	Secrets map[string]string `json:"secrets,omitempty"`
}

// Phases holds the four phases; a phase the buildspec does not define is nil.
type Phases struct {
	Install   *Phase `json:"install,omitempty"`
	PreBuild  *Phase `json:"pre_build,omitempty"`
	Build     *Phase `json:"build,omitempty"`
	PostBuild *Phase `json:"post_build,omitempty"`
}

// Get returns the named phase (one of PhaseNames), or nil.
func (p *Phases) Get(name string) *Phase {
	switch name {
	case Install:
		return p.Install
	case PreBuild:
		return p.PreBuild
	case Build:
		return p.Build
	case PostBuild:
		return p.PostBuild
	}
	return nil
}

// Phase is one phase's commands.
type Phase struct {
	// Commands run one after another; the first that fails ends the phase.
	// Never empty.
	Commands []string `json:"commands"`
	// Finally commands run after Commands whether or not they failed.
	Finally []string `json:"finally,omitempty"`
	// OnFailure is Abort (the default) or Continue.
	OnFailure OnFailure `json:"on-failure"`
}

// Artifacts names the files a build action stores as its output artifact.
type Artifacts struct {
	// Files are doublestar globs relative to BaseDirectory. Never empty.
	Files []string `json:"files"`
	// BaseDirectory is relative to the workspace; empty means the workspace.
	BaseDirectory string `json:"base-directory,omitempty"`
	// DiscardPaths stores every file at the archive's top level.
	DiscardPaths bool `json:"discard-paths,omitempty"`
}

// Report names the JUnit XML files of one test report.
type Report struct {
	// Files are doublestar globs relative to BaseDirectory. Never empty.
	Files         []string `json:"files"`
	BaseDirectory string   `json:"base-directory,omitempty"`
	// FileFormat is always FileFormatJUnitXML.
	FileFormat string `json:"file-format"`
}
