package core

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha512"
	"errors"
	"sync"
	"sync/atomic"
	"weak"

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
// From its tableAfter-th verification on, a key computes the sum R' =
// [k](-A) + [S]B from fixed-base tables instead of the library's
// VarTimeDoubleScalarBaseMult (verifytable.go; docs/decisions.md,
// "Fixed-base tables for a session key's verifications"): the same
// group element by complete formulas, encoded by the library's
// Point.Bytes and compared as bytes, so the answer does not change
// (the tests ask every case of both paths). At most maxTabledKeys keys
// hold a table at a time, one that stopped verifying losing it to a
// new one.
//
// A VerifyingKey is safe for concurrent use: its key is immutable, its
// table is built once by one goroutine and published complete.
type VerifyingKey struct {
	raw  [ed25519.PublicKeySize]byte
	negA edwards25519.Point // -A, as verifyWithDom computes it per call

	uses     atomic.Uint32 // verifications begun since the key last lost its table, up to tableAfter
	building atomic.Bool   // one goroutine builds the table
	recent   atomic.Bool   // verified with its table since the clock hand last passed
	table    atomic.Pointer[keyTable]
}

const (
	// tableAfter is the verification that builds a key's table. A
	// table costs about three verifications to build and saves about
	// 60% of each one after, so a key that verifies once or twice (a
	// session that pushes one commit) does not get one, and a push of
	// 100 commits pays for its key's table in that push.
	tableAfter = 3
	// maxTabledKeys bounds the keys holding a 30 KiB table at once:
	// 15 MiB. The session directory keeps every session's key for the
	// life of the process, so the bound is kept by taking tables away
	// from keys that stopped verifying, not only by collecting keys.
	maxTabledKeys = 512
)

// keyTables is the process's set of keys holding a table.
var keyTables = newTableSet(maxTabledKeys)

// tableSet holds at most max keys with tables and takes a table away
// with the clock algorithm (second chance, an approximation of least
// recently used): a key that verified since the hand last passed keeps
// its table for one more round. Verifications only read and set a key's
// recent flag; the lock is taken when a key gets a table. The set holds
// its keys weakly: a key nobody else holds is collected with its table,
// and its slot is the next one given out.
type tableSet struct {
	mu   sync.Mutex
	max  int
	keys []weak.Pointer[VerifyingKey]
	hand int
}

func newTableSet(maxKeys int) *tableSet { return &tableSet{max: max(maxKeys, 1)} }

// admit publishes t as k's table, taking one away from another key if
// the set is full.
func (s *tableSet) admit(k *VerifyingKey, t *keyTable) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.keys) < s.max {
		s.keys = append(s.keys, weak.Make(k))
	} else {
		// One round clears every flag, so this ends within two.
		for {
			v := s.keys[s.hand].Value()
			if v != nil && v.recent.Swap(false) {
				s.hand = (s.hand + 1) % len(s.keys)
				continue
			}
			if v != nil {
				// v's next verifications use the untabled path
				// until it counts to tableAfter again.
				v.table.Store(nil)
				v.uses.Store(0)
				v.building.Store(false)
			}
			s.keys[s.hand] = weak.Make(k)
			s.hand = (s.hand + 1) % len(s.keys)
			break
		}
	}
	k.recent.Store(true)
	k.table.Store(t)
}

// held returns the number of keys holding a table and not collected.
func (s *tableSet) held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, p := range s.keys {
		if p.Value() != nil {
			n++
		}
	}
	return n
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
	return k.verify(keyTables, msg, sig)
}

// verify is Verify with the set that tables are admitted to; a nil set
// never gives k a table.
func (k *VerifyingKey) verify(set *tableSet, msg, sig []byte) bool {
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
	if t := k.tableFor(set); t != nil {
		acc := mulAdd(t, kScalar, s)
		r, err := acc.point()
		return err == nil && bytes.Equal(sig[:32], r.Bytes())
	}
	var r edwards25519.Point
	r.VarTimeDoubleScalarBaseMult(kScalar, &k.negA, s)
	return bytes.Equal(sig[:32], r.Bytes())
}

// tableFor returns k's table, building it at the tableAfter-th
// verification, or nil while k has none.
func (k *VerifyingKey) tableFor(set *tableSet) *keyTable {
	if set == nil {
		return nil
	}
	if t := k.table.Load(); t != nil {
		if !k.recent.Load() {
			k.recent.Store(true)
		}
		return t
	}
	if k.uses.Load() < tableAfter-1 {
		k.uses.Add(1)
		return nil
	}
	if !k.building.CompareAndSwap(false, true) {
		return nil // another goroutine builds it; this one does not wait
	}
	t := newKeyTable(&k.negA)
	set.admit(k, t)
	return t
}
