package auth

import (
	"crypto/ed25519"
	"fmt"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
)

// BenchmarkCheckSigs: a push of 100 commits by one session found in a
// session directory, the path a pushed commit's signature takes.
func BenchmarkCheckSigs(b *testing.B) {
	root := ed25519.NewKeyFromSeed(make([]byte, 32))
	d := NewSessions(root.Public().(ed25519.PublicKey))
	alice := ed25519.NewKeyFromSeed(append(make([]byte, 31), 1))
	s := Session{
		ID: SessionID(alice.Public().(ed25519.PublicKey)), Owner: "alice",
		PublicKey: alice.Public().(ed25519.PublicKey), Expires: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	if err := s.SignRecord(root); err != nil {
		b.Fatal(err)
	}
	if err := d.Put(s); err != nil {
		b.Fatal(err)
	}
	commits := make([]*core.Commit, 100)
	idChecked := make([]bool, len(commits))
	for i := range commits {
		c := &core.Commit{Repo: "r", Key: fmt.Sprint("k", i), Author: s.ID, TS: int64(i), Schema: "any/1", Data: map[string]any{"n": float64(i)}}
		if err := c.Sign(alice); err != nil {
			b.Fatal(err)
		}
		commits[i], idChecked[i] = c, true
	}
	for b.Loop() {
		if got := CheckSigsIDsChecked(commits, idChecked, d, nil).Len(); got != len(commits) {
			b.Fatalf("%d verified", got)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*len(commits)), "µs/commit")
}
