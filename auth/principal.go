package auth

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
)

// Principal is the caller of a request, or the owner of a commit's session.
type Principal struct {
	// Sub is the token's subject (the session owner for a commit). Subjects
	// of all configured issuers share one namespace: configure only issuers
	// trusted to assign them.
	Sub string
	// Roles are the token's "roles" claim, sorted and unique.
	Roles []string
	// Expires is when the token (or session) stops being valid; an SSE
	// stream ends then. It may lie up to the verifier's leeway in the past.
	// Zero for anonymous callers and node sessions.
	Expires time.Time
	// Issuer is the token's iss ("" for a principal built from a session).
	Issuer string
	// Anonymous is set for a request without a token.
	Anonymous bool
	// Node is set for another gateway node: it may read and write every
	// repository, because it replicates them.
	Node bool
}

// Anonymous returns the principal of a request that carries no token.
func Anonymous() Principal { return Principal{Anonymous: true} }

// Authenticated reports whether p is a verified identity. The zero
// Principal is not: code that forgets to fill one in fails closed.
func (p Principal) Authenticated() bool { return !p.Anonymous && (p.Sub != "" || p.Node) }

// HasRole reports whether p carries role.
func (p Principal) HasRole(role string) bool {
	return p.Authenticated() && slices.Contains(p.Roles, role)
}

// String is for logs.
func (p Principal) String() string {
	switch {
	case p.Node:
		return "node " + p.Sub
	case !p.Authenticated():
		return "anonymous"
	}
	return fmt.Sprintf("%s (%s)", p.Sub, p.Issuer)
}

// MaxTokenBytes bounds a bearer token; larger ones are refused unparsed.
const MaxTokenBytes = 16 << 10

// TokenFromHeader returns the bearer token of the Authorization header, ""
// if there is none. A header with another scheme, several Authorization
// headers, or a malformed token is an error wrapping
// core.ErrUnauthenticated: a client that sends credentials we cannot read
// must learn so instead of being served as anonymous.
func TokenFromHeader(h http.Header) (string, error) {
	vals := h.Values("Authorization")
	switch len(vals) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", fmt.Errorf("%w: more than one Authorization header", core.ErrUnauthenticated)
	}
	scheme, tok, _ := strings.Cut(strings.TrimSpace(vals[0]), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", fmt.Errorf("%w: Authorization scheme must be Bearer", core.ErrUnauthenticated)
	}
	return checkTokenSyntax(strings.TrimLeft(tok, " "))
}

// TokenFromQuery returns the access_token query parameter, "" if absent.
// Browsers' EventSource cannot send headers, so the api accepts it on
// GET /v1/events only: query strings end up in logs and Referer headers.
func TokenFromQuery(q url.Values) (string, error) {
	vals := q["access_token"]
	switch len(vals) {
	case 0:
		return "", nil
	case 1:
		return checkTokenSyntax(vals[0])
	}
	return "", fmt.Errorf("%w: more than one access_token parameter", core.ErrUnauthenticated)
}

// checkTokenSyntax checks RFC 6750's b64token shape, which every JWS compact
// serialization has.
func checkTokenSyntax(tok string) (string, error) {
	if tok == "" {
		return "", fmt.Errorf("%w: empty bearer token", core.ErrUnauthenticated)
	}
	if len(tok) > MaxTokenBytes {
		return "", fmt.Errorf("%w: bearer token longer than %d bytes", core.ErrUnauthenticated, MaxTokenBytes)
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("-._~+/=", c) >= 0
		if !ok {
			return "", fmt.Errorf("%w: bearer token contains %q", core.ErrUnauthenticated, c)
		}
	}
	return tok, nil
}

// validLabel reports whether s is usable as a subject or role
// (core.ValidLabel, which session proofs rely on).
func validLabel(s string, max int) bool { return core.ValidLabel(s, max) }

// Limits on claims.
const (
	MaxSubBytes  = core.MaxLabelBytes
	MaxRoleBytes = 128
	MaxRoles     = 64
)

// normalizeRoles checks roles and returns them sorted (core.CompareStrings,
// the order of a set) and unique.
func normalizeRoles(roles []string) ([]string, error) {
	if len(roles) > MaxRoles {
		return nil, fmt.Errorf("more than %d roles", MaxRoles)
	}
	out := make([]string, 0, len(roles))
	for _, r := range roles {
		if !validLabel(r, MaxRoleBytes) {
			return nil, fmt.Errorf("role %q must be 1 to %d bytes without control characters", r, MaxRoleBytes)
		}
		out = append(out, r)
	}
	slices.SortFunc(out, core.CompareStrings)
	return slices.Compact(out), nil
}
