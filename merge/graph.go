package merge

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/goat-gateway/goat-gateway/core"
)

// Graph is read access to a repository's commits: all a merge needs from
// storage. Commits are immutable, so implementations may return shared
// pointers; the merge never modifies them.
type Graph interface {
	// Commit returns the commit with this id, or false if it is unknown.
	// It may carry a Delta; the merge resolves it against its base.
	Commit(id core.CommitID) (*core.Commit, bool)
}

// GraphFunc adapts a lookup function to Graph.
type GraphFunc func(id core.CommitID) (*core.Commit, bool)

// Commit calls f.
func (f GraphFunc) Commit(id core.CommitID) (*core.Commit, bool) { return f(id) }

// Ancestors is what a Graph may add so that a merge walks history without
// decoding it: a commit's ts and parents, as cheap as an index lookup. A
// merge reads whole commits only for its heads and its base, so with it
// the walk of a long history costs index lookups rather than a decode of
// every ancestor (issue 17: an item with many heads). The result is the
// same with or without it; it must agree with Commit.
type Ancestors interface {
	// Parents returns the ts and parents of the commit with this id, or
	// false if it is unknown. parents may be shared: the merge never
	// modifies it.
	Parents(id core.CommitID) (ts int64, parents []core.CommitID, ok bool)
}

// node is one commit reached while walking ancestors.
type node struct {
	id       core.CommitID
	ts       int64
	ps       []core.CommitID // its parents
	c        *core.Commit    // the whole commit, when it was read whole
	stamp    int             // index+1 of the last head whose walk reached it
	count    int             // how many heads reach it
	inner    bool            // a parent of a common ancestor
	resolved bool            // parents[pstart:pstart+len(ps)] hold its parents' indexes
	pstart   int32           // into ancestry.parents
}

// ancestry is every ancestor (inclusive) of a set of heads, with how many
// of the heads reach it.
type ancestry struct {
	index   map[core.CommitID]int32 // into nodes
	nodes   []node
	parents []int32 // parent indexes, so that later walks skip the map
	heads   []*core.Commit
}

func (a *ancestry) get(id core.CommitID) *node {
	if i, ok := a.index[id]; ok {
		return &a.nodes[i]
	}
	return nil
}

func (a *ancestry) put(n node) *node {
	a.index[n.id] = int32(len(a.nodes))
	a.nodes = append(a.nodes, n)
	return &a.nodes[len(a.nodes)-1]
}

// walk loads heads and all their ancestors, one depth-first walk per head.
// It fails if a head or an ancestor is missing, if a head repeats, or if a
// head is an ancestor of another (then it is no head: a merge of it would
// be no merge). Ancestors are read through g's Ancestors when it has it.
func walk(g Graph, heads []core.CommitID) (*ancestry, error) {
	if len(heads) == 0 {
		return nil, fmt.Errorf("%w: no heads", core.ErrInvalid)
	}
	a := &ancestry{index: make(map[core.CommitID]int32), heads: make([]*core.Commit, len(heads))}
	for i, h := range heads {
		c, ok := g.Commit(h)
		if !ok {
			return nil, fmt.Errorf("%w: head %s", core.ErrMissingParents, h)
		}
		if c.ID != h {
			return nil, fmt.Errorf("%w: graph returned commit %s for id %s", core.ErrInvalid, c.ID, h)
		}
		a.heads[i] = c
	}
	anc, _ := g.(Ancestors)
	var stack []int32 // node indexes: pointers into nodes move when it grows
	for i, h := range a.heads {
		stamp := i + 1
		n := a.get(h.ID)
		if n == nil {
			n = a.put(node{id: h.ID, ts: h.TS, ps: h.Parents, c: h})
		} else if n.stamp > 0 {
			return nil, fmt.Errorf("%w: head %s is repeated or an ancestor of another head", core.ErrInvalid, h.ID)
		}
		n.stamp, n.count = stamp, n.count+1
		stack = append(stack[:0], a.index[h.ID])
		for len(stack) > 0 {
			ci := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if !a.nodes[ci].resolved {
				if err := a.resolve(g, anc, ci, h.ID); err != nil {
					return nil, err
				}
			}
			cur := &a.nodes[ci]
			for _, pi := range a.parents[cur.pstart : int(cur.pstart)+len(cur.ps)] {
				pn := &a.nodes[pi]
				if pn.stamp == stamp {
					continue
				}
				pn.stamp, pn.count = stamp, pn.count+1
				stack = append(stack, pi)
			}
		}
	}
	for _, h := range a.heads {
		if a.get(h.ID).count > 1 {
			return nil, fmt.Errorf("%w: head %s is repeated or an ancestor of another head", core.ErrInvalid, h.ID)
		}
	}
	return a, nil
}

// resolve looks up the parents of node ci, adding the unseen ones; anc,
// when not nil, spares reading them whole.
func (a *ancestry) resolve(g Graph, anc Ancestors, ci int32, head core.CommitID) error {
	start := int32(len(a.parents))
	for _, p := range a.nodes[ci].ps {
		pi, ok := a.index[p]
		if !ok {
			var n node
			if anc != nil {
				ts, ps, ok := anc.Parents(p)
				if !ok {
					return fmt.Errorf("%w: %s, ancestor of head %s", core.ErrMissingParents, p, head)
				}
				n = node{id: p, ts: ts, ps: ps}
			} else {
				pc, ok := g.Commit(p)
				if !ok {
					return fmt.Errorf("%w: %s, ancestor of head %s", core.ErrMissingParents, p, head)
				}
				if pc.ID != p {
					return fmt.Errorf("%w: graph returned commit %s for id %s", core.ErrInvalid, pc.ID, p)
				}
				n = node{id: p, ts: pc.TS, ps: pc.Parents, c: pc}
			}
			a.put(n)
			pi = int32(len(a.nodes) - 1)
		}
		a.parents = append(a.parents, pi)
	}
	n := &a.nodes[ci]
	n.resolved, n.pstart = true, start
	return nil
}

// base returns the best common ancestor (read whole from g if the walk did
// not), or nil.
func (a *ancestry) base(g Graph) (*core.Commit, error) {
	k := len(a.heads)
	// Common ancestors are closed under taking parents, so a common
	// ancestor is an ancestor of another exactly when it is the parent of
	// one: no need to compare every pair.
	for i := range a.nodes {
		if n := &a.nodes[i]; n.count == k {
			for _, pi := range a.parents[n.pstart : int(n.pstart)+len(n.ps)] {
				a.nodes[pi].inner = true
			}
		}
	}
	var best *node
	for i := range a.nodes {
		n := &a.nodes[i]
		if n.count == k && !n.inner && (best == nil || cmp.Or(cmp.Compare(n.ts, best.ts), n.id.Compare(best.id)) > 0) {
			best = n
		}
	}
	switch {
	case best == nil:
		return nil, nil
	case best.c != nil:
		return best.c, nil
	}
	c, ok := g.Commit(best.id)
	if !ok {
		return nil, fmt.Errorf("%w: base %s", core.ErrMissingParents, best.id)
	}
	if c.ID != best.id {
		return nil, fmt.Errorf("%w: graph returned commit %s for id %s", core.ErrInvalid, c.ID, best.id)
	}
	return c, nil
}

// compareOrder orders commits by (ts, id): head order.
func compareOrder(x, y *core.Commit) int {
	if c := cmp.Compare(x.TS, y.TS); c != 0 {
		return c
	}
	return x.ID.Compare(y.ID)
}

// Base returns the best common ancestor of heads (DESIGN section 4, step 2):
// among the common ancestors (a commit is its own ancestor) that are not
// ancestors of another common ancestor, the greatest by (ts, id). ok is
// false when the heads share no ancestor; the base is then the empty item.
// It costs one walk of each head's history.
func Base(g Graph, heads []core.CommitID) (id core.CommitID, ok bool, err error) {
	a, err := walk(g, heads)
	if err != nil {
		return core.CommitID{}, false, err
	}
	b, err := a.base(g)
	if err != nil || b == nil {
		return core.CommitID{}, false, err
	}
	return b.ID, true, nil
}

// Merge builds the merge commit of heads, two or more commits of item key in
// repo none of which is an ancestor of another (DESIGN sections 3 and 4):
// author core.MergeAuthor, no signature, parents the heads sorted
// ascending, ts the largest head ts, full data, schema and data as the
// package comment describes, id sealed. The order of heads does not matter.
// Every peer that calls Merge on the same graph gets the byte-identical
// commit.
//
// Errors wrap core.ErrInvalid (fewer than two heads, a repeated head, a head
// that is an ancestor of another or belongs to another item),
// core.ErrMissingParents (a head, an ancestor or a delta base is not in g),
// core.ErrSchema (a schema reg does not know), or core.ErrTooLarge (more
// than core.MaxParents heads, or a merged value too large for a commit).
// MergeAll merges any number of heads, in groups of at most GroupSize.
func Merge(g Graph, reg *core.Registry, repo, key string, heads []core.CommitID) (*core.Commit, error) {
	if len(heads) < 2 {
		return nil, fmt.Errorf("%w: a merge needs at least two heads, got %d", core.ErrInvalid, len(heads))
	}
	if len(heads) > core.MaxParents {
		return nil, fmt.Errorf("%w: %d heads, more than %d", core.ErrTooLarge, len(heads), core.MaxParents)
	}
	a, err := walk(g, heads)
	if err != nil {
		return nil, err
	}
	ordered := slices.Clone(a.heads)
	slices.SortFunc(ordered, compareOrder)
	for _, h := range ordered {
		if h.Repo != repo || h.Key != key {
			return nil, fmt.Errorf("%w: head %s is %s/%s, not %s/%s", core.ErrInvalid, h.ID, h.Repo, h.Key, repo, key)
		}
	}
	last := ordered[len(ordered)-1]
	base, err := a.base(g)
	if err != nil {
		return nil, err
	}

	// The item's namespace is the last head's; its version the newest of
	// that namespace among base and heads.
	ns, version, err := core.ParseSchemaRef(last.Schema)
	if err != nil {
		return nil, fmt.Errorf("head %s: %w", last.ID, err)
	}
	inNS := func(c *core.Commit) bool {
		n, _, err := core.ParseSchemaRef(c.Schema)
		return err == nil && n == ns
	}
	if base != nil && !inNS(base) {
		base = nil // another namespace: its fields mean nothing here
	}
	kept := make([]*core.Commit, 0, len(ordered))
	for _, h := range ordered {
		if inNS(h) {
			kept = append(kept, h)
		}
	}
	for _, c := range append([]*core.Commit{base}, kept...) {
		if c != nil {
			_, v, _ := core.ParseSchemaRef(c.Schema)
			version = max(version, v)
		}
	}
	target := core.SchemaRef(ns, version)
	schema, err := reg.Get(target)
	if err != nil {
		return nil, fmt.Errorf("merge %s: %w", key, err)
	}
	var baseData map[string]any
	if base != nil {
		if baseData, err = valueAt(g, reg, base, target); err != nil {
			return nil, err
		}
	}
	headData := make([]map[string]any, len(kept))
	for i, h := range kept {
		if headData[i], err = valueAt(g, reg, h, target); err != nil {
			return nil, err
		}
	}
	c := &core.Commit{
		Repo:    repo,
		Key:     key,
		Parents: slices.SortedFunc(slices.Values(heads), core.CommitID.Compare),
		Author:  core.MergeAuthor,
		TS:      last.TS, // heads are ordered by ts first
		Schema:  target,
		Data:    MergeValues(schema, baseData, headData),
	}
	if err := c.Seal(); err != nil {
		return nil, fmt.Errorf("merge %s: %w", key, err)
	}
	return c, nil
}

// valueAt returns c's full value upgraded to schema target.
func valueAt(g Graph, reg *core.Registry, c *core.Commit, target string) (map[string]any, error) {
	data := c.Data
	if data == nil {
		if c.Delta == nil {
			return nil, fmt.Errorf("%w: commit %s has neither data nor delta", core.ErrInvalid, c.ID)
		}
		b, ok := g.Commit(c.Delta.Base)
		if !ok {
			return nil, fmt.Errorf("%w: delta base %s of %s", core.ErrMissingParents, c.Delta.Base, c.ID)
		}
		if b.Data == nil {
			return nil, fmt.Errorf("%w: delta base %s of %s has no full data", core.ErrInvalid, b.ID, c.ID)
		}
		var err error
		if data, err = core.ApplyDelta(b.Data, c.Delta); err != nil {
			return nil, fmt.Errorf("commit %s: %w", c.ID, err)
		}
	}
	if c.Schema == target {
		return data, nil
	}
	up, err := reg.Upgrade(data, c.Schema, target)
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", c.ID, err)
	}
	return up, nil
}

// Verify checks a received merge commit by recomputing it from its parents
// in g: it is valid exactly when Merge on its parents yields the same id.
// A mismatch (or a commit that is not a well-formed merge) wraps
// core.ErrInvalid; missing parents wrap core.ErrMissingParents.
func Verify(g Graph, reg *core.Registry, c *core.Commit) error {
	if !c.IsMerge() {
		return fmt.Errorf("%w: commit %s is not a merge commit", core.ErrInvalid, c.ID)
	}
	id, err := c.ComputeID()
	if err != nil {
		return err
	}
	if id != c.ID {
		return fmt.Errorf("%w: id: %s does not match the content (computed %s)", core.ErrInvalid, c.ID, id)
	}
	m, err := Merge(g, reg, c.Repo, c.Key, c.Parents)
	if err != nil {
		return fmt.Errorf("verify merge %s: %w", c.ID, err)
	}
	if m.ID != c.ID {
		return fmt.Errorf("%w: merge commit %s differs from the recomputed merge %s of its parents", core.ErrInvalid, c.ID, m.ID)
	}
	return nil
}
