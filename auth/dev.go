package auth

import (
	"crypto/ed25519"
	"fmt"
	"path/filepath"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/goat-gateway/goat-gateway/core"
)

// The dev issuer's fixed identity. Its tokens are ordinary EdDSA JWTs, so
// they travel the same verification path as any configured issuer's.
const (
	DevIssuerName = "goat-gateway-dev"
	DevAudience   = "goat-gateway"
)

// DevIssuer mints tokens with an Ed25519 key kept in the keys directory
// (`goat-gateway token --sub alice --role editor`, `make run`).
type DevIssuer struct {
	key ed25519.PrivateKey
	kid string
}

// OpenDevIssuer loads or creates <keysDir>/dev-issuer.key.
func OpenDevIssuer(keysDir string) (*DevIssuer, error) {
	key, err := LoadOrCreateKey(filepath.Join(keysDir, DevIssuerKeyFile))
	if err != nil {
		return nil, fmt.Errorf("dev issuer: %w", err)
	}
	return NewDevIssuer(key), nil
}

// NewDevIssuer returns a dev issuer signing with key.
func NewDevIssuer(key ed25519.PrivateKey) *DevIssuer {
	kid, _ := Thumbprint(key.Public())
	return &DevIssuer{key: key, kid: kid}
}

// KeyID is the kid of the dev issuer's tokens: its key's RFC 7638
// thumbprint.
func (d *DevIssuer) KeyID() string { return d.kid }

// IssuerConfig trusts the dev issuer's tokens; it does not honour NodeRole
// (set NodeTokens on the copy to let dev tokens act as nodes).
func (d *DevIssuer) IssuerConfig() IssuerConfig {
	return IssuerConfig{
		Issuer:   DevIssuerName,
		Audience: []string{DevAudience},
		Keys:     []PublicKey{{KID: d.kid, Key: d.key.Public(), Alg: "EdDSA"}},
	}
}

// Mint returns a token for sub with roles, valid from now for ttl.
func (d *DevIssuer) Mint(sub string, roles []string, ttl time.Duration, now time.Time) (string, error) {
	if !validLabel(sub, MaxSubBytes) {
		return "", fmt.Errorf("%w: sub must be 1 to %d bytes without control characters", core.ErrInvalid, MaxSubBytes)
	}
	if ttl <= 0 {
		return "", fmt.Errorf("%w: ttl must be positive", core.ErrInvalid)
	}
	roles, err := normalizeRoles(roles)
	if err != nil {
		return "", fmt.Errorf("%w: %v", core.ErrInvalid, err)
	}
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    DevIssuerName,
			Subject:   sub,
			Audience:  jwt.ClaimStrings{DevAudience},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Roles: roles,
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	t.Header["kid"] = d.kid
	return t.SignedString(d.key)
}
