package sync

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
)

// memSet is an in-memory Local. Ids in ids are in topological order. Ids
// without a commit in commits are "ghosts": shared by construction, never
// sent by a correct protocol, so Get refuses them.
type memSet struct {
	ids     []core.CommitID
	ts      []int64 // parallel to ids
	commits map[core.CommitID]*core.Commit
	digest  Digest
	// ingested counts the commits that Ingest added.
	ingested int
}

func newMemSet(ghosts []core.CommitID, own []*core.Commit) *memSet {
	s := &memSet{commits: make(map[core.CommitID]*core.Commit, len(own))}
	s.ids = make([]core.CommitID, 0, len(ghosts)+2*len(own))
	s.ids = append(s.ids, ghosts...)
	s.ts = make([]int64, len(ghosts), cap(s.ids))
	for i, id := range ghosts {
		s.digest.Add(id)
		s.ts[i] = ghostTS(i)
	}
	for _, c := range own {
		s.add(c)
	}
	return s
}

// ghostTS is the ts of the i-th ghost: one a second from late 2023, so older
// than the commits makeCommits seals unless they are made old on purpose.
func ghostTS(i int) int64 { return 1700000000000 + int64(i)*1000 }

func (s *memSet) add(c *core.Commit) {
	s.ids = append(s.ids, c.ID)
	s.ts = append(s.ts, c.TS)
	s.commits[c.ID] = c
	s.digest.Add(c.ID)
}

func (s *memSet) Digest() Digest { return s.digest }

func (s *memSet) Walk(fn func(core.CommitID) bool) {
	for _, id := range s.ids {
		if !fn(id) {
			return
		}
	}
}

// WalkTS implements TSWalker.
func (s *memSet) WalkTS(fn func(core.CommitID, int64) bool) {
	for i, id := range s.ids {
		if !fn(id, s.ts[i]) {
			return
		}
	}
}

func (s *memSet) Get(id core.CommitID) (*core.Commit, bool) {
	c, ok := s.commits[id]
	return c, ok
}

func (s *memSet) has(id core.CommitID) bool {
	_, ok := s.commits[id]
	return ok
}

// Ingest adds the commits whose parents are present, in order, like a real
// replica; the others are reported with core.ErrMissingParents.
func (s *memSet) Ingest(_ context.Context, cs []*core.Commit) error {
	missing := 0
	for _, c := range cs {
		if s.has(c.ID) {
			continue
		}
		ok := true
		for _, p := range c.Parents {
			if !s.has(p) {
				ok = false
				break
			}
		}
		if !ok {
			missing++
			continue
		}
		s.add(c)
		s.ingested++
	}
	if missing > 0 {
		return fmt.Errorf("%w: %d commits", core.ErrMissingParents, missing)
	}
	return nil
}

// ownIDs returns the ids of the materialized commits.
func (s *memSet) ownIDs() map[core.CommitID]bool {
	m := make(map[core.CommitID]bool, len(s.commits))
	for id := range s.commits {
		m[id] = true
	}
	return m
}

// randomIDs returns n pseudo-random ids from r.
func randomIDs(r *rand.Rand, n int) []core.CommitID {
	ids := make([]core.CommitID, n)
	for i := range ids {
		for j := 0; j < 32; j += 8 {
			v := r.Uint64()
			for b := range 8 {
				ids[i][j+b] = byte(v >> (8 * b))
			}
		}
	}
	return ids
}

// fakeSig is a well-formed signature; the protocol never verifies them.
var fakeSig = make([]byte, 64)

// makeCommits returns n sealed commits of one side, tagged by side so that
// the two sides never create the same commit. Commits of the same key form
// a chain (each has the previous one as parent), so ingesting one before its
// parent fails: the protocol must cope with that.
func makeCommits(tb testing.TB, side string, seed uint64, n, keys int) []*core.Commit {
	tb.Helper()
	out := make([]*core.Commit, n)
	last := map[int]core.CommitID{}
	for i := range out {
		key := i % keys
		c := &core.Commit{
			Repo: "sim.repo", Key: fmt.Sprintf("k%d", key), Author: "s_" + side,
			TS: 1763800000000 + int64(i), Schema: "any/1",
			Data: map[string]any{"side": side, "seed": float64(seed), "n": float64(i), "title": "some text of a typical size"},
			Sig:  fakeSig,
		}
		if p, ok := last[key]; ok {
			c.Parents = []core.CommitID{p}
		}
		if err := c.Seal(); err != nil {
			tb.Fatal(err)
		}
		last[key] = c.ID
		out[i] = c
	}
	return out
}

// makeCommitsTS is makeCommits with the ts of commit i given by ts.
func makeCommitsTS(tb testing.TB, side string, n, keys int, ts func(i int) int64) []*core.Commit {
	tb.Helper()
	out := make([]*core.Commit, n)
	last := map[int]core.CommitID{}
	for i := range out {
		key := i % keys
		c := &core.Commit{
			Repo: "sim.repo", Key: fmt.Sprintf("k%d", key), Author: "s_" + side,
			TS: ts(i), Schema: "any/1",
			Data: map[string]any{"side": side, "n": float64(i), "title": "some text of a typical size"},
			Sig:  fakeSig,
		}
		if p, ok := last[key]; ok {
			c.Parents = []core.CommitID{p}
		}
		if err := c.Seal(); err != nil {
			tb.Fatal(err)
		}
		last[key] = c.ID
		out[i] = c
	}
	return out
}

// seededRand is a deterministic io.Reader for salts.
func seededRand(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return rand.NewChaCha8(s)
}

// fakeSet is a Set with function fields, for cases that need no contents.
type fakeSet struct {
	digest func() Digest
	walk   func(fn func(core.CommitID) bool)
	get    func(core.CommitID) (*core.Commit, bool)
}

func (f *fakeSet) Digest() Digest                            { return f.digest() }
func (f *fakeSet) Walk(fn func(core.CommitID) bool)          { f.walk(fn) }
func (f *fakeSet) Get(id core.CommitID) (*core.Commit, bool) { return f.get(id) }
