package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// t0 is the fixed "now" of the tests; nothing here reads the clock.
var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

// testRSAKey is generated once per test binary: RSA-2048 keygen is slow.
func testRSAKey(tb testing.TB) *rsa.PrivateKey {
	tb.Helper()
	rsaOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return rsaKey
}

func newEd25519(tb testing.TB) ed25519.PrivateKey {
	tb.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return priv
}

func newP256(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// writePublicPEM writes pub as a PEM "PUBLIC KEY" file and returns its path.
func writePublicPEM(tb testing.TB, pub any) string {
	tb.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(tb.TempDir(), "issuer.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

// tok describes a test token; zero fields take working defaults.
type tok struct {
	method jwt.SigningMethod
	key    any
	kid    string // "-" for none
	iss    string
	aud    any // string or []string; "-" for none
	sub    string
	exp    time.Time
	noExp  bool
	nbf    time.Time
	iat    time.Time
	roles  any
	header map[string]any
}

func (k tok) sign(tb testing.TB) string {
	tb.Helper()
	c := jwt.MapClaims{"iss": k.iss, "sub": k.sub, "exp": k.exp.Unix()}
	if k.noExp {
		delete(c, "exp")
	}
	if k.aud != "-" {
		c["aud"] = k.aud
	}
	if !k.nbf.IsZero() {
		c["nbf"] = k.nbf.Unix()
	}
	if !k.iat.IsZero() {
		c["iat"] = k.iat.Unix()
	}
	if k.roles != nil {
		c["roles"] = k.roles
	}
	t := jwt.NewWithClaims(k.method, c)
	if k.kid != "-" {
		t.Header["kid"] = k.kid
	}
	for h, v := range k.header {
		t.Header[h] = v
	}
	s, err := t.SignedString(k.key)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}
