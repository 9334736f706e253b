// Package buildspec parses a CodeBuild-style buildspec.yml, the file a build
// or test action runs: environment variables, the phases install, pre_build,
// build and post_build (each with commands, finally commands and an
// on-failure rule), the artifact file globs and the JUnit reports.
//
// Parsing is strict. Unknown keys are errors (CodeBuild keys Gantry does not
// implement say so), and every problem names the file, line, column and field,
// for example:
//
//	buildspec.yml:7:5: phases.build.on-failure: must be ABORT or CONTINUE, got "STOP"
//
// Parse reports every problem it finds at once, in file order. The document is
// checked twice: by the hand-written rules here, which give the messages above,
// and against schemas/buildspec.json, the published contract that editors and
// other tools use; a test keeps the two in agreement.
//
// A parsed Spec marshals to JSON in the buildspec's own shape (JSON is YAML),
// so it can travel inside a task message and be parsed again unchanged.
package buildspec
