// Package runner runs a parsed buildspec in a workspace directory, the way
// CodeBuild does, and collects the files its artifacts and reports name. It
// is the engine of the build and test worker fleets; the worker shell around
// it (NATS, the object store, heartbeats) lives elsewhere.
//
// # Phases
//
// Phases run in the order install, pre_build, build, post_build. A phase runs
// its commands one after another; the first command that exits non-zero fails
// the phase and skips the rest of its commands. The phase's finally commands
// run next whether or not its commands failed (but not after a timeout or a
// cancellation). What follows a failed phase depends on its on-failure:
//
//   - ABORT (the default): after a failed install or pre_build the build ends;
//     after a failed build, post_build still runs (CodeBuild's rule);
//     post_build is last anyway.
//   - CONTINUE: the next phases run as if nothing had failed, but the build's
//     result is still FAILED, naming the first failed phase.
//
// GANTRY_BUILD_SUCCEEDING is 1 in every command until a phase fails, then 0
// (CodeBuild's CODEBUILD_BUILD_SUCCEEDING), so post_build can tell.
//
// # Shell and environment
//
// Each command runs as `bash -c` (sh where bash is missing) with stdin from
// /dev/null, in a process group of its own. The first command's environment
// is the caller's base environment, then the buildspec's env.variables, then
// the task's variables (later wins); the worker's own environment is not
// inherited. After each command an EXIT trap dumps `export -p` and `pwd` to
// a private state directory, and the next command starts by sourcing that
// dump in that directory. So `export FOO=bar`, `unset FOO`, a changed PATH and
// `cd` carry over to later commands and phases, as in CodeBuild; shell
// options, functions and unexported variables do not. A command that
// replaces the EXIT trap, or is killed, leaves the state as it was.
//
// env.exported-variables are read after the last phase that ran (whether or
// not the build failed) and returned; a variable that is not set is left out.
//
// # Output
//
// Standard output and error of every command are merged and handed to the
// caller's LogSink line by line (lines longer than MaxLineBytes are split),
// labelled with the phase, from one goroutine at a time. The runner adds a
// "[gantry] ..." line before each command and after each phase. Past
// Options.MaxLogBytes (default 10 MiB) lines are dropped and
// Result.Truncated is set. A command's background processes keep writing to
// the log, labelled with the phase that started them, until the run ends.
//
// # Timeouts and cancellation
//
// When ctx ends, every process group the run started gets SIGTERM, and
// SIGKILL after Options.KillGrace, so no child or grandchild survives it
// (a process that calls setsid to leave its group escapes, as it would in
// CodeBuild). Background processes still running when the build ends are
// stopped the same way. On Linux each command's group leader is kept as an
// unreaped zombie until the end of the run, so its process group ID cannot
// be reused by an unrelated process before the runner signals the group.
//
// # Secrets
//
// Options.Secrets are set in the first command's environment (over the
// task's variables) and their values never reach the LogSink: output is
// masked as a byte stream, before it is cut into lines, by a
// redact.Writer, so a value printed in pieces or across a MaxLineBytes cut
// is still replaced by "***"; the runner's own lines and Result.Reason are
// masked as well. An exported variable that holds a secret's value is left
// out of Result.ExportedVariables (they are written to events), with a line
// saying so. A command that starts with an assignment (export NAME=...) is
// announced by the variable's name only: "export NAME=[value hidden]".
// Values shorter than redact.MinLen are refused by Validate.
package runner
