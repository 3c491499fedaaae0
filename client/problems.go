package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/gen/models"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

// ErrOffline wraps every failure to reach the gateway (connection refused,
// reset, DNS, timeouts), as opposed to the gateway answering with an error.
var ErrOffline = errors.New("gateway unreachable")

// ProblemBase prefixes every problem type URI of the API.
const ProblemBase = "https://goat-gateway.dev/problems/"

// problemSentinels maps the problem types of the API (the ProblemType enum
// of openapi.yaml) back to the core sentinels the gateway made them from
// (api.ProblemFor). It is the one such table of the Go side;
// problems_test.go holds it, the gateway's and the TypeScript SDK's to the
// enum. internal has no sentinel: the gateway hides what went wrong.
var problemSentinels = map[models.ProblemType]error{
	models.ProblemTypeInvalidRequest:       core.ErrInvalid,
	models.ProblemTypeUnauthenticated:      core.ErrUnauthenticated,
	models.ProblemTypeForbidden:            core.ErrForbidden,
	models.ProblemTypeNotFound:             core.ErrNotFound,
	models.ProblemTypeRepoDeleted:          core.ErrDeleted, // also an ErrNotFound
	models.ProblemTypeConflict:             core.ErrConflict,
	models.ProblemTypeMustReconcile:        core.ErrMustReconcile,
	models.ProblemTypeTooLarge:             core.ErrTooLarge,
	models.ProblemTypeUnsupportedMediaType: core.ErrInvalid,
	models.ProblemTypeSchemaViolation:      core.ErrSchema,
	models.ProblemTypeSchemaRetired:        core.ErrRetired, // also an ErrSchema
	models.ProblemTypeBadSignature:         core.ErrBadSignature,
	models.ProblemTypeMissingParents:       core.ErrMissingParents,
	models.ProblemTypeRateLimited:          core.ErrRateLimited,
	models.ProblemTypeUnavailable:          core.ErrClosed,
	models.ProblemTypeInternal:             nil,
}

// statusSentinels is the fallback for an error answer without a problem
// body (a proxy's own error page).
var statusSentinels = map[int]error{
	http.StatusBadRequest:            core.ErrInvalid,
	http.StatusUnauthorized:          core.ErrUnauthenticated,
	http.StatusForbidden:             core.ErrForbidden,
	http.StatusNotFound:              core.ErrNotFound,
	http.StatusConflict:              core.ErrConflict,
	http.StatusRequestEntityTooLarge: core.ErrTooLarge,
	http.StatusUnprocessableEntity:   core.ErrInvalid,
	http.StatusTooManyRequests:       core.ErrRateLimited,
}

// Sentinel returns the core sentinel a problem type URI stands for, or nil
// (internal, or a type this client does not know).
func Sentinel(problemType string) error {
	return problemSentinels[models.ProblemType(problemType)]
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
func (e *ProblemError) Slug() string { return strings.TrimPrefix(e.Type, ProblemBase) }

// problemFrom builds the error of a non-2xx answer: from its problem body,
// or from its status when the body is not a problem of ours.
func problemFrom(status int, contentType string, body []byte) *ProblemError {
	p := &ProblemError{Status: status}
	if strings.HasPrefix(contentType, "application/problem+json") || strings.HasPrefix(contentType, "application/json") {
		var raw struct {
			Type   string `json:"type"`
			Title  string `json:"title"`
			Detail string `json:"detail"`
		}
		if json.Unmarshal(body, &raw) == nil {
			p.Type, p.Title, p.Detail = raw.Type, raw.Title, raw.Detail
			p.Err = Sentinel(raw.Type)
		}
	}
	if p.Err == nil && p.Type == "" {
		p.Err = statusSentinels[status]
	}
	return p
}

// RejectedError is the error of a pushed commit the gateway rejected (a
// result of a push or of a sync round), mapped to its sentinel like an
// error answer.
func RejectedError(repo string, r gsync.PushResult) error {
	return fmt.Errorf("gateway rejected commit %s of %q: %w", r.ID, repo,
		&ProblemError{Status: http.StatusUnprocessableEntity, Type: r.ProblemType, Detail: r.Reason, Err: Sentinel(r.ProblemType)})
}
