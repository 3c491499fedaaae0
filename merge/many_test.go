package merge

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
)

// manyHeads stores n concurrent commits of testKey: disjoint roots, or
// children of one root when root is set. ts repeats (every third value is
// shared) so that ids break ties, and each head changes every field type.
func manyHeads(tb testing.TB, g memGraph, n int, root bool) []*core.Commit {
	tb.Helper()
	var parents []*core.Commit
	if root {
		parents = append(parents, g.add(tb, 1, "note/1", obj{"title": "r", "body": "base", "tags": set("t")}))
	}
	heads := make([]*core.Commit, n)
	for i := range heads {
		heads[i] = g.add(tb, int64(10+i/3), "note/1", obj{
			"title": fmt.Sprintf("h%d", i),
			"body":  fmt.Sprintf("base %d", i),
			"tags":  set("t", fmt.Sprintf("x%03d", i%50)),
			"n":     float64(i),
		}, parents...)
	}
	return heads
}

func TestMergeAll(t *testing.T) {
	reg := testRegistry(t)
	t.Run("UpToGroupSizeIsMerge", func(t *testing.T) {
		for _, n := range []int{2, 3, GroupSize} {
			g := memGraph{}
			heads := manyHeads(t, g, n, n%2 == 0)
			got, err := MergeAll(g, reg, testRepo, testKey, ids(heads...))
			if err != nil {
				t.Fatalf("n=%d: MergeAll: %v", n, err)
			}
			want, err := Merge(g, reg, testRepo, testKey, ids(heads...))
			if err != nil {
				t.Fatalf("n=%d: Merge: %v", n, err)
			}
			if len(got) != 1 || got[0].ID != want.ID {
				t.Fatalf("n=%d: MergeAll = %d commits, want the one Merge builds", n, len(got))
			}
		}
	})
	t.Run("Tree", func(t *testing.T) {
		// (heads, merge commits): 257 = 256+1, the single head carried to
		// the final merge; 513 = 256+256+1; 1000 = 3*256+232; 65,537
		// would need a third level, too slow for a unit test.
		for _, tc := range []struct{ n, merges int }{{257, 2}, {513, 3}, {1000, 5}} {
			for _, root := range []bool{false, true} {
				g := memGraph{}
				heads := manyHeads(t, g, tc.n, root)
				ms, err := MergeAll(g, reg, testRepo, testKey, ids(heads...))
				if err != nil {
					t.Fatalf("n=%d root=%v: %v", tc.n, root, err)
				}
				if got, want := len(ms), tc.merges; got != want {
					t.Fatalf("n=%d root=%v: %d merge commits, want %d", tc.n, root, got, want)
				}
				for _, m := range ms {
					if len(m.Parents) > GroupSize {
						t.Fatalf("merge %s has %d parents", m.ID, len(m.Parents))
					}
					if err := Verify(g, reg, m); err != nil {
						t.Fatalf("n=%d root=%v: Verify: %v", tc.n, root, err)
					}
					g[m.ID] = m
				}
				// Every head's set element survives: the tree loses no change.
				final := ms[len(ms)-1]
				tags, _ := final.Data["tags"].([]any)
				if got, want := len(tags), 51; got != want {
					t.Fatalf("n=%d root=%v: tags %v, want t and x000..x049", tc.n, root, tags)
				}
				if got, want := final.TS, heads[len(heads)-1].TS; got != want {
					t.Fatalf("final ts=%d, want %d", got, want)
				}
				// Merging the heads again builds nothing new: the final
				// merge is the only head and its merges are all stored.
				again, err := MergeAll(g, reg, testRepo, testKey, ids(heads...))
				if err != nil || again[len(again)-1].ID != final.ID {
					t.Fatalf("MergeAll again = %v, %v", again, err)
				}
			}
		}
	})
	t.Run("Errors", func(t *testing.T) {
		g := memGraph{}
		heads := manyHeads(t, g, 300, false)
		child := g.add(t, 5000, "note/1", obj{"title": "c"}, heads[0])
		for name, hs := range map[string][]core.CommitID{
			"repeated head":                   append(ids(heads...), heads[299].ID),
			"ancestor in another group":       append(ids(heads...), child.ID),
			"missing head":                    append(ids(heads[1:]...), core.CommitID{1}),
			"fewer than two":                  ids(heads[0]),
			"head of another item, past size": append(ids(heads[1:]...), otherItem(t, g).ID),
		} {
			_, err := MergeAll(g, reg, testRepo, testKey, hs)
			if err == nil {
				t.Fatalf("%s: no error", name)
			}
			if !errors.Is(err, core.ErrInvalid) && !errors.Is(err, core.ErrMissingParents) {
				t.Fatalf("%s: %v, want ErrInvalid or ErrMissingParents", name, err)
			}
		}
	})
}

func otherItem(tb testing.TB, g memGraph) *core.Commit {
	tb.Helper()
	c := &core.Commit{Repo: testRepo, Key: "other", Author: "s_test", TS: 7, Schema: "note/1", Data: obj{"title": "o"}}
	if err := c.Seal(); err != nil {
		tb.Fatal(err)
	}
	g[c.ID] = c
	return c
}

// TestMergeAll_Order is the property: any order of the same heads gives
// the same merge commits, byte for byte.
func TestMergeAll_Order(t *testing.T) {
	reg := testRegistry(t)
	g := memGraph{}
	heads := manyHeads(t, g, 700, true)
	want, err := MergeAll(g, reg, testRepo, testKey, ids(heads...))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(17, 7))
	for i := range 20 {
		hs := ids(heads...)
		rng.Shuffle(len(hs), func(a, b int) { hs[a], hs[b] = hs[b], hs[a] })
		var graph Graph = g
		if i%2 == 1 {
			whole := 0
			graph = indexedGraph{g, &whole} // with Ancestors, as storage's index
		}
		got, err := MergeAll(graph, reg, testRepo, testKey, hs)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(got, want, func(x, y *core.Commit) bool { return x.ID == y.ID }) {
			t.Fatalf("order %d: merge commits differ", i)
		}
	}
}

// TestMergeAll_Convergence delivers many concurrent heads to two replicas
// in different random batches; each replica merges whatever heads it has
// after every batch, as storage does. Once they exchanged everything, both
// hold the same commits and merge them to the same single head.
func TestMergeAll_Convergence(t *testing.T) {
	reg := testRegistry(t)
	src := memGraph{}
	heads := manyHeads(t, src, 600, false)
	for seed := range uint64(4) {
		rng := rand.New(rand.NewPCG(seed, 99))
		reps := [2]memGraph{{}, {}}
		for _, r := range reps {
			order := slices.Clone(heads)
			rng.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
			for len(order) > 0 {
				n := min(len(order), 1+rng.IntN(400))
				for _, c := range order[:n] {
					r[c.ID] = c
				}
				order = order[n:]
				autoMergeAll(t, reg, r)
			}
		}
		for id, c := range reps[0] {
			reps[1][id] = c
		}
		for id, c := range reps[1] {
			reps[0][id] = c
		}
		h0, h1 := autoMergeAll(t, reg, reps[0]), autoMergeAll(t, reg, reps[1])
		if h0 != h1 {
			t.Fatalf("seed %d: replicas end at %s and %s", seed, h0, h1)
		}
		if len(reps[0]) != len(reps[1]) {
			t.Fatalf("seed %d: replicas hold %d and %d commits", seed, len(reps[0]), len(reps[1]))
		}
	}
}

// autoMergeAll merges g's heads of testKey, stores the merges, and returns
// the single head.
func autoMergeAll(tb testing.TB, reg *core.Registry, g memGraph) core.CommitID {
	tb.Helper()
	hasChild := map[core.CommitID]bool{}
	for _, c := range g {
		for _, p := range c.Parents {
			hasChild[p] = true
		}
	}
	var hs []core.CommitID
	for id := range g {
		if !hasChild[id] {
			hs = append(hs, id)
		}
	}
	if len(hs) == 1 {
		return hs[0]
	}
	ms, err := MergeAll(g, reg, testRepo, testKey, hs)
	if err != nil {
		tb.Fatalf("MergeAll: %v", err)
	}
	for _, m := range ms {
		g[m.ID] = m
	}
	return ms[len(ms)-1].ID
}
