package merge

import (
	"fmt"
	"slices"

	"github.com/goat-gateway/goat-gateway/core"
)

// GroupSize is the most heads one merge commit takes: a merge commit has its
// heads as parents, and a commit has at most core.MaxParents. It is part of
// the contract (docs/merge.md): a port must group by the same number, and
// merges of up to GroupSize heads are exactly Merge, as they always were.
const GroupSize = core.MaxParents

// MergeAll returns the merge commits that reduce heads, two or more commits
// of item key in repo none of which is an ancestor of another, to a single
// head, in the order they must be stored (each one's parents are in g or
// earlier in the list); the last one is the new head.
//
// Up to GroupSize heads, that is the one commit Merge builds. Past it, the
// heads are merged as a tree whose shape depends only on the set of heads:
//
//	level = heads
//	while len(level) > GroupSize:
//	    sort level by (ts, id) ascending (head order)
//	    cut it into consecutive groups of GroupSize (the last may be shorter)
//	    next level = for each group in order: Merge(group), or the group's
//	                 only commit when it has one
//	final = Merge(level)
//
// Every merge in the tree is an ordinary merge commit of at most GroupSize
// parents, so Verify accepts each on any peer, and every peer holding the
// same heads builds the same commits, whatever order the heads arrived in.
// Errors are Merge's, and core.ErrInvalid for a set of heads that is not
// one (a repeat, or a head that is an ancestor of another) however the
// groups fall.
func MergeAll(g Graph, reg *core.Registry, repo, key string, heads []core.CommitID) ([]*core.Commit, error) {
	if len(heads) <= GroupSize {
		m, err := Merge(g, reg, repo, key, heads)
		if err != nil {
			return nil, err
		}
		return []*core.Commit{m}, nil
	}
	// The groups alone would not see a head that is an ancestor of a head
	// in another group: check the whole set once.
	a, err := walk(g, heads)
	if err != nil {
		return nil, err
	}
	made := map[core.CommitID]*core.Commit{}
	view := overlay{g: g, made: made}
	var out []*core.Commit
	level := slices.Clone(a.heads)
	for len(level) > GroupSize {
		slices.SortFunc(level, compareOrder)
		next := make([]*core.Commit, 0, (len(level)+GroupSize-1)/GroupSize)
		for i := 0; i < len(level); i += GroupSize {
			group := level[i:min(i+GroupSize, len(level))]
			if len(group) == 1 {
				next = append(next, group[0])
				continue
			}
			ids := make([]core.CommitID, len(group))
			for j, c := range group {
				ids[j] = c.ID
			}
			m, err := Merge(view, reg, repo, key, ids)
			if err != nil {
				return nil, fmt.Errorf("merge group %d of %d heads: %w", i/GroupSize, len(level), err)
			}
			made[m.ID] = m
			out = append(out, m)
			next = append(next, m)
		}
		level = next
	}
	ids := make([]core.CommitID, len(level))
	for i, c := range level {
		ids[i] = c.ID
	}
	m, err := Merge(view, reg, repo, key, ids)
	if err != nil {
		return nil, err
	}
	return append(out, m), nil
}

// overlay is g with the merges MergeAll made so far. It keeps g's
// Ancestors, so the walks of the tree's merges stay cheap.
type overlay struct {
	g    Graph
	made map[core.CommitID]*core.Commit
}

func (o overlay) Commit(id core.CommitID) (*core.Commit, bool) {
	if c, ok := o.made[id]; ok {
		return c, true
	}
	return o.g.Commit(id)
}

func (o overlay) Parents(id core.CommitID) (int64, []core.CommitID, bool) {
	if c, ok := o.made[id]; ok {
		return c.TS, c.Parents, true
	}
	if a, ok := o.g.(Ancestors); ok {
		return a.Parents(id)
	}
	c, ok := o.g.Commit(id)
	if !ok {
		return 0, nil, false
	}
	return c.TS, c.Parents, true
}
