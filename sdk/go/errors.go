package goat

import (
	"context"
	"errors"

	"github.com/goat-gateway/goat-gateway/client"
	"github.com/goat-gateway/goat-gateway/core"
)

// ErrOffline wraps every failure to reach the gateway (connection refused,
// reset, DNS, timeouts): the replica keeps working and syncs when the
// gateway is back. It is client.ErrOffline.
var ErrOffline = client.ErrOffline

// ErrRateLimited is the gateway's 429 (problem type rate-limited); the SDK
// backs off and retries on its own. It is core.ErrRateLimited.
var ErrRateLimited = core.ErrRateLimited

// ProblemError is an error answer of the gateway (an RFC 9457 problem).
// errors.Is matches it against the core sentinel its type stands for, so
// callers test errors.Is(err, core.ErrForbidden) whatever the transport.
type ProblemError = client.ProblemError

// isOffline reports whether err means the gateway could not be reached (as
// opposed to the gateway answering with an error).
func isOffline(err error) bool { return errors.Is(err, ErrOffline) }

// isCanceled reports a context error of our own (Close, a stream restart).
func isCanceled(err error) bool {
	return errors.Is(err, context.Canceled)
}
