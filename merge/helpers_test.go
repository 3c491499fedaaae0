package merge

import (
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
)

// memGraph is the simplest Graph: every commit of a repository by id.
type memGraph map[core.CommitID]*core.Commit

func (g memGraph) Commit(id core.CommitID) (*core.Commit, bool) {
	c, ok := g[id]
	return c, ok
}

var _ Graph = memGraph(nil)

const (
	testRepo = "user.alice.notes"
	testKey  = "note-1"
)

// add seals a user commit of testKey and stores it. Merge code does not
// check signatures, so test commits are unsigned.
func (g memGraph) add(tb testing.TB, ts int64, schema string, data obj, parents ...*core.Commit) *core.Commit {
	tb.Helper()
	c := &core.Commit{Repo: testRepo, Key: testKey, Author: "s_test", TS: ts, Schema: schema, Data: data}
	for _, p := range parents {
		c.Parents = append(c.Parents, p.ID)
	}
	sortIDs(c.Parents)
	if err := c.Seal(); err != nil {
		tb.Fatalf("seal: %v", err)
	}
	g[c.ID] = c
	return c
}

// merge merges heads and stores the result.
func (g memGraph) merge(tb testing.TB, reg *core.Registry, heads ...*core.Commit) *core.Commit {
	tb.Helper()
	m, err := Merge(g, reg, testRepo, testKey, ids(heads...))
	if err != nil {
		tb.Fatalf("Merge: %v", err)
	}
	g[m.ID] = m
	return m
}

func ids(cs ...*core.Commit) []core.CommitID {
	out := make([]core.CommitID, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

func sortIDs(s []core.CommitID) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].Compare(s[j-1]) < 0; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// note/2 renames title to name and adds prio; other/1 is an unrelated
// namespace.
var (
	noteV2 = &core.Schema{NS: "note", Version: 2,
		Fields: map[string]core.Field{
			"name":  {Type: core.TypeString},
			"prio":  {Type: core.TypeNumber},
			"n":     {Type: core.TypeNumber},
			"done":  {Type: core.TypeBoolean},
			"due":   {Type: core.TypeDate},
			"raw":   {Type: core.TypeJSON},
			"tags":  {Type: core.TypeSet},
			"attrs": {Type: core.TypeMap},
			"body":  {Type: core.TypeText},
			"notes": {Type: core.TypeText},
		},
		Upgrade: []core.Upgrade{
			{Op: "rename", From: "title", To: "name"},
			{Op: "add", Field: "prio", Default: 0.0},
		},
	}
	otherV1 = &core.Schema{NS: "other", Version: 1, Fields: map[string]core.Field{
		"x":    {Type: core.TypeString},
		"body": {Type: core.TypeText},
	}}
)

func testRegistry(tb testing.TB) *core.Registry {
	tb.Helper()
	reg := core.NewRegistry()
	for _, s := range []*core.Schema{testSchema, noteV2, otherV1} {
		if err := reg.Add(s); err != nil {
			tb.Fatalf("add schema %s: %v", s.Ref(), err)
		}
	}
	return reg
}

// indexedGraph is g with Ancestors, as storage's index gives it; whole
// counts the commits read whole.
type indexedGraph struct {
	g     memGraph
	whole *int
}

var _ Ancestors = indexedGraph{}

func (x indexedGraph) Commit(id core.CommitID) (*core.Commit, bool) {
	*x.whole++
	return x.g.Commit(id)
}

func (x indexedGraph) Parents(id core.CommitID) (int64, []core.CommitID, bool) {
	c, ok := x.g[id]
	if !ok {
		return 0, nil, false
	}
	return c.TS, c.Parents, true
}
