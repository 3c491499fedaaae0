package auth

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
)

// keyLookup is a SessionLookup of bare public keys by session id.
type keyLookup map[string]ed25519.PublicKey

func (l keyLookup) Session(id string) (Session, error) {
	pub, ok := l[id]
	if !ok {
		return Session{}, fmt.Errorf("%w: session %s", core.ErrNotFound, id)
	}
	return Session{ID: id, PublicKey: pub, Expires: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}, nil
}

// ed25519L is the order of the Ed25519 base point.
var ed25519L, _ = new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)

// malleate returns sig with S replaced by S+L: the same point equation,
// a non-canonical scalar, which crypto/ed25519 refuses.
func malleate(sig []byte) []byte {
	s := make([]byte, 32)
	for i := range 32 { // little-endian to big-endian
		s[i] = sig[63-i]
	}
	n := new(big.Int).Add(new(big.Int).SetBytes(s), ed25519L)
	b := n.FillBytes(make([]byte, 32))
	out := append([]byte(nil), sig[:32]...)
	for i := range 32 {
		out = append(out, b[31-i])
	}
	return out
}

func TestCheckSigs(t *testing.T) {
	raw, err := os.ReadFile("../core/testdata/commits.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Seed    string `json:"seed"`
		Vectors []struct {
			Name   string `json:"name"`
			Commit string `json:"commit"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	seed, err := hex.DecodeString(file.Seed)
	if err != nil {
		t.Fatal(err)
	}
	key := ed25519.NewKeyFromSeed(seed)
	other := newEd25519(t)
	lookup := keyLookup{}
	// A small-order public key (the identity point) and the signature
	// (R = identity, S = 0) that crypto/ed25519 accepts for any message
	// with it: a batch verifier with another equation would disagree.
	identity := make([]byte, 32)
	identity[0] = 1
	weakSig := append(append([]byte(nil), identity...), make([]byte, 32)...)

	type variant struct {
		name string
		c    *core.Commit
	}
	var variants []variant
	for _, v := range file.Vectors {
		decode := func() *core.Commit {
			c, err := core.DecodeCommit([]byte(v.Commit))
			if err != nil {
				t.Fatalf("%s: %v", v.Name, err)
			}
			return c
		}
		c := decode()
		if c.IsMerge() {
			variants = append(variants, variant{v.Name, c})
			continue
		}
		lookup[c.Author] = key.Public().(ed25519.PublicKey)
		edit := func(name string, f func(c *core.Commit)) {
			c := decode()
			f(c)
			variants = append(variants, variant{v.Name + "/" + name, c})
		}
		for i := range 4 { // distinct commits with the same content
			edit(fmt.Sprint("valid #", i), func(*core.Commit) {})
		}
		edit("flipped bit", func(c *core.Commit) { c.Sig[5] ^= 1 })
		edit("S+L", func(c *core.Commit) { c.Sig = malleate(c.Sig) })
		edit("other key", func(c *core.Commit) { c.Sig = ed25519.Sign(other, c.ID[:]) })
		edit("content changed", func(c *core.Commit) { c.TS++ })
		edit("unknown session", func(c *core.Commit) { c.Author = "s_unknown" })
		edit("small-order key", func(c *core.Commit) {
			c.Author = "s_weak"
			c.Sig = weakSig
		})
	}
	lookup["s_weak"] = identity

	// The slow path, commit by commit, is the oracle: of the signature
	// check alone (what CheckSigs records) and of the whole verification.
	want := make([]bool, len(variants))
	wantSig := make([]bool, len(variants))
	valid := 0
	for i, v := range variants {
		want[i] = !v.c.IsMerge() && VerifyReplicatedCommit(v.c, lookup) == nil
		pub, known := lookup[v.c.Author]
		wantSig[i] = !v.c.IsMerge() && known && v.c.VerifySig(pub) == nil
		if wantSig[i] {
			valid++
		}
	}
	if valid < parallelSigsMin {
		t.Fatalf("only %d valid commits: the parallel path needs %d", valid, parallelSigsMin)
	}
	commits := make([]*core.Commit, len(variants))
	for i, v := range variants {
		commits[i] = v.c
	}
	checked := CheckSigs(commits, lookup, nil)
	if got := checked.Len(); got != valid {
		t.Fatalf("CheckSigs recorded %d commits, want the %d that verify one by one", got, valid)
	}
	for i, v := range variants {
		if v.c.IsMerge() {
			continue
		}
		if got := checked.has(v.c, lookup[v.c.Author]); got != wantSig[i] {
			t.Fatalf("%s: recorded=%v, single signature check says %v", v.name, got, wantSig[i])
		}
		if got := VerifyReplicatedCommitChecked(v.c, lookup, checked) == nil; got != want[i] {
			t.Fatalf("%s: checked verification accepted=%v, single verification %v", v.name, got, want[i])
		}
	}

	t.Run("ACommitChangedAfterTheCheckIsCheckedAgain", func(t *testing.T) {
		for i, v := range variants {
			if !want[i] || v.c.Author == "s_weak" {
				continue
			}
			c := v.c
			sig := c.Sig
			c.Sig = ed25519.Sign(other, c.ID[:])
			if err := VerifyReplicatedCommitChecked(c, lookup, checked); err == nil {
				t.Fatalf("%s: a signature replaced after CheckSigs was accepted", v.name)
			}
			c.Sig = sig
			return
		}
	})

	t.Run("IDsChecked", func(t *testing.T) {
		// The caller vouches for the ids that recompute (as a canonical
		// decode checked them); the rest are checked whole. The record
		// must be CheckSigs's.
		idChecked := make([]bool, len(commits))
		vouched := 0
		for i, c := range commits {
			if id, err := c.ComputeID(); err == nil && id == c.ID {
				idChecked[i] = true
				vouched++
			}
		}
		if vouched == 0 || vouched == len(commits) {
			t.Fatalf("%d of %d ids vouched for: the case needs both kinds", vouched, len(commits))
		}
		got := CheckSigsIDsChecked(commits, idChecked, lookup, nil)
		if got.Len() != valid {
			t.Fatalf("recorded %d commits, want %d", got.Len(), valid)
		}
		for i, v := range variants {
			if !v.c.IsMerge() && got.has(v.c, lookup[v.c.Author]) != wantSig[i] {
				t.Fatalf("%s: recorded=%v, single signature check says %v", v.name, !wantSig[i], wantSig[i])
			}
		}
	})

	t.Run("SkipIsNotRecorded", func(t *testing.T) {
		checked := CheckSigs(commits, lookup, func(*core.Commit) bool { return true })
		if got := checked.Len(); got != 0 {
			t.Fatalf("recorded %d skipped commits", got)
		}
	})

	t.Run("Sequential", func(t *testing.T) {
		few := CheckSigs(commits[:3], lookup, nil)
		for _, c := range commits[:3] {
			want := !c.IsMerge() && c.VerifySig(lookup[c.Author]) == nil
			if got := few.has(c, lookup[c.Author]); got != want {
				t.Fatalf("small batch: recorded=%v, want %v", got, want)
			}
		}
	})
}

func TestSession_verifyingKey(t *testing.T) {
	root := newEd25519(t)
	rootPub := root.Public().(ed25519.PublicKey)
	d := NewSessions(rootPub)
	alice := newEd25519(t)
	s := Session{
		ID: SessionID(alice.Public().(ed25519.PublicKey)), Owner: "alice",
		PublicKey: alice.Public().(ed25519.PublicKey), Expires: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	if err := s.SignRecord(root); err != nil {
		t.Fatal(err)
	}
	if err := d.Put(s); err != nil {
		t.Fatal(err)
	}

	t.Run("DirectoryDecodesOnce", func(t *testing.T) {
		for _, id := range []string{s.ID, NodeSessionID(rootPub)} {
			a, err := d.Session(id)
			if err != nil {
				t.Fatal(err)
			}
			if a.key == nil || a.key.k != nil {
				t.Fatalf("session %s: key %+v; want one attached, not decoded before its first use", id, a.key)
			}
			b, _ := d.Session(id)
			if a.key == nil || a.verifyingKey() != b.verifyingKey() {
				t.Fatalf("session %s: its key is decoded per lookup (key %p, %p), want once when stored", id, a.verifyingKey(), b.verifyingKey())
			}
			if !a.verifyingKey().Is(a.PublicKey) {
				t.Fatalf("session %s: the stored key is not its public key", id)
			}
		}
	})
	t.Run("AnEditedKeyIsDecodedAgain", func(t *testing.T) {
		got, _ := d.Session(s.ID)
		other := newEd25519(t)
		got.PublicKey = other.Public().(ed25519.PublicKey)
		k := got.verifyingKey()
		if !k.Is(got.PublicKey) {
			t.Fatal("verifyingKey kept the stored key after PublicKey changed")
		}
		msg := []byte("m")
		if !k.Verify(msg, ed25519.Sign(other, msg)) || k.Verify(msg, ed25519.Sign(alice, msg)) {
			t.Fatal("the key verifies the old key's signatures, or not the new one's")
		}
	})
	t.Run("CheckSigsThroughTheDirectory", func(t *testing.T) {
		var commits []*core.Commit
		for i := range 2 * parallelSigsMin {
			c := &core.Commit{Repo: "r", Key: fmt.Sprint("k", i), Author: s.ID, TS: int64(i), Schema: "any/1", Data: map[string]any{}}
			if err := c.Sign(alice); err != nil {
				t.Fatal(err)
			}
			commits = append(commits, c)
		}
		commits[3].Sig = malleate(commits[3].Sig)
		commits[7].Sig[0] ^= 1
		commits[9].TS++
		checked := CheckSigs(commits, d, nil)
		if got, want := checked.Len(), len(commits)-3; got != want {
			t.Fatalf("recorded %d commits, want %d", got, want)
		}
		for i, c := range commits {
			want := c.VerifySig(s.PublicKey) == nil
			if got := checked.has(c, s.PublicKey); got != want {
				t.Fatalf("commit %d: recorded=%v, crypto/ed25519 says %v", i, got, want)
			}
		}
	})
}
