package goat_test

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	stdsync "sync"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
	goat "github.com/goat-gateway/goat-gateway/sdk/go"
)

// rankLess is the order of the oracle and of the query: rank, then key.
func rankLess(a, b goat.Item) bool {
	ra, _ := a.Data["rank"].(float64)
	rb, _ := b.Data["rank"].(float64)
	return ra < rb
}

func inGroupA(it goat.Item) bool { return it.Data["group"] == "a" }

// oracle computes the query result from scratch.
func oracle(tb testing.TB, r *goat.Repo) []goat.Item {
	tb.Helper()
	all, err := r.Items()
	must(tb, err)
	all = slices.DeleteFunc(all, func(it goat.Item) bool { return !inGroupA(it) })
	slices.SortFunc(all, func(a, b goat.Item) int {
		if c := cmp.Compare(a.Data["rank"].(float64), b.Data["rank"].(float64)); c != 0 {
			return c
		}
		return cmp.Compare(a.Key, b.Key)
	})
	return all
}

// mirror rebuilds a query result from its events alone, checking every
// index it is given.
type mirror struct {
	mu        stdsync.Mutex
	items     []goat.Item
	snapshots int
	bad       []string
}

func (m *mirror) apply(ev goat.QueryEvent) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ev.Snapshot {
		m.items = slices.Clone(ev.Items)
		m.snapshots++
	}
	for _, ch := range ev.Changes {
		if ch.Kind != goat.Added {
			if ch.OldIndex < 0 || ch.OldIndex >= len(m.items) || m.items[ch.OldIndex].Key != ch.Key {
				m.bad = append(m.bad, fmt.Sprintf("%v %s at old index %d", ch.Kind, ch.Key, ch.OldIndex))
				continue
			}
			m.items = slices.Delete(m.items, ch.OldIndex, ch.OldIndex+1)
		}
		if ch.Kind != goat.Removed {
			if ch.Index < 0 || ch.Index > len(m.items) {
				m.bad = append(m.bad, fmt.Sprintf("%v %s at index %d", ch.Kind, ch.Key, ch.Index))
				continue
			}
			m.items = slices.Insert(m.items, ch.Index, ch.Item)
		}
	}
}

func (m *mirror) equal(want []goat.Item) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return sameItems(m.items, want)
}

func sameItems(a, b []goat.Item) bool {
	return slices.EqualFunc(a, b, func(x, y goat.Item) bool { return x.Key == y.Key && core.EqualJSON(x.Data, y.Data) })
}

// A live query kept current by events equals the query recomputed from
// scratch, through random edits, deletions, re-creations and commits.
func TestLiveQuery_MatchesOracle(t *testing.T) {
	c := offlineClient(t, func(cfg *goat.Config) { cfg.CoalesceWindow = 2 * time.Millisecond })
	r := openRepo(t, c, "q")
	var m mirror
	q, err := r.Query(goat.Query{Filter: inGroupA, Less: rankLess, OnChange: m.apply})
	must(t, err)
	defer q.Close()
	rng := rand.New(rand.NewPCG(7, 7))
	groups := []string{"a", "b"}
	for step := range 600 {
		key := fmt.Sprintf("k%02d", rng.IntN(40))
		switch op := rng.IntN(10); {
		case op < 5:
			must(t, r.Set(key, core.AnySchema, map[string]any{"rank": float64(rng.IntN(20)), "group": groups[rng.IntN(2)]}))
		case op < 8:
			err := r.Update(key, func(d map[string]any) error { d["rank"] = float64(rng.IntN(20)); return nil })
			if err != nil && !isNotFound(err) {
				t.Fatal(err)
			}
		default:
			if err := r.Delete(key); err != nil && !isNotFound(err) {
				t.Fatal(err)
			}
		}
		if step%100 == 99 {
			want := oracle(t, r)
			goattest.WaitFor(t, fmt.Sprintf("the query to match the oracle at step %d", step), func() bool {
				return sameItems(q.Items(), want) && m.equal(want)
			})
		}
	}
	must(t, r.Flush(t.Context()))
	want := oracle(t, r)
	goattest.WaitFor(t, "the query to match the oracle at the end", func() bool { return sameItems(q.Items(), want) && m.equal(want) })
	if len(m.bad) > 0 {
		t.Fatalf("bad change indexes: %v", m.bad[:min(len(m.bad), 5)])
	}
	if len(want) == 0 {
		t.Fatal("the oracle is empty: the test exercises nothing")
	}
}

// A consumer that stops reading is not waited on: its backlog turns into
// one snapshot, after which it is exact again.
func TestLiveQuery_SlowConsumerGetsSnapshot(t *testing.T) {
	c := offlineClient(t, nil)
	r := openRepo(t, c, "q")
	q, err := r.Query(goat.Query{Buffer: 2})
	must(t, err)
	defer q.Close()
	for i := range 10 {
		must(t, r.Set(fmt.Sprintf("k%d", i), core.AnySchema, map[string]any{"i": i}))
		goattest.WaitFor(t, "the query to take the edit", func() bool { return q.Len() == i+1 })
	}
	var m mirror
	want, err := r.Items()
	must(t, err)
	for !m.equal(want) {
		select {
		case ev := <-q.Events():
			m.apply(ev)
		case <-time.After(10 * time.Second):
			t.Fatalf("no event; mirror has %d items", len(m.items))
		}
	}
	if m.snapshots < 2 {
		t.Fatalf("%d snapshots, want the first and one after falling behind", m.snapshots)
	}
}

// A live query sees another client's changes as they arrive.
func TestLiveQuery_RemoteChanges(t *testing.T) {
	g := goattest.StartGateway(t, goattest.Config{})
	a := openClient(t, g, "alice", nil)
	b := openClient(t, g, "bob", nil)
	ra, rb := openRepo(t, a, "board"), openRepo(t, b, "board")
	var mu stdsync.Mutex
	var kinds []goat.ChangeKind
	q, err := rb.Query(goat.Query{OnChange: func(ev goat.QueryEvent) {
		mu.Lock()
		defer mu.Unlock()
		for _, ch := range ev.Changes {
			kinds = append(kinds, ch.Kind)
		}
	}})
	must(t, err)
	defer q.Close()
	seen := func(k goat.ChangeKind) func() bool {
		return func() bool { mu.Lock(); defer mu.Unlock(); return slices.Contains(kinds, k) }
	}
	must(t, ra.Set("card", "note/1", map[string]any{"title": "one"}))
	goattest.WaitFor(t, "added", seen(goat.Added))
	must(t, ra.Update("card", func(d map[string]any) error { d["title"] = "two"; return nil }))
	goattest.WaitFor(t, "changed", seen(goat.Changed))
	must(t, ra.Delete("card"))
	goattest.WaitFor(t, "removed", seen(goat.Removed))
	if got := q.Len(); got != 0 {
		t.Fatalf("%d items after the delete", got)
	}
}

func isNotFound(err error) bool { return err != nil && errorsIs(err, core.ErrNotFound) }

// Items are read at the newest version of their schema this client
// knows; an edit writes that version.
// A session key that nears its expiry is replaced before it signs, and
// the replacement is the one a reopened client uses.
