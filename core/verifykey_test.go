package core

import (
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"filippo.io/edwards25519"
)

// curveL is the order of the Ed25519 base point; curveP the field prime.
var (
	curveL, _ = new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
	curveP    = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
)

// le32 is n as 32 little-endian bytes (n < 2^256).
func le32(n *big.Int) []byte {
	b := n.FillBytes(make([]byte, 32))
	for i, j := 0, 31; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return b
}

// fromLE32 is the inverse of le32.
func fromLE32(b []byte) *big.Int {
	r := make([]byte, len(b))
	for i := range b {
		r[len(b)-1-i] = b[i]
	}
	return new(big.Int).SetBytes(r)
}

func mustHex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// smallOrderEncodings returns the encodings of the eight points of order
// dividing 8, canonical and not: each with the sign bit flipped, and
// those with y < 19 also as y+p (the set of "Taming the many EdDSAs" and
// ed25519-speccheck, which crypto/ed25519 and SetBytes treat in their own
// way: whatever they do, VerifyingKey must do the same).
func smallOrderEncodings(tb testing.TB) [][]byte {
	tb.Helper()
	// A point of order 8 (speccheck's list), and its multiples.
	t8, err := new(edwards25519.Point).SetBytes(mustHex(tb, "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"))
	if err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	p := edwards25519.NewIdentityPoint()
	for range 8 {
		enc := p.Bytes()
		out = append(out, enc)
		flipped := append([]byte(nil), enc...)
		flipped[31] ^= 0x80
		out = append(out, flipped)
		y := fromLE32(append(append([]byte(nil), enc[:31]...), enc[31]&0x7f))
		if yp := new(big.Int).Add(y, curveP); yp.BitLen() <= 255 {
			nc := le32(yp)
			out = append(out, nc)
			nc2 := append([]byte(nil), nc...)
			nc2[31] |= 0x80
			out = append(out, nc2)
		}
		p.Add(p, t8)
	}
	if p.Equal(edwards25519.NewIdentityPoint()) != 1 {
		tb.Fatal("the order-8 point is not of order 8")
	}
	return out
}

// signWith signs msg as Ed25519 does, with secret scalar a, nonce r and
// public key bytes pub (which need not be [a]B: a key with a small-order
// component signs this way). It returns R || S.
func signWith(a, r *edwards25519.Scalar, pub, msg []byte) []byte {
	R := new(edwards25519.Point).ScalarBaseMult(r)
	h := sha512.New()
	h.Write(R.Bytes())
	h.Write(pub)
	h.Write(msg)
	k, _ := edwards25519.NewScalar().SetUniformBytes(h.Sum(nil))
	S := edwards25519.NewScalar().MultiplyAdd(k, a, r)
	return append(R.Bytes(), S.Bytes()...)
}

func randScalar(rng *rand.ChaCha8) *edwards25519.Scalar {
	var b [64]byte
	rng.Read(b[:])
	s, _ := edwards25519.NewScalar().SetUniformBytes(b[:])
	return s
}

// verifyCase is one (key, message, signature) compared between
// VerifyingKey and crypto/ed25519.
type verifyCase struct {
	name          string
	pub, msg, sig []byte
}

// checkAgrees fails tb if VerifyingKey and crypto/ed25519.Verify answer
// differently for c; it returns the answer.
func checkAgrees(tb testing.TB, c verifyCase) bool {
	tb.Helper()
	want := len(c.pub) == ed25519.PublicKeySize && ed25519.Verify(c.pub, c.msg, c.sig)
	k, err := NewVerifyingKey(c.pub)
	if err != nil {
		if want {
			tb.Fatalf("%s: NewVerifyingKey(%x): %v, but crypto/ed25519 accepts a signature by it", c.name, c.pub, err)
		}
		return false
	}
	if !k.Is(c.pub) {
		tb.Fatalf("%s: Is(its own bytes) = false", c.name)
	}
	if got := k.Verify(c.msg, c.sig); got != want {
		tb.Fatalf("%s: Verify(pub %x, msg %x, sig %x) = %v, crypto/ed25519 says %v", c.name, c.pub, c.msg, c.sig, got, want)
	}
	if k.table.Load() != nil {
		tb.Fatalf("%s: a key has a table after its first verification", c.name)
	}
	// The same key past the threshold: with its fixed-base table.
	kt := tabledKey(tb, c.pub)
	if got := kt.Verify(c.msg, c.sig); got != want {
		tb.Fatalf("%s: with its table, Verify(pub %x, msg %x, sig %x) = %v, crypto/ed25519 says %v", c.name, c.pub, c.msg, c.sig, got, want)
	}
	return want
}

// keyTableCache holds the tables tabledKey built, by key bytes: many
// cases share a key, and a table costs about two verifications.
var (
	keyTableCache  sync.Map
	keyTableCached atomic.Int64
)

// tabledKey returns a key for pub (which must decode) that verifies
// with its fixed-base table, as a key does from its tableAfter-th
// verification on; it is in no table set, so it keeps the table.
func tabledKey(tb testing.TB, pub []byte) *VerifyingKey {
	tb.Helper()
	k, err := NewVerifyingKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	t, ok := keyTableCache.Load(string(pub))
	if !ok {
		t = newKeyTable(&k.negA)
		if keyTableCached.Add(1) <= 4096 { // 120 MiB at most (fuzzing tries many keys)
			keyTableCache.Store(string(pub), t)
		}
	}
	k.building.Store(true)
	k.table.Store(t.(*keyTable))
	return k
}

func TestVerifyingKey_Verify(t *testing.T) {
	t.Run("CommitVectors", func(t *testing.T) {
		raw, err := os.ReadFile("testdata/commits.json")
		if err != nil {
			t.Fatal(err)
		}
		var file struct {
			Vectors []struct {
				Name   string `json:"name"`
				Commit string `json:"commit"`
			} `json:"vectors"`
		}
		if err := json.Unmarshal(raw, &file); err != nil {
			t.Fatal(err)
		}
		pub := testKey(t).Public().(ed25519.PublicKey)
		other := ed25519.NewKeyFromSeed(make([]byte, 32)).Public().(ed25519.PublicKey)
		k, err := NewVerifyingKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		valid := 0
		for _, v := range file.Vectors {
			c, err := DecodeCommit([]byte(v.Commit))
			if err != nil {
				t.Fatalf("%s: %v", v.Name, err)
			}
			if c.IsMerge() {
				continue
			}
			if err := c.VerifySigOfIDKey(k); err != nil {
				t.Fatalf("%s: VerifySigOfIDKey: %v", v.Name, err)
			}
			valid++
			for _, m := range mutations(c.ID[:], c.Sig, pub, other) {
				checkAgrees(t, verifyCase{v.Name + "/" + m.name, m.pub, m.msg, m.sig})
			}
		}
		if valid == 0 {
			t.Fatal("no signed vector")
		}
	})
	t.Run("SmallOrderAndNonCanonical", func(t *testing.T) {
		// Every small-order or non-canonical key against every
		// small-order or non-canonical R, with S = 0 (the signature
		// that small-order keys accept for any message under some
		// equations) and S = 1, and a real key's R and S.
		encs := smallOrderEncodings(t)
		rng := rand.NewChaCha8([32]byte{1})
		a, r := randScalar(rng), randScalar(rng)
		A := new(edwards25519.Point).ScalarBaseMult(a).Bytes()
		msg := []byte("small order")
		realSig := signWith(a, r, A, msg)
		accepted, tried := 0, 0
		keys := append([][]byte{A}, encs...)
		rs := append([][]byte{realSig[:32]}, encs...)
		one := make([]byte, 32)
		one[0] = 1
		for i, pub := range keys {
			for j, R := range rs {
				for si, S := range [][]byte{make([]byte, 32), one, realSig[32:]} {
					sig := append(append([]byte(nil), R...), S...)
					if checkAgrees(t, verifyCase{fmt.Sprintf("key %d R %d S %d", i, j, si), pub, msg, sig}) {
						accepted++
					}
					tried++
				}
			}
		}
		// The set must hold signatures that crypto/ed25519 accepts
		// (the identity key with R = identity, S = 0) and refuses, or
		// it shows nothing.
		if accepted == 0 || accepted == tried {
			t.Fatalf("%d of %d accepted: the set does not exercise both answers", accepted, tried)
		}
	})
	t.Run("MixedOrderKeys", func(t *testing.T) {
		// A key A+T (T of order 8) signing honestly with a: the
		// cofactorless check passes exactly when [k]T is the identity,
		// which depends on k: some of these verify and some do not.
		rng := rand.NewChaCha8([32]byte{2})
		t8, err := new(edwards25519.Point).SetBytes(mustHex(t, "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"))
		if err != nil {
			t.Fatal(err)
		}
		accepted := 0
		const n = 200
		for i := range n {
			a, r := randScalar(rng), randScalar(rng)
			A := new(edwards25519.Point).ScalarBaseMult(a)
			pub := new(edwards25519.Point).Add(A, t8).Bytes()
			msg := binary.LittleEndian.AppendUint64(nil, uint64(i))
			sig := signWith(a, r, pub, msg)
			if checkAgrees(t, verifyCase{fmt.Sprint("mixed #", i), pub, msg, sig}) {
				accepted++
			}
			// R with a small-order component: cofactorless refuses it.
			Rt := new(edwards25519.Point).Add(new(edwards25519.Point).ScalarBaseMult(r), t8).Bytes()
			sig2 := signWith(a, r, A.Bytes(), msg)
			copy(sig2[:32], Rt)
			checkAgrees(t, verifyCase{fmt.Sprint("R+T #", i), A.Bytes(), msg, sig2})
		}
		if accepted == 0 || accepted == n {
			t.Fatalf("%d of %d mixed-order signatures accepted: expected about 1 in 8", accepted, n)
		}
	})
	t.Run("Random", func(t *testing.T) {
		rng := rand.NewChaCha8([32]byte{3})
		for i := range 300 {
			seed := make([]byte, 32)
			rng.Read(seed)
			priv := ed25519.NewKeyFromSeed(seed)
			pub := priv.Public().(ed25519.PublicKey)
			msg := make([]byte, i%70)
			rng.Read(msg)
			sig := ed25519.Sign(priv, msg)
			if !checkAgrees(t, verifyCase{fmt.Sprint("random #", i), pub, msg, sig}) {
				t.Fatalf("random #%d: a fresh signature does not verify", i)
			}
			for _, m := range mutations(msg, sig, pub, ed25519.NewKeyFromSeed(append(seed[1:], 7)).Public().(ed25519.PublicKey)) {
				checkAgrees(t, verifyCase{fmt.Sprintf("random #%d/%s", i, m.name), m.pub, m.msg, m.sig})
			}
		}
	})
	t.Run("BadKey", func(t *testing.T) {
		// Lengths other than 32 and a y that is not on the curve.
		for _, pub := range [][]byte{nil, make([]byte, 31), make([]byte, 33), mustHex(t, "0200000000000000000000000000000000000000000000000000000000000000")} {
			if _, err := NewVerifyingKey(pub); err == nil {
				t.Fatalf("NewVerifyingKey(%x) = nil error, want a refusal", pub)
			}
			if len(pub) == 32 && ed25519.Verify(pub, nil, make([]byte, 64)) {
				t.Fatalf("crypto/ed25519 accepts key %x", pub)
			}
		}
		var nilKey *VerifyingKey
		if nilKey.Is(nil) {
			t.Fatal("a nil key is some key")
		}
		c := &Commit{Sig: make([]byte, 64)}
		if err := c.VerifySigOfIDKey(nil); err == nil {
			t.Fatal("VerifySigOfIDKey(nil) = nil, want ErrBadSignature")
		}
	})
}

// mutations returns a valid (msg, sig) by pub and the forgeries made
// from it: S+L, S >= L with the high bits, S = L, flipped bits in R, S,
// the key and the message, another key, truncated and long signatures.
func mutations(msg, sig, pub, other []byte) []verifyCase {
	cp := func(b []byte) []byte { return append([]byte(nil), b...) }
	out := []verifyCase{{"valid", pub, msg, sig}}
	S := fromLE32(sig[32:])
	withS := func(name string, s *big.Int) {
		if s.BitLen() > 256 {
			return
		}
		out = append(out, verifyCase{name, pub, msg, append(cp(sig[:32]), le32(s)...)})
	}
	withS("S+L", new(big.Int).Add(S, curveL))
	withS("S+2L", new(big.Int).Add(S, new(big.Int).Lsh(curveL, 1)))
	withS("S=L", curveL)
	withS("S=0", new(big.Int))
	withS("S+2^253", new(big.Int).Add(S, new(big.Int).Lsh(big.NewInt(1), 253)))
	withS("S+2^255", new(big.Int).Add(S, new(big.Int).Lsh(big.NewInt(1), 255)))
	for _, bit := range []int{0, 7, 100, 254, 255, 256, 300, 500, 511} {
		s := cp(sig)
		s[bit/8] ^= 1 << (bit % 8)
		out = append(out, verifyCase{fmt.Sprint("sig bit ", bit), pub, msg, s})
		p := cp(pub)
		p[(bit/8)%32] ^= 1 << (bit % 8)
		out = append(out, verifyCase{fmt.Sprint("key bit ", bit), p, msg, sig})
		if len(msg) > 0 {
			m := cp(msg)
			m[(bit/8)%len(msg)] ^= 1 << (bit % 8)
			out = append(out, verifyCase{fmt.Sprint("msg bit ", bit), pub, m, sig})
		}
	}
	out = append(out,
		verifyCase{"other key", other, msg, sig},
		verifyCase{"msg longer", pub, append(cp(msg), 0), sig},
		verifyCase{"sig short", pub, msg, sig[:63]},
		verifyCase{"sig long", pub, msg, append(cp(sig), 0)},
		verifyCase{"sig empty", pub, msg, nil},
	)
	return out
}

// FuzzVerifyingKey compares VerifyingKey with crypto/ed25519 on raw
// inputs (mode even: pub, msg and sig as given) and on a valid signature
// by a key derived from pub's bytes, then damaged by XOR with sig's bytes
// (mode odd), so that the fuzzer explores near-valid signatures too.
func FuzzVerifyingKey(f *testing.F) {
	f.Add(make([]byte, 32), []byte("m"), make([]byte, 64), uint8(0))
	f.Add(make([]byte, 32), []byte("m"), []byte{}, uint8(1))
	f.Add([]byte("seed"), []byte{}, []byte{0, 0, 0, 1}, uint8(1))
	for _, e := range smallOrderEncodings(f) {
		f.Add(e, []byte("m"), append(append([]byte(nil), e...), make([]byte, 32)...), uint8(0))
	}
	f.Fuzz(func(t *testing.T, pub, msg, sig []byte, mode uint8) {
		if mode%2 == 1 {
			seed := sha512.Sum512(pub)
			priv := ed25519.NewKeyFromSeed(seed[:32])
			good := ed25519.Sign(priv, msg)
			for i, b := range sig {
				good[i%64] ^= b
			}
			pub, sig = priv.Public().(ed25519.PublicKey), good
		}
		checkAgrees(t, verifyCase{"fuzz", pub, msg, sig})
	})
}
