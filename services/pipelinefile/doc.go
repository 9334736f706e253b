// Package pipelinefile reads pipeline files (docs/pipeline.md) into
// events.Definition.
//
// Parse works in four steps, and reports the problems of every step that
// could run, all at once, each as file:line:column, the field path and what is
// wrong:
//
//  1. YAML syntax, with github.com/goccy/go-yaml, which keeps positions.
//     Aliases and merge keys are expanded (bounded by MaxNodes). Before the
//     parser runs, the tokens are checked against MaxDepth and MaxEntries,
//     because the parser's time grows with the square of both.
//  2. The JSON Schema schemas/pipeline.json, through schemas.Validator.Details.
//     Each violation's JSON pointer is mapped back to the YAML node it came
//     from, following anchors, aliases and merge keys, and its message is put
//     in YAML terms ("must be a list, got mapping").
//  3. What the schema cannot express: unique stage names, unique action names
//     per stage, one producer per artifact, every input produced by an action
//     of an earlier stage or an earlier runOrder group of its stage, a
//     repository for each source action, and no variable named GANTRY_*.
//  4. Defaults: pool "default", runOrder 1, timeoutSeconds 3600.
//
// Values of configuration and variables are strings. A number or boolean
// there is an error that says how to quote it, rather than being converted:
// YAML reads 1.10 as 1.1 and 0o17 as 15, so a silent conversion would hand
// the worker a value the author did not write.
package pipelinefile
