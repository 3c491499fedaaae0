package cluster

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	stdsync "sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
)

// The node issuer: a key that every node of a cluster shares (like the root
// key, in the shared keys directory), which each node trusts for node
// tokens and mints its own peer tokens with. Its issuer and audience differ
// from the dev issuer's, so a user token can never pass as a node token and
// a node token is good for nothing but node-to-node calls.
const (
	NodeKeyFile    = "node-issuer.key"
	NodeIssuerName = "goat-gateway-node"
	NodeAudience   = "goat-gateway-node"
	// nodeTokenTTL is the lifetime of a minted peer token; it is minted
	// again when half of it is left.
	nodeTokenTTL = 10 * time.Minute
)

// LoadNodeKey loads the node issuer key from keysDir, creating it if absent
// (concurrent first starts on a shared keys directory agree on one key).
func LoadNodeKey(keysDir string) (ed25519.PrivateKey, error) {
	k, err := auth.LoadOrCreateKey(filepath.Join(keysDir, NodeKeyFile))
	if err != nil {
		return nil, fmt.Errorf("node issuer key: %w", err)
	}
	return k, nil
}

// NodeIssuer is the token issuer to trust (auth.IssuerConfig with
// NodeTokens) for tokens minted with key.
func NodeIssuer(key ed25519.PrivateKey) auth.IssuerConfig {
	kid, _ := auth.Thumbprint(key.Public())
	return auth.IssuerConfig{
		Issuer:     NodeIssuerName,
		Audience:   []string{NodeAudience},
		Keys:       []auth.PublicKey{{KID: kid, Key: key.Public(), Alg: "EdDSA"}},
		NodeTokens: true,
	}
}

// MintNodeToken returns a token of the node issuer for sub with role
// auth.NodeRole, valid from now for ttl.
func MintNodeToken(key ed25519.PrivateKey, sub string, ttl time.Duration, now time.Time) (string, error) {
	if sub == "" || ttl <= 0 {
		return "", fmt.Errorf("%w: node token needs a subject and a positive ttl", core.ErrInvalid)
	}
	kid, _ := auth.Thumbprint(key.Public())
	c := struct {
		jwt.RegisteredClaims
		Roles []string `json:"roles"`
	}{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    NodeIssuerName,
			Subject:   sub,
			Audience:  jwt.ClaimStrings{NodeAudience},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Roles: []string{auth.NodeRole},
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	t.Header["kid"] = kid
	return t.SignedString(key)
}

// tokenSource yields the bearer token for peer requests.
type tokenSource interface {
	Token(ctx context.Context) (string, error)
}

type staticToken string

func (s staticToken) Token(context.Context) (string, error) { return string(s), nil }

// fileToken rereads a token file, so that a rotated secret is picked up.
type fileToken string

func (f fileToken) Token(context.Context) (string, error) {
	b, err := os.ReadFile(string(f))
	if err != nil {
		return "", fmt.Errorf("node token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", errors.New("node token file is empty")
	}
	return tok, nil
}

// mintedToken mints short-lived tokens with the node issuer key.
type mintedToken struct {
	key ed25519.PrivateKey
	sub func() string
	now func() time.Time

	mu  stdsync.Mutex
	tok string
	exp time.Time
}

func (m *mintedToken) Token(context.Context) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if m.tok != "" && now.Before(m.exp.Add(-nodeTokenTTL/2)) {
		return m.tok, nil
	}
	tok, err := MintNodeToken(m.key, m.sub(), nodeTokenTTL, now)
	if err != nil {
		return "", err
	}
	m.tok, m.exp = tok, now.Add(nodeTokenTTL)
	return tok, nil
}
