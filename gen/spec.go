// Package gen is the HTTP API of goat-gateway as Go code, generated from
// ../openapi.yaml by oapi-codegen, in packages that import apart:
//
//   - gen/models: the types of every schema, parameter and body;
//   - gen/apiclient: a Go client (Client, ClientWithResponses), for client/;
//   - gen/apiserver: the echo v5 server and the strict server that api/
//     implements, and the embedded spec (GetSpec).
//
// A client imports models and apiclient only, so it compiles no server
// framework, OpenAPI validator or YAML library. This package holds the spec
// itself (Spec) and the go:generate lines. Only this file and generate.go are
// written by hand; `go generate ./gen` (make generate) rewrites the rest, and
// the tests fail while the generated files or the embedded copy of the spec
// are stale.
package gen

import _ "embed"

// Spec is openapi.yaml byte for byte, for GET /openapi.yaml. The copy next to
// this file exists because go:embed cannot reach a parent directory.
//
//go:embed openapi.yaml
var Spec []byte
