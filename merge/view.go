package merge

import (
	"fmt"
	"slices"

	"github.com/goat-gateway/goat-gateway/core"
)

// View selects what one reader sees of an item's commit graph (DESIGN
// section 2, "Schema branches" and "Time travel"). A commit is visible when
// its own schema version is at most the reader's cap for its namespace,
// its ts is at most AsOf (when HasAsOf), and every parent is visible: a
// commit that descends from an invisible one is invisible too, so a view
// is always a whole sub-graph closed under ancestors. The zero View is the
// newest readable version of every namespace, at the present.
type View struct {
	// Versions caps namespaces at a version: the newest the reader knows
	// ({"note": 1} for a build that knows note/1). The cap of a namespace
	// is the smaller of this and the registry's Cap (which excludes
	// retired versions); a namespace in neither is not capped.
	Versions map[string]int
	// AsOf, when HasAsOf, keeps only commits with ts <= AsOf (unix ms).
	AsOf    int64
	HasAsOf bool
}

// Cap returns the newest version of namespace ns that v reads, and false
// when nothing caps it (a namespace reg does not know and v does not name).
func (v View) Cap(reg *core.Registry, ns string) (int, bool) {
	c, ok := reg.Cap(ns)
	if w, named := v.Versions[ns]; named {
		if !ok || w < c {
			c, ok = w, true
		}
	}
	return c, ok
}

// Unrestricted reports whether v sees every commit of every item: no cap
// below the registry's newest versions, nothing retired, no time limit.
// Readers use the stored value then, with no walk of the history.
func (v View) Unrestricted(reg *core.Registry) bool {
	if v.HasAsOf || reg.AnyRetired() {
		return false
	}
	for ns, w := range v.Versions {
		if c, ok := reg.Cap(ns); !ok || w < c {
			return false
		}
	}
	return true
}

// Sees reports whether c itself passes v's filters (its version and ts),
// its parents aside. A reader whose every head of an item passes sees the
// whole item when no writer wrote below a parent's version (DESIGN section
// 2: writers upgrade), which is how the SDKs avoid walking the history.
func (v View) Sees(reg *core.Registry, c *core.Commit) bool { return v.own(reg, c) }

// own reports whether c alone passes v's filters (its parents aside).
func (v View) own(reg *core.Registry, c *core.Commit) bool {
	if v.HasAsOf && c.TS > v.AsOf {
		return false
	}
	ns, ver, err := core.ParseSchemaRef(c.Schema)
	if err != nil {
		return false
	}
	if cap, ok := v.Cap(reg, ns); ok && ver > cap {
		return false
	}
	return true
}

// viewWalk decides visibility once per commit.
type viewWalk struct {
	g       Graph
	reg     *core.Registry
	v       View
	visible map[core.CommitID]bool
	inner   map[core.CommitID]bool // a parent of a visible commit
}

// isVisible reports whether commit id is visible, deciding its ancestors
// on the way (iteratively, depth first: histories can be long chains).
func (w *viewWalk) isVisible(id core.CommitID) (bool, error) {
	if vis, ok := w.visible[id]; ok {
		return vis, nil
	}
	get := func(id core.CommitID) (*core.Commit, error) {
		c, ok := w.g.Commit(id)
		if !ok {
			return nil, fmt.Errorf("%w: commit %s", core.ErrMissingParents, id)
		}
		return c, nil
	}
	c, err := get(id)
	if err != nil {
		return false, err
	}
	stack := []*core.Commit{c}
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		if _, ok := w.visible[c.ID]; ok {
			stack = stack[:len(stack)-1]
			continue
		}
		vis := w.v.own(w.reg, c)
		for _, p := range c.Parents {
			if pv, ok := w.visible[p]; ok && !pv {
				vis = false
			}
		}
		if !vis {
			w.visible[c.ID] = false
			stack = stack[:len(stack)-1]
			continue
		}
		pushed := false
		for _, p := range c.Parents {
			if _, ok := w.visible[p]; !ok {
				pc, err := get(p)
				if err != nil {
					return false, err
				}
				stack = append(stack, pc)
				pushed = true
			}
		}
		if pushed {
			continue // decided once its parents are
		}
		w.visible[c.ID] = true
		for _, p := range c.Parents {
			w.inner[p] = true
		}
		stack = stack[:len(stack)-1]
	}
	return w.visible[id], nil
}

// Heads returns the heads of the sub-graph v sees of an item whose heads
// (commits without children) are heads: the visible commits that are not
// a parent of a visible commit, sorted by id. None means the item does not
// exist for this reader. It walks the item's history once.
func Heads(g Graph, reg *core.Registry, heads []core.CommitID, v View) ([]core.CommitID, error) {
	w := &viewWalk{g: g, reg: reg, v: v, visible: map[core.CommitID]bool{}, inner: map[core.CommitID]bool{}}
	// Candidates: the first visible commits met walking down from the
	// heads through invisible ones. Every visible commit is an ancestor of
	// a head, so every visible head is a candidate.
	var cands []core.CommitID
	seen := map[core.CommitID]bool{}
	stack := slices.Clone(heads)
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[id] {
			continue
		}
		seen[id] = true
		vis, err := w.isVisible(id)
		if err != nil {
			return nil, err
		}
		if vis {
			cands = append(cands, id)
			continue
		}
		c, _ := g.Commit(id) // isVisible found it
		stack = append(stack, c.Parents...)
	}
	out := make([]core.CommitID, 0, len(cands))
	for _, id := range cands {
		if !w.inner[id] {
			out = append(out, id)
		}
	}
	slices.SortFunc(out, core.CommitID.Compare)
	return out, nil
}

// Resolved is an item as one View sees it.
type Resolved struct {
	// Heads are the visible heads, sorted by id.
	Heads []core.CommitID
	// Head is the commit whose value this is: the one visible head, or the
	// merge commit of several (computed as section 4 computes it; the same
	// commit every peer builds, whether or not it is stored).
	Head core.CommitID
	// TS is Head's ts.
	TS int64
	// Schema is the schema of Data: the newest version of the item's
	// namespace the view reads (older values are upgraded).
	Schema string
	Data   map[string]any
}

// Resolve returns item key of repo, whose heads are heads, as v sees it:
// the merge of the visible heads (Heads), upgraded to the view's version.
// An item with no visible commit is core.ErrNotFound.
func Resolve(g Graph, reg *core.Registry, repo, key string, heads []core.CommitID, v View) (*Resolved, error) {
	vh, err := Heads(g, reg, heads, v)
	if err != nil {
		return nil, err
	}
	if len(vh) == 0 {
		return nil, fmt.Errorf("%w: item %q has no commit this reader sees", core.ErrNotFound, key)
	}
	var head *core.Commit
	view := g
	if len(vh) == 1 {
		head, _ = g.Commit(vh[0])
	} else {
		ms, err := MergeAll(g, reg, repo, key, vh)
		if err != nil {
			return nil, err
		}
		made := map[core.CommitID]*core.Commit{}
		for _, m := range ms {
			made[m.ID] = m
		}
		view = GraphFunc(func(id core.CommitID) (*core.Commit, bool) {
			if c, ok := made[id]; ok {
				return c, true
			}
			return g.Commit(id)
		})
		head = ms[len(ms)-1]
	}
	schema, data, err := readAt(view, reg, head, v)
	if err != nil {
		return nil, err
	}
	return &Resolved{Heads: vh, Head: head.ID, TS: head.TS, Schema: schema, Data: data}, nil
}

// ValueAt returns the value of the item at commit id (time travel, DESIGN
// section 2): its data, a delta applied to its base, upgraded to the
// newest version v reads. A commit at a version newer than v's cap is
// core.ErrSchema: that branch cannot read it. v's AsOf plays no part.
func ValueAt(g Graph, reg *core.Registry, id core.CommitID, v View) (schema string, data map[string]any, err error) {
	c, ok := g.Commit(id)
	if !ok {
		return "", nil, fmt.Errorf("%w: commit %s", core.ErrNotFound, id)
	}
	return readAt(g, reg, c, v)
}

// readAt is ValueAt of a commit in hand.
func readAt(g Graph, reg *core.Registry, c *core.Commit, v View) (string, map[string]any, error) {
	ns, ver, err := core.ParseSchemaRef(c.Schema)
	if err != nil {
		return "", nil, fmt.Errorf("commit %s: %w", c.ID, err)
	}
	target := c.Schema
	if cap, ok := v.Cap(reg, ns); ok {
		if ver > cap {
			return "", nil, fmt.Errorf("%w: commit %s is at %s, newer than this reader's %s", core.ErrSchema, c.ID, c.Schema, core.SchemaRef(ns, cap))
		}
		target = core.SchemaRef(ns, cap)
	}
	data, err := valueAt(g, reg, c, target)
	if err != nil {
		return "", nil, err
	}
	return target, data, nil
}

// At returns v as of time ts (unix ms): the sub-graph of the commits with
// ts at most that.
func (v View) At(ts int64) View {
	v.AsOf, v.HasAsOf = ts, true
	return v
}
