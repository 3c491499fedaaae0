package auth

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/goat-gateway/goat-gateway/core"
)

// Defaults of VerifierConfig.
const (
	DefaultLeeway          = 30 * time.Second
	MaxLeeway              = 5 * time.Minute
	DefaultFetchTimeout    = 5 * time.Second
	DefaultRefetchInterval = time.Minute
	DefaultJWKSTTL         = time.Hour
)

// NodeRole marks a token of another gateway node, honoured only from
// issuers configured with NodeTokens.
const NodeRole = "goat-gateway:node"

// VerifierConfig configures a Verifier. Zero durations take the defaults.
type VerifierConfig struct {
	Issuers []IssuerConfig
	// Leeway absorbs clock skew in exp, nbf and iat (default 30 s, at most
	// 5 min).
	Leeway time.Duration
	// HTTPClient fetches JWKS URLs (default: a client with FetchTimeout).
	// Its CheckRedirect is replaced by one that keeps the URL rules.
	HTTPClient *http.Client
	// FetchTimeout bounds one JWKS fetch (default 5 s).
	FetchTimeout time.Duration
	// RefetchInterval is the least time between two fetches of one JWKS
	// URL, so tokens with made-up key ids cannot make us hammer the
	// issuer (default 1 min).
	RefetchInterval time.Duration
	// JWKSTTL is how long fetched keys are used before a refresh is tried;
	// when the refresh fails the old keys stay in use (default 1 h).
	JWKSTTL time.Duration
	// CacheSize is how many verified tokens are remembered, so a token
	// sent again is not verified again (see tokenCache for why that is
	// safe); default DefaultTokenCacheSize, negative: no cache.
	CacheSize int
	Logger    *slog.Logger
}

// IssuerConfig is one trusted token issuer. Its keys come from any mix of
// Keys, KeyFiles, JWKSFile and JWKSURL; at least one source is required.
type IssuerConfig struct {
	// Issuer is the exact iss claim.
	Issuer string
	// Audience lists accepted aud values; a token must name at least one.
	// Required: a token minted for another service must not work here.
	Audience []string
	// Algorithms narrows the algorithms accepted; by default each key
	// accepts the ones its type allows (EdDSA; ES256/384/512 by curve;
	// RS/PS 256/384/512 for RSA). none and HS* are never accepted.
	Algorithms []string
	Keys       []PublicKey
	KeyFiles   []KeyFile
	JWKSFile   string
	// JWKSURL must be https, or http to a loopback address.
	JWKSURL string
	// NodeTokens makes a token of this issuer with role NodeRole a node
	// principal. Only for issuers that nobody but the operators control.
	NodeTokens bool
}

// PublicKey is a token verification key given in code. KID defaults to the
// key's RFC 7638 thumbprint; Alg, if set, pins the one algorithm it accepts.
type PublicKey struct {
	KID string
	Key crypto.PublicKey
	Alg string
}

// KeyFile is a PEM public key file (see ParsePublicKeyPEM). KID is the key
// id the issuer puts in its tokens' kid header; empty means the key's
// RFC 7638 thumbprint.
type KeyFile struct {
	Path string
	KID  string
}

// Verifier checks bearer tokens. It is safe for concurrent use.
type Verifier struct {
	issuers map[string]*issuer
	leeway  time.Duration
	cache   *tokenCache // nil: none
}

type issuer struct {
	cfg    IssuerConfig
	static []verKey
	jwks   *jwksSource
}

// NewVerifier checks cfg and loads every key file; a JWKS URL is fetched on
// first use.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	size := cfg.CacheSize
	if size == 0 {
		size = DefaultTokenCacheSize
	}
	v := &Verifier{issuers: map[string]*issuer{}, leeway: cfg.Leeway, cache: newTokenCache(size)}
	if v.leeway == 0 {
		v.leeway = DefaultLeeway
	}
	if v.leeway < 0 || v.leeway > MaxLeeway {
		return nil, fmt.Errorf("%w: leeway %s must be in (0, %s]", core.ErrInvalid, cfg.Leeway, MaxLeeway)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	for i, ic := range cfg.Issuers {
		is, err := newIssuer(ic, cfg, log)
		if err != nil {
			return nil, fmt.Errorf("issuer %d (%q): %w", i, ic.Issuer, err)
		}
		if _, dup := v.issuers[ic.Issuer]; dup {
			return nil, fmt.Errorf("%w: issuer %q is configured twice", core.ErrInvalid, ic.Issuer)
		}
		v.issuers[ic.Issuer] = is
	}
	return v, nil
}

func newIssuer(ic IssuerConfig, cfg VerifierConfig, log *slog.Logger) (*issuer, error) {
	if ic.Issuer == "" {
		return nil, fmt.Errorf("%w: iss is empty", core.ErrInvalid)
	}
	if len(ic.Audience) == 0 || slices.Contains(ic.Audience, "") {
		return nil, fmt.Errorf("%w: at least one non-empty audience is required", core.ErrInvalid)
	}
	for _, a := range ic.Algorithms {
		if !slices.Contains(supportedAlgs, a) {
			return nil, fmt.Errorf("%w: algorithm %q is not allowed (allowed: %s)", core.ErrInvalid, a, strings.Join(supportedAlgs, ", "))
		}
	}
	is := &issuer{cfg: ic}
	add := func(src string, keys ...verKey) error {
		for _, k := range keys {
			if k = is.narrow(k); len(k.algs) == 0 {
				return fmt.Errorf("%w: %s: key %q accepts none of the configured algorithms", core.ErrInvalid, src, k.kid)
			}
			is.static = append(is.static, k)
		}
		return nil
	}
	for _, pk := range ic.Keys {
		k, err := newVerKey(pk.KID, pk.Key, pk.Alg)
		if err != nil {
			return nil, err
		}
		if err := add("key", k); err != nil {
			return nil, err
		}
	}
	for _, kf := range ic.KeyFiles {
		b, err := os.ReadFile(kf.Path)
		if err != nil {
			return nil, err
		}
		pub, err := ParsePublicKeyPEM(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", kf.Path, err)
		}
		k, err := newVerKey(kf.KID, pub, "")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", kf.Path, err)
		}
		if err := add(kf.Path, k); err != nil {
			return nil, err
		}
	}
	if ic.JWKSFile != "" {
		b, err := os.ReadFile(ic.JWKSFile)
		if err != nil {
			return nil, err
		}
		keys, err := parseJWKS(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ic.JWKSFile, err)
		}
		if err := add(ic.JWKSFile, keys...); err != nil {
			return nil, err
		}
	}
	if ic.JWKSURL != "" {
		src, err := newJWKSSource(ic.JWKSURL, cfg, log.With("issuer", ic.Issuer))
		if err != nil {
			return nil, err
		}
		is.jwks = src
	}
	if len(is.static) == 0 && is.jwks == nil {
		return nil, fmt.Errorf("%w: no keys: set Keys, KeyFiles, JWKSFile or JWKSURL", core.ErrInvalid)
	}
	return is, nil
}

// narrow restricts k to the issuer's configured algorithms.
func (is *issuer) narrow(k verKey) verKey {
	if len(is.cfg.Algorithms) > 0 {
		k.algs = slices.DeleteFunc(slices.Clone(k.algs), func(a string) bool { return !slices.Contains(is.cfg.Algorithms, a) })
	}
	return k
}

// keys returns the issuer's current keys, fetching the JWKS URL if it has
// never been fetched, is stale, or (force) lacks a key id a token names.
func (is *issuer) keys(ctx context.Context, now time.Time, force bool) []verKey {
	if is.jwks == nil {
		return is.static
	}
	fetched := is.jwks.get(ctx, now, force)
	out := slices.Clip(is.static)
	for _, k := range fetched {
		if k = is.narrow(k); len(k.algs) > 0 {
			out = append(out, k)
		}
	}
	return out
}

// Reasons a token is refused that jwt does not name itself; each error
// also wraps core.ErrUnauthenticated.
var (
	errNoToken       = errors.New("no token")
	errUnknownIssuer = errors.New("unknown issuer")
	errAlgNotAllowed = errors.New("algorithm not allowed")
	errUnknownKID    = errors.New("unknown key id")
	errBadClaims     = errors.New("bad claims")
	errCrit          = errors.New("critical header")
)

// tokenError is a refused token: its message is the reason a client can
// act on, and it wraps core.ErrUnauthenticated and the precise cause.
type tokenError struct {
	reason string
	cause  error
}

func (e *tokenError) Error() string { return core.ErrUnauthenticated.Error() + ": " + e.reason }
func (e *tokenError) Unwrap() []error {
	if e.cause == nil {
		return []error{core.ErrUnauthenticated}
	}
	return []error{core.ErrUnauthenticated, e.cause}
}

func refuse(cause error, format string, args ...any) error {
	return &tokenError{reason: fmt.Sprintf(format, args...), cause: cause}
}

type claims struct {
	jwt.RegisteredClaims
	Roles []string `json:"roles,omitempty"`
}

// quote shortens attacker-chosen strings before they reach an error.
func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// Verify checks token at time now and returns its principal. Every error
// wraps core.ErrUnauthenticated with a reason; ctx bounds a JWKS fetch.
// A token that verified before is answered from a bounded cache while a
// fresh verification would give the same answer (tokenCache).
func (v *Verifier) Verify(ctx context.Context, token string, now time.Time) (Principal, error) {
	if v.cache == nil || token == "" || len(token) > MaxTokenBytes {
		p, _, _, err := v.verify(ctx, token, now)
		return p, err
	}
	key := tokenKey(token)
	if e, ok := v.cache.get(key, now); ok {
		if !e.jwksKeys || e.is.jwks.generation(ctx, now) == e.keysGen {
			return clonePrincipal(e.p), nil
		}
		v.cache.drop(key)
	}
	p, is, gen, err := v.verify(ctx, token, now)
	if err == nil {
		v.cache.put(key, cachedToken{p: clonePrincipal(p), from: now, until: p.Expires, is: is, keysGen: gen, jwksKeys: is.jwks != nil})
	}
	return p, err
}

// verify is Verify without the cache. It also returns the token's issuer
// and, for an issuer with a JWKS URL, the generation of its keys before
// they were used: a refresh during the verification then makes the cached
// entry stale, never the other way round.
func (v *Verifier) verify(ctx context.Context, token string, now time.Time) (Principal, *issuer, uint64, error) {
	if token == "" {
		return Principal{}, nil, 0, refuse(errNoToken, "no token")
	}
	if len(token) > MaxTokenBytes {
		return Principal{}, nil, 0, refuse(jwt.ErrTokenMalformed, "token longer than %d bytes", MaxTokenBytes)
	}
	var peek claims
	unverified, _, err := jwt.NewParser(jwt.WithStrictDecoding()).ParseUnverified(token, &peek)
	if err != nil {
		return Principal{}, nil, 0, refuse(err, "%s", malformed(token))
	}
	if _, ok := unverified.Header["crit"]; ok {
		// RFC 7515 4.1.11: a recipient must refuse extensions it does not
		// understand, and we understand none.
		return Principal{}, nil, 0, refuse(errCrit, "token has a crit header")
	}
	is, ok := v.issuers[peek.Issuer]
	if !ok {
		return Principal{}, nil, 0, refuse(errUnknownIssuer, "unknown issuer %s", quote(peek.Issuer))
	}
	var gen uint64
	if is.jwks != nil {
		gen = is.jwks.currentGeneration()
	}
	alg := unverified.Method.Alg()
	keys := is.keys(ctx, now, false)
	if len(keys) == 0 {
		return Principal{}, nil, 0, refuse(errUnknownKID, "issuer %s has no keys available (its JWKS could not be fetched)", quote(is.cfg.Issuer))
	}
	var algs []string
	for _, k := range keys {
		for _, a := range k.algs {
			if !slices.Contains(algs, a) {
				algs = append(algs, a)
			}
		}
	}
	if !slices.Contains(algs, alg) {
		return Principal{}, nil, 0, refuse(errAlgNotAllowed, "algorithm %s is not allowed for issuer %s (allowed: %s)", quote(alg), quote(is.cfg.Issuer), strings.Join(algs, ", "))
	}
	p := jwt.NewParser(
		jwt.WithValidMethods(algs),
		jwt.WithIssuer(is.cfg.Issuer),
		jwt.WithAudience(is.cfg.Audience...),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(v.leeway),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithStrictDecoding(),
	)
	var c claims
	_, err = p.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		return is.keyFor(ctx, t, keys, now)
	})
	if err != nil {
		return Principal{}, nil, 0, tokenReason(err, now)
	}
	if !validLabel(c.Subject, MaxSubBytes) {
		return Principal{}, nil, 0, refuse(errBadClaims, "sub must be 1 to %d bytes without control characters", MaxSubBytes)
	}
	roles, err := normalizeRoles(c.Roles)
	if err != nil {
		return Principal{}, nil, 0, refuse(errBadClaims, "roles: %v", err)
	}
	return Principal{
		Sub:     c.Subject,
		Roles:   roles,
		Expires: c.ExpiresAt.Time,
		Issuer:  is.cfg.Issuer,
		Node:    is.cfg.NodeTokens && slices.Contains(roles, NodeRole),
	}, is, gen, nil
}

// keyFor picks the keys that may have signed t: those with its kid (or all,
// when it has none) that accept its algorithm.
func (is *issuer) keyFor(ctx context.Context, t *jwt.Token, keys []verKey, now time.Time) (any, error) {
	alg := t.Method.Alg()
	kidv, hasKID := t.Header["kid"]
	kid, ok := kidv.(string)
	if hasKID && (!ok || kid == "") {
		return nil, refuse(errBadClaims, "kid header must be a non-empty string")
	}
	pick := func(keys []verKey) (found bool, out []jwt.VerificationKey) {
		for _, k := range keys {
			if hasKID && k.kid != kid {
				continue
			}
			found = true
			if slices.Contains(k.algs, alg) {
				out = append(out, k.key)
			}
		}
		return found, out
	}
	found, out := pick(keys)
	if hasKID && !found && is.jwks != nil {
		// The issuer may have rotated keys since our last fetch.
		found, out = pick(is.keys(ctx, now, true))
	}
	switch {
	case hasKID && !found:
		return nil, refuse(errUnknownKID, "unknown key id %s for issuer %s", quote(kid), quote(is.cfg.Issuer))
	case len(out) == 0:
		return nil, refuse(errAlgNotAllowed, "no key of issuer %s accepts algorithm %s for key id %s", quote(is.cfg.Issuer), alg, quote(kid))
	case len(out) == 1:
		return out[0], nil
	}
	return jwt.VerificationKeySet{Keys: out}, nil
}

// tokenReason turns a jwt error into a refusal that names the first reason.
func tokenReason(err error, now time.Time) error {
	var te *tokenError
	if errors.As(err, &te) {
		return te
	}
	reasons := []struct {
		err error
		msg string
	}{
		{jwt.ErrTokenMalformed, "malformed token"},
		{jwt.ErrTokenSignatureInvalid, "signature does not verify"},
		{jwt.ErrTokenExpired, "token expired"},
		{jwt.ErrTokenNotValidYet, "token not valid yet (nbf)"},
		{jwt.ErrTokenUsedBeforeIssued, "token issued in the future (iat)"},
		{jwt.ErrTokenInvalidAudience, "wrong audience"},
		{jwt.ErrTokenInvalidIssuer, "wrong issuer"},
		{jwt.ErrTokenRequiredClaimMissing, "required claim missing"},
	}
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			switch r.err {
			case jwt.ErrTokenMalformed:
				return refuse(err, "malformed token: its header and claims must be base64url-encoded JSON objects")
			case jwt.ErrTokenRequiredClaimMissing:
				return refuse(err, "required claim missing: a token needs exp, and the iss and aud its issuer is configured with")
			}
			return refuse(err, "%s (at %s)", r.msg, now.UTC().Format(time.RFC3339))
		}
	}
	// The library's own words stay in the cause (for logs), not in the
	// reason a client reads.
	return refuse(err, "token does not verify")
}

// malformed says what is wrong with a token that is not a JWT, in the
// client's terms rather than the JWT library's.
func malformed(token string) string {
	if n := strings.Count(token, ".") + 1; n != 3 {
		return fmt.Sprintf("malformed token: a JWT is three base64url parts joined by dots, this has %d", n)
	}
	return "malformed token: its header and claims must be base64url-encoded JSON objects"
}

// jwksSource is a JWKS URL and its cached keys.
type jwksSource struct {
	url      string
	client   *http.Client
	timeout  time.Duration
	refetch  time.Duration
	ttl      time.Duration
	log      *slog.Logger
	fetching sync.Mutex // held during a fetch, so one fetch at a time

	mu          sync.Mutex
	keys        []verKey
	gen         uint64    // counts successful fetches: the keys changed, or may have
	fetchedAt   time.Time // last successful fetch
	attemptedAt time.Time // last fetch, successful or not
}

func newJWKSSource(raw string, cfg VerifierConfig, log *slog.Logger) (*jwksSource, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: JWKS URL: %v", core.ErrInvalid, err)
	}
	if err := checkJWKSURL(u); err != nil {
		return nil, err
	}
	s := &jwksSource{
		url: raw, timeout: cfg.FetchTimeout, refetch: cfg.RefetchInterval, ttl: cfg.JWKSTTL, log: log,
	}
	if s.timeout <= 0 {
		s.timeout = DefaultFetchTimeout
	}
	if s.refetch <= 0 {
		s.refetch = DefaultRefetchInterval
	}
	if s.ttl <= 0 {
		s.ttl = DefaultJWKSTTL
	}
	c := http.Client{Timeout: s.timeout}
	if cfg.HTTPClient != nil {
		c = *cfg.HTTPClient
	}
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 3 {
			return errors.New("more than 3 redirects")
		}
		return checkJWKSURL(req.URL)
	}
	s.client = &c
	return s, nil
}

// checkJWKSURL allows https, and http only to loopback: keys fetched in the
// clear could be swapped by anyone on the path.
func checkJWKSURL(u *url.URL) error {
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
			return nil
		}
		return fmt.Errorf("%w: JWKS URL %s: plain http is allowed only to loopback; use https", core.ErrInvalid, u.Redacted())
	}
	return fmt.Errorf("%w: JWKS URL %s: scheme must be https", core.ErrInvalid, u.Redacted())
}

// get returns the cached keys, fetching first when there are none, they are
// older than the TTL, or force is set, but never twice within refetch.
func (s *jwksSource) get(ctx context.Context, now time.Time, force bool) []verKey {
	s.mu.Lock()
	keys, fetchedAt, attemptedAt := s.keys, s.fetchedAt, s.attemptedAt
	s.mu.Unlock()
	stale := keys == nil || force || now.Sub(fetchedAt) >= s.ttl
	if !stale {
		return keys
	}
	if !attemptedAt.IsZero() && now.Sub(attemptedAt) < s.refetch {
		if keys == nil || force {
			// A fetch may be under way (the attempt time is set when it
			// starts): its result is worth waiting for.
			s.fetching.Lock()
			s.mu.Lock()
			keys = s.keys
			s.mu.Unlock()
			s.fetching.Unlock()
		}
		return keys
	}
	if keys != nil && !force {
		// A routine refresh: whoever is already fetching serves us all.
		if !s.fetching.TryLock() {
			return keys
		}
	} else {
		s.fetching.Lock()
	}
	defer s.fetching.Unlock()
	s.mu.Lock()
	if s.attemptedAt != attemptedAt {
		// Someone fetched while we waited.
		keys = s.keys
		s.mu.Unlock()
		return keys
	}
	s.attemptedAt = now
	s.mu.Unlock()

	fresh, err := s.fetch(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.log.Warn("JWKS fetch failed; keeping cached keys", "url", s.url, "err", err, "cached", len(s.keys))
		return s.keys
	}
	s.keys, s.fetchedAt = fresh, now
	s.gen++
	return fresh
}

// currentGeneration is the generation of the keys held now.
func (s *jwksSource) currentGeneration() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

// generation is the generation of the keys a verification at now would
// use: it refreshes them first when Verify would (they are stale), so a
// cached token is checked against the keys of the moment.
func (s *jwksSource) generation(ctx context.Context, now time.Time) uint64 {
	s.get(ctx, now, false)
	return s.currentGeneration()
}

func (s *jwksSource) fetch(ctx context.Context) ([]verKey, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxJWKSBytes+1))
	if err != nil {
		return nil, err
	}
	return parseJWKS(b)
}
