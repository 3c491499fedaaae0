// Package gen is the HTTP API of goat-gateway as Go code, generated from
// ../openapi.yaml by oapi-codegen: the models (models.gen.go), the echo v5
// server and strict server that api/ implements (server.gen.go), and a Go
// client (client.gen.go). Only this file and generate.go are written by
// hand; `go generate ./gen` (make generate) rewrites the rest, and the tests
// fail while the generated files or the embedded copy of the spec are stale.
package gen

import _ "embed"

// Spec is openapi.yaml byte for byte, for GET /openapi.yaml. The copy next to
// this file exists because go:embed cannot reach a parent directory.
//
//go:embed openapi.yaml
var Spec []byte
