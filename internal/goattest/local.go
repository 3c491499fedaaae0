package goattest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

// ConformanceRepo is the repository the conformance suites' commits
// belong to; an implementation bound to one repository is bound to this
// one.
const ConformanceRepo = "conformance"

// graph is a small commit graph of ConformanceRepo in a topological
// order: chains on several keys, interleaved; a fork and its join; a
// delta commit. At every index in cuts each key has one head, so any
// prefix cut there is a graph a replica holds without merging.
type graph struct {
	commits []*core.Commit
	cuts    []int
}

func newGraph(a *Author) graph {
	var g graph
	add := func(c *core.Commit) *core.Commit { g.commits = append(g.commits, c); return c }
	cut := func() { g.cuts = append(g.cuts, len(g.commits)) }
	ts := int64(1_763_800_000_000)
	next := func() int64 { ts++; return ts }
	mk := func(key string, data map[string]any, parents ...core.CommitID) *core.Commit {
		return add(a.CommitAt(next(), ConformanceRepo, key, data, parents...))
	}

	a0 := mk("a", map[string]any{"n": 0.0})
	b0 := mk("b", map[string]any{"n": 0.0, "text": "b"})
	a1 := mk("a", map[string]any{"n": 1.0}, a0.ID)
	c0 := mk("c", map[string]any{"n": 0.0, "tag": "c"})
	cut()
	// A fork and its join, in one piece.
	d0 := mk("d", map[string]any{"n": 0.0})
	d1 := mk("d", map[string]any{"n": 1.0, "side": "left"}, d0.ID)
	d2 := mk("d", map[string]any{"n": 1.0, "side": "right"}, d0.ID)
	mk("d", map[string]any{"n": 2.0}, d1.ID, d2.ID)
	cut()
	// A delta on c, based on c0.
	add(a.Sign(&core.Commit{Repo: ConformanceRepo, Key: "c", Parents: []core.CommitID{c0.ID}, TS: next(), Schema: core.AnySchema,
		Delta: &core.Delta{Base: c0.ID, Ops: []core.Op{{Op: core.OpSet, Field: "n", Value: 1.0}}}}))
	mk("a", map[string]any{"n": 2.0}, a1.ID)
	mk("b", map[string]any{"n": 1.0}, b0.ID)
	cut()
	return g
}

func idsOf(cs []*core.Commit) []core.CommitID {
	ids := make([]core.CommitID, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
	}
	return ids
}

// RunLocalConformance runs the contract of gsync.Local (sync/driver.go,
// sync/round.go) against the implementation newLocal makes: each subtest
// gets a new, empty Local of ConformanceRepo. Every implementation of
// gsync.Local runs it in its own package's tests.
func RunLocalConformance(t *testing.T, newLocal func(tb testing.TB) gsync.Local) {
	t.Helper()
	ctx := context.Background()
	a := NewSigner("conformance")

	t.Run("Empty", func(t *testing.T) {
		l := newLocal(t)
		if got := l.Digest(); got != (gsync.Digest{}) {
			t.Fatalf("Digest of an empty Local = %v, want zero", got)
		}
		l.Walk(func(id core.CommitID) bool {
			t.Fatalf("Walk of an empty Local visited %s", id)
			return false
		})
		stray := a.Commit(ConformanceRepo, "stray", map[string]any{})
		if _, ok := l.Get(stray.ID); ok {
			t.Fatal("Get found a commit of an empty Local")
		}
	})

	t.Run("DigestMatchesCommits", func(t *testing.T) {
		g := newGraph(a)
		l := newLocal(t)
		for i, end := range g.cuts {
			start := 0
			if i > 0 {
				start = g.cuts[i-1]
			}
			if err := l.Ingest(ctx, g.commits[start:end]); err != nil {
				t.Fatalf("Ingest of commits %d..%d: %v", start, end, err)
			}
			// A Local is live: its digest counts what was just ingested.
			if got, want := l.Digest(), gsync.DigestOf(idsOf(g.commits[:end])...); got != want {
				t.Fatalf("after %d commits: Digest=%v, want %v", end, got, want)
			}
		}
	})

	t.Run("WalkIsTopologicalAndComplete", func(t *testing.T) {
		g := newGraph(a)
		l := newLocal(t)
		if err := l.Ingest(ctx, g.commits); err != nil {
			t.Fatal(err)
		}
		want := map[core.CommitID]*core.Commit{}
		for _, c := range g.commits {
			want[c.ID] = c
		}
		seen := map[core.CommitID]bool{}
		l.Walk(func(id core.CommitID) bool {
			c, ok := want[id]
			if !ok {
				t.Fatalf("Walk visited %s, which was never ingested", id)
			}
			if seen[id] {
				t.Fatalf("Walk visited %s twice", id)
			}
			for _, p := range c.Parents {
				if !seen[p] {
					t.Fatalf("Walk visited %s before its parent %s", id, p)
				}
			}
			seen[id] = true
			return true
		})
		if got, want := len(seen), len(g.commits); got != want {
			t.Fatalf("Walk visited %d commits, want %d", got, want)
		}
		calls := 0
		l.Walk(func(core.CommitID) bool { calls++; return false })
		if calls != 1 {
			t.Fatalf("Walk called fn %d times after it returned false, want 1", calls)
		}
	})

	t.Run("GetFindsEveryCommit", func(t *testing.T) {
		g := newGraph(a)
		l := newLocal(t)
		if err := l.Ingest(ctx, g.commits); err != nil {
			t.Fatal(err)
		}
		for _, c := range g.commits {
			got, ok := l.Get(c.ID)
			if !ok {
				t.Fatalf("Get(%s) found nothing", c.ID)
			}
			gb, err := got.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			wb, _ := c.MarshalJSON()
			if string(gb) != string(wb) {
				t.Fatalf("Get(%s) = %s, want %s", c.ID, gb, wb)
			}
		}
		if _, ok := l.Get(a.Commit(ConformanceRepo, "stray", map[string]any{}).ID); ok {
			t.Fatal("Get found a commit that was never ingested")
		}
	})

	t.Run("IngestIsIdempotent", func(t *testing.T) {
		g := newGraph(a)
		l := newLocal(t)
		if err := l.Ingest(ctx, g.commits); err != nil {
			t.Fatal(err)
		}
		before := l.Digest()
		if err := l.Ingest(ctx, g.commits); err != nil {
			t.Fatalf("Ingest of present commits: %v", err)
		}
		if got := l.Digest(); got != before {
			t.Fatalf("Digest after ingesting again = %v, want %v", got, before)
		}
		if got, want := walkCount(l), len(g.commits); got != want {
			t.Fatalf("Walk visits %d commits after ingesting again, want %d", got, want)
		}
	})

	t.Run("IngestSkipsPresentCommits", func(t *testing.T) {
		g := newGraph(a)
		l := newLocal(t)
		cut := g.cuts[0]
		if err := l.Ingest(ctx, g.commits[:cut]); err != nil {
			t.Fatal(err)
		}
		// The whole graph again: the present prefix is skipped, the rest
		// stored, in one call.
		if err := l.Ingest(ctx, g.commits); err != nil {
			t.Fatalf("Ingest with present commits mixed in: %v", err)
		}
		if got, want := l.Digest(), gsync.DigestOf(idsOf(g.commits)...); got != want {
			t.Fatalf("Digest=%v, want %v", got, want)
		}
		if got, want := walkCount(l), len(g.commits); got != want {
			t.Fatalf("Walk visits %d commits, want %d", got, want)
		}
	})

	t.Run("IngestReportsMissingParentsAndKeepsTheRest", func(t *testing.T) {
		l := newLocal(t)
		root := a.Commit(ConformanceRepo, "k", map[string]any{"v": "root"})
		absent := a.Commit(ConformanceRepo, "o", map[string]any{"v": "absent"})
		orphan := a.Commit(ConformanceRepo, "o", map[string]any{"v": "orphan"}, absent.ID)
		orphanChild := a.Commit(ConformanceRepo, "o", map[string]any{"v": "child of orphan"}, orphan.ID)
		child := a.Commit(ConformanceRepo, "k", map[string]any{"v": "child"}, root.ID)
		other := a.Commit(ConformanceRepo, "m", map[string]any{"v": "other"})
		err := l.Ingest(ctx, []*core.Commit{root, orphan, child, orphanChild, other})
		if !errors.Is(err, core.ErrMissingParents) {
			t.Fatalf("Ingest with a missing parent: err=%v, want core.ErrMissingParents", err)
		}
		for _, c := range []*core.Commit{root, child, other} {
			if _, ok := l.Get(c.ID); !ok {
				t.Fatalf("commit %s (%v) with its parents present was not kept", c.ID, c.Data["v"])
			}
		}
		for _, c := range []*core.Commit{orphan, orphanChild} {
			if _, ok := l.Get(c.ID); ok {
				t.Fatalf("commit %s (%v) without its parents was stored", c.ID, c.Data["v"])
			}
		}
		if got, want := l.Digest(), gsync.DigestOf(root.ID, child.ID, other.ID); got != want {
			t.Fatalf("Digest=%v, want %v (the kept commits)", got, want)
		}
		// A later call that brings the parent stores the rest.
		if err := l.Ingest(ctx, []*core.Commit{absent, orphan, orphanChild}); err != nil {
			t.Fatalf("Ingest with the parent: %v", err)
		}
		if got, want := l.Digest(), gsync.DigestOf(root.ID, child.ID, other.ID, absent.ID, orphan.ID, orphanChild.ID); got != want {
			t.Fatalf("Digest=%v, want %v", got, want)
		}
		if got, want := walkCount(l), 6; got != want {
			t.Fatalf("Walk visits %d commits, want %d", got, want)
		}
	})

	t.Run("DriverConverges", func(t *testing.T) {
		// A Local is what the driver heals: against a peer holding a
		// graph, with some of it already local and some only local.
		g := newGraph(a)
		l := newLocal(t)
		if err := l.Ingest(ctx, g.commits[:g.cuts[0]]); err != nil {
			t.Fatal(err)
		}
		mine := a.Commit(ConformanceRepo, "mine", map[string]any{"v": "only local"})
		if err := l.Ingest(ctx, []*core.Commit{mine}); err != nil {
			t.Fatal(err)
		}
		peer := NewMemPeer(ConformanceRepo)
		peer.Add(g.commits...)
		d := gsync.Driver{Transport: peer}
		if _, err := d.Heal(ctx, l, ConformanceRepo); err != nil {
			t.Fatalf("Heal: %v", err)
		}
		all := append(idsOf(g.commits), mine.ID)
		if got, want := l.Digest(), gsync.DigestOf(all...); got != want {
			t.Fatalf("local Digest after Heal = %v, want %v", got, want)
		}
		if got, want := peer.Digest(), gsync.DigestOf(all...); got != want {
			t.Fatalf("peer Digest after Heal = %v, want %v", got, want)
		}
	})
}

func walkCount(s gsync.Set) int {
	n := 0
	s.Walk(func(core.CommitID) bool { n++; return true })
	return n
}

// must fails tb on err.
func must(tb testing.TB, err error, what string, args ...any) {
	tb.Helper()
	if err != nil {
		tb.Fatalf("%s: %v", fmt.Sprintf(what, args...), err)
	}
}
