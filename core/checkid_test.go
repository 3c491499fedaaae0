package core

import (
	"crypto/ed25519"
	"testing"
)

// TestCommit_CheckID: the length checkID reports is MarshalJSON's, so
// DecodeCommitValue's size limit is the one DecodeCommit applies to bytes.
func TestCommit_CheckID(t *testing.T) {
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	for _, c := range []*Commit{
		{Repo: "r", Key: "k", Author: "s_aaaaaaaaaaaaaaaaaaaaaaaa", TS: 1, Schema: AnySchema, Data: map[string]any{"a": "b"}},
		{Repo: "r", Key: "k2", Author: MergeAuthor, TS: 2, Schema: AnySchema, Data: map[string]any{}, Parents: []CommitID{{1}, {2}}},
	} {
		if c.IsMerge() {
			if err := c.Seal(); err != nil {
				t.Fatal(err)
			}
		} else if err := c.Sign(priv); err != nil {
			t.Fatal(err)
		}
		b, err := c.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		n, err := c.checkID()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := n, len(b); got != want {
			t.Fatalf("checkID length=%d, want len(MarshalJSON)=%d", got, want)
		}
		c.ID[0] ^= 1
		if _, err := c.checkID(); err == nil {
			t.Fatal("checkID accepted a wrong id")
		}
	}
}
