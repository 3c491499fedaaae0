package auth

import (
	"crypto/sha256"
	"slices"
	"sync"
	"time"
)

// DefaultTokenCacheSize is how many verified tokens a Verifier remembers
// by default (VerifierConfig.CacheSize).
const DefaultTokenCacheSize = 10000

// tokenCache remembers tokens that verified, so that a caller sending the
// same token on every request (the usual case) pays for one signature
// check and two JWT parses per token, not per request: on a single-item
// PUT that was about a fifth of the gateway's CPU.
//
// It never accepts what a fresh Verify would refuse:
//
//   - only accepted tokens are cached, keyed by the SHA-256 of the whole
//     token (header, claims and signature), so a cached entry is that very
//     token;
//   - an entry serves only at times from when it was verified until the
//     token's exp: the checks of nbf and iat, which a later time cannot
//     fail, stay passed, and exp is applied without the leeway (the
//     verifier's own bound is exp plus leeway), so the cache stops
//     answering before the verifier would refuse;
//   - an entry remembers the generation of its issuer's JWKS keys and
//     serves only while they are the same keys (a refresh that drops the
//     token's key drops the entry); tokens have no other revocation;
//   - it is bounded: when full, an eighth of the entries (arbitrary ones,
//     Go's map order) is evicted, so an insertion costs O(1) amortized.
type tokenCache struct {
	max int
	mu  sync.Mutex
	m   map[[32]byte]cachedToken
}

type cachedToken struct {
	p        Principal
	from     time.Time // when it was verified
	until    time.Time // its exp: never served at or after
	is       *issuer
	keysGen  uint64 // is.jwks's generation when verified
	jwksKeys bool   // is has a JWKS URL (keysGen is meaningful)
}

func newTokenCache(max int) *tokenCache {
	if max <= 0 {
		return nil
	}
	return &tokenCache{max: max, m: make(map[[32]byte]cachedToken)}
}

// get returns the principal of token if it verified before and may still
// be answered from the cache at now, with its issuer (for the JWKS check).
func (c *tokenCache) get(key [32]byte, now time.Time) (cachedToken, bool) {
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if !ok || now.Before(e.from) || !now.Before(e.until) {
		return cachedToken{}, false
	}
	return e, true
}

func (c *tokenCache) put(key [32]byte, e cachedToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		n := max(c.max/8, 1)
		for k := range c.m {
			delete(c.m, k)
			if n--; n == 0 {
				break
			}
		}
	}
	c.m[key] = e
}

func (c *tokenCache) drop(key [32]byte) {
	c.mu.Lock()
	delete(c.m, key)
	c.mu.Unlock()
}

func (c *tokenCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

func tokenKey(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// clonePrincipal keeps callers that modify a principal's roles from
// changing the cached one.
func clonePrincipal(p Principal) Principal {
	p.Roles = slices.Clone(p.Roles)
	return p
}
