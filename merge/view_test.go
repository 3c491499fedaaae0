package merge

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
)

// branchGraph is a rolling upgrade: a note/1 writer (a*) and a note/2
// writer (b*) edit one item; the gateway merges their heads (m*, note/2).
//
//	r(1) ── a1(2) ──────── a2(5) ── a3(8)
//	   \        \             \
//	    b1(3) ── m1(3) ─────── m2(5) ── b2(7, delta)
//	                                        \
//	                                         ...
type branchGraph struct {
	b                             *graphBuilder
	r, a1, b1, m1, a2, m2, b2, a3 *core.Commit
	a4                            *core.Commit // concurrent with a3 on the old branch
	heads                         []*core.Commit
}

func newBranchGraph(tb testing.TB, reg *core.Registry) *branchGraph {
	b := newGraphBuilder(tb)
	g := &branchGraph{b: b}
	// notes makes the value large enough that b2 is stored as a delta.
	g.r = b.add(1, "note/1", obj{"title": "milk", "n": 1.0, "tags": set("shop"), "notes": strings.Repeat("semi-skimmed, ", 40)})
	g.a1 = b.add(2, "note/1", obj{"title": "oat milk", "n": 1.0, "tags": set("shop"), "notes": g.r.Data["notes"]}, g.r)
	g.b1 = b.add(3, "note/2", obj{"name": "milk", "n": 1.0, "prio": 2.0, "tags": set("shop", "urgent"), "notes": g.r.Data["notes"]}, g.r)
	g.m1 = b.merge(reg, g.a1, g.b1)
	g.a2 = b.add(5, "note/1", obj{"title": "oat milk", "n": 2.0, "tags": set("shop"), "notes": g.r.Data["notes"]}, g.a1)
	g.m2 = b.merge(reg, g.m1, g.a2)
	g.b2 = b.addDelta(tb, reg, 7, "note/2", g.m2, func(d obj) { d["prio"] = 3.0; d["body"] = "2 litres" })
	g.a3 = b.add(8, "note/1", obj{"title": "oat milk", "n": 3.0, "tags": set("shop"), "notes": g.r.Data["notes"]}, g.a2)
	g.a4 = b.add(9, "note/1", obj{"title": "oat milk", "n": 2.0, "tags": set("cold", "shop"), "notes": g.r.Data["notes"]}, g.a2)
	g.heads = []*core.Commit{g.b2, g.a3, g.a4}
	return g
}

// addDelta adds a commit of schema that edits parent's full value with
// edit, stored as a delta when that is smaller.
func (b *graphBuilder) addDelta(tb testing.TB, reg *core.Registry, ts int64, schema string, parent *core.Commit, edit func(obj)) *core.Commit {
	tb.Helper()
	sc, err := reg.Get(schema)
	if err != nil {
		tb.Fatal(err)
	}
	base := parent.Data
	next := core.CloneObject(base)
	edit(next)
	c := &core.Commit{Repo: testRepo, Key: testKey, Author: "s_vectors", TS: ts, Schema: schema, Parents: []core.CommitID{parent.ID}}
	c.Data, c.Delta = core.Encode(sc, parent.ID, base, next)
	if c.Delta == nil {
		tb.Fatalf("edit of %s is no delta", parent.ID)
	}
	if err := c.Sign(b.priv); err != nil {
		tb.Fatal(err)
	}
	return b.put(c)
}

func TestHeads(t *testing.T) {
	reg := testRegistry(t)
	g := newBranchGraph(t, reg)
	tests := []struct {
		name string
		view View
		want []*core.Commit
	}{
		{"Newest", View{}, []*core.Commit{g.b2, g.a3, g.a4}},
		{"OldBranch", View{Versions: map[string]int{"note": 1}}, []*core.Commit{g.a3, g.a4}},
		{"OldBranchBeforeA3", View{Versions: map[string]int{"note": 1}, AsOf: 7, HasAsOf: true}, []*core.Commit{g.a2}},
		{"AsOfMergeTime", View{AsOf: 3, HasAsOf: true}, []*core.Commit{g.m1}},
		{"AsOfFirst", View{AsOf: 1, HasAsOf: true}, []*core.Commit{g.r}},
		{"AsOfBeforeAll", View{AsOf: 0, HasAsOf: true}, nil},
		{"UnknownNamespaceCap", View{Versions: map[string]int{"other": 1}}, []*core.Commit{g.b2, g.a3, g.a4}},
		{"CapZero", View{Versions: map[string]int{"note": 0}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Heads(g.b.g, reg, ids(g.heads...), tt.view)
			if err != nil {
				t.Fatal(err)
			}
			want := ids(tt.want...)
			sortIDs(want)
			if !slices.Equal(got, want) {
				t.Fatalf("heads=%v, want %v", got, want)
			}
		})
	}
	t.Run("MissingParent", func(t *testing.T) {
		gg := memGraph{g.a2.ID: g.a2}
		if _, err := Heads(gg, reg, ids(g.a2), View{}); !errors.Is(err, core.ErrMissingParents) {
			t.Fatalf("err=%v, want ErrMissingParents", err)
		}
	})
}

func TestResolve(t *testing.T) {
	reg := testRegistry(t)
	g := newBranchGraph(t, reg)
	old := View{Versions: map[string]int{"note": 1}}
	t.Run("OldBranchMergesItsOwnHeads", func(t *testing.T) {
		r, err := Resolve(g.b.g, reg, testRepo, testKey, ids(g.heads...), old)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := r.Schema, "note/1"; got != want {
			t.Fatalf("schema=%v, want %v", got, want)
		}
		want := obj{"title": "oat milk", "n": 3.0, "tags": set("cold", "shop"), "notes": g.r.Data["notes"]}
		if !core.EqualJSON(r.Data, want) {
			t.Fatalf("data=%v, want %v", r.Data, want)
		}
		m, err := Merge(g.b.g, reg, testRepo, testKey, ids(g.a3, g.a4))
		if err != nil {
			t.Fatal(err)
		}
		if r.Head != m.ID || r.TS != m.TS {
			t.Fatalf("head=%s ts=%d, want the merge %s ts=%d", r.Head, r.TS, m.ID, m.TS)
		}
	})
	t.Run("NewBranchSeesBoth", func(t *testing.T) {
		r, err := Resolve(g.b.g, reg, testRepo, testKey, ids(g.heads...), View{})
		if err != nil {
			t.Fatal(err)
		}
		want := obj{"name": "oat milk", "n": 3.0, "prio": 3.0, "body": "2 litres", "tags": set("cold", "shop", "urgent"), "notes": g.r.Data["notes"]}
		if r.Schema != "note/2" || !core.EqualJSON(r.Data, want) {
			t.Fatalf("%s %v, want note/2 %v", r.Schema, r.Data, want)
		}
	})
	t.Run("OldValuesUpgraded", func(t *testing.T) {
		r, err := Resolve(g.b.g, reg, testRepo, testKey, ids(g.a2), View{})
		if err != nil {
			t.Fatal(err)
		}
		if want := (obj{"name": "oat milk", "n": 2.0, "prio": 0.0, "tags": set("shop"), "notes": g.r.Data["notes"]}); r.Schema != "note/2" || !core.EqualJSON(r.Data, want) {
			t.Fatalf("%s %v, want note/2 %v", r.Schema, r.Data, want)
		}
	})
	t.Run("NotFound", func(t *testing.T) {
		_, err := Resolve(g.b.g, reg, testRepo, testKey, ids(g.heads...), View{AsOf: 0, HasAsOf: true})
		if !errors.Is(err, core.ErrNotFound) {
			t.Fatalf("err=%v, want ErrNotFound", err)
		}
	})
	t.Run("Retired", func(t *testing.T) {
		reg := testRegistry(t)
		if err := reg.Retire("note/2", true); err != nil {
			t.Fatal(err)
		}
		r, err := Resolve(g.b.g, reg, testRepo, testKey, ids(g.heads...), View{})
		if err != nil {
			t.Fatal(err)
		}
		if r.Schema != "note/1" || !slices.Equal(r.Heads, sorted(ids(g.a3, g.a4))) {
			t.Fatalf("retired note/2: %s heads %v, want note/1 heads a3 a4", r.Schema, r.Heads)
		}
		if err := reg.Retire("note/2", false); err != nil {
			t.Fatal(err)
		}
		if r, err = Resolve(g.b.g, reg, testRepo, testKey, ids(g.heads...), View{}); err != nil || r.Schema != "note/2" {
			t.Fatalf("restored note/2: %v %v", r, err)
		}
	})
}

func sorted(s []core.CommitID) []core.CommitID { sortIDs(s); return s }

func TestValueAt(t *testing.T) {
	reg := testRegistry(t)
	g := newBranchGraph(t, reg)
	t.Run("Delta", func(t *testing.T) {
		schema, data, err := ValueAt(g.b.g, reg, g.b2.ID, View{})
		if err != nil {
			t.Fatal(err)
		}
		want := core.CloneObject(g.m2.Data)
		want["prio"], want["body"] = 3.0, "2 litres"
		if schema != "note/2" || !core.EqualJSON(data, want) {
			t.Fatalf("%s %v, want note/2 %v", schema, data, want)
		}
	})
	t.Run("UpgradedToTheReader", func(t *testing.T) {
		schema, data, err := ValueAt(g.b.g, reg, g.a1.ID, View{})
		if err != nil {
			t.Fatal(err)
		}
		if want := (obj{"name": "oat milk", "n": 1.0, "prio": 0.0, "tags": set("shop"), "notes": g.r.Data["notes"]}); schema != "note/2" || !core.EqualJSON(data, want) {
			t.Fatalf("%s %v, want note/2 %v", schema, data, want)
		}
	})
	t.Run("NewerThanTheBranch", func(t *testing.T) {
		_, _, err := ValueAt(g.b.g, reg, g.b1.ID, View{Versions: map[string]int{"note": 1}})
		if !errors.Is(err, core.ErrSchema) {
			t.Fatalf("err=%v, want ErrSchema", err)
		}
	})
	t.Run("Unknown", func(t *testing.T) {
		_, _, err := ValueAt(g.b.g, reg, core.CommitID{1}, View{})
		if !errors.Is(err, core.ErrNotFound) {
			t.Fatalf("err=%v, want ErrNotFound", err)
		}
	})
}

// TestHeads_Oracle checks Heads against the definition, computed the naive
// way over random graphs: visit commits in topological order, a commit is
// visible when it passes the filters and all its parents are visible, and
// the heads are the visible commits no visible commit names as a parent.
func TestHeads_Oracle(t *testing.T) {
	reg := testRegistry(t)
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 21))
		g := memGraph{}
		var all []*core.Commit
		for i := range 5 + rng.IntN(25) {
			var parents []*core.Commit
			for range rng.IntN(3) {
				if len(all) > 0 {
					p := all[rng.IntN(len(all))]
					if !slices.Contains(parents, p) {
						parents = append(parents, p)
					}
				}
			}
			schema := "note/1"
			if rng.IntN(3) == 0 {
				schema = "note/2"
			}
			c := g.add(t, int64(rng.IntN(40)), schema, obj{"n": float64(i)}, parents...)
			all = append(all, c)
		}
		hasChild := map[core.CommitID]bool{}
		for _, c := range all {
			for _, p := range c.Parents {
				hasChild[p] = true
			}
		}
		var heads []core.CommitID
		for _, c := range all {
			if !hasChild[c.ID] {
				heads = append(heads, c.ID)
			}
		}
		for _, v := range []View{{}, {Versions: map[string]int{"note": 1}}, {AsOf: int64(rng.IntN(40)), HasAsOf: true}, {Versions: map[string]int{"note": 1}, AsOf: 20, HasAsOf: true}} {
			visible := map[core.CommitID]bool{}
			for _, c := range all {
				_, ver, _ := core.ParseSchemaRef(c.Schema)
				ok := (v.Versions == nil || ver <= v.Versions["note"]) && (!v.HasAsOf || c.TS <= v.AsOf)
				for _, p := range c.Parents {
					ok = ok && visible[p]
				}
				visible[c.ID] = ok
			}
			inner := map[core.CommitID]bool{}
			for _, c := range all {
				if visible[c.ID] {
					for _, p := range c.Parents {
						inner[p] = true
					}
				}
			}
			var want []core.CommitID
			for _, c := range all {
				if visible[c.ID] && !inner[c.ID] {
					want = append(want, c.ID)
				}
			}
			sortIDs(want)
			got, err := Heads(g, reg, heads, v)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 && len(want) == 0 {
				continue
			}
			if !slices.Equal(got, want) {
				t.Fatalf("seed %d view %+v: heads=%v, want %v", seed, v, got, want)
			}
		}
	}
}

func ExampleResolve() {
	reg := core.NewRegistry()
	note1 := &core.Schema{NS: "note", Version: 1, Fields: map[string]core.Field{"title": {Type: core.TypeString}}}
	note2 := &core.Schema{NS: "note", Version: 2, Fields: map[string]core.Field{"name": {Type: core.TypeString}},
		Upgrade: []core.Upgrade{{Op: "rename", From: "title", To: "name"}}}
	_ = reg.Add(note1)
	_ = reg.Add(note2)
	g := memGraph{}
	mk := func(ts int64, schema string, data map[string]any, parents ...core.CommitID) *core.Commit {
		c := &core.Commit{Repo: "r", Key: "k", Author: "s", TS: ts, Schema: schema, Data: data, Parents: parents}
		_ = c.Seal()
		g[c.ID] = c
		return c
	}
	r := mk(1, "note/1", map[string]any{"title": "a"})
	n := mk(2, "note/2", map[string]any{"name": "b"}, r.ID)
	for _, v := range []View{{}, {Versions: map[string]int{"note": 1}}} {
		res, _ := Resolve(g, reg, "r", "k", []core.CommitID{n.ID}, v)
		fmt.Println(res.Schema, res.Data)
	}
	// Output:
	// note/2 map[name:b]
	// note/1 map[title:a]
}
