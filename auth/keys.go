package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"slices"

	"github.com/goat-gateway/goat-gateway/core"
)

// File names under the keys directory. The keys directory lives beside, not
// inside, the repositories, so that wiping repositories keeps identities.
const (
	DevIssuerKeyFile = "dev-issuer.key"
	RootKeyFile      = "root.key"
)

// MinRSABits is the smallest RSA modulus a token key may have.
const MinRSABits = 2048

// LoadOrCreateKey returns the Ed25519 private key stored at path as PEM
// PKCS #8, creating it (and its directory, mode 0700) if the file does not
// exist. A new key is written to a temporary file (O_EXCL, mode 0600),
// fsynced, and linked into place, which fails rather than replaces if
// another process created path first; the winner's key is then loaded, so
// concurrent starts agree on one key. An existing file that group or others
// may read is refused, as ssh does: a readable signing key is a leaked one.
func LoadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	key, err := loadKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create keys directory: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	tmp := fmt.Sprintf("%s.tmp-%x", path, priv.Public().(ed25519.PublicKey)[:8])
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create key %s: %w", path, err)
	}
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, fmt.Errorf("write key %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("sync key %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("write key %s: %w", path, err)
	}
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("install key %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		// The link is durable only once the directory entry is.
		_ = d.Sync()
		d.Close()
	}
	return loadKey(path)
}

func loadKey(path string) (ed25519.PrivateKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: key %s is not a regular file", core.ErrInvalid, path)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: key %s has mode %04o; group and others must have no access (chmod 600)", core.ErrInvalid, path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%w: key %s: want a PEM \"PRIVATE KEY\" (PKCS #8) block", core.ErrInvalid, path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: key %s: %v", core.ErrInvalid, path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: key %s: want an Ed25519 key, got %T", core.ErrInvalid, path, k)
	}
	return priv, nil
}

// ParsePublicKeyPEM parses the first PEM block of b: a "PUBLIC KEY" (PKIX),
// an "RSA PUBLIC KEY" (PKCS #1) or a "CERTIFICATE" (its subject key). The key
// must be Ed25519, ECDSA on P-256/P-384/P-521, or RSA of at least MinRSABits.
// A private key is refused: configuration should never hold one.
func ParsePublicKeyPEM(b []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block", core.ErrInvalid)
	}
	var (
		k   any
		err error
	)
	switch block.Type {
	case "PUBLIC KEY":
		k, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		k, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			k = cert.PublicKey
		}
	case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY":
		return nil, fmt.Errorf("%w: PEM block %q holds a private key; configure the issuer's public key", core.ErrInvalid, block.Type)
	default:
		return nil, fmt.Errorf("%w: PEM block %q is not a public key", core.ErrInvalid, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", core.ErrInvalid, block.Type, err)
	}
	if _, err := algsFor(k); err != nil {
		return nil, err
	}
	return k, nil
}

// Algorithms every verifier accepts at most; which of them one key accepts
// follows from its type (algsFor). Symmetric algorithms are absent on
// purpose: a verifier holds only public keys, and an HS256 token "signed"
// with a public key must never verify.
var supportedAlgs = []string{"EdDSA", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512"}

// algsFor returns the JWS algorithms key may verify, or an error for a key
// type or size we refuse.
func algsFor(key any) ([]string, error) {
	switch k := key.(type) {
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: Ed25519 key of %d bytes", core.ErrInvalid, len(k))
		}
		return []string{"EdDSA"}, nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return []string{"ES256"}, nil
		case elliptic.P384():
			return []string{"ES384"}, nil
		case elliptic.P521():
			return []string{"ES512"}, nil
		}
		return nil, fmt.Errorf("%w: ECDSA curve %s is not supported", core.ErrInvalid, k.Curve.Params().Name)
	case *rsa.PublicKey:
		if k.N.BitLen() < MinRSABits {
			return nil, fmt.Errorf("%w: RSA key of %d bits; at least %d required", core.ErrInvalid, k.N.BitLen(), MinRSABits)
		}
		return []string{"PS256", "PS384", "PS512", "RS256", "RS384", "RS512"}, nil
	}
	return nil, fmt.Errorf("%w: key type %T is not supported (Ed25519, ECDSA or RSA)", core.ErrInvalid, key)
}

// Thumbprint returns the RFC 7638 JWK thumbprint of key (SHA-256, unpadded
// base64url): the key id used when a key has none of its own.
func Thumbprint(key crypto.PublicKey) (string, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	var members string
	switch k := key.(type) {
	case ed25519.PublicKey:
		members = fmt.Sprintf(`{"crv":"Ed25519","kty":"OKP","x":%q}`, b64(k))
	case *ecdsa.PublicKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		pt, err := k.Bytes()
		if err != nil || len(pt) != 1+2*size {
			return "", fmt.Errorf("%w: ECDSA key: %v", core.ErrInvalid, err)
		}
		members = fmt.Sprintf(`{"crv":%q,"kty":"EC","x":%q,"y":%q}`, k.Curve.Params().Name, b64(pt[1:1+size]), b64(pt[1+size:]))
	case *rsa.PublicKey:
		e := big.NewInt(int64(k.E)).Bytes()
		members = fmt.Sprintf(`{"e":%q,"kty":"RSA","n":%q}`, b64(e), b64(k.N.Bytes()))
	default:
		return "", fmt.Errorf("%w: key type %T is not supported", core.ErrInvalid, key)
	}
	sum := sha256.Sum256([]byte(members))
	return b64(sum[:]), nil
}

// verKey is one token verification key and the algorithms it accepts.
type verKey struct {
	kid  string
	key  crypto.PublicKey
	algs []string
}

func newVerKey(kid string, key crypto.PublicKey, alg string) (verKey, error) {
	algs, err := algsFor(key)
	if err != nil {
		return verKey{}, err
	}
	if alg != "" {
		if !slices.Contains(algs, alg) {
			return verKey{}, fmt.Errorf("%w: alg %q does not fit a %s key", core.ErrInvalid, alg, keyKind(key))
		}
		algs = []string{alg}
	}
	if kid == "" {
		if kid, err = Thumbprint(key); err != nil {
			return verKey{}, err
		}
	}
	return verKey{kid: kid, key: key, algs: algs}, nil
}

func keyKind(key any) string {
	switch key.(type) {
	case ed25519.PublicKey:
		return "Ed25519"
	case *ecdsa.PublicKey:
		return "ECDSA"
	case *rsa.PublicKey:
		return "RSA"
	}
	return fmt.Sprintf("%T", key)
}

// MaxJWKSBytes bounds a JWKS document.
const MaxJWKSBytes = 1 << 20

type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	N   string `json:"n"`
	E   string `json:"e"`
	// Private members: their presence means someone published a secret.
	D  *string `json:"d"`
	P  *string `json:"p"`
	Q  *string `json:"q"`
	DP *string `json:"dp"`
	DQ *string `json:"dq"`
	QI *string `json:"qi"`
	K  *string `json:"k"`
}

// parseJWKS parses an RFC 7517 key set. Keys for encryption ("use":"enc")
// and of key types we do not verify with (Ed448, X25519, ...) are skipped;
// a symmetric or private key anywhere refuses the whole set, since a set that
// leaks a secret is not one to trust; so does a set with no usable key.
func parseJWKS(b []byte) ([]verKey, error) {
	if len(b) > MaxJWKSBytes {
		return nil, fmt.Errorf("%w: JWKS is larger than %d bytes", core.ErrTooLarge, MaxJWKSBytes)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("%w: JWKS: %v", core.ErrInvalid, err)
	}
	var keys []verKey
	for i, raw := range set.Keys {
		var k jwk
		if err := json.Unmarshal(raw, &k); err != nil {
			return nil, fmt.Errorf("%w: JWKS keys[%d]: %v", core.ErrInvalid, i, err)
		}
		if k.Kty == "oct" || k.D != nil || k.P != nil || k.Q != nil || k.DP != nil || k.DQ != nil || k.QI != nil || k.K != nil {
			return nil, fmt.Errorf("%w: JWKS keys[%d] (kid %q) holds secret key material; publish public keys only", core.ErrInvalid, i, k.Kid)
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		pub, err := k.publicKey()
		if err != nil {
			return nil, fmt.Errorf("JWKS keys[%d] (kid %q): %w", i, k.Kid, err)
		}
		if pub == nil {
			continue
		}
		vk, err := newVerKey(k.Kid, pub, k.Alg)
		if err != nil {
			return nil, fmt.Errorf("JWKS keys[%d] (kid %q): %w", i, k.Kid, err)
		}
		keys = append(keys, vk)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: JWKS has no usable signature verification key", core.ErrInvalid)
	}
	return keys, nil
}

// publicKey returns k's key, nil for a key type we skip.
func (k *jwk) publicKey() (crypto.PublicKey, error) {
	dec := func(name, s string) ([]byte, error) {
		b, err := base64.RawURLEncoding.Strict().DecodeString(s)
		if err != nil || len(b) == 0 {
			return nil, fmt.Errorf("%w: %s: want non-empty unpadded base64url", core.ErrInvalid, name)
		}
		return b, nil
	}
	switch k.Kty {
	case "OKP":
		if k.Crv != "Ed25519" {
			return nil, nil
		}
		x, err := dec("x", k.X)
		if err != nil {
			return nil, err
		}
		if len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: x: Ed25519 key of %d bytes", core.ErrInvalid, len(x))
		}
		return ed25519.PublicKey(x), nil
	case "EC":
		var curve elliptic.Curve
		switch k.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return nil, nil
		}
		x, err := dec("x", k.X)
		if err != nil {
			return nil, err
		}
		y, err := dec("y", k.Y)
		if err != nil {
			return nil, err
		}
		size := (curve.Params().BitSize + 7) / 8
		if len(x) != size || len(y) != size {
			return nil, fmt.Errorf("%w: x and y must be %d bytes for %s", core.ErrInvalid, size, k.Crv)
		}
		// ParseUncompressedPublicKey refuses points off the curve, which
		// invalid-curve attacks rely on.
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, slices.Concat([]byte{4}, x, y))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", core.ErrInvalid, err)
		}
		return pub, nil
	case "RSA":
		n, err := dec("n", k.N)
		if err != nil {
			return nil, err
		}
		e, err := dec("e", k.E)
		if err != nil {
			return nil, err
		}
		if len(e) > 4 || n[0] == 0 || e[0] == 0 {
			return nil, fmt.Errorf("%w: n and e must be minimal big-endian integers, e at most 32 bits", core.ErrInvalid)
		}
		ev := new(big.Int).SetBytes(e).Int64()
		if ev < 3 || ev%2 == 0 || ev > 1<<31-1 {
			return nil, fmt.Errorf("%w: e must be odd and in [3, 2^31)", core.ErrInvalid)
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(ev)}, nil
	}
	return nil, nil
}

// Edwards25519 constants for weakEd25519Key.
var (
	edP = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	edD = func() *big.Int {
		// d = -121665 / 121666 mod p
		inv := new(big.Int).ModInverse(big.NewInt(121666), edP)
		d := new(big.Int).Mul(big.NewInt(-121665), inv)
		return d.Mod(d, edP)
	}()
)

// weakEd25519Key reports whether pub is not a usable Ed25519 public key: a
// non-canonical encoding, a point off the curve, or a point of small order.
// A small-order key lets anyone forge signatures that verify under it, so a
// session with one would let anybody write as its owner; RFC 8032 verifiers
// (Go's included) do not refuse such keys, so registration does.
func weakEd25519Key(pub ed25519.PublicKey) bool {
	if len(pub) != ed25519.PublicKeySize {
		return true
	}
	le := slices.Clone([]byte(pub))
	sign := le[31] >> 7
	le[31] &= 0x7f
	slices.Reverse(le)
	y := new(big.Int).SetBytes(le)
	if y.Cmp(edP) >= 0 {
		return true
	}
	// x^2 = (y^2 - 1) / (d y^2 + 1)
	y2 := new(big.Int).Mul(y, y)
	u := new(big.Int).Sub(y2, big.NewInt(1))
	v := new(big.Int).Mul(edD, y2)
	v.Add(v, big.NewInt(1)).Mod(v, edP)
	x2 := new(big.Int).Mul(u, new(big.Int).ModInverse(v, edP))
	x2.Mod(x2, edP)
	x := new(big.Int).ModSqrt(x2, edP)
	if x == nil {
		return true
	}
	if x.Sign() == 0 && sign == 1 {
		return true
	}
	if uint(x.Bit(0)) != uint(sign) {
		x.Sub(edP, x)
	}
	// Small order means [8]P is the identity (0, 1).
	px, py := x, y
	for range 3 {
		px, py = edDouble(px, py)
	}
	return px.Sign() == 0 && py.Cmp(big.NewInt(1)) == 0
}

// edDouble doubles an affine point of the twisted Edwards curve
// -x^2 + y^2 = 1 + d x^2 y^2, whose addition law is complete.
func edDouble(x, y *big.Int) (*big.Int, *big.Int) {
	xx := new(big.Int).Mul(x, x)
	yy := new(big.Int).Mul(y, y)
	xy := new(big.Int).Mul(x, y)
	dxy := new(big.Int).Mul(edD, new(big.Int).Mul(xx, yy))
	dxy.Mod(dxy, edP)
	// x3 = 2xy / (1 + d x^2 y^2), y3 = (y^2 + x^2) / (1 - d x^2 y^2)
	nx := new(big.Int).Lsh(xy, 1)
	dx := new(big.Int).Add(big.NewInt(1), dxy)
	ny := new(big.Int).Add(yy, xx)
	dy := new(big.Int).Sub(big.NewInt(1), dxy)
	dy.Mod(dy, edP)
	nx.Mul(nx, new(big.Int).ModInverse(dx.Mod(dx, edP), edP)).Mod(nx, edP)
	ny.Mul(ny, new(big.Int).ModInverse(dy, edP)).Mod(ny, edP)
	return nx, ny
}
