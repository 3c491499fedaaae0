package core

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
)

func TestCommit_MarshalJSONAndID(t *testing.T) {
	f := buildVectors(t)
	for _, v := range f.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			c, err := DecodeCommit([]byte(v.Commit))
			if err != nil {
				t.Fatal(err)
			}
			check := func(c *Commit) {
				t.Helper()
				b, id, err := c.MarshalJSONAndID()
				if err != nil {
					t.Fatal(err)
				}
				want, err := c.MarshalJSON()
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(b, want) {
					t.Fatalf("JSON %s, want MarshalJSON's %s", b, want)
				}
				wantID, err := c.ComputeID()
				if err != nil {
					t.Fatal(err)
				}
				if id != wantID {
					t.Fatalf("id %s, want ComputeID's %s", id, wantID)
				}
			}
			check(c)
			if got, want := c.ID.String(), v.ID; got != want {
				t.Fatalf("vector id %s, want %s", got, want)
			}
			// Changed content: the id no longer matches, and both ways of
			// computing it still agree.
			key := c.Key
			c.Key += "x"
			check(c)
			c.Key = key
			// Without a signature (a merge commit has none; so has a commit
			// being built).
			c.Sig = nil
			check(c)
		})
	}
	t.Run("Invalid", func(t *testing.T) {
		if _, _, err := (&Commit{}).MarshalJSONAndID(); err == nil {
			t.Fatal("an empty commit encoded")
		}
	})
}

func TestCommit_SignJSON(t *testing.T) {
	t.Run("SameAsSignThenMarshal", func(t *testing.T) {
		for _, delta := range []bool{false, true} {
			c := &Commit{
				Repo: "user.alice.notes", Key: "task-1", Author: "s_alice", TS: 1763800000000,
				Parents: []CommitID{{1}, {2}}, Schema: "task/2",
				Data: map[string]any{"title": "Buy \"milk\"", "done": false, "n": 1.5},
			}
			if delta {
				c.Data, c.Delta = nil, &Delta{Base: CommitID{1}, Ops: []Op{{Op: OpSet, Field: "done", Value: true}}}
			}
			want := *c
			if err := want.Sign(testKey(t)); err != nil {
				t.Fatal(err)
			}
			wantJSON, err := want.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.SignJSON(testKey(t))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, wantJSON) {
				t.Fatalf("JSON %s, want %s", got, wantJSON)
			}
			if c.ID != want.ID || !bytes.Equal(c.Sig, want.Sig) {
				t.Fatalf("id %s sig %x, want %s %x", c.ID, c.Sig, want.ID, want.Sig)
			}
			if err := c.VerifySig(testKey(t).Public().(ed25519.PublicKey)); err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Run("Invalid", func(t *testing.T) {
		c := &Commit{Repo: "r", Key: "k", Author: "s_a", Schema: "task/2"} // no data, no delta
		if _, err := c.SignJSON(testKey(t)); err == nil {
			t.Fatal("a commit without data signed")
		}
		if c.Sig != nil {
			t.Fatalf("sig %x left on a commit that failed to sign", c.Sig)
		}
		m := &Commit{Repo: "r", Key: "k", Author: MergeAuthor, Schema: "task/2", Data: map[string]any{}}
		if _, err := m.SignJSON(testKey(t)); !errors.Is(err, ErrInvalid) {
			t.Fatalf("merge commit: %v, want ErrInvalid", err)
		}
	})
}

// BenchmarkCommit_SignJSON is what a gateway-signed commit costs to sign
// and encode for storing: one encoding (SignJSON) against two (Sign, then
// MarshalJSONAndID, as storage did).
func BenchmarkCommit_SignJSON(b *testing.B) {
	priv := testKey(b)
	mk := func() *Commit {
		return &Commit{
			Repo: "bench", Key: "k1", Author: "s_putter", TS: 1763800000000, Schema: "any/1",
			Data: map[string]any{"title": strings.Repeat("x", 400), "n": 1.0},
		}
	}
	b.Run("once", func(b *testing.B) {
		for b.Loop() {
			if _, err := mk().SignJSON(priv); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("twice", func(b *testing.B) {
		for b.Loop() {
			c := mk()
			if err := c.Sign(priv); err != nil {
				b.Fatal(err)
			}
			if _, _, err := c.MarshalJSONAndID(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
