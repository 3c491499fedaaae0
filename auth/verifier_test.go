package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/goat-gateway/goat-gateway/core"
)

const (
	rsaIss = "https://rsa.example"
	ecIss  = "https://ec.example"
)

type fixture struct {
	v      *Verifier
	cfg    VerifierConfig // v's configuration
	dev    *DevIssuer
	devKey ed25519.PrivateKey
	rsa    *rsa.PrivateKey
	ec     *ecdsa.PrivateKey
	ed     ed25519.PrivateKey // second key of the EC issuer's JWKS ("ed-1")
}

func jwkOf(tb testing.TB, kid string, pub any) map[string]any {
	tb.Helper()
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64(k), "kid": kid}
	case *ecdsa.PublicKey:
		pt, err := k.Bytes()
		if err != nil {
			tb.Fatal(err)
		}
		return map[string]any{"kty": "EC", "crv": "P-256", "x": b64(pt[1:33]), "y": b64(pt[33:]), "kid": kid, "use": "sig"}
	case *rsa.PublicKey:
		return map[string]any{"kty": "RSA", "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes()), "kid": kid}
	}
	tb.Fatalf("no JWK for %T", pub)
	return nil
}

func jwksJSON(tb testing.TB, keys ...map[string]any) []byte {
	tb.Helper()
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	f := &fixture{devKey: newEd25519(tb), rsa: testRSAKey(tb), ec: newP256(tb), ed: newEd25519(tb)}
	f.dev = NewDevIssuer(f.devKey)
	jwksPath := filepath.Join(tb.TempDir(), "jwks.json")
	set := jwksJSON(tb,
		jwkOf(tb, "ec-1", &f.ec.PublicKey),
		jwkOf(tb, "ed-1", f.ed.Public()),
		map[string]any{"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB", "kid": "enc-only"},
	)
	if err := os.WriteFile(jwksPath, set, 0o644); err != nil {
		tb.Fatal(err)
	}
	f.cfg = VerifierConfig{Issuers: []IssuerConfig{
		f.dev.IssuerConfig(),
		{Issuer: rsaIss, Audience: []string{"api-rsa"}, KeyFiles: []KeyFile{{Path: writePublicPEM(tb, &f.rsa.PublicKey), KID: "rsa-1"}}},
		{Issuer: ecIss, Audience: []string{"goat-gateway", "other-aud"}, JWKSFile: jwksPath},
	}}
	v, err := NewVerifier(f.cfg)
	if err != nil {
		tb.Fatal(err)
	}
	f.v = v
	return f
}

func (f *fixture) devTok() tok {
	return tok{method: jwt.SigningMethodEdDSA, key: f.devKey, kid: f.dev.KeyID(), iss: DevIssuerName, aud: DevAudience, sub: "alice", exp: t0.Add(time.Hour)}
}

func (f *fixture) rsaTok() tok {
	return tok{method: jwt.SigningMethodRS256, key: f.rsa, kid: "rsa-1", iss: rsaIss, aud: "api-rsa", sub: "bob", exp: t0.Add(time.Hour)}
}

func (f *fixture) ecTok() tok {
	return tok{method: jwt.SigningMethodES256, key: f.ec, kid: "ec-1", iss: ecIss, aud: []string{"x", "other-aud"}, sub: "carol", exp: t0.Add(time.Hour)}
}

func with(t tok, edit func(*tok)) tok { edit(&t); return t }

func TestVerifier_Verify(t *testing.T) {
	f := newFixture(t)
	pubPEM := func() []byte {
		der, _ := x509.MarshalPKIXPublicKey(&f.rsa.PublicKey)
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}()
	valid := f.devTok().sign(t)
	parts := strings.Split(valid, ".")
	otherPayload := strings.Split(with(f.devTok(), func(k *tok) { k.sub = "mallory" }).sign(t), ".")[1]
	noneManual := b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."

	tests := []struct {
		name    string
		token   string
		wantErr error // nil: accepted
		want    Principal
	}{
		{name: "DevEdDSA", token: with(f.devTok(), func(k *tok) { k.roles = []string{"editor", "admin", "editor"} }).sign(t),
			want: Principal{Sub: "alice", Roles: []string{"admin", "editor"}, Issuer: DevIssuerName, Expires: t0.Add(time.Hour)}},
		{name: "DevWithoutKID", token: with(f.devTok(), func(k *tok) { k.kid = "-" }).sign(t),
			want: Principal{Sub: "alice", Roles: []string{}, Issuer: DevIssuerName, Expires: t0.Add(time.Hour)}},
		{name: "RSAFromPEMFile", token: f.rsaTok().sign(t),
			want: Principal{Sub: "bob", Roles: []string{}, Issuer: rsaIss, Expires: t0.Add(time.Hour)}},
		{name: "PS256", token: with(f.rsaTok(), func(k *tok) { k.method = jwt.SigningMethodPS256 }).sign(t),
			want: Principal{Sub: "bob", Roles: []string{}, Issuer: rsaIss, Expires: t0.Add(time.Hour)}},
		{name: "ES256FromJWKSFile", token: f.ecTok().sign(t),
			want: Principal{Sub: "carol", Roles: []string{}, Issuer: ecIss, Expires: t0.Add(time.Hour)}},
		{name: "ExpiredWithinLeeway", token: with(f.devTok(), func(k *tok) { k.exp = t0.Add(-10 * time.Second) }).sign(t),
			want: Principal{Sub: "alice", Roles: []string{}, Issuer: DevIssuerName, Expires: t0.Add(-10 * time.Second)}},

		{name: "NoToken", token: "", wantErr: errNoToken},
		{name: "Malformed", token: "abc.def", wantErr: jwt.ErrTokenMalformed},
		{name: "TooLong", token: strings.Repeat("a", MaxTokenBytes+1), wantErr: jwt.ErrTokenMalformed},
		{name: "AlgNone", token: with(f.devTok(), func(k *tok) { k.method = jwt.SigningMethodNone; k.key = jwt.UnsafeAllowNoneSignatureType }).sign(t), wantErr: errAlgNotAllowed},
		{name: "AlgNoneHandMade", token: noneManual, wantErr: errAlgNotAllowed},
		{name: "HS256WithEd25519PublicKeyAsSecret", token: with(f.devTok(), func(k *tok) {
			k.method = jwt.SigningMethodHS256
			k.key = []byte(f.devKey.Public().(ed25519.PublicKey))
		}).sign(t), wantErr: errAlgNotAllowed},
		{name: "HS256WithRSAPublicPEMAsSecret", token: with(f.rsaTok(), func(k *tok) { k.method = jwt.SigningMethodHS256; k.key = pubPEM }).sign(t), wantErr: errAlgNotAllowed},
		{name: "RS256ForEd25519Issuer", token: with(f.devTok(), func(k *tok) { k.method = jwt.SigningMethodRS256; k.key = f.rsa }).sign(t), wantErr: errAlgNotAllowed},
		{name: "ES256ForEd25519Issuer", token: with(f.devTok(), func(k *tok) { k.method = jwt.SigningMethodES256; k.key = f.ec }).sign(t), wantErr: errAlgNotAllowed},
		{name: "EdDSAForRSAIssuer", token: with(f.rsaTok(), func(k *tok) { k.method = jwt.SigningMethodEdDSA; k.key = f.devKey }).sign(t), wantErr: errAlgNotAllowed},
		{name: "ES256NamingEd25519KeyOfSameIssuer", token: with(f.ecTok(), func(k *tok) { k.kid = "ed-1" }).sign(t), wantErr: errAlgNotAllowed},
		{name: "Expired", token: with(f.devTok(), func(k *tok) { k.exp = t0.Add(-time.Minute) }).sign(t), wantErr: jwt.ErrTokenExpired},
		{name: "NotYetValid", token: with(f.devTok(), func(k *tok) { k.nbf = t0.Add(time.Minute) }).sign(t), wantErr: jwt.ErrTokenNotValidYet},
		{name: "IssuedInTheFuture", token: with(f.devTok(), func(k *tok) { k.iat = t0.Add(time.Minute) }).sign(t), wantErr: jwt.ErrTokenUsedBeforeIssued},
		{name: "NoExp", token: with(f.devTok(), func(k *tok) { k.noExp = true }).sign(t), wantErr: jwt.ErrTokenRequiredClaimMissing},
		{name: "WrongAudience", token: with(f.devTok(), func(k *tok) { k.aud = "api-rsa" }).sign(t), wantErr: jwt.ErrTokenInvalidAudience},
		{name: "NoAudience", token: with(f.devTok(), func(k *tok) { k.aud = "-" }).sign(t), wantErr: jwt.ErrTokenRequiredClaimMissing},
		{name: "UnknownIssuer", token: with(f.devTok(), func(k *tok) { k.iss = "https://evil.example" }).sign(t), wantErr: errUnknownIssuer},
		{name: "NoIssuer", token: with(f.devTok(), func(k *tok) { k.iss = "" }).sign(t), wantErr: errUnknownIssuer},
		{name: "IssuerClaimedByAnotherIssuersKey", token: with(f.devTok(), func(k *tok) { k.iss = ecIss }).sign(t), wantErr: errUnknownKID},
		{name: "KIDOfIssuerSignedByOtherKey", token: with(f.devTok(), func(k *tok) { k.iss = ecIss; k.kid = "ed-1" }).sign(t), wantErr: jwt.ErrTokenSignatureInvalid},
		{name: "UnknownKID", token: with(f.devTok(), func(k *tok) { k.kid = "nope" }).sign(t), wantErr: errUnknownKID},
		{name: "EncryptionKeyIsNotASigningKey", token: with(f.rsaTok(), func(k *tok) { k.iss = ecIss; k.aud = "goat-gateway"; k.kid = "enc-only" }).sign(t), wantErr: errAlgNotAllowed},
		{name: "KIDNotAString", token: with(f.devTok(), func(k *tok) { k.header = map[string]any{"kid": 7} }).sign(t), wantErr: errBadClaims},
		{name: "TamperedPayload", token: parts[0] + "." + otherPayload + "." + parts[2], wantErr: jwt.ErrTokenSignatureInvalid},
		{name: "CritHeader", token: with(f.devTok(), func(k *tok) { k.header = map[string]any{"crit": []string{"exp"}} }).sign(t), wantErr: errCrit},
		{name: "NoSub", token: with(f.devTok(), func(k *tok) { k.sub = "" }).sign(t), wantErr: errBadClaims},
		{name: "SubWithNewline", token: with(f.devTok(), func(k *tok) { k.sub = "alice\nx" }).sign(t), wantErr: errBadClaims},
		{name: "RolesNotAnArray", token: with(f.devTok(), func(k *tok) { k.roles = "admin" }).sign(t), wantErr: jwt.ErrTokenMalformed},
		{name: "RolesNotStrings", token: with(f.devTok(), func(k *tok) { k.roles = []any{1} }).sign(t), wantErr: jwt.ErrTokenMalformed},
		{name: "EmptyRole", token: with(f.devTok(), func(k *tok) { k.roles = []string{""} }).sign(t), wantErr: errBadClaims},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := f.v.Verify(context.Background(), tt.token, t0)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if got, want := fmt.Sprint(p), fmt.Sprint(tt.want); got != want || !slices.Equal(p.Roles, tt.want.Roles) || !p.Expires.Equal(tt.want.Expires) {
					t.Fatalf("principal=%+v, want %+v", p, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify accepted the token: %+v", p)
			}
			if !errors.Is(err, core.ErrUnauthenticated) || !errors.Is(err, tt.wantErr) {
				t.Fatalf("err=%v, want %v wrapping %v", err, core.ErrUnauthenticated, tt.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "unauthenticated: ") {
				t.Fatalf("err=%q does not start with the sentinel", err)
			}
		})
	}
}

func TestVerifier_NodeTokens(t *testing.T) {
	dev := NewDevIssuer(newEd25519(t))
	plain, err := NewVerifier(VerifierConfig{Issuers: []IssuerConfig{dev.IssuerConfig()}})
	if err != nil {
		t.Fatal(err)
	}
	ic := dev.IssuerConfig()
	ic.NodeTokens = true
	trusting, err := NewVerifier(VerifierConfig{Issuers: []IssuerConfig{ic}})
	if err != nil {
		t.Fatal(err)
	}
	node, err := dev.Mint("node-2", []string{NodeRole}, time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	user, err := dev.Mint("alice", nil, time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		v     *Verifier
		token string
		want  bool
	}{
		{"NodeRoleFromTrustedIssuer", trusting, node, true},
		{"NodeRoleFromOrdinaryIssuer", plain, node, false},
		{"NoNodeRole", trusting, user, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tt.v.Verify(context.Background(), tt.token, t0)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := p.Node, tt.want; got != want {
				t.Fatalf("Node=%v, want %v", got, want)
			}
		})
	}
}

func TestDevIssuer_Mint(t *testing.T) {
	dev := NewDevIssuer(newEd25519(t))
	v, err := NewVerifier(VerifierConfig{Issuers: []IssuerConfig{dev.IssuerConfig()}})
	if err != nil {
		t.Fatal(err)
	}
	token, err := dev.Mint("alice", []string{"editor"}, time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("ValidUntilExp", func(t *testing.T) {
		p, err := v.Verify(context.Background(), token, t0.Add(59*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := p.Expires, t0.Add(time.Hour); !got.Equal(want) {
			t.Fatalf("Expires=%v, want %v", got, want)
		}
		if !p.HasRole("editor") {
			t.Fatalf("roles=%v, want editor", p.Roles)
		}
	})
	t.Run("ExpiredAfterLeeway", func(t *testing.T) {
		if _, err := v.Verify(context.Background(), token, t0.Add(time.Hour+DefaultLeeway+time.Second)); !errors.Is(err, jwt.ErrTokenExpired) {
			t.Fatalf("err=%v, want expired", err)
		}
	})
	t.Run("OtherDevKeyRefused", func(t *testing.T) {
		other, err := NewDevIssuer(newEd25519(t)).Mint("alice", nil, time.Hour, t0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(context.Background(), other, t0); !errors.Is(err, errUnknownKID) {
			t.Fatalf("err=%v, want unknown key id", err)
		}
	})
	t.Run("BadInput", func(t *testing.T) {
		for _, c := range []struct {
			sub   string
			roles []string
			ttl   time.Duration
		}{{"", nil, time.Hour}, {"a\x00", nil, time.Hour}, {"alice", []string{""}, time.Hour}, {"alice", nil, 0}} {
			if _, err := dev.Mint(c.sub, c.roles, c.ttl, t0); !errors.Is(err, core.ErrInvalid) {
				t.Fatalf("Mint(%q, %q, %v) err=%v, want ErrInvalid", c.sub, c.roles, c.ttl, err)
			}
		}
	})
}

func TestOpenDevIssuer(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	a, err := OpenDevIssuer(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := OpenDevIssuer(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := b.KeyID(), a.KeyID(); got != want {
		t.Fatalf("reopened dev issuer kid=%s, want %s (the key must persist)", got, want)
	}
	token, err := a.Mint("alice", nil, time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(VerifierConfig{Issuers: []IssuerConfig{b.IssuerConfig()}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), token, t0); err != nil {
		t.Fatalf("token of the first instance refused by the second: %v", err)
	}
}

// jwksServer serves a swappable key set and counts requests.
type jwksServer struct {
	*httptest.Server
	body    atomic.Pointer[[]byte]
	status  atomic.Int32
	fetches atomic.Int32
}

func newJWKSServer(tb testing.TB) *jwksServer {
	tb.Helper()
	s := &jwksServer{}
	s.status.Store(http.StatusOK)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "http://jwks.example/keys", http.StatusFound)
			return
		}
		w.WriteHeader(int(s.status.Load()))
		if b := s.body.Load(); b != nil {
			w.Write(*b)
		}
	}))
	tb.Cleanup(s.Close)
	return s
}

func (s *jwksServer) publish(tb testing.TB, keys ...map[string]any) {
	b := jwksJSON(tb, keys...)
	s.body.Store(&b)
}

func TestVerifier_JWKSURL(t *testing.T) {
	srv := newJWKSServer(t)
	k1, k2, k3 := newEd25519(t), newEd25519(t), newEd25519(t)
	srv.publish(t, jwkOf(t, "k1", k1.Public()))
	const iss = "https://idp.example"
	v, err := NewVerifier(VerifierConfig{
		Issuers:    []IssuerConfig{{Issuer: iss, Audience: []string{"goat-gateway"}, JWKSURL: srv.URL + "/jwks"}},
		HTTPClient: srv.Client(),
		Logger:     slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	token := func(kid string, key ed25519.PrivateKey) string {
		return tok{method: jwt.SigningMethodEdDSA, key: key, kid: kid, iss: iss, aud: "goat-gateway", sub: "alice", exp: t0.Add(24 * time.Hour)}.sign(t)
	}
	step := func(name string, at time.Time, token string, wantErr error, wantFetches int32) {
		t.Helper()
		_, err := v.Verify(context.Background(), token, at)
		if wantErr == nil && err != nil || wantErr != nil && !errors.Is(err, wantErr) {
			t.Fatalf("%s: err=%v, want %v", name, err, wantErr)
		}
		if got := srv.fetches.Load(); got != wantFetches {
			t.Fatalf("%s: fetches=%d, want %d", name, got, wantFetches)
		}
	}

	// Concurrent first use: one fetch serves everyone.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			_, err := v.Verify(context.Background(), token("k1", k1), t0)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent first use: %v", err)
		}
	}
	step("FirstUseFetchedOnce", t0, token("k1", k1), nil, 1)
	srv.publish(t, jwkOf(t, "k1", k1.Public()), jwkOf(t, "k2", k2.Public()))
	step("UnknownKIDWithinRefetchInterval", t0.Add(time.Second), token("k2", k2), errUnknownKID, 1)
	step("UnknownKIDRefetches", t0.Add(DefaultRefetchInterval+time.Second), token("k2", k2), nil, 2)
	step("MadeUpKIDsAreRateLimited", t0.Add(DefaultRefetchInterval+2*time.Second), token("k3", k3), errUnknownKID, 2)
	srv.status.Store(http.StatusInternalServerError)
	step("StaleKeysKeptWhenRefreshFails", t0.Add(2*time.Hour), token("k1", k1), nil, 3)
	srv.status.Store(http.StatusOK)
	srv.publish(t, jwkOf(t, "k2", k2.Public()))
	step("NoRetryWithinRefetchInterval", t0.Add(2*time.Hour+time.Second), token("k1", k1), nil, 3)
	step("RemovedKeyStopsVerifying", t0.Add(2*time.Hour+2*DefaultRefetchInterval), token("k1", k1), errUnknownKID, 4)
	step("RemainingKeyStillVerifies", t0.Add(2*time.Hour+2*DefaultRefetchInterval), token("k2", k2), nil, 4)
}

func TestVerifier_JWKSRedirectToPlainHTTP(t *testing.T) {
	srv := newJWKSServer(t)
	const iss = "https://idp.example"
	v, err := NewVerifier(VerifierConfig{
		Issuers:    []IssuerConfig{{Issuer: iss, Audience: []string{"a"}, JWKSURL: srv.URL + "/redirect"}},
		HTTPClient: srv.Client(),
		Logger:     slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	k := newEd25519(t)
	token := tok{method: jwt.SigningMethodEdDSA, key: k, kid: "k", iss: iss, aud: "a", sub: "alice", exp: t0.Add(time.Hour)}.sign(t)
	if _, err := v.Verify(context.Background(), token, t0); !errors.Is(err, core.ErrUnauthenticated) {
		t.Fatalf("err=%v, want refusal (no keys: the redirect to plain http is not followed)", err)
	}
	if got, want := srv.fetches.Load(), int32(1); got != want {
		t.Fatalf("fetches=%d, want %d", got, want)
	}
}

func TestNewVerifier_Config(t *testing.T) {
	ed := newEd25519(t).Public()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	privDER, _ := x509.MarshalPKCS8PrivateKey(newEd25519(t))
	privPEM := write("priv.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}))
	smallPEM := writePublicPEM(t, &small.PublicKey)
	okJWK := jwkOf(t, "a", ed)
	withD := jwkOf(t, "b", ed)
	withD["d"] = "c2VjcmV0"
	keys := []PublicKey{{Key: ed}}
	tests := []struct {
		name string
		ic   IssuerConfig
		cfg  func(*VerifierConfig)
		ok   bool
	}{
		{name: "Minimal", ic: IssuerConfig{Issuer: "i", Audience: []string{"a"}, Keys: keys}, ok: true},
		{name: "HTTPSJWKS", ic: IssuerConfig{Issuer: "i", Audience: []string{"a"}, JWKSURL: "https://idp.example/jwks"}, ok: true},
		{name: "LoopbackHTTPJWKS", ic: IssuerConfig{Issuer: "i", Audience: []string{"a"}, JWKSURL: "http://127.0.0.1:9/jwks"}, ok: true},
		{name: "LocalhostHTTPJWKS", ic: IssuerConfig{Issuer: "i", Audience: []string{"a"}, JWKSURL: "http://localhost:9/jwks"}, ok: true},
		{name: "IPv6LoopbackHTTPJWKS", ic: IssuerConfig{Issuer: "i", Audience: []string{"a"}, JWKSURL: "http://[::1]:9/jwks"}, ok: true},
		{name: "PlainHTTPJWKS", ic: IssuerConfig{Issuer: "i", Audience: []string{"a"}, JWKSURL: "http://idp.example/jwks"}},
		{name: "FileSchemeJWKS", ic: IssuerConfig{Issuer: "i", Audience: []string{"a"}, JWKSURL: "file:///etc/jwks"}},
		{name: "NoAudience", ic: IssuerConfig{Issuer: "i", Keys: keys}},
		{name: "EmptyAudience", ic: IssuerConfig{Issuer: "i", Audience: []string{""}, Keys: keys}},
		{name: "NoIssuer", ic: IssuerConfig{Audience: []string{"a"}, Keys: keys}},
		{name: "NoKeys", ic: IssuerConfig{Issuer: "i", Audience: []string{"a"}}},
		{name: "HS256Allowed", ic: IssuerConfig{Issuer: "i", Audience: []string{"a"}, Keys: keys, Algorithms: []string{"HS256"}}},
		{name: "NoneAllowed", ic: IssuerConfig{Issuer: "i", Audience: []string{"a"}, Keys: keys, Algorithms: []string{"none"}}},
		{name: "AlgorithmsExcludeTheKey", ic: IssuerConfig{Issuer: "i", Audience: []string{"a"}, Keys: keys, Algorithms: []string{"RS256"}}},
		{name: "KeyPinnedToWrongAlg", ic: IssuerConfig{Issuer: "i", Audience: []string{"a"}, Keys: []PublicKey{{Key: ed, Alg: "ES256"}}}},
		{name: "PrivateKeyFile", ic: IssuerConfig{Issuer: "i", Audience: []string{"a"}, KeyFiles: []KeyFile{{Path: privPEM}}}},
		{name: "RSA1024", ic: IssuerConfig{Issuer: "i", Audience: []string{"a"}, KeyFiles: []KeyFile{{Path: smallPEM}}}},
		{name: "JWKSWithPrivateKey", ic: IssuerConfig{Issuer: "i", Audience: []string{"a"}, JWKSFile: write("d.json", jwksJSON(t, okJWK, withD))}},
		{name: "JWKSWithSymmetricKey", ic: IssuerConfig{Issuer: "i", Audience: []string{"a"}, JWKSFile: write("oct.json", jwksJSON(t, okJWK, map[string]any{"kty": "oct", "k": "c2VjcmV0"}))}},
		{name: "JWKSWithoutUsableKey", ic: IssuerConfig{Issuer: "i", Audience: []string{"a"}, JWKSFile: write("none.json", jwksJSON(t, map[string]any{"kty": "OKP", "crv": "X25519", "x": "AA"}))}},
		{name: "JWKSNotJSON", ic: IssuerConfig{Issuer: "i", Audience: []string{"a"}, JWKSFile: write("bad.json", []byte("{"))}},
		{name: "LeewayTooLarge", ic: IssuerConfig{Issuer: "i", Audience: []string{"a"}, Keys: keys}, cfg: func(c *VerifierConfig) { c.Leeway = time.Hour }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := VerifierConfig{Issuers: []IssuerConfig{tt.ic}}
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			_, err := NewVerifier(cfg)
			if tt.ok && err != nil {
				t.Fatalf("NewVerifier: %v", err)
			}
			if !tt.ok && err == nil {
				t.Fatal("NewVerifier accepted the configuration")
			}
		})
	}
	t.Run("DuplicateIssuer", func(t *testing.T) {
		ic := IssuerConfig{Issuer: "i", Audience: []string{"a"}, Keys: keys}
		if _, err := NewVerifier(VerifierConfig{Issuers: []IssuerConfig{ic, ic}}); !errors.Is(err, core.ErrInvalid) {
			t.Fatalf("err=%v, want ErrInvalid", err)
		}
	})
}

func TestTokenFromHeader(t *testing.T) {
	tests := []struct {
		name    string
		values  []string
		want    string
		wantErr bool
	}{
		{name: "Absent"},
		{name: "Bearer", values: []string{"Bearer abc.def.ghi"}, want: "abc.def.ghi"},
		{name: "CaseInsensitiveScheme", values: []string{"bearer  abc.def-_~+/="}, want: "abc.def-_~+/="},
		{name: "Basic", values: []string{"Basic YWxhZGRpbjpvcGVuc2VzYW1l"}, wantErr: true},
		{name: "EmptyBearer", values: []string{"Bearer "}, wantErr: true},
		{name: "SchemeOnly", values: []string{"Bearer"}, wantErr: true},
		{name: "Two", values: []string{"Bearer a", "Bearer b"}, wantErr: true},
		{name: "BadCharacter", values: []string{"Bearer a b"}, wantErr: true},
		{name: "TooLong", values: []string{"Bearer " + strings.Repeat("a", MaxTokenBytes+1)}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tt.values {
				h.Add("Authorization", v)
			}
			got, err := TokenFromHeader(h)
			if tt.wantErr {
				if !errors.Is(err, core.ErrUnauthenticated) {
					t.Fatalf("err=%v, want ErrUnauthenticated", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("TokenFromHeader=%q, %v, want %q", got, err, tt.want)
			}
		})
	}
}

func TestTokenFromQuery(t *testing.T) {
	tests := []struct {
		query   string
		want    string
		wantErr bool
	}{
		{query: "repo=a"},
		{query: "repo=a&access_token=abc.def.ghi", want: "abc.def.ghi"},
		{query: "access_token=", wantErr: true},
		{query: "access_token=a&access_token=b", wantErr: true},
		{query: "access_token=a%20b", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := TokenFromQuery(q)
			if tt.wantErr {
				if !errors.Is(err, core.ErrUnauthenticated) {
					t.Fatalf("err=%v, want ErrUnauthenticated", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("TokenFromQuery=%q, %v, want %q", got, err, tt.want)
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	fx := newFixture(f)
	f.Add(fx.devTok().sign(f))
	f.Add(fx.rsaTok().sign(f))
	f.Add(fx.ecTok().sign(f))
	f.Add(with(fx.devTok(), func(k *tok) { k.method = jwt.SigningMethodNone; k.key = jwt.UnsafeAllowNoneSignatureType }).sign(f))
	f.Add("eyJhbGciOiJFZERTQSJ9.e30.")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		p, err := fx.v.Verify(context.Background(), token, t0)
		if err != nil {
			if !errors.Is(err, core.ErrUnauthenticated) {
				t.Fatalf("err=%v does not wrap ErrUnauthenticated", err)
			}
			return
		}
		if !p.Authenticated() || p.Issuer == "" || p.Expires.IsZero() {
			t.Fatalf("accepted token gave principal %+v", p)
		}
	})
}
