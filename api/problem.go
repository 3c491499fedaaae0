package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/goat-gateway/goat-gateway/core"
)

// ProblemBase prefixes every problem type URI. The slugs are stable: clients
// and the SDKs switch on them (docs/api.md lists them).
const ProblemBase = "https://goat-gateway.dev/problems/"

// Problem is an RFC 9457 problem detail, the body of every error response.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Instance string `json:"instance,omitempty"`
}

type problemKind struct {
	sentinel error
	status   int
	slug     string
	title    string
}

// problemKinds maps the core sentinels to statuses and types. This table is
// the only place an error becomes a status code; the SDKs map the slugs back
// to the same sentinels.
var problemKinds = []problemKind{
	{core.ErrMustReconcile, http.StatusConflict, "must-reconcile", "Cursor or event id cannot be served here; reconcile"},
	{core.ErrTooLarge, http.StatusRequestEntityTooLarge, "too-large", "Too large"},
	{core.ErrRetired, http.StatusUnprocessableEntity, "schema-retired", "Schema version is retired"}, // before ErrSchema, which it wraps
	{core.ErrSchema, http.StatusUnprocessableEntity, "schema-violation", "Data does not match its schema"},
	{core.ErrBadSignature, http.StatusUnprocessableEntity, "bad-signature", "Signature does not verify"},
	{core.ErrMissingParents, http.StatusUnprocessableEntity, "missing-parents", "Parent commits are missing"},
	{core.ErrInvalid, http.StatusBadRequest, "invalid-request", "Invalid request"},
	{core.ErrUnauthenticated, http.StatusUnauthorized, "unauthenticated", "Authentication required"},
	{core.ErrForbidden, http.StatusForbidden, "forbidden", "Forbidden"},
	{core.ErrDeleted, http.StatusGone, "repo-deleted", "Repository deleted"}, // before ErrNotFound, which it wraps
	{core.ErrNotFound, http.StatusNotFound, "not-found", "Not found"},
	{core.ErrConflict, http.StatusConflict, "conflict", "Conflict"},
	{core.ErrClosed, http.StatusServiceUnavailable, "unavailable", "Shutting down"},
	{core.ErrRateLimited, http.StatusTooManyRequests, "rate-limited", "Too many requests"},
}

// ProblemFor maps an error to its problem. Unknown errors are 500s whose
// detail does not leak internals.
func ProblemFor(err error) Problem {
	for _, k := range problemKinds {
		if errors.Is(err, k.sentinel) {
			return Problem{Type: ProblemBase + k.slug, Title: k.title, Status: k.status, Detail: err.Error()}
		}
	}
	if errors.Is(err, core.ErrCorrupt) {
		// Damage on the server, not the caller's mistake: an internal
		// problem, but one that says which repository and that an
		// operator must repair it (storage writes a detail without file
		// names for exactly this).
		return Problem{Type: ProblemBase + "internal", Title: "Repository damaged", Status: http.StatusInternalServerError, Detail: err.Error()}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return Problem{Type: ProblemBase + "unavailable", Title: "Request did not complete", Status: http.StatusServiceUnavailable, Detail: err.Error()}
	}
	return Problem{Type: ProblemBase + "internal", Title: "Internal error", Status: http.StatusInternalServerError, Detail: "internal error; see the gateway log"}
}

// ProblemSlugs lists every slug the server answers with: the table's, the
// middleware's unsupported-media-type and ProblemFor's fallback, internal.
// client/problems_test.go holds it to the spec's ProblemType enum.
func ProblemSlugs() []string {
	slugs := []string{"unsupported-media-type", "internal"}
	for _, k := range problemKinds {
		slugs = append(slugs, k.slug)
	}
	return slugs
}

// ProblemSlug returns the slug of a problem type ("not-found").
func ProblemSlug(err error) string {
	p := ProblemFor(err)
	return p.Type[len(ProblemBase):]
}
