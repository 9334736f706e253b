package schemas

import _ "embed"

// openAPIFile is the HTTP API's OpenAPI 3.1 document. It is not a JSON
// Schema, so the validator and Names leave it out.
const openAPIFile = "openapi.json"

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the gateway's OpenAPI 3.1 document (served at
// /openapi.json).
func OpenAPI() []byte { return openAPI }
