package goat_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	stdsync "sync"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
	goat "github.com/goat-gateway/goat-gateway/sdk/go"
)

// stage is one query of a chain: each selects from the result of the one
// before it (the first from the repository).
type stage struct {
	filter func(goat.Item) bool
	less   func(a, b goat.Item) bool
}

// fromScratch computes the result of the last stage of a chain anew from
// all of the repository's items.
func fromScratch(tb testing.TB, r *goat.Repo, chain []stage) []goat.Item {
	tb.Helper()
	items, err := r.Items()
	must(tb, err)
	for _, s := range chain {
		items = slices.DeleteFunc(items, func(it goat.Item) bool { return !s.filter(it) })
	}
	last := chain[len(chain)-1]
	sort.SliceStable(items, func(i, j int) bool {
		a, b := items[i], items[j]
		if last.less(a, b) {
			return true
		}
		if last.less(b, a) {
			return false
		}
		return a.Key < b.Key
	})
	return items
}

// seenKeys records the keys a filter is asked about.
type seenKeys struct {
	mu   stdsync.Mutex
	keys map[string]int
}

func (s *seenKeys) wrap(f func(goat.Item) bool) func(goat.Item) bool {
	return func(it goat.Item) bool {
		s.mu.Lock()
		s.keys[it.Key]++
		s.mu.Unlock()
		return f(it)
	}
}

func (s *seenKeys) take() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keys
	s.keys = map[string]int{}
	return k
}

// composed starts the chain as queries over queries, each mirrored from
// its events, and a recorder of the keys the last stage looks at.
func composed(tb testing.TB, r *goat.Repo, chain []stage) ([]*goat.LiveQuery, []*mirror, *seenKeys) {
	tb.Helper()
	seen := &seenKeys{keys: map[string]int{}}
	var qs []*goat.LiveQuery
	var ms []*mirror
	for i, s := range chain {
		m := &mirror{}
		spec := goat.Query{Filter: s.filter, Less: s.less, OnChange: m.apply}
		if i == len(chain)-1 {
			spec.Filter = seen.wrap(s.filter)
		}
		var q *goat.LiveQuery
		var err error
		if i == 0 {
			q, err = r.Query(spec)
		} else {
			q, err = qs[i-1].Query(spec)
		}
		must(tb, err)
		tb.Cleanup(q.Close)
		qs, ms = append(qs, q), append(ms, m)
	}
	seen.take() // the initial result
	return qs, ms, seen
}

// checkChain waits until every query of the chain, and its mirror built
// from events alone, equals its result computed from scratch.
func checkChain(tb testing.TB, r *goat.Repo, chain []stage, qs []*goat.LiveQuery, ms []*mirror, when string) {
	tb.Helper()
	for i := range chain {
		want := fromScratch(tb, r, chain[:i+1])
		var got []goat.Item
		if !goattest.Eventually(goattest.Patience, func() bool {
			got = qs[i].Items()
			// Nothing pending either: the commits of the edits have
			// reached the query, so no older change is still on its way.
			return sameItems(got, want) && ms[i].equal(want) && !slices.ContainsFunc(got, func(it goat.Item) bool { return it.Pending })
		}) {
			tb.Fatalf("%s: query %d of the chain:\n got %v\nwant %v", when, i, keysOf(got), keysOf(want))
		}
		ms[i].mu.Lock()
		bad := slices.Clone(ms[i].bad)
		ms[i].mu.Unlock()
		if len(bad) > 0 {
			tb.Fatalf("%s: query %d: bad change indexes: %v", when, i, bad[:min(len(bad), 5)])
		}
	}
}

func keysOf(items []goat.Item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.Key
	}
	return out
}

func num(it goat.Item, f string) float64 { v, _ := it.Data[f].(float64); return v }

// A chain of three queries, each over the one before, equals the chain
// recomputed from scratch through random edits, deletions and
// re-creations, and the last looks only at keys that were written.
func TestLiveQuery_ComposedMatchesOracle(t *testing.T) {
	c := offlineClient(t, func(cfg *goat.Config) { cfg.CoalesceWindow = 2 * time.Millisecond })
	r := openRepo(t, c, "q")
	chain := []stage{
		{filter: func(it goat.Item) bool { return it.Data["group"] != "c" }, less: rankLess},
		{filter: func(it goat.Item) bool { return int(num(it, "n"))%2 == 0 }, less: func(a, b goat.Item) bool { return num(a, "n") > num(b, "n") }},
		{filter: func(it goat.Item) bool { return num(it, "rank") < 12 }, less: func(a, b goat.Item) bool { return false }},
	}
	rng := rand.New(rand.NewPCG(22, 22))
	groups := []string{"a", "b", "c"}
	// Some items before the queries start, so the initial results are
	// drawn from a result, not from nothing.
	for i := range 30 {
		must(t, r.Set(fmt.Sprintf("k%02d", i), core.AnySchema, map[string]any{"rank": float64(rng.IntN(20)), "group": groups[rng.IntN(3)], "n": float64(rng.IntN(10))}))
	}
	must(t, r.Flush(t.Context()))
	qs, ms, seen := composed(t, r, chain)
	checkChain(t, r, chain, qs, ms, "at the start")
	written := map[string]bool{}
	for step := range 600 {
		key := fmt.Sprintf("k%02d", rng.IntN(50))
		written[key] = true
		switch op := rng.IntN(10); {
		case op < 4:
			must(t, r.Set(key, core.AnySchema, map[string]any{"rank": float64(rng.IntN(20)), "group": groups[rng.IntN(3)], "n": float64(rng.IntN(10))}))
		case op < 8:
			field := []string{"rank", "n", "group"}[rng.IntN(3)]
			err := r.Update(key, func(d map[string]any) error {
				if field == "group" {
					d[field] = groups[rng.IntN(3)]
				} else {
					d[field] = float64(rng.IntN(20))
				}
				return nil
			})
			if err != nil && !isNotFound(err) {
				t.Fatal(err)
			}
		default:
			if err := r.Delete(key); err != nil && !isNotFound(err) {
				t.Fatal(err)
			}
		}
		if step%50 == 49 {
			must(t, r.Flush(t.Context()))
			checkChain(t, r, chain, qs, ms, fmt.Sprintf("step %d", step))
			for k := range seen.take() {
				if !written[k] {
					t.Fatalf("step %d: the last query looked at %s, which nobody wrote since the last check: not incremental", step, k)
				}
			}
			written = map[string]bool{}
		}
	}
	if len(fromScratch(t, r, chain)) == 0 {
		t.Fatal("the chain's result is empty: the test exercises nothing")
	}
}

// Over a repository two clients edit concurrently (so replicas merge),
// a query over a query equals recomputing it from scratch after every
// batch of random writes, deletes and merges.
func TestLiveQuery_ComposedWithMerges(t *testing.T) {
	g := goattest.StartGateway(t, goattest.Config{})
	const repo = "team.board"
	a := openClient(t, g, "alice", nil)
	b := openClient(t, g, "bob", nil)
	ra, rb := openRepo(t, a, repo), openRepo(t, b, repo)
	chain := []stage{
		{filter: func(it goat.Item) bool { return it.Data["done"] != true }, less: func(x, y goat.Item) bool { return num(x, "n") < num(y, "n") }},
		{filter: func(it goat.Item) bool {
			tags, _ := it.Data["tags"].([]any)
			return slices.Contains(tags, any("x"))
		}, less: func(x, y goat.Item) bool {
			s, _ := x.Data["title"].(string)
			t, _ := y.Data["title"].(string)
			return s < t
		}},
	}
	qs, ms, _ := composed(t, rb, chain)
	rng := rand.New(rand.NewPCG(19, 22))
	tagSets := [][]string{{"x"}, {"y"}, {"x", "y"}, {}}
	most := 0
	for batch := range 6 {
		for range 12 {
			r := []*goat.Repo{ra, rb}[rng.IntN(2)]
			key := fmt.Sprintf("c%d", rng.IntN(10))
			var err error
			switch op := rng.IntN(10); {
			case op < 3:
				err = r.Set(key, "note/1", map[string]any{
					"title": fmt.Sprintf("t%d", rng.IntN(100)), "n": float64(rng.IntN(5)),
					"done": rng.IntN(4) == 0, "tags": tagSets[rng.IntN(len(tagSets))],
				})
			case op < 9:
				err = r.Update(key, func(d map[string]any) error {
					switch rng.IntN(4) {
					case 0:
						d["n"] = float64(rng.IntN(5))
					case 1:
						d["done"] = rng.IntN(3) == 0
					case 2:
						d["tags"] = tagSets[rng.IntN(len(tagSets))]
					default:
						d["title"] = fmt.Sprintf("t%d", rng.IntN(100))
					}
					return nil
				})
			default:
				err = r.Delete(key)
			}
			if err != nil && !isNotFound(err) {
				t.Fatal(err)
			}
		}
		// Both write before either syncs: edits of one item are concurrent,
		// and each replica merges them as the other's arrive.
		must(t, ra.Flush(t.Context()))
		must(t, rb.Flush(t.Context()))
		waitInSync(t, g, repo, ra, rb)
		checkChain(t, rb, chain, qs, ms, fmt.Sprintf("batch %d", batch))
		most = max(most, len(fromScratch(t, rb, chain)))
	}
	if most == 0 {
		t.Fatal("the query over the query was always empty: the test exercises nothing")
	}
	if n := g.MergeCommits(t, repo); n == 0 {
		t.Fatal("no merge commits: the test exercised no concurrent edits")
	}
}

// Closing a query closes the queries drawn from it, and a closed query
// refuses new ones.
func TestLiveQuery_QueryClose(t *testing.T) {
	c := offlineClient(t, nil)
	r := openRepo(t, c, "q")
	must(t, r.Set("k", core.AnySchema, map[string]any{"n": 1.0}))
	parent, err := r.Query(goat.Query{})
	must(t, err)
	child, err := parent.Query(goat.Query{})
	must(t, err)
	grandchild, err := child.Query(goat.Query{})
	must(t, err)
	if got := goattest.Recv(t, grandchild.Events(), "the first snapshot"); len(got.Items) != 1 {
		t.Fatalf("snapshot of %d items, want 1", len(got.Items))
	}
	watch, err := r.Query(goat.Query{})
	must(t, err)
	defer watch.Close()
	parent.Close()
	select {
	case ev, ok := <-grandchild.Events():
		if ok {
			t.Fatalf("event %+v after the parent closed", ev)
		}
	case <-time.After(goattest.Patience):
		t.Fatal("the events of a query drawn from a closed one are not closed")
	}
	if _, err := child.Query(goat.Query{}); !errorsIs(err, core.ErrClosed) {
		t.Fatalf("Query on a closed query: err=%v, want core.ErrClosed", err)
	}
	must(t, r.Set("k2", core.AnySchema, map[string]any{"n": 2.0}))
	// One pass updates every query of the repository: once watch has
	// the write, a child still attached would have it too.
	goattest.WaitFor(t, "the open query to take the write", func() bool { return watch.Len() == 2 })
	if n := child.Len(); n != 1 {
		t.Fatalf("a closed query has %d items after a write, want the 1 it had", n)
	}
}
