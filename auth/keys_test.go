package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
)

func TestLoadOrCreateKey(t *testing.T) {
	t.Run("CreatesThenLoads", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data", "keys")
		path := filepath.Join(dir, RootKeyFile)
		a, err := LoadOrCreateKey(path)
		if err != nil {
			t.Fatal(err)
		}
		b, err := LoadOrCreateKey(path)
		if err != nil {
			t.Fatal(err)
		}
		if !a.Equal(b) {
			t.Fatal("second load returned another key")
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := st.Mode().Perm(), os.FileMode(0o600); got != want {
			t.Fatalf("key mode=%04o, want %04o", got, want)
		}
		dst, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := dst.Mode().Perm(), os.FileMode(0o700); got != want {
			t.Fatalf("keys dir mode=%04o, want %04o", got, want)
		}
		left, _ := filepath.Glob(filepath.Join(dir, "*.tmp-*"))
		if len(left) != 0 {
			t.Fatalf("temporary files left behind: %v", left)
		}
	})
	t.Run("ConcurrentCreatorsAgree", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "keys", DevIssuerKeyFile)
		keys := make([]ed25519.PrivateKey, 8)
		var wg sync.WaitGroup
		for i := range keys {
			wg.Go(func() {
				k, err := LoadOrCreateKey(path)
				if err != nil {
					t.Error(err)
				}
				keys[i] = k
			})
		}
		wg.Wait()
		for i, k := range keys {
			if !k.Equal(keys[0]) {
				t.Fatalf("creator %d got a different key", i)
			}
		}
	})
	t.Run("RefusesReadableByOthers", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), RootKeyFile)
		if _, err := LoadOrCreateKey(path); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateKey(path); !errors.Is(err, core.ErrInvalid) {
			t.Fatalf("err=%v, want ErrInvalid for a world-readable key", err)
		}
	})
	t.Run("RefusesGarbageAndOtherKeyTypes", func(t *testing.T) {
		der, err := x509.MarshalPKCS8PrivateKey(testRSAKey(t))
		if err != nil {
			t.Fatal(err)
		}
		for name, content := range map[string][]byte{
			"garbage": []byte("not a key"),
			"rsa":     pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
			"public":  pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1}}),
		} {
			path := filepath.Join(t.TempDir(), name)
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := LoadOrCreateKey(path); !errors.Is(err, core.ErrInvalid) {
				t.Fatalf("%s: err=%v, want ErrInvalid (never overwrite an unreadable key)", name, err)
			}
			if b, _ := os.ReadFile(path); string(b) != string(content) {
				t.Fatalf("%s: the file was changed", name)
			}
		}
	})
}

func TestParsePublicKeyPEM(t *testing.T) {
	ed := newEd25519(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "issuer"}}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, ed.Public(), ed)
	if err != nil {
		t.Fatal(err)
	}
	pkixDER, _ := x509.MarshalPKIXPublicKey(ed.Public())
	privDER, _ := x509.MarshalPKCS8PrivateKey(ed)
	tests := []struct {
		name string
		pem  []byte
		ok   bool
	}{
		{"PKIX", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkixDER}), true},
		{"PKCS1RSA", pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&testRSAKey(t).PublicKey)}), true},
		{"Certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER}), true},
		{"PrivateKey", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), false},
		{"NotPEM", []byte("hello"), false},
		{"OtherBlock", pem.EncodeToMemory(&pem.Block{Type: "X", Bytes: []byte{1}}), false},
		{"BadDER", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2}}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePublicKeyPEM(tt.pem)
			if tt.ok != (err == nil) {
				t.Fatalf("err=%v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestThumbprint(t *testing.T) {
	// RFC 7638 section 3.1 and RFC 8037 appendix A.3.
	nb, err := unb64("n", "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw", 256)
	if err != nil {
		t.Fatal(err)
	}
	x, err := unb64("x", "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", 32)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		key  any
		want string
	}{
		{"RFC7638RSA", &rsa.PublicKey{N: new(big.Int).SetBytes(nb), E: 65537}, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"},
		{"RFC8037Ed25519", ed25519.PublicKey(x), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Thumbprint(tt.key)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("Thumbprint=%s, want %s", got, tt.want)
			}
		})
	}
	t.Run("P256MatchesJWKOfTheSameKey", func(t *testing.T) {
		k := newP256(t)
		a, err := Thumbprint(&k.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		j := jwkOf(t, "", &k.PublicKey)
		keys, err := parseJWKS(jwksJSON(t, j))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := keys[0].kid, a; got != want {
			t.Fatalf("kid of a JWK without kid=%s, want its thumbprint %s", got, want)
		}
	})
}

func TestWeakEd25519Key(t *testing.T) {
	mustHex := func(s string) ed25519.PublicKey {
		b, err := hex.DecodeString(s)
		if err != nil || len(b) != 32 {
			t.Fatalf("bad test vector %s", s)
		}
		return b
	}
	identity := mustHex("0100000000000000000000000000000000000000000000000000000000000000")
	for _, tt := range []struct {
		name string
		key  ed25519.PublicKey
	}{
		{"Identity", identity},
		{"Order4", mustHex("0000000000000000000000000000000000000000000000000000000000000000")},
		{"Order8", mustHex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")},
		{"Order8Other", mustHex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")},
		{"Order2", mustHex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")},
		{"NonCanonicalP", mustHex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")},
		{"NonCanonicalPPlus1", mustHex("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")},
		{"Short", ed25519.PublicKey{1, 2, 3}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if !weakEd25519Key(tt.key) {
				t.Fatalf("%x not flagged weak", []byte(tt.key))
			}
		})
	}
	t.Run("GeneratedKeysAreNot", func(t *testing.T) {
		for range 64 {
			if k := newEd25519(t).Public().(ed25519.PublicKey); weakEd25519Key(k) {
				t.Fatalf("generated key %x flagged weak", []byte(k))
			}
		}
	})
}

func FuzzParseJWKS(f *testing.F) {
	f.Add(string(jwksJSON(f, jwkOf(f, "a", newEd25519(f).Public()), jwkOf(f, "b", &newP256(f).PublicKey))))
	f.Add(string(jwksJSON(f, jwkOf(f, "r", &testRSAKey(f).PublicKey))))
	f.Add(`{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}`)
	f.Add(`{"keys":[{"kty":"oct","k":"AA"}]}`)
	f.Add(`{}`)
	f.Fuzz(func(t *testing.T, src string) {
		keys, err := parseJWKS([]byte(src))
		if err != nil {
			if !errors.Is(err, core.ErrInvalid) && !errors.Is(err, core.ErrTooLarge) {
				t.Fatalf("err=%v wraps neither ErrInvalid nor ErrTooLarge", err)
			}
			return
		}
		for _, k := range keys {
			if k.kid == "" || len(k.algs) == 0 {
				t.Fatalf("key %+v without kid or algorithms", k)
			}
			if _, err := algsFor(k.key); err != nil {
				t.Fatalf("accepted a key algsFor refuses: %v", err)
			}
		}
	})
}
