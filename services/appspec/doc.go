// Package appspec parses a CodeDeploy-style appspec.yml for in-place
// deployments to hosts (CodeDeploy's EC2/on-premises form): the files the
// agent copies from the revision bundle onto the host, what to do with files
// that already exist there, and the scripts each lifecycle event runs.
//
// Parsing is strict. Unknown keys are errors (CodeDeploy keys Gantry does not
// implement say so), and every problem names the file, line, column and field,
// for example:
//
//	appspec.yml:9:7: hooks.ApplicationStart[0].timeout: must be at most 3600 seconds, got 7200
//
// Parse reports every problem it finds at once, in file order. The document
// is checked twice: by the hand-written rules here, which give the messages
// above, and against schemas/appspec.json, the published contract that
// editors and other tools use; a test keeps the two in agreement.
//
// A parsed Spec has its defaults filled in (file_exists_behavior DISALLOW,
// timeout 3600) and marshals to JSON in the appspec's own shape, so it can
// travel inside a deploy command and be parsed again unchanged.
//
// The reference is docs/deploy.md.
package appspec
