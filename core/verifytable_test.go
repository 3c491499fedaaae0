package core

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"math/big"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"

	"filippo.io/edwards25519"
)

// scalarFromBig is n mod L as a Scalar.
func scalarFromBig(tb testing.TB, n *big.Int) *edwards25519.Scalar {
	tb.Helper()
	m := new(big.Int).Mod(n, curveL)
	s, err := edwards25519.NewScalar().SetCanonicalBytes(le32(m))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// fromDigits is sum d[i] 2^(w*i).
func fromDigits(d []int32, w uint) *big.Int {
	n := new(big.Int)
	for i := len(d) - 1; i >= 0; i-- {
		n.Lsh(n, w)
		n.Add(n, big.NewInt(int64(d[i])))
	}
	return n
}

// testScalars returns the scalars the fixed-base multiplications are
// held to: 0, 1, 2, L-1, L-2, 2^252, (2^512-1) mod L, those whose
// digits are all at one end of the range in radix 16 and 2^8, and
// random ones.
func testScalars(tb testing.TB) []*edwards25519.Scalar {
	tb.Helper()
	var out []*edwards25519.Scalar
	for _, n := range []int64{0, 1, 2, 7, 8, 9, 127, 128, 129, 255, 256} {
		out = append(out, scalarFromBig(tb, big.NewInt(n)))
	}
	lm1 := new(big.Int).Sub(curveL, big.NewInt(1))
	out = append(out,
		scalarFromBig(tb, lm1),
		scalarFromBig(tb, new(big.Int).Sub(curveL, big.NewInt(2))),
		scalarFromBig(tb, new(big.Int).Lsh(big.NewInt(1), 252)),
		scalarFromBig(tb, new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 252), big.NewInt(1))),
	)
	ff, _ := edwards25519.NewScalar().SetUniformBytes(bytes.Repeat([]byte{0xff}, 64))
	out = append(out, ff)
	// Every digit below the top one at an end of the range, the top one
	// chosen so the scalar is below L: radix 16 (the key's table) and
	// radix 2^8 (the base point's).
	for _, w := range []uint{4, baseW} {
		n := int((254 + w - 1) / w)
		half := int32(1) << (w - 1)
		for _, low := range []int32{-half, half - 1, -1, 1} {
			for top := int32(0); top <= 2; top++ {
				d := make([]int32, n)
				for i := range d {
					d[i] = low
				}
				d[n-1] = top
				v := fromDigits(d, w)
				if v.Sign() >= 0 && v.Cmp(curveL) < 0 {
					out = append(out, scalarFromBig(tb, v))
				}
			}
		}
	}
	rng := rand.NewChaCha8([32]byte{9})
	for range 64 {
		out = append(out, randScalar(rng))
	}
	return out
}

// testPoints returns the points the key table is held to: the identity,
// B, random points, the eight points of order dividing 8, and random
// points plus each of them (mixed order).
func testPoints(tb testing.TB) []*edwards25519.Point {
	tb.Helper()
	out := []*edwards25519.Point{edwards25519.NewIdentityPoint(), edwards25519.NewGeneratorPoint()}
	rng := rand.NewChaCha8([32]byte{10})
	t8, err := new(edwards25519.Point).SetBytes(mustHex(tb, "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"))
	if err != nil {
		tb.Fatal(err)
	}
	tor := edwards25519.NewIdentityPoint()
	for range 8 {
		a := new(edwards25519.Point).ScalarBaseMult(randScalar(rng))
		out = append(out, a, new(edwards25519.Point).Set(tor), new(edwards25519.Point).Add(a, tor))
		tor = new(edwards25519.Point).Add(tor, t8)
	}
	return out
}

func TestSignedDigits(t *testing.T) {
	for _, w := range []uint{4, baseW} {
		t.Run(fmt.Sprint("w=", w), func(t *testing.T) {
			n := int((254 + w - 1) / w)
			half := int32(1) << (w - 1)
			d := make([]int32, n)
			sawMin, sawMax := false, false
			for _, s := range testScalars(t) {
				signedDigits(s.Bytes(), w, d)
				for i, x := range d {
					top := i == n-1
					if x < -half || x > half || (!top && x == half) || (top && x < 0) {
						t.Fatalf("s=%x: digit %d = %d, out of range for w=%d", s.Bytes(), i, x, w)
					}
					sawMin = sawMin || x == -half
					sawMax = sawMax || (!top && x == half-1)
				}
				if got, want := fromDigits(d, w), fromLE32(s.Bytes()); got.Cmp(want) != 0 {
					t.Fatalf("digits of %x sum to %v, want %v", s.Bytes(), got, want)
				}
			}
			if !sawMin || !sawMax {
				t.Fatalf("the scalars do not reach both ends of the digit range (min %v, max %v)", sawMin, sawMax)
			}
		})
	}
}

// checkPoint fails tb unless acc is on the curve and equal to want, and
// encodes as want does.
func checkPoint(tb testing.TB, what string, acc extPoint, want *edwards25519.Point) {
	tb.Helper()
	got, err := acc.point()
	if err != nil {
		tb.Fatalf("%s: %v", what, err)
	}
	if got.Equal(want) != 1 {
		tb.Fatalf("%s = %x, want %x", what, got.Bytes(), want.Bytes())
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		tb.Fatalf("%s encodes as %x, want %x", what, got.Bytes(), want.Bytes())
	}
}

func TestBasepointTable_Mult(t *testing.T) {
	for i, s := range testScalars(t) {
		want := new(edwards25519.Point).ScalarBaseMult(s)
		checkPoint(t, fmt.Sprintf("#%d [%x]B", i, s.Bytes()), mulAdd(nil, nil, s), want)
	}
}

func TestKeyTable_Mult(t *testing.T) {
	scalars := testScalars(t)
	for pi, p := range testPoints(t) {
		tab := newKeyTable(p)
		for si, k := range scalars {
			what := fmt.Sprintf("point #%d %x, scalar #%d %x", pi, p.Bytes(), si, k.Bytes())
			checkPoint(t, "[k]P: "+what, mulAdd(tab, k, nil), new(edwards25519.Point).ScalarMult(k, p))
			s := scalars[(si*7+3)%len(scalars)]
			checkPoint(t, "[k]P + [s]B: "+what, mulAdd(tab, k, s), new(edwards25519.Point).VarTimeDoubleScalarBaseMult(k, p, s))
		}
	}
}

// signed returns n keys and, for each, a valid and a forged signature of
// a message per key.
func signed(n int) (pubs []ed25519.PublicKey, msgs, good, bad [][]byte) {
	rng := rand.NewChaCha8([32]byte{11})
	for i := range n {
		seed := make([]byte, 32)
		rng.Read(seed)
		priv := ed25519.NewKeyFromSeed(seed)
		msg := fmt.Appendf(nil, "message %d", i)
		sig := ed25519.Sign(priv, msg)
		forged := append([]byte(nil), sig...)
		forged[5] ^= 1
		pubs = append(pubs, priv.Public().(ed25519.PublicKey))
		msgs, good, bad = append(msgs, msg), append(good, sig), append(bad, forged)
	}
	return pubs, msgs, good, bad
}

func TestVerifyingKey_Table(t *testing.T) {
	pubs, msgs, good, bad := signed(12)
	mustKey := func(t *testing.T, pub []byte) *VerifyingKey {
		t.Helper()
		k, err := NewVerifyingKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	// verifyBoth checks k's answers for a good and a forged signature.
	verifyBoth := func(t *testing.T, set *tableSet, k *VerifyingKey, i int) {
		t.Helper()
		if !k.verify(set, msgs[i], good[i]) {
			t.Fatalf("key %d refuses its signature", i)
		}
		if k.verify(set, msgs[i], bad[i]) {
			t.Fatalf("key %d accepts a forgery", i)
		}
	}
	t.Run("Threshold", func(t *testing.T) {
		set := newTableSet(8)
		k := mustKey(t, pubs[0])
		for n := 1; n < tableAfter; n++ {
			if !k.verify(set, msgs[0], good[0]) {
				t.Fatalf("verification %d refuses a valid signature", n)
			}
			if k.table.Load() != nil {
				t.Fatalf("a table after %d verifications, want one at %d", n, tableAfter)
			}
		}
		// The tableAfter-th verification builds the table and uses it.
		if k.verify(set, msgs[0], bad[0]) {
			t.Fatal("the verification that builds the table accepts a forgery")
		}
		if k.table.Load() == nil || set.held() != 1 {
			t.Fatalf("no table after %d verifications (set holds %d)", tableAfter, set.held())
		}
		verifyBoth(t, set, k, 0)
		if !k.verify(set, msgs[0], good[0]) || k.verify(set, msgs[1], good[0]) || k.verify(set, msgs[0], good[1]) {
			t.Fatal("the tabled key answers wrongly")
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		// Goroutines verifying with one fresh key across the threshold:
		// one builds the table, the others go on without it, and every
		// answer is right (under -race, the table's publication is
		// checked too).
		for round := range 4 {
			set := newTableSet(8)
			k := mustKey(t, pubs[round])
			var wg sync.WaitGroup
			errs := make(chan error, 16)
			for g := range 16 {
				wg.Go(func() {
					for j := range 20 {
						if !k.verify(set, msgs[round], good[round]) {
							errs <- fmt.Errorf("goroutine %d, verification %d: refuses a valid signature", g, j)
							return
						}
						if k.verify(set, msgs[round], bad[round]) {
							errs <- fmt.Errorf("goroutine %d, verification %d: accepts a forgery", g, j)
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if k.table.Load() == nil || set.held() != 1 {
				t.Fatalf("round %d: 640 verifications and no table (set holds %d)", round, set.held())
			}
		}
	})
	t.Run("Collected", func(t *testing.T) {
		// Keys nobody holds any more are collected with their tables
		// and free their slots: new keys get tables without taking the
		// one of a key still verifying.
		const budget = 4
		set := newTableSet(budget)
		keep := mustKey(t, pubs[0])
		for range tableAfter {
			verifyBoth(t, set, keep, 0)
		}
		func() {
			for i := 1; i < budget; i++ {
				k := mustKey(t, pubs[i])
				for range tableAfter {
					verifyBoth(t, set, k, i)
				}
				if k.table.Load() == nil {
					t.Fatalf("key %d: no table with a free slot", i)
				}
			}
		}()
		if got := set.held(); got != budget {
			t.Fatalf("%d keys hold tables, want %d", got, budget)
		}
		for n := 0; set.held() > 1; n++ {
			if n == 10 {
				t.Fatalf("%d keys nobody holds still hold tables after %d collections", set.held()-1, n)
			}
			runtime.GC()
		}
		fresh := make([]*VerifyingKey, 0, budget-1)
		for i := budget; i < 2*budget-1; i++ {
			k := mustKey(t, pubs[i])
			for range tableAfter {
				verifyBoth(t, set, k, i)
			}
			fresh = append(fresh, k)
		}
		if keep.table.Load() == nil {
			t.Fatal("a key still verifying lost its table while collected keys' slots were free")
		}
		for i, k := range fresh {
			if k.table.Load() == nil {
				t.Fatalf("new key %d has no table", i)
			}
		}
		if got := set.held(); got != budget {
			t.Fatalf("%d keys hold tables, want %d", got, budget)
		}
	})
	t.Run("Budget", func(t *testing.T) {
		const budget = 4
		set := newTableSet(budget)
		keys := make([]*VerifyingKey, len(pubs))
		for i := range keys {
			keys[i] = mustKey(t, pubs[i])
		}
		tabled := func() (n int) {
			for _, k := range keys {
				if k.table.Load() != nil {
					n++
				}
			}
			return n
		}
		// Keys 0-3 get tables; 4 takes one from 0 (one round of the
		// clock clears everyone's flag, then the hand is back at 0).
		for i := range budget + 1 {
			for range tableAfter {
				verifyBoth(t, set, keys[i], i)
			}
		}
		if got, want := tabled(), budget; got != want || set.held() != budget {
			t.Fatalf("%d keys with tables (set holds %d), want %d", got, set.held(), want)
		}
		if keys[0].table.Load() != nil || keys[4].table.Load() == nil {
			t.Fatal("key 4 did not take key 0's table")
		}
		// Key 1 verifies, 2 and 3 do not: key 5 takes 2's table.
		verifyBoth(t, set, keys[1], 1)
		for range tableAfter {
			verifyBoth(t, set, keys[5], 5)
		}
		if keys[1].table.Load() == nil || keys[2].table.Load() != nil || keys[5].table.Load() == nil {
			t.Fatalf("key 5 took the wrong table: tables 1 %v, 2 %v, 5 %v", keys[1].table.Load() != nil, keys[2].table.Load() != nil, keys[5].table.Load() != nil)
		}
		// Every key, with a table or without, answers right, many more
		// keys than the budget verifying in turn; the set stays at its
		// bound.
		for range 3 {
			for i, k := range keys {
				verifyBoth(t, set, k, i)
				if got := tabled(); got > budget || set.held() != budget {
					t.Fatalf("%d keys with tables (set holds %d), budget %d", got, set.held(), budget)
				}
			}
		}
		// A key that lost its table gets one again after tableAfter
		// more verifications.
		k0 := keys[0]
		for n := 0; k0.table.Load() == nil; n++ {
			if n == tableAfter {
				t.Fatalf("key 0 has no table again after %d more verifications", n)
			}
			verifyBoth(t, set, k0, 0)
		}
	})
}

func BenchmarkVerifyingKey_Verify(b *testing.B) {
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	pub := priv.Public().(ed25519.PublicKey)
	msg := make([]byte, 32)
	sig := ed25519.Sign(priv, msg)
	b.Run("crypto-ed25519", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !ed25519.Verify(pub, msg, sig) {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("cached-key", func(b *testing.B) {
		k, err := NewVerifyingKey(pub)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if !k.verify(nil, msg, sig) {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("tabled", func(b *testing.B) {
		k := tabledKey(b, pub)
		basepointTable()
		b.ReportAllocs()
		for b.Loop() {
			if !k.Verify(msg, sig) {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("tabled-64-keys", func(b *testing.B) {
		// 64 sessions pushing in turn, as goat-bench's ingest does: 64
		// tables (1.9 MiB) do not fit a core's cache.
		pubs, msgs, good, _ := signed(64)
		keys := make([]*VerifyingKey, len(pubs))
		for i, p := range pubs {
			keys[i] = tabledKey(b, p)
		}
		basepointTable()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if !keys[i].Verify(msgs[i], good[i]) {
				b.Fatal("invalid")
			}
			i = (i + 1) % len(keys)
		}
	})
	b.Run("table-build", func(b *testing.B) {
		k, err := NewVerifyingKey(pub)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			newKeyTable(&k.negA)
		}
	})
}
