package core

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha512"
	"errors"

	"filippo.io/edwards25519"
)

// VerifyingKey is an Ed25519 public key decoded once, for a key that
// verifies many signatures (a session's key verifies every commit it
// signed). crypto/ed25519.Verify decodes the key's point from its 32 bytes
// on every call, a field square root that is about 6% of a verification.
//
// Verify is crypto/ed25519.Verify's check, not a variant of it: the same
// cofactorless equation [S]B = R + [k]A, checked as the standard library
// checks it (Go 1.26, crypto/internal/fips140/ed25519 verifyWithDom), on
// the same arithmetic (filippo.io/edwards25519 is the package the
// standard library's copy is taken from). So it accepts exactly the
// signatures crypto/ed25519 accepts, small-order and non-canonical
// encodings included; TestVerifyingKey_Verify and FuzzVerifyingKey hold
// it to that. It is not batch verification (docs/decisions.md, "No
// Ed25519 batch verification").
//
// A VerifyingKey is immutable once made, so it is safe for concurrent use.
type VerifyingKey struct {
	raw  [ed25519.PublicKeySize]byte
	negA edwards25519.Point // -A, as verifyWithDom computes it per call
}

// errBadPublicKey is what NewVerifyingKey answers for bytes that are not
// a point of the curve, as crypto/ed25519 refuses them.
var errBadPublicKey = errors.New("ed25519: bad public key")

// NewVerifyingKey decodes pub. It fails where crypto/ed25519.Verify
// would refuse every signature by pub: a length other than 32, or bytes
// that do not decode to a point (SetBytes, which like the standard
// library accepts a non-canonical y).
func NewVerifyingKey(pub []byte) (*VerifyingKey, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, errBadPublicKey
	}
	k := &VerifyingKey{}
	var a edwards25519.Point
	if _, err := a.SetBytes(pub); err != nil {
		return nil, errBadPublicKey
	}
	k.negA.Negate(&a)
	copy(k.raw[:], pub)
	return k, nil
}

// Is reports whether k was made from pub's bytes.
func (k *VerifyingKey) Is(pub []byte) bool {
	return k != nil && bytes.Equal(k.raw[:], pub)
}

// Verify reports whether sig is a valid Ed25519 signature of msg by k,
// exactly as crypto/ed25519.Verify(pub, msg, sig) does.
func (k *VerifyingKey) Verify(msg, sig []byte) bool {
	if len(sig) != ed25519.SignatureSize || sig[63]&224 != 0 {
		return false
	}
	// k = SHA-512(R || A || M) mod L, over A's bytes as given (not
	// re-encoded: a non-canonical encoding hashes as sent).
	h := sha512.New()
	h.Write(sig[:32])
	h.Write(k.raw[:])
	h.Write(msg)
	var digest [sha512.Size]byte
	kScalar, err := edwards25519.NewScalar().SetUniformBytes(h.Sum(digest[:0]))
	if err != nil {
		return false // unreachable: the digest is 64 bytes
	}
	s, err := edwards25519.NewScalar().SetCanonicalBytes(sig[32:])
	if err != nil {
		return false
	}
	// [S]B = R + [k]A  <=>  [k](-A) + [S]B = R, compared as bytes.
	var r edwards25519.Point
	r.VarTimeDoubleScalarBaseMult(kScalar, &k.negA, s)
	return bytes.Equal(sig[:32], r.Bytes())
}
