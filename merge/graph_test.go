package merge

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
)

func TestMerge(t *testing.T) {
	reg := testRegistry(t)
	g := memGraph{}
	r := g.add(t, 1, "note/1", obj{"title": "a", "body": "hello world", "tags": set("a")})
	a := g.add(t, 20, "note/1", obj{"title": "b", "body": "Hello world", "tags": set("a", "b")}, r)
	b := g.add(t, 10, "note/1", obj{"title": "c", "body": "hello world!", "tags": set()}, r)

	m, err := Merge(g, reg, testRepo, testKey, ids(a, b))
	if err != nil {
		t.Fatalf("Merge: %v", err)
	}
	if want := (obj{"title": "b", "body": "Hello world!", "tags": set("b")}); !core.EqualJSON(m.Data, want) {
		t.Fatalf("data = %v, want %v", m.Data, want)
	}
	if got, want := m.Author, core.MergeAuthor; got != want {
		t.Fatalf("author = %q, want %q", got, want)
	}
	if got, want := m.TS, int64(20); got != want {
		t.Fatalf("ts = %d, want %d", got, want)
	}
	if got, want := m.Parents, slices.SortedFunc(slices.Values(ids(a, b)), core.CommitID.Compare); !slices.Equal(got, want) {
		t.Fatalf("parents = %v, want %v", got, want)
	}
	if m.Sig != nil || m.Delta != nil || m.Schema != "note/1" || m.Repo != testRepo || m.Key != testKey {
		t.Fatalf("merge commit = %+v", m)
	}
	if id, err := m.ComputeID(); err != nil || id != m.ID {
		t.Fatalf("id %s does not recompute (%s, %v)", m.ID, id, err)
	}
	again, err := Merge(g, reg, testRepo, testKey, ids(b, a))
	if err != nil {
		t.Fatalf("Merge reversed: %v", err)
	}
	if again.ID != m.ID {
		t.Fatalf("merge depends on the order heads are given in: %s vs %s", again.ID, m.ID)
	}
}

func TestMerge_ThreeHeadsTieOnTS(t *testing.T) {
	reg := testRegistry(t)
	g := memGraph{}
	r := g.add(t, 1, "note/1", obj{"title": "r"})
	heads := []*core.Commit{
		g.add(t, 5, "note/1", obj{"title": "x"}, r),
		g.add(t, 5, "note/1", obj{"title": "y"}, r),
		g.add(t, 5, "note/1", obj{"title": "z"}, r),
	}
	// Equal ts: the greatest id is last in head order and wins.
	last := slices.MaxFunc(heads, func(x, y *core.Commit) int { return x.ID.Compare(y.ID) })
	m := g.merge(t, reg, heads...)
	if got, want := m.Data["title"], last.Data["title"]; got != want {
		t.Fatalf("title = %v, want %v (head with the greatest id)", got, want)
	}
}

func TestBase(t *testing.T) {
	g := memGraph{}
	r := g.add(t, 1, "note/1", obj{"v": "r"})
	a := g.add(t, 2, "note/1", obj{"v": "a"}, r)
	b := g.add(t, 3, "note/1", obj{"v": "b"}, r)
	// Criss-cross: x and y both have parents a and b.
	x := g.add(t, 4, "note/1", obj{"v": "x"}, a, b)
	y := g.add(t, 5, "note/1", obj{"v": "y"}, a, b)
	c := g.add(t, 6, "note/1", obj{"v": "c"}, x)
	root2 := g.add(t, 7, "note/1", obj{"v": "root2"})
	// Equal ts: the greater id wins.
	p := g.add(t, 9, "note/1", obj{"v": "p"}, r)
	q := g.add(t, 9, "note/1", obj{"v": "q"}, r)
	pq1 := g.add(t, 10, "note/1", obj{"v": "pq1"}, p, q)
	pq2 := g.add(t, 11, "note/1", obj{"v": "pq2"}, p, q)
	greaterPQ := p
	if q.ID.Compare(p.ID) > 0 {
		greaterPQ = q
	}

	tests := []struct {
		name  string
		heads []*core.Commit
		want  *core.Commit // nil: no common ancestor
	}{
		{"Siblings", []*core.Commit{a, b}, r},
		{"Single", []*core.Commit{a}, a},
		{"CrissCrossGreatestTS", []*core.Commit{x, y}, b},
		{"CrissCrossDeeper", []*core.Commit{c, y}, b},
		{"CrissCrossTieOnTS", []*core.Commit{pq1, pq2}, greaterPQ},
		{"ThreeHeads", []*core.Commit{a, b, p}, r},
		{"DisjointRoots", []*core.Commit{a, root2}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, ok, err := Base(g, ids(tt.heads...))
			if err != nil {
				t.Fatalf("Base: %v", err)
			}
			if tt.want == nil {
				if ok {
					t.Fatalf("Base = %s, want none", g[id].Data["v"])
				}
				return
			}
			if !ok || id != tt.want.ID {
				t.Fatalf("Base = %v (ok %v), want %v", g[id], ok, tt.want.Data["v"])
			}
		})
	}
}

func TestMerge_CrissCross(t *testing.T) {
	reg := testRegistry(t)
	g := memGraph{}
	r := g.add(t, 1, "note/1", obj{"body": "base", "n": 0.0})
	a := g.add(t, 2, "note/1", obj{"body": "A base", "n": 0.0}, r)
	b := g.add(t, 3, "note/1", obj{"body": "base B", "n": 1.0}, r)
	// Two peers merged a and b and then edited: x and y.
	x := g.add(t, 4, "note/1", obj{"body": "A base B x", "n": 1.0}, a, b)
	y := g.add(t, 5, "note/1", obj{"body": "yA base B", "n": 2.0}, a, b)
	m := g.merge(t, reg, x, y)
	// Base is b (the greatest of a and b); a's insertion "A " is in both
	// heads relative to b, so it appears twice: the known cost of a single
	// base for criss-cross histories (docs/merge.md).
	if want := (obj{"body": "A yA base B x", "n": 2.0}); !core.EqualJSON(m.Data, want) {
		t.Fatalf("data = %v, want %v", m.Data, want)
	}
}

func TestMerge_DisjointRoots(t *testing.T) {
	reg := testRegistry(t)
	g := memGraph{}
	a := g.add(t, 1, "note/1", obj{"title": "a", "tags": set("x"), "body": "one"})
	b := g.add(t, 2, "note/1", obj{"title": "b", "tags": set("y"), "body": "two", "done": true})
	m := g.merge(t, reg, a, b)
	if want := (obj{"title": "b", "tags": set("x", "y"), "body": "onetwo", "done": true}); !core.EqualJSON(m.Data, want) {
		t.Fatalf("data = %v, want %v", m.Data, want)
	}
}

func TestMerge_SchemaUpgrade(t *testing.T) {
	reg := testRegistry(t)
	g := memGraph{}
	r := g.add(t, 1, "note/1", obj{"title": "a", "n": 1.0})
	a := g.add(t, 3, "note/1", obj{"title": "b", "n": 1.0}, r)
	b := g.add(t, 2, "note/2", obj{"name": "a", "n": 2.0, "prio": 5.0}, r)
	m := g.merge(t, reg, a, b)
	if got, want := m.Schema, "note/2"; got != want {
		t.Fatalf("schema = %q, want %q", got, want)
	}
	if want := (obj{"name": "b", "n": 2.0, "prio": 5.0}); !core.EqualJSON(m.Data, want) {
		t.Fatalf("data = %v, want %v", m.Data, want)
	}
}

func TestMerge_NamespaceChange(t *testing.T) {
	reg := testRegistry(t)
	for _, otherLast := range []bool{true, false} {
		t.Run(fmt.Sprintf("OtherLast=%v", otherLast), func(t *testing.T) {
			g := memGraph{}
			r := g.add(t, 1, "note/1", obj{"title": "a", "body": "x"})
			tsOther, tsNote := int64(3), int64(2)
			if !otherLast {
				tsOther, tsNote = 2, 3
			}
			o := g.add(t, tsOther, "other/1", obj{"x": "o", "body": "y"}, r)
			n := g.add(t, tsNote, "note/1", obj{"title": "b", "body": "xz"}, r)
			m := g.merge(t, reg, o, n)
			want, schema := obj{"title": "b", "body": "xz"}, "note/1"
			if otherLast {
				// The base is in another namespace: the empty item.
				want, schema = obj{"x": "o", "body": "y"}, "other/1"
			}
			if m.Schema != schema || !core.EqualJSON(m.Data, want) {
				t.Fatalf("merge = %s %v, want %s %v", m.Schema, m.Data, schema, want)
			}
		})
	}
}

func TestMerge_Delta(t *testing.T) {
	reg := testRegistry(t)
	g := memGraph{}
	r := g.add(t, 1, "note/1", obj{"title": "a", "body": "hello", "tags": set("x")})
	a := g.add(t, 2, "note/1", obj{"title": "b", "body": "hello", "tags": set("x")}, r)
	// b is sent as a delta against r.
	b := &core.Commit{Repo: testRepo, Key: testKey, Author: "s_test", TS: 3, Schema: "note/1", Parents: []core.CommitID{r.ID},
		Delta: &core.Delta{Base: r.ID, Ops: []core.Op{
			{Op: core.OpSplice, Field: "body", At: 5, Ins: " world"},
			{Op: core.OpAdd, Field: "tags", Values: []string{"y"}},
		}}}
	if err := b.Seal(); err != nil {
		t.Fatal(err)
	}
	g[b.ID] = b
	m := g.merge(t, reg, a, b)
	if want := (obj{"title": "b", "body": "hello world", "tags": set("x", "y")}); !core.EqualJSON(m.Data, want) {
		t.Fatalf("data = %v, want %v", m.Data, want)
	}
}

func TestMerge_Errors(t *testing.T) {
	reg := testRegistry(t)
	g := memGraph{}
	r := g.add(t, 1, "note/1", obj{"title": "a"})
	a := g.add(t, 2, "note/1", obj{"title": "b"}, r)
	b := g.add(t, 3, "note/1", obj{"title": "c"}, r)
	unknown := g.add(t, 4, "zzz/1", obj{"title": "d"}, r)
	orphan := &core.Commit{Repo: testRepo, Key: testKey, Author: "s_test", TS: 5, Schema: "note/1", Data: obj{}, Parents: []core.CommitID{{9}}}
	if err := orphan.Seal(); err != nil {
		t.Fatal(err)
	}
	g[orphan.ID] = orphan
	other := &core.Commit{Repo: testRepo, Key: "note-2", Author: "s_test", TS: 5, Schema: "note/1", Data: obj{}, Parents: []core.CommitID{r.ID}}
	if err := other.Seal(); err != nil {
		t.Fatal(err)
	}
	g[other.ID] = other

	tests := []struct {
		name  string
		heads []core.CommitID
		want  error
	}{
		{"OneHead", ids(a), core.ErrInvalid},
		{"NoHeads", nil, core.ErrInvalid},
		{"Repeated", ids(a, a), core.ErrInvalid},
		{"AncestorHead", ids(a, r), core.ErrInvalid},
		{"AncestorHeadFirst", ids(r, a), core.ErrInvalid},
		{"UnknownHead", []core.CommitID{a.ID, {1}}, core.ErrMissingParents},
		{"MissingAncestor", ids(a, orphan), core.ErrMissingParents},
		{"OtherKey", ids(a, other), core.ErrInvalid},
		{"UnknownSchema", ids(a, unknown), core.ErrSchema},
		{"TooMany", make([]core.CommitID, core.MaxParents+1), core.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Merge(g, reg, testRepo, testKey, tt.heads); !errors.Is(err, tt.want) {
				t.Fatalf("Merge error = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := Merge(g, reg, testRepo, testKey, ids(a, b)); err != nil {
		t.Fatalf("valid merge: %v", err)
	}
}

func TestVerify(t *testing.T) {
	reg := testRegistry(t)
	g := memGraph{}
	r := g.add(t, 1, "note/1", obj{"title": "a"})
	a := g.add(t, 2, "note/1", obj{"title": "b"}, r)
	b := g.add(t, 3, "note/1", obj{"title": "c"}, r)
	m, err := Merge(g, reg, testRepo, testKey, ids(a, b))
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(g, reg, m); err != nil {
		t.Fatalf("Verify(valid merge) = %v", err)
	}
	resealed := func(edit func(c *core.Commit)) *core.Commit {
		c := *m
		c.Data = core.CloneObject(m.Data)
		c.Parents = slices.Clone(m.Parents)
		edit(&c)
		if err := c.Seal(); err != nil {
			t.Fatal(err)
		}
		return &c
	}
	tests := []struct {
		name string
		c    *core.Commit
		want error
	}{
		{"OtherData", resealed(func(c *core.Commit) { c.Data["title"] = "b" }), core.ErrInvalid},
		{"OtherTS", resealed(func(c *core.Commit) { c.TS = 2 }), core.ErrInvalid},
		{"OtherSchema", resealed(func(c *core.Commit) { c.Schema = "note/2" }), core.ErrInvalid},
		{"IDDoesNotRecompute", func() *core.Commit { c := *m; c.ID[0] ^= 1; return &c }(), core.ErrInvalid},
		{"NotAMerge", a, core.ErrInvalid},
		{"MissingParent", resealed(func(c *core.Commit) { c.Parents = []core.CommitID{a.ID, {0xff}} }), core.ErrMissingParents},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Verify(g, reg, tt.c); !errors.Is(err, tt.want) {
				t.Fatalf("Verify error = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestMerge_ConvergenceOfPartialMerges is the case the simulation
// generalizes: one peer merged a+b then that with c, another merged a+b+c
// at once; once both have everything they merge the two merges to the same
// commit, and a single head needs no more merging.
func TestMerge_ConvergenceOfPartialMerges(t *testing.T) {
	reg := testRegistry(t)
	p, q := memGraph{}, memGraph{}
	r := p.add(t, 1, "note/1", obj{"body": "base", "tags": set("t"), "n": 0.0})
	a := p.add(t, 2, "note/1", obj{"body": "A base", "tags": set("a", "t"), "n": 0.0}, r)
	b := p.add(t, 3, "note/1", obj{"body": "base B", "tags": set("b", "t"), "n": 1.0}, r)
	c := p.add(t, 4, "note/1", obj{"body": "bCase", "tags": set(), "n": 0.0}, r)
	for id, cm := range p {
		q[id] = cm
	}
	m1 := p.merge(t, reg, a, b)
	m2 := p.merge(t, reg, m1, c)
	m3 := q.merge(t, reg, a, b, c)
	if !core.EqualJSON(m2.Data, m3.Data) {
		t.Fatalf("partial and full merges differ: %v vs %v", m2.Data, m3.Data)
	}
	p[m3.ID] = m3
	q[m1.ID], q[m2.ID] = m1, m2
	for _, g := range []memGraph{p, q} {
		if err := Verify(g, reg, m2); err != nil {
			t.Fatalf("Verify(m2): %v", err)
		}
		if err := Verify(g, reg, m3); err != nil {
			t.Fatalf("Verify(m3): %v", err)
		}
	}
	fp := p.merge(t, reg, m2, m3)
	fq := q.merge(t, reg, m3, m2)
	if fp.ID != fq.ID {
		t.Fatalf("peers built different final merges: %s vs %s", fp.ID, fq.ID)
	}
	if !core.EqualJSON(fp.Data, m2.Data) {
		t.Fatalf("final merge %v changed the agreed value %v", fp.Data, m2.Data)
	}
	if _, err := Merge(p, reg, testRepo, testKey, ids(fp)); !errors.Is(err, core.ErrInvalid) {
		t.Fatalf("merging a single head: %v, want ErrInvalid (nothing to merge)", err)
	}
}

// TestMerge_LongHistory merges two heads over a 10,000-commit history.
func TestMerge_LongHistory(t *testing.T) {
	reg := testRegistry(t)
	g, a, b := longHistory(t, 10000)
	m := g.merge(t, reg, a, b)
	if want := (obj{"n": 2.0, "title": "a"}); !core.EqualJSON(m.Data, want) {
		t.Fatalf("data = %v, want %v", m.Data, want)
	}
}

// TestMerge_Ancestors: a Graph with Ancestors gets the same merges, and
// only the heads and the base are read whole, however long the history.
func TestMerge_Ancestors(t *testing.T) {
	reg := testRegistry(t)
	t.Run("LongHistory", func(t *testing.T) {
		g, a, b := longHistory(t, 10000)
		want, err := Merge(g, reg, testRepo, testKey, ids(a, b))
		if err != nil {
			t.Fatal(err)
		}
		whole := 0
		got, err := Merge(indexedGraph{g, &whole}, reg, testRepo, testKey, ids(a, b))
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != want.ID {
			t.Fatalf("merge with Ancestors=%s, without %s", got.ID, want.ID)
		}
		if whole > 3 {
			t.Fatalf("%d commits read whole, want the 2 heads and the base", whole)
		}
	})
	t.Run("CrissCross", func(t *testing.T) {
		g := memGraph{}
		root := g.add(t, 1, "note/1", obj{"title": "r"})
		x := g.add(t, 2, "note/1", obj{"title": "x"}, root)
		y := g.add(t, 3, "note/1", obj{"title": "y"}, root)
		m1 := g.merge(t, reg, x, y)
		a := g.add(t, 4, "note/1", obj{"title": "a"}, m1)
		z := g.add(t, 5, "note/1", obj{"title": "z"}, x)
		b := g.add(t, 6, "note/1", obj{"title": "b"}, z, y)
		wantBase, _, err := Base(g, ids(a, b))
		if err != nil {
			t.Fatal(err)
		}
		whole := 0
		gotBase, ok, err := Base(indexedGraph{g, &whole}, ids(a, b))
		if err != nil || !ok || gotBase != wantBase {
			t.Fatalf("Base with Ancestors=%s, %v, %v; without %s", gotBase, ok, err, wantBase)
		}
		want := g.merge(t, reg, a, b)
		got, err := Merge(indexedGraph{g, &whole}, reg, testRepo, testKey, ids(a, b))
		if err != nil || got.ID != want.ID {
			t.Fatalf("merge with Ancestors=%v (%v), without %s", got, err, want.ID)
		}
	})
	t.Run("Missing", func(t *testing.T) {
		g, a, b := longHistory(t, 10)
		var mid core.CommitID
		for id, c := range g {
			if c.TS == 5 {
				mid = id
			}
		}
		delete(g, mid)
		whole := 0
		if _, err := Merge(indexedGraph{g, &whole}, reg, testRepo, testKey, ids(a, b)); !errors.Is(err, core.ErrMissingParents) {
			t.Fatalf("merge over a missing ancestor: err=%v, want ErrMissingParents", err)
		}
	})
}

func longHistory(tb testing.TB, n int) (memGraph, *core.Commit, *core.Commit) {
	tb.Helper()
	g := memGraph{}
	cur := g.add(tb, 0, "note/1", obj{"n": 0.0})
	for i := 1; i < n; i++ {
		cur = g.add(tb, int64(i), "note/1", obj{"n": float64(i % 2)}, cur)
	}
	a := g.add(tb, int64(n), "note/1", obj{"n": 2.0, "title": "x"}, cur)
	b := g.add(tb, int64(n+1), "note/1", obj{"n": float64((n - 1) % 2), "title": "a"}, cur)
	return g, a, b
}

func BenchmarkMerge_LongHistory(b *testing.B) {
	reg := testRegistry(b)
	g, x, y := longHistory(b, 10000)
	heads := ids(x, y)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Merge(g, reg, testRepo, testKey, heads); err != nil {
			b.Fatal(err)
		}
	}
}
