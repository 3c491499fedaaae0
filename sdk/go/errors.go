package goat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/goat-gateway/goat-gateway/core"
)

// ErrOffline wraps every failure to reach the gateway (connection refused,
// reset, DNS, timeouts): the replica keeps working and syncs when the
// gateway is back.
var ErrOffline = errors.New("gateway unreachable")

// ErrRateLimited is the gateway's 429 (problem type rate-limited); the SDK
// backs off and retries on its own.
var ErrRateLimited = errors.New("rate limited")

// problemBase prefixes every problem type URI of the gateway.
const problemBase = "https://goat-gateway.dev/problems/"

// problemSentinels maps problem type slugs back to the core sentinels. It
// mirrors the gateway's table (api.ProblemFor): every slug the gateway
// sends maps to the sentinel it was made from.
var problemSentinels = map[string]error{
	"must-reconcile":         core.ErrMustReconcile,
	"too-large":              core.ErrTooLarge,
	"schema-violation":       core.ErrSchema,
	"bad-signature":          core.ErrBadSignature,
	"missing-parents":        core.ErrMissingParents,
	"invalid-request":        core.ErrInvalid,
	"unsupported-media-type": core.ErrInvalid,
	"unauthenticated":        core.ErrUnauthenticated,
	"forbidden":              core.ErrForbidden,
	"not-found":              core.ErrNotFound,
	"conflict":               core.ErrConflict,
	"unavailable":            core.ErrClosed,
	"rate-limited":           ErrRateLimited,
}

// statusSentinels is the fallback for an error response without a problem
// body (a proxy's own error page).
var statusSentinels = map[int]error{
	http.StatusBadRequest:            core.ErrInvalid,
	http.StatusUnauthorized:          core.ErrUnauthenticated,
	http.StatusForbidden:             core.ErrForbidden,
	http.StatusNotFound:              core.ErrNotFound,
	http.StatusConflict:              core.ErrConflict,
	http.StatusRequestEntityTooLarge: core.ErrTooLarge,
	http.StatusUnprocessableEntity:   core.ErrInvalid,
	http.StatusTooManyRequests:       ErrRateLimited,
}

// ProblemError is an error answer of the gateway (an RFC 9457 problem).
// errors.Is matches it against the core sentinel its type stands for, so
// callers test errors.Is(err, core.ErrForbidden) whatever the transport.
type ProblemError struct {
	Status int    // HTTP status
	Type   string // problem type URI
	Title  string
	Detail string
	// Err is the core sentinel of Type (nil for internal errors and
	// unknown types).
	Err error
}

func (e *ProblemError) Error() string {
	msg := e.Detail
	if msg == "" {
		msg = e.Title
	}
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("gateway: %d %s: %s", e.Status, e.Slug(), msg)
}

// Unwrap returns the core sentinel.
func (e *ProblemError) Unwrap() error { return e.Err }

// Slug returns the last segment of the problem type ("not-found").
func (e *ProblemError) Slug() string { return strings.TrimPrefix(e.Type, problemBase) }

// sentinelForType returns the sentinel of a problem type URI, or nil.
func sentinelForType(typ string) error {
	if !strings.HasPrefix(typ, problemBase) {
		return nil
	}
	return problemSentinels[strings.TrimPrefix(typ, problemBase)]
}

// problemFromResponse builds the error of a non-2xx answer.
func problemFromResponse(status int, contentType string, body []byte) *ProblemError {
	p := &ProblemError{Status: status}
	if strings.HasPrefix(contentType, "application/problem+json") || strings.HasPrefix(contentType, "application/json") {
		var raw struct {
			Type   string `json:"type"`
			Title  string `json:"title"`
			Detail string `json:"detail"`
		}
		if json.Unmarshal(body, &raw) == nil {
			p.Type, p.Title, p.Detail = raw.Type, raw.Title, raw.Detail
			p.Err = sentinelForType(raw.Type)
		}
	}
	if p.Err == nil && p.Type == "" {
		p.Err = statusSentinels[status]
	}
	return p
}

// isOffline reports whether err means the gateway could not be reached (as
// opposed to the gateway answering with an error).
func isOffline(err error) bool { return errors.Is(err, ErrOffline) }

// isCanceled reports a context error of our own (Close, a stream restart).
func isCanceled(err error) bool {
	return errors.Is(err, context.Canceled)
}
