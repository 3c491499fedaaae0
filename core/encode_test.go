package core

import (
	"bytes"
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
