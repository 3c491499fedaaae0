package core

import (
	"errors"
	"fmt"
)

// Sentinel errors shared by every package and by the SDKs. Callers wrap them
// with context ("open repo %q: %w") and test with errors.Is. The HTTP layer
// maps each one to a status code in exactly one place (api.problemFor), and
// the SDKs map problem types back to these values.
var (
	// ErrNotFound: the repository, item, commit, session or schema does not
	// exist (or the caller may not see it).
	ErrNotFound = errors.New("not found")
	// ErrInvalid: the input is malformed: bad JSON, a field of the wrong
	// type, a name outside its pattern, an id that does not recompute.
	ErrInvalid = errors.New("invalid")
	// ErrTooLarge: a value or body exceeds a documented limit.
	ErrTooLarge = errors.New("too large")
	// ErrConflict: the request conflicts with current state (for example a
	// write whose precondition no longer holds).
	ErrConflict = errors.New("conflict")
	// ErrCorrupt: stored data failed its checksum or framing check before the
	// tail of a log; the file is refused rather than silently truncated.
	ErrCorrupt = errors.New("corrupt")
	// ErrBadSignature: a commit or request signature does not verify.
	ErrBadSignature = errors.New("bad signature")
	// ErrMissingParents: a commit names parents the receiver does not have.
	ErrMissingParents = errors.New("missing parents")
	// ErrSchema: data does not validate against its schema, or the schema is
	// unknown.
	ErrSchema = errors.New("schema violation")
	// ErrRetired: a write at a schema version that was retired (rollback,
	// DESIGN section 2). It is also an ErrSchema.
	ErrRetired = fmt.Errorf("%w: schema version retired", ErrSchema)
	// ErrDeleted: the repository was deleted (DELETE /v1/repos/{repo}) and
	// not created again; told only to callers who may read the name. It is
	// also an ErrNotFound.
	ErrDeleted = fmt.Errorf("%w: repository deleted", ErrNotFound)
	// ErrUnauthenticated: no credentials, or credentials that do not verify.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrForbidden: the caller is known but may not do this.
	ErrForbidden = errors.New("forbidden")
	// ErrMustReconcile: a cursor or event id cannot be served by this node
	// (another node's log, or an older log); the client falls back to
	// reconciliation.
	ErrMustReconcile = errors.New("must reconcile")
	// ErrClosed: the component has been closed.
	ErrClosed = errors.New("closed")
	// ErrRateLimited: the caller is over a quota or a rate; it may retry
	// later.
	ErrRateLimited = errors.New("rate limited")
)
