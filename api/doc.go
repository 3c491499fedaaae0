// Package api is the gateway's HTTP face: it implements the strict server
// interface that oapi-codegen generates from openapi.yaml (package gen) on
// echo v5, and wires the pure packages (core, merge, sync) and the storage
// together.
//
// Guarantees:
//   - Every request is validated against openapi.yaml before a handler runs,
//     and every error is an application/problem+json body (RFC 9457) whose
//     status comes from ProblemFor, the one place errors become statuses.
//     Bad input is a 4xx, never a 5xx.
//   - A write is answered only after it is durable (storage fsyncs before
//     acknowledging).
//   - Every commit that enters is verified: its id recomputes, its signature
//     verifies against the session that signed it, that session is valid,
//     its owner may write the repository, and its data fits its schema;
//     merge commits are recomputed. A bad commit never sinks the others of
//     its batch.
//   - A repository the caller may not read answers 404, as if it did not
//     exist; one it may read but not write answers 403 on writes.
//   - Live events are pushed in node sequence order; a subscriber that falls
//     behind is disconnected rather than waited on, and replays what it
//     missed from the durable log when it reconnects.
package api
