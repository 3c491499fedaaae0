// Package layout holds the import rules of the module (shared DESIGN
// section 1) as a test that anyone can run:
//
//	go test ./internal/layout/
//
// Imports point down: cmd -> {api, cluster} -> node -> {sync, storage,
// merge, auth} -> core, and sdk/go -> client -> {gen/models, gen/apiclient,
// sync, core}. api and cluster are two faces of node and reach neither the
// storage nor each other (api's one other import of ours is internal/uring,
// the kernel interface its event streams are written with); an
// application that imports the Go SDK compiles
// no HTTP server framework, OpenAPI validator, JWT or YAML library.
package layout
