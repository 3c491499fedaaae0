package goat

import (
	"crypto/ed25519"
	"log/slog"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
	"github.com/goat-gateway/goat-gateway/merge"
)

// TestRepo_IngestManyHeads: commits received from the gateway that leave
// an item with more heads than one merge commit takes are merged in groups
// (merge.MergeAll) as they arrive; two replicas receiving the same heads
// in different orders build the same merge commits.
func TestRepo_IngestManyHeads(t *testing.T) {
	const repo, key, heads = "shared", "k", 700
	a := goattest.NewSigner("alice")
	cs := make([]*core.Commit, heads)
	g := map[core.CommitID]*core.Commit{}
	for i := range cs {
		cs[i] = a.CommitAt(int64(1_700_000_000_000+i/4), repo, key, map[string]any{"n": float64(i)})
		g[cs[i].ID] = cs[i]
	}
	ids := make([]core.CommitID, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
	}
	graph := merge.GraphFunc(func(id core.CommitID) (*core.Commit, bool) { c, ok := g[id]; return c, ok })
	want, err := merge.MergeAll(graph, core.NewRegistry(), repo, key, ids)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 17))
	for i := range 2 {
		c, err := Open(Config{
			URL: "http://127.0.0.1:1", Token: "x.eyJzdWIiOiJ0In0.x", NoSync: true,
			ReconnectMin: time.Second, ReconnectMax: time.Minute, Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		// Offline: the signer's key stands in for a root key, so its
		// commits verify as a node's own (no record needed).
		c.trust.setRoots([]ed25519.PublicKey{a.Key.Public().(ed25519.PublicKey)})
		r, err := c.Repo(repo)
		if err != nil {
			t.Fatal(err)
		}
		order := slices.Clone(cs)
		rng.Shuffle(len(order), func(x, y int) { order[x], order[y] = order[y], order[x] })
		if err := r.ingest(t.Context(), order); err != nil {
			t.Fatalf("replica %d: ingest: %v", i, err)
		}
		hs := r.st.Heads(key)
		if len(hs) != 1 || hs[0] != want[len(want)-1].ID {
			t.Fatalf("replica %d: %d heads (first %s), want one, the final merge %s", i, len(hs), hs[0], want[len(want)-1].ID)
		}
		for _, m := range want {
			if !r.st.Has(m.ID) {
				t.Fatalf("replica %d lacks merge %s", i, m.ID)
			}
		}
		if got := r.st.Count(); got != heads+len(want) {
			t.Fatalf("replica %d holds %d commits, want %d", i, got, heads+len(want))
		}
	}
}
