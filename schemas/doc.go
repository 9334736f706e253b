// Package schemas embeds Gantry's JSON Schemas (draft 2020-12) and validates
// documents against them: every event payload (events/<type>.json), the
// CloudEvents envelope, the pipeline file, the buildspec and the appspec.
//
// Schemas are compiled once per Validator; a Validator is safe for concurrent
// use.
package schemas
