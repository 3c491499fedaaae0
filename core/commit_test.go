package core

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
)

func testKey(tb testing.TB) ed25519.PrivateKey {
	tb.Helper()
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i)
	}
	return ed25519.NewKeyFromSeed(seed)
}

func signedCommit(tb testing.TB) *Commit {
	tb.Helper()
	c := &Commit{
		Repo: "user.alice.notes", Key: "task-1", Author: "s_alice", TS: 1763800000000,
		Schema: "task/2", Data: map[string]any{"title": "Buy milk", "done": false},
	}
	if err := c.Sign(testKey(tb)); err != nil {
		tb.Fatal(err)
	}
	return c
}

func TestCommit_SignVerifyRoundTrip(t *testing.T) {
	c := signedCommit(t)
	b, err := c.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeCommit(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != c.ID {
		t.Fatalf("id=%s, want %s", got.ID, c.ID)
	}
	pub := testKey(t).Public().(ed25519.PublicKey)
	if err := got.VerifySig(pub); err != nil {
		t.Fatal(err)
	}
	b2, _ := got.MarshalJSON()
	if string(b2) != string(b) {
		t.Fatalf("re-encoding differs:\n%s\n%s", b, b2)
	}

	t.Run("TamperedData", func(t *testing.T) {
		got.Data["title"] = "Buy beer"
		if err := got.VerifySig(pub); !errors.Is(err, ErrInvalid) {
			t.Fatalf("err=%v, want ErrInvalid", err)
		}
	})
	t.Run("OtherKey", func(t *testing.T) {
		_, other, _ := ed25519.GenerateKey(nil)
		if err := c.VerifySig(other.Public().(ed25519.PublicKey)); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("err=%v, want ErrBadSignature", err)
		}
	})
	t.Run("ReplayedIntoOtherRepo", func(t *testing.T) {
		moved := *c
		moved.Repo = "user.bob.notes"
		if err := moved.VerifySig(pub); !errors.Is(err, ErrInvalid) {
			t.Fatalf("err=%v, want ErrInvalid (the repo is part of the id)", err)
		}
	})
}

func TestDecodeCommit_Rejects(t *testing.T) {
	good, _ := signedCommit(t).MarshalJSON()
	gs := string(good)
	id := signedCommit(t).ID.String()
	cases := []struct {
		name, in, field string
	}{
		{"not an object", `[]`, "object"},
		{"unknown field", strings.Replace(gs, `{"author"`, `{"x":1,"author"`, 1), "x: unknown field"},
		{"bad hex id", strings.Replace(gs, id, strings.ToUpper(id), 1), "id"},
		{"id mismatch", strings.Replace(gs, `"Buy milk"`, `"Buy beer"`, 1), "id"},
		{"missing sig", strings.Replace(gs, gs[strings.Index(gs, `,"sig"`):strings.Index(gs, `,"ts"`)], "", 1), "sig"},
		{"bad sig", strings.Replace(gs, `"sig":"`, `"sig":"!!`, 1), "sig"},
		{"ts not integer", strings.Replace(gs, `"ts":1763800000000`, `"ts":1.5`, 1), "ts"},
		{"ts string", strings.Replace(gs, `"ts":1763800000000`, `"ts":"1"`, 1), "ts"},
		{"bad repo", strings.Replace(gs, `user.alice.notes`, `User/Alice`, 1), "repo"},
		{"dotdot repo", strings.Replace(gs, `user.alice.notes`, `user..x`, 1), "repo"},
		{"bad key", strings.Replace(gs, `task-1`, `task 1`, 1), "key"},
		{"bad schema", strings.Replace(gs, `task/2`, `task/02`, 1), "schema"},
		{"both data and delta", strings.Replace(gs, `"id"`, `"delta":{"base":"`+id+`","ops":[{"op":"unset","field":"a"}]},"id"`, 1), "exactly one"},
		{"neither", strings.Replace(gs, `"data":{"done":false,"title":"Buy milk"},`, ``, 1), "exactly one"},
		{"data not object", strings.Replace(gs, `"data":{"done":false,"title":"Buy milk"}`, `"data":[1]`, 1), "data"},
		{"duplicate key", strings.Replace(gs, `{"author"`, `{"key":"x","author"`, 1), "duplicate"},
		{"oversized", `{"author":"` + strings.Repeat("a", MaxCommitBytes) + `"}`, "bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeCommit([]byte(c.in))
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("err=%v, want ErrInvalid or ErrTooLarge", err)
			}
			if !strings.Contains(err.Error(), c.field) {
				t.Fatalf("err=%q does not name %q", err, c.field)
			}
		})
	}
}

func TestCommit_ParentsMustBeSortedUnique(t *testing.T) {
	a, b := CommitID{1}, CommitID{2}
	for _, ps := range [][]CommitID{{b, a}, {a, a}} {
		c := &Commit{Repo: "r", Key: "k", Author: "s1", Schema: "any/1", Data: map[string]any{}, Parents: ps}
		if err := c.Seal(); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "parents") {
			t.Fatalf("parents %v: err=%v", ps, err)
		}
	}
}

func TestCommit_MergeCommitRules(t *testing.T) {
	m := &Commit{Repo: "r", Key: "k", Author: MergeAuthor, Schema: "any/1", Data: map[string]any{}, Parents: []CommitID{{1}, {2}}}
	if err := m.Seal(); err != nil {
		t.Fatal(err)
	}
	b, _ := m.MarshalJSON()
	if _, err := DecodeCommit(b); err != nil {
		t.Fatalf("unsigned merge commit refused: %v", err)
	}
	if err := m.Sign(testKey(t)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("signing a merge: err=%v", err)
	}
	m.Parents = m.Parents[:1]
	if err := m.Seal(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("one-parent merge: err=%v", err)
	}
}

// FuzzDecodeCommit: decoding never panics, and whatever decodes re-encodes
// to bytes that decode to the same id.
func FuzzDecodeCommit(f *testing.F) {
	good, _ := signedCommit(f).MarshalJSON()
	f.Add(good)
	f.Add([]byte(`{"author":"merge","data":{},"id":"00","key":"k","parents":[],"repo":"r","schema":"any/1","ts":0}`))
	f.Add([]byte(`{"delta":{"base":"` + strings.Repeat("0", 64) + `","ops":[{"op":"splice","field":"t","at":0,"del":1,"ins":"x"}]}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommit(b)
		if err != nil {
			return
		}
		out, err := c.MarshalJSON()
		if err != nil {
			t.Fatalf("decoded commit does not encode: %v", err)
		}
		c2, err := DecodeCommit(out)
		if err != nil || c2.ID != c.ID {
			t.Fatalf("re-decode: %v", err)
		}
	})
}
