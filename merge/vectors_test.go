package merge

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
)

// The files in testdata/ are cross-language test vectors: the TypeScript SDK
// and any third-party client must reproduce every script, merged value and
// merge commit in them. They are generated from the cases below; run
//
//	go test ./merge -run TestVectors -update
//
// to rewrite them after an intended change, and review the diff. Cases with
// a hand-written want are checked while generating, so -update cannot bless
// a regression there. testdata/verify-merge.mjs checks text.json and
// values.json with an independent JavaScript port of docs/merge.md.
var update = flag.Bool("update", false, "rewrite the test vectors in testdata/")

type textCase struct {
	Name          string     `json:"name"`
	Base          string     `json:"base"`
	Heads         []string   `json:"heads"`
	Scripts       [][]Splice `json:"scripts,omitempty"`
	ScriptsSHA256 string     `json:"scriptsSha256,omitempty"`
	Result        string     `json:"result"`
	want          string
}

// maxListedHunks keeps the files readable: longer scripts are given by
// their digest.
const maxListedHunks = 50

// scriptsDigest is the hex SHA-256 of the canonical JSON of scripts.
func scriptsDigest(t *testing.T, scripts [][]Splice) string {
	t.Helper()
	b, err := json.Marshal(scripts)
	if err != nil {
		t.Fatal(err)
	}
	c, err := core.Canonicalize(b)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(c)
	return hex.EncodeToString(sum[:])
}

type textFile struct {
	About string     `json:"about"`
	Cases []textCase `json:"cases"`
}

type valueCase struct {
	Name   string `json:"name"`
	Schema string `json:"schema"`
	Base   obj    `json:"base"`
	Heads  []obj  `json:"heads"`
	Result obj    `json:"result"`
	want   obj
}

type valueFile struct {
	About   string         `json:"about"`
	Schemas []*core.Schema `json:"schemas"`
	Cases   []valueCase    `json:"cases"`
}

type graphCase struct {
	Name    string            `json:"name"`
	Commits []json.RawMessage `json:"commits"`
	Heads   []core.CommitID   `json:"heads"`
	Base    *core.CommitID    `json:"base"`
	Merge   json.RawMessage   `json:"merge"`
	MergeID core.CommitID     `json:"mergeId"`
}

type graphFile struct {
	About     string         `json:"about"`
	PublicKey string         `json:"publicKey"`
	Schemas   []*core.Schema `json:"schemas"`
	Cases     []graphCase    `json:"cases"`
}

// manyCase is a merge of more than GroupSize heads (MergeAll).
type manyCase struct {
	Name    string            `json:"name"`
	Commits []json.RawMessage `json:"commits"`
	Heads   []core.CommitID   `json:"heads"`
	Merges  []json.RawMessage `json:"merges"`
}

type manyFile struct {
	About     string         `json:"about"`
	GroupSize int            `json:"groupSize"`
	PublicKey string         `json:"publicKey"`
	Schemas   []*core.Schema `json:"schemas"`
	Cases     []manyCase     `json:"cases"`
}

func textCases() []textCase {
	// The work of diffing a^n x against x b^n is n²+... and passes
	// MaxDiffWork between n = 2895 and 2896 (by one unit); aab^n against
	// abb^n, with snakes, between 1577 and 1578.
	plain := func(n int) (string, string) { return strings.Repeat("a", n) + "x", "x" + strings.Repeat("b", n) }
	below, belowHead := plain(2895)
	above, aboveHead := plain(2896)
	snakes := func(n int) (string, []string) {
		base := strings.Repeat("aab", n)
		return base, []string{strings.Repeat("abb", n), base[:n] + "Z" + base[n:]}
	}
	snakesBelow, snakesBelowHeads := snakes(1577)
	snakesAbove, snakesAboveHeads := snakes(1578)
	return []textCase{
		{Name: "one head changed", Base: "hello world", Heads: []string{"hello world", "hello, world"}, want: "hello, world"},
		{Name: "edits far apart", Base: "hello world", Heads: []string{"Hello world", "hello world!"}, want: "Hello world!"},
		{Name: "insertions at one anchor in head order", Base: "ac", Heads: []string{"abc", "aXc"}, want: "abXc"},
		{Name: "insertions at one anchor, other order", Base: "ac", Heads: []string{"aXc", "abc"}, want: "aXbc"},
		{Name: "both delete the same", Base: "abc", Heads: []string{"ac", "ac"}, want: "ac"},
		{Name: "overlapping deletions", Base: "abcd", Heads: []string{"ad", "abd"}, want: "ad"},
		{Name: "insertion inside a replaced run", Base: "abcde", Heads: []string{"aXe", "abcYde"}, want: "aYXe"},
		{Name: "same word replaced twice", Base: "the cat", Heads: []string{"the dog", "the cow"}, want: "the dogow"},
		{Name: "same change twice applies once", Base: "abc", Heads: []string{"abXc", "Yabc", "abXc"}, want: "YabXc"},
		{Name: "empty base", Base: "", Heads: []string{"foo", "bar"}, want: "foobar"},
		{Name: "delete everything versus append", Base: "abc", Heads: []string{"", "abcd"}, want: "d"},
		{Name: "ambiguous insertion goes after the common prefix", Base: "aa", Heads: []string{"aaa", "baa"}, want: "baaa"},
		{Name: "swap", Base: "ab", Heads: []string{"ba", "abc"}, want: "bac"},
		{Name: "Myers 1986 example", Base: "ABCABBA", Heads: []string{"CBABAC", "ABCABBAD"}},
		{Name: "astral insert and prepend", Base: "a😀b", Heads: []string{"a😀🎉b", "😁a😀b"}, want: "😁a😀🎉b"},
		{Name: "astral delete and append", Base: "😀🎉😁", Heads: []string{"😀😁", "😀🎉😁🙂"}, want: "😀😁🙂"},
		{Name: "astral replaced by astral with shared high surrogate", Base: "x😀y", Heads: []string{"x😁y", "x😀y!"}, want: "x😁y!"},
		{Name: "code points, not graphemes: ZWJ family edited", Base: "👩‍👩‍👧", Heads: []string{"👩‍👩‍👦", "👨‍👩‍👧"}},
		{Name: "combining marks", Base: "cafe\u0301", Heads: []string{"cafe", "cafe\u0301s"}, want: "cafes"},
		{Name: "three heads", Base: "1 2 3", Heads: []string{"0 1 2 3", "1 2.5 3", "1 2 3 4"}, want: "0 1 2.5 3 4"},
		{Name: "paragraphs", Base: "The quick brown fox jumps over the lazy dog.\nSecond line.",
			Heads: []string{"The quick red fox jumps over the lazy dog.\nSecond line, edited.", "A quick brown fox leaps over the dog.\nSecond line."}},
		{Name: "work budget: just enough (no snakes)", Base: below, Heads: []string{belowHead, below + "!"}},
		{Name: "work budget: exhausted by one unit, replaced whole (no snakes)", Base: above, Heads: []string{aboveHead, above + "!"}},
		{Name: "work budget: just enough (snakes)", Base: snakesBelow, Heads: snakesBelowHeads},
		{Name: "work budget: exhausted by one unit (snakes)", Base: snakesAbove, Heads: snakesAboveHeads},
	}
}

func valueCases() []valueCase {
	return []valueCase{
		{Name: "register: last changed head wins", Schema: "note/1", Base: obj{"title": "a"}, Heads: []obj{{"title": "b"}, {"title": "c"}, {"title": "a"}}, want: obj{"title": "c"}},
		{Name: "register per field", Schema: "note/1", Base: obj{"title": "a", "n": 1.0, "done": false},
			Heads: []obj{{"title": "b", "n": 1.0, "done": true}, {"title": "a", "n": 2.0, "done": false}}, want: obj{"title": "b", "n": 2.0, "done": true}},
		{Name: "register: removal is a change", Schema: "note/1", Base: obj{"title": "a", "n": 1.0}, Heads: []obj{{"n": 1.0}, {"title": "a", "n": 1.0}}, want: obj{"n": 1.0}},
		{Name: "register: set after removal", Schema: "note/1", Base: obj{"title": "a"}, Heads: []obj{{}, {"title": "b"}}, want: obj{"title": "b"}},
		{Name: "date register", Schema: "note/1", Base: obj{"due": "2026-11-22T10:00:00.000Z"},
			Heads: []obj{{"due": "2026-11-23T10:00:00.000Z"}, {"due": "2026-11-22T10:00:00.000Z"}}, want: obj{"due": "2026-11-23T10:00:00.000Z"}},
		{Name: "json register replaced whole", Schema: "note/1", Base: obj{"raw": obj{"a": 1.0}},
			Heads: []obj{{"raw": obj{"a": 1.0, "b": 2.0}}, {"raw": obj{"c": []any{3.0, nil}}}}, want: obj{"raw": obj{"c": []any{3.0, nil}}}},
		{Name: "set: adds and removes", Schema: "note/1", Base: obj{"tags": set("a", "b", "c")},
			Heads: []obj{{"tags": set("a", "b", "d")}, {"tags": set("b", "c", "e")}}, want: obj{"tags": set("b", "d", "e")}},
		{Name: "set: UTF-16 order", Schema: "note/1", Base: obj{"tags": set()},
			Heads: []obj{{"tags": set("a", "～")}, {"tags": set("😀")}}, want: obj{"tags": set("a", "😀", "～")}},
		{Name: "set: absent base", Schema: "note/1", Base: obj{}, Heads: []obj{{"tags": set("x")}, {"tags": set("y")}}, want: obj{"tags": set("x", "y")}},
		{Name: "set: field removal makes it a register", Schema: "note/1", Base: obj{"tags": set("a")},
			Heads: []obj{{}, {"tags": set("a", "b")}}, want: obj{"tags": set("a", "b")}},
		{Name: "set: unsorted value makes it a register", Schema: "note/1", Base: obj{"tags": set("a")},
			Heads: []obj{{"tags": set("a", "c")}, {"tags": []any{"b", "a"}}}, want: obj{"tags": []any{"b", "a"}}},
		{Name: "map: per key with deletes", Schema: "note/1", Base: obj{"attrs": obj{"k": "v", "x": 1.0, "gone": true}},
			Heads: []obj{{"attrs": obj{"k": "v2", "x": 1.0}}, {"attrs": obj{"k": "v", "x": 2.0, "gone": true, "new": false}}},
			want:  obj{"attrs": obj{"k": "v2", "x": 2.0, "new": false}}},
		{Name: "map: same key, last changed head wins", Schema: "note/1", Base: obj{"attrs": obj{"k": "v"}},
			Heads: []obj{{"attrs": obj{"k": "a"}}, {"attrs": obj{"k": "b"}}, {"attrs": obj{"k": "v"}}}, want: obj{"attrs": obj{"k": "b"}}},
		{Name: "map: delete after put", Schema: "note/1", Base: obj{"attrs": obj{"k": "v"}},
			Heads: []obj{{"attrs": obj{"k": "a"}}, {"attrs": obj{}}}, want: obj{"attrs": obj{}}},
		{Name: "map: absent base", Schema: "note/1", Base: nil,
			Heads: []obj{{"attrs": obj{"a": 1.0}}, {"attrs": obj{"b": 2.0}}}, want: obj{"attrs": obj{"a": 1.0, "b": 2.0}}},
		{Name: "text", Schema: "note/1", Base: obj{"body": "hello world"},
			Heads: []obj{{"body": "Hello world"}, {"body": "hello world!"}}, want: obj{"body": "Hello world!"}},
		{Name: "text: absent base is empty", Schema: "note/1", Base: obj{}, Heads: []obj{{"body": "foo"}, {"body": "bar"}}, want: obj{"body": "foobar"}},
		{Name: "text: wrong type makes it a register", Schema: "note/1", Base: obj{"body": "x"}, Heads: []obj{{"body": "xy"}, {"body": 1.0}}, want: obj{"body": 1.0}},
		{Name: "tombstone versus edit", Schema: "note/1", Base: obj{"title": "a", "n": 1.0},
			Heads: []obj{{"title": "a", "n": 1.0, "isDeleted": true}, {"title": "b", "n": 1.0}}, want: obj{"title": "b", "n": 1.0, "isDeleted": true}},
		{Name: "resurrection after tombstone", Schema: "note/1", Base: obj{"title": "a", "isDeleted": true},
			Heads: []obj{{"title": "a", "isDeleted": false}, {"title": "b", "isDeleted": true}}, want: obj{"title": "b", "isDeleted": false}},
		{Name: "open schema: every field a json register", Schema: "any/1", Base: obj{"tags": []any{"a"}, "body": "x"},
			Heads: []obj{{"tags": []any{"a", "b"}, "body": "xy"}, {"tags": []any{"a", "c"}, "body": "zx"}}, want: obj{"tags": []any{"a", "c"}, "body": "zx"}},
		sharedBudget(),
		{Name: "every type at once", Schema: "note/1",
			Base: obj{"title": "t", "n": 0.0, "done": false, "due": "2026-01-01T00:00:00.000Z", "raw": nil, "tags": set("a"), "attrs": obj{"k": 1.0}, "body": "abc"},
			Heads: []obj{
				{"title": "t1", "n": 0.0, "done": true, "due": "2026-01-01T00:00:00.000Z", "raw": nil, "tags": set("a", "b"), "attrs": obj{"k": 2.0}, "body": "Xabc"},
				{"title": "t", "n": 5.0, "done": false, "due": "2026-02-01T00:00:00.000Z", "raw": []any{}, "tags": set(), "attrs": obj{"k": 1.0, "j": "y"}, "body": "abcY"},
			},
			want: obj{"title": "t1", "n": 5.0, "done": true, "due": "2026-02-01T00:00:00.000Z", "raw": []any{}, "tags": set("b"), "attrs": obj{"k": 2.0, "j": "y"}, "body": "XabcY"}},
	}
}

// sharedBudget makes text fields body and notes need MaxDiffWork together
// but not apart: body, first in field order, is diffed exactly; notes finds
// the budget spent and is replaced whole, which the second head (deleting
// the x) tells apart.
func sharedBudget() valueCase {
	body := strings.Repeat("a", 2895) + "x"
	notes := strings.Repeat("a", 100) + "x"
	flip := func(s string) string { return "x" + strings.Repeat("b", len(s)-1) }
	return valueCase{Name: "text fields share one work budget, in field-name order", Schema: "note/1",
		Base: obj{"body": body, "notes": notes},
		Heads: []obj{
			{"body": flip(body), "notes": flip(notes)},
			{"body": body[:len(body)-1], "notes": notes[:len(notes)-1]},
		},
		want: obj{"body": strings.Repeat("b", 2895), "notes": flip(notes)},
	}
}

// graphBuilder makes signed commits for graph vectors.
type graphBuilder struct {
	tb   testing.TB
	g    memGraph
	priv ed25519.PrivateKey
	list []*core.Commit // in insertion (topological) order
}

func newGraphBuilder(tb testing.TB) *graphBuilder {
	seed, _ := hex.DecodeString("202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f")
	return &graphBuilder{tb: tb, g: memGraph{}, priv: ed25519.NewKeyFromSeed(seed)}
}

func (b *graphBuilder) add(ts int64, schema string, data obj, parents ...*core.Commit) *core.Commit {
	b.tb.Helper()
	c := &core.Commit{Repo: testRepo, Key: testKey, Author: "s_vectors", TS: ts, Schema: schema, Data: data}
	for _, p := range parents {
		c.Parents = append(c.Parents, p.ID)
	}
	sortIDs(c.Parents)
	if err := c.Sign(b.priv); err != nil {
		b.tb.Fatalf("sign: %v", err)
	}
	return b.put(c)
}

func (b *graphBuilder) put(c *core.Commit) *core.Commit {
	b.g[c.ID] = c
	b.list = append(b.list, c)
	return c
}

func (b *graphBuilder) merge(reg *core.Registry, heads ...*core.Commit) *core.Commit {
	b.tb.Helper()
	m, err := Merge(b.g, reg, testRepo, testKey, ids(heads...))
	if err != nil {
		b.tb.Fatalf("Merge: %v", err)
	}
	return b.put(m)
}

// graphCases returns each case's builder and heads.
func graphCases(tb testing.TB, reg *core.Registry) []struct {
	name  string
	b     *graphBuilder
	heads []*core.Commit
	want  obj
} {
	type gc = struct {
		name  string
		b     *graphBuilder
		heads []*core.Commit
		want  obj
	}
	var out []gc
	{
		b := newGraphBuilder(tb)
		r := b.add(1763800000000, "note/1", obj{"title": "Buy milk", "body": "2 litres", "tags": set("shop")})
		x := b.add(1763800000100, "note/1", obj{"title": "Buy oat milk", "body": "2 litres", "tags": set("shop", "vegan")}, r)
		y := b.add(1763800000200, "note/1", obj{"title": "Buy milk", "body": "2 litres, cold", "tags": set(), "done": true}, r)
		out = append(out, gc{"two heads", b, []*core.Commit{x, y}, obj{"title": "Buy oat milk", "body": "2 litres, cold", "tags": set("vegan"), "done": true}})
	}
	{
		b := newGraphBuilder(tb)
		r := b.add(100, "note/1", obj{"title": "r", "body": "😀"})
		h1 := b.add(200, "note/1", obj{"title": "x", "body": "😀🎉"}, r)
		h2 := b.add(200, "note/1", obj{"title": "y", "body": "😁😀"}, r)
		h3 := b.add(150, "note/1", obj{"title": "r", "body": "😀", "n": 3.0}, r)
		out = append(out, gc{"three heads, equal ts ordered by id", b, []*core.Commit{h1, h2, h3}, nil})
	}
	{
		b := newGraphBuilder(tb)
		r := b.add(1, "note/1", obj{"body": "base", "n": 0.0})
		a := b.add(2, "note/1", obj{"body": "A base", "n": 0.0}, r)
		c := b.add(3, "note/1", obj{"body": "base B", "n": 1.0}, r)
		x := b.add(4, "note/1", obj{"body": "A base B x", "n": 1.0}, a, c)
		y := b.add(5, "note/1", obj{"body": "yA base B", "n": 2.0}, a, c)
		out = append(out, gc{"criss-cross", b, []*core.Commit{x, y}, obj{"body": "A yA base B x", "n": 2.0}})
	}
	{
		b := newGraphBuilder(tb)
		x := b.add(10, "note/1", obj{"title": "a", "tags": set("x"), "body": "one"})
		y := b.add(20, "note/1", obj{"title": "b", "tags": set("y"), "body": "two", "done": true})
		out = append(out, gc{"disjoint roots", b, []*core.Commit{x, y}, obj{"title": "b", "tags": set("x", "y"), "body": "onetwo", "done": true}})
	}
	{
		b := newGraphBuilder(tb)
		r := b.add(1, "note/1", obj{"title": "a", "n": 1.0})
		x := b.add(3, "note/1", obj{"title": "b", "n": 1.0}, r)
		y := b.add(2, "note/2", obj{"name": "a", "n": 2.0, "prio": 5.0}, r)
		out = append(out, gc{"schema upgrade", b, []*core.Commit{x, y}, obj{"name": "b", "n": 2.0, "prio": 5.0}})
	}
	{
		b := newGraphBuilder(tb)
		r := b.add(1, "note/1", obj{"title": "a", "body": "x"})
		x := b.add(3, "other/1", obj{"x": "o", "body": "y"}, r)
		y := b.add(2, "note/1", obj{"title": "b", "body": "xz"}, r)
		out = append(out, gc{"namespace change, last head wins the item", b, []*core.Commit{x, y}, obj{"x": "o", "body": "y"}})
	}
	{
		b := newGraphBuilder(tb)
		r := b.add(1, "note/1", obj{"title": "a", "body": "keep"})
		x := b.add(2, "note/1", obj{"title": "a", "body": "keep", "isDeleted": true}, r)
		y := b.add(3, "note/1", obj{"title": "b", "body": "keep it"}, r)
		out = append(out, gc{"tombstone versus edit", b, []*core.Commit{x, y}, obj{"title": "b", "body": "keep it", "isDeleted": true}})
	}
	{
		b := newGraphBuilder(tb)
		r := b.add(1, "note/1", obj{"title": "a", "body": "hello", "tags": set("x")})
		x := b.add(2, "note/1", obj{"title": "b", "body": "hello", "tags": set("x")}, r)
		d := &core.Commit{Repo: testRepo, Key: testKey, Author: "s_vectors", TS: 3, Schema: "note/1", Parents: []core.CommitID{r.ID},
			Delta: &core.Delta{Base: r.ID, Ops: []core.Op{
				{Op: core.OpSplice, Field: "body", At: 5, Ins: " world"},
				{Op: core.OpAdd, Field: "tags", Values: []string{"y"}},
			}}}
		if err := d.Sign(b.priv); err != nil {
			tb.Fatal(err)
		}
		b.put(d)
		out = append(out, gc{"head sent as a delta", b, []*core.Commit{x, d}, obj{"title": "b", "body": "hello world", "tags": set("x", "y")}})
	}
	{
		// One peer merged x+y then that with z; another x+y+z at once.
		b := newGraphBuilder(tb)
		r := b.add(1, "note/1", obj{"body": "base", "tags": set("t"), "n": 0.0})
		x := b.add(2, "note/1", obj{"body": "A base", "tags": set("a", "t"), "n": 0.0}, r)
		y := b.add(3, "note/1", obj{"body": "base B", "tags": set("b", "t"), "n": 1.0}, r)
		z := b.add(4, "note/1", obj{"body": "bCase", "tags": set(), "n": 0.0}, r)
		m1 := b.merge(reg, x, y)
		m2 := b.merge(reg, m1, z)
		m3 := b.merge(reg, x, y, z)
		out = append(out, gc{"merges of different subsets", b, []*core.Commit{m2, m3}, obj{"body": "A bCase B", "tags": set("a", "b"), "n": 1.0}})
	}
	return out
}

func vectorSchemas() []*core.Schema { return []*core.Schema{testSchema, noteV2, otherV1} }

func buildTextFile(t *testing.T) textFile {
	f := textFile{About: "goat-gateway text merge vectors (merge.DiffText, merge.MergeText; algorithm in docs/merge.md). " +
		"For each case: base and heads (in head order), scripts[i] = the edit script of heads[i] against base " +
		"(splices in base code point coordinates: delete del code points at at, insert ins there; insertion anchored at at+del), " +
		"and result = the merged text; when the scripts have more than 50 hunks in all, scriptsSha256 (the lowercase hex SHA-256 " +
		"of the RFC 8785 canonical JSON of the scripts array) replaces them. Lengths and positions count Unicode code points."}
	for _, c := range textCases() {
		c.Scripts = make([][]Splice, len(c.Heads))
		hunks := 0
		for i, h := range c.Heads {
			c.Scripts[i] = DiffText(c.Base, h)
			if c.Scripts[i] == nil {
				c.Scripts[i] = []Splice{}
			}
			hunks += len(c.Scripts[i])
		}
		if hunks > maxListedHunks {
			c.ScriptsSHA256, c.Scripts = scriptsDigest(t, c.Scripts), nil
		}
		c.Result = MergeText(c.Base, c.Heads)
		if c.want != "" && c.Result != c.want {
			t.Errorf("text case %q: result %q, want %q", c.Name, c.Result, c.want)
		}
		f.Cases = append(f.Cases, c)
	}
	return f
}

func buildValueFile(t *testing.T, reg *core.Registry) valueFile {
	f := valueFile{About: "goat-gateway value merge vectors (merge.MergeValues; rules in docs/merge.md). " +
		"For each case: the schema (one of schemas, or the built-in open any/1), base (null: the empty item) and heads " +
		"(already in head order and at that schema), and result = the merged value.", Schemas: vectorSchemas()}
	for _, c := range valueCases() {
		s, err := reg.Get(c.Schema)
		if err != nil {
			t.Fatal(err)
		}
		c.Result = MergeValues(s, c.Base, c.Heads)
		if c.want != nil && !core.EqualJSON(c.Result, c.want) {
			t.Errorf("value case %q: result %v, want %v", c.Name, c.Result, c.want)
		}
		f.Cases = append(f.Cases, c)
	}
	return f
}

func buildGraphFile(t *testing.T, reg *core.Registry) graphFile {
	b := newGraphBuilder(t)
	f := graphFile{About: "goat-gateway merge commit vectors (merge.Base, merge.Merge; DESIGN sections 3 and 4, docs/merge.md). " +
		"For each case: commits (signed by publicKey, or merge commits, in topological order), heads, base (the best common " +
		"ancestor, null for none) and merge, the merge commit every peer must build byte for byte (mergeId is its id).",
		PublicKey: hex.EncodeToString(b.priv.Public().(ed25519.PublicKey)), Schemas: vectorSchemas()}
	for _, gc := range graphCases(t, reg) {
		c := graphCase{Name: gc.name, Heads: ids(gc.heads...)}
		for _, cm := range gc.b.list {
			j, err := cm.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			c.Commits = append(c.Commits, j)
		}
		if id, ok, err := Base(gc.b.g, c.Heads); err != nil {
			t.Fatalf("case %q: Base: %v", gc.name, err)
		} else if ok {
			c.Base = &id
		}
		m, err := Merge(gc.b.g, reg, testRepo, testKey, c.Heads)
		if err != nil {
			t.Fatalf("case %q: Merge: %v", gc.name, err)
		}
		if c.Merge, err = m.MarshalJSON(); err != nil {
			t.Fatal(err)
		}
		c.MergeID = m.ID
		if gc.want != nil && !core.EqualJSON(m.Data, gc.want) {
			t.Errorf("graph case %q: data %v, want %v", gc.name, m.Data, gc.want)
		}
		f.Cases = append(f.Cases, c)
	}
	return f
}

// manyCases are merges past GroupSize: 257 disjoint roots (the last head
// is carried alone to the final merge), and 300 children of one root with
// ts shared by three heads at a time (ids break the ties; groups of 256
// and 44).
func manyCases(tb testing.TB) []struct {
	name  string
	b     *graphBuilder
	heads []*core.Commit
} {
	type mc = struct {
		name  string
		b     *graphBuilder
		heads []*core.Commit
	}
	var out []mc
	for _, n := range []int{257, 300} {
		b := newGraphBuilder(tb)
		var parents []*core.Commit
		name := fmt.Sprintf("%d disjoint roots", n)
		if n == 300 {
			parents = append(parents, b.add(1, "note/1", obj{"title": "r", "body": "base", "tags": set("t")}))
			name = fmt.Sprintf("%d heads over one root, equal ts", n)
		}
		var heads []*core.Commit
		for i := range n {
			heads = append(heads, b.add(int64(10+i/3), "note/1", obj{
				"title": fmt.Sprintf("h%d", i), "body": fmt.Sprintf("%d", i%7), "tags": set("t", fmt.Sprintf("x%d", i%5)), "n": float64(i),
			}, parents...))
		}
		out = append(out, mc{name, b, heads})
	}
	return out
}

func buildManyFile(t *testing.T, reg *core.Registry) manyFile {
	b := newGraphBuilder(t)
	f := manyFile{About: "goat-gateway merges of more than groupSize heads (merge.MergeAll; docs/merge.md, \"Many heads\"). " +
		"For each case: commits (signed by publicKey, in topological order), heads, and merges, the merge commits every peer " +
		"must build byte for byte, in the order they are made (the last one is the single new head).",
		GroupSize: GroupSize, PublicKey: hex.EncodeToString(b.priv.Public().(ed25519.PublicKey)), Schemas: vectorSchemas()}
	for _, mc := range manyCases(t) {
		c := manyCase{Name: mc.name, Heads: ids(mc.heads...)}
		for _, cm := range mc.b.list {
			j, err := cm.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			c.Commits = append(c.Commits, j)
		}
		ms, err := MergeAll(mc.b.g, reg, testRepo, testKey, c.Heads)
		if err != nil {
			t.Fatalf("case %q: MergeAll: %v", mc.name, err)
		}
		for _, m := range ms {
			j, err := m.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			c.Merges = append(c.Merges, j)
		}
		f.Cases = append(f.Cases, c)
	}
	return f
}

func encodeVectors(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// checkFile compares generated vectors with the file, or rewrites it.
func checkFile(t *testing.T, name string, want []byte) []byte {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return want
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read vectors (run with -update to create them): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale or was edited by hand: run go test ./merge -run TestVectors -update and review the diff", path)
	}
	return got
}

func TestVectors(t *testing.T) {
	reg := testRegistry(t)
	// Text and value files are compared byte for byte with what the code
	// generates now; decoding them checks they parse as a port reads them.
	t.Run("Text", func(t *testing.T) {
		raw := checkFile(t, "text.json", encodeVectors(t, buildTextFile(t)))
		var f textFile
		if err := json.Unmarshal(raw, &f); err != nil {
			t.Fatal(err)
		}
		if got, want := len(f.Cases), len(textCases()); got != want {
			t.Fatalf("text.json has %d cases, want %d", got, want)
		}
	})
	t.Run("Values", func(t *testing.T) {
		raw := checkFile(t, "values.json", encodeVectors(t, buildValueFile(t, reg)))
		v, err := core.ParseJSON(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(v.(map[string]any)["cases"].([]any)), len(valueCases()); got != want {
			t.Fatalf("values.json has %d cases, want %d", got, want)
		}
	})
	// Graph vectors are replayed as a peer would: decode every commit,
	// check signatures, Verify every merge commit, then merge the heads.
	t.Run("Graphs", func(t *testing.T) {
		raw := checkFile(t, "graphs.json", encodeVectors(t, buildGraphFile(t, reg)))
		var f graphFile
		if err := json.Unmarshal(raw, &f); err != nil {
			t.Fatal(err)
		}
		pub, _ := hex.DecodeString(f.PublicKey)
		for _, c := range f.Cases {
			g := memGraph{}
			for _, j := range c.Commits {
				cm, err := core.DecodeCommit(j)
				if err != nil {
					t.Fatalf("%s: %v", c.Name, err)
				}
				if cm.IsMerge() {
					if err := Verify(g, reg, cm); err != nil {
						t.Fatalf("%s: Verify: %v", c.Name, err)
					}
				} else if err := cm.VerifySig(pub); err != nil {
					t.Fatalf("%s: %v", c.Name, err)
				}
				g[cm.ID] = cm
			}
			id, ok, err := Base(g, c.Heads)
			if err != nil || ok != (c.Base != nil) || ok && id != *c.Base {
				t.Errorf("%s: Base = %s %v %v, file says %v", c.Name, id, ok, err, c.Base)
			}
			m, err := Merge(g, reg, testRepo, testKey, c.Heads)
			if err != nil {
				t.Fatalf("%s: Merge: %v", c.Name, err)
			}
			got, err := m.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			want, err := core.Canonicalize(c.Merge)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) || m.ID != c.MergeID {
				t.Errorf("%s: merge commit\n%s\nfile says\n%s", c.Name, got, want)
			}
		}
	})
	// Many-head vectors are replayed like graphs, with the heads given in
	// reverse: MergeAll must not depend on their order.
	t.Run("Many", func(t *testing.T) {
		raw := checkFile(t, "many.json", encodeVectors(t, buildManyFile(t, reg)))
		var f manyFile
		if err := json.Unmarshal(raw, &f); err != nil {
			t.Fatal(err)
		}
		if got, want := len(f.Cases), len(manyCases(t)); got != want {
			t.Fatalf("many.json has %d cases, want %d", got, want)
		}
		pub, _ := hex.DecodeString(f.PublicKey)
		for _, c := range f.Cases {
			g := memGraph{}
			for _, j := range c.Commits {
				cm, err := core.DecodeCommit(j)
				if err != nil {
					t.Fatalf("%s: %v", c.Name, err)
				}
				if err := cm.VerifySig(pub); err != nil {
					t.Fatalf("%s: %v", c.Name, err)
				}
				g[cm.ID] = cm
			}
			heads := slices.Clone(c.Heads)
			slices.Reverse(heads)
			ms, err := MergeAll(g, reg, testRepo, testKey, heads)
			if err != nil {
				t.Fatalf("%s: MergeAll: %v", c.Name, err)
			}
			if got, want := len(ms), len(c.Merges); got != want {
				t.Fatalf("%s: %d merge commits, file says %d", c.Name, got, want)
			}
			for i, m := range ms {
				got, err := m.MarshalJSON()
				if err != nil {
					t.Fatal(err)
				}
				want, err := core.Canonicalize(c.Merges[i])
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("%s: merge %d\n%s\nfile says\n%s", c.Name, i, got, want)
				}
				if err := Verify(g, reg, m); err != nil {
					t.Fatalf("%s: Verify merge %d: %v", c.Name, i, err)
				}
				g[m.ID] = m
			}
		}
	})
}

// viewQuery is one reader's view of a views.json case and what it sees.
type viewQuery struct {
	Versions map[string]int  `json:"versions,omitempty"`
	AsOf     *int64          `json:"asOf,omitempty"`
	Heads    []core.CommitID `json:"heads"`
	Head     *core.CommitID  `json:"head"` // null: the item does not exist for this reader
	TS       int64           `json:"ts,omitempty"`
	Schema   string          `json:"schema,omitempty"`
	Data     obj             `json:"data,omitempty"`
}

// atQuery is the value at one commit for one reader; Unreadable when the
// commit is newer than the reader's branch.
type atQuery struct {
	ID         core.CommitID  `json:"id"`
	Versions   map[string]int `json:"versions,omitempty"`
	Schema     string         `json:"schema,omitempty"`
	Data       obj            `json:"data,omitempty"`
	Unreadable bool           `json:"unreadable,omitempty"`
}

type viewCase struct {
	Name    string            `json:"name"`
	Commits []json.RawMessage `json:"commits"`
	Heads   []core.CommitID   `json:"heads"`
	Views   []viewQuery       `json:"views"`
	At      []atQuery         `json:"at"`
}

type viewFile struct {
	About     string         `json:"about"`
	PublicKey string         `json:"publicKey"`
	Schemas   []*core.Schema `json:"schemas"`
	Cases     []viewCase     `json:"cases"`
}

// viewGraphs are the graphs of views.json: the rolling upgrade of
// newBranchGraph, and a graph whose ts go backwards along an edge (a
// commit after its parent in the graph, before it in time: as of a time
// between them, neither the child nor anything after it is visible).
func viewGraphs(tb testing.TB, reg *core.Registry) []struct {
	name  string
	b     *graphBuilder
	heads []*core.Commit
} {
	type vg = struct {
		name  string
		b     *graphBuilder
		heads []*core.Commit
	}
	g := newBranchGraph(tb, reg)
	b := newGraphBuilder(tb)
	r := b.add(10, "note/1", obj{"title": "r"})
	x := b.add(5, "note/1", obj{"title": "x (clock behind)"}, r)
	y := b.add(12, "note/2", obj{"name": "y", "prio": 1.0}, r)
	m := b.merge(reg, x, y)
	z := b.add(13, "note/1", obj{"title": "z"}, x)
	return []vg{
		{"rolling upgrade", g.b, g.heads},
		{"clock behind its parent", b, []*core.Commit{m, z}},
	}
}

func buildViewFile(t *testing.T, reg *core.Registry) viewFile {
	b := newGraphBuilder(t)
	f := viewFile{About: "goat-gateway branch and as-of views (merge.Heads, merge.Resolve, merge.ValueAt; DESIGN section 2, " +
		"docs/merge.md \"Views\"). For each case: commits (signed by publicKey, or merge commits, in topological order) and the " +
		"item's heads. views: a reader capped at versions (per namespace; absent: the newest schema) and, with asOf, at that time, " +
		"sees heads; head is the one visible head or the merge commit of several (null: nothing visible), ts its ts, and " +
		"schema/data its value upgraded to the reader's version. at: the value at commit id for a reader capped at versions, or " +
		"unreadable when the commit is newer than the reader's branch. A retired version is a cap one below it.",
		PublicKey: hex.EncodeToString(b.priv.Public().(ed25519.PublicKey)), Schemas: vectorSchemas()}
	for _, vg := range viewGraphs(t, reg) {
		c := viewCase{Name: vg.name, Heads: ids(vg.heads...)}
		tss := map[int64]bool{0: true}
		for _, cm := range vg.b.list {
			j, err := cm.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			c.Commits = append(c.Commits, j)
			tss[cm.TS] = true
		}
		for _, versions := range []map[string]int{nil, {"note": 1}} {
			views := []View{{Versions: versions}}
			for _, ts := range slices.Sorted(maps.Keys(tss)) {
				views = append(views, View{Versions: versions, AsOf: ts, HasAsOf: true})
			}
			for _, v := range views {
				q := viewQuery{Versions: v.Versions}
				if v.HasAsOf {
					q.AsOf = &v.AsOf
				}
				heads, err := Heads(vg.b.g, reg, c.Heads, v)
				if err != nil {
					t.Fatal(err)
				}
				q.Heads = append([]core.CommitID{}, heads...)
				if len(heads) > 0 {
					r, err := Resolve(vg.b.g, reg, testRepo, testKey, c.Heads, v)
					if err != nil {
						t.Fatal(err)
					}
					q.Head, q.TS, q.Schema, q.Data = &r.Head, r.TS, r.Schema, r.Data
				}
				c.Views = append(c.Views, q)
			}
			for _, cm := range vg.b.list {
				q := atQuery{ID: cm.ID, Versions: versions}
				schema, data, err := ValueAt(vg.b.g, reg, cm.ID, View{Versions: versions})
				switch {
				case errors.Is(err, core.ErrSchema):
					q.Unreadable = true
				case err != nil:
					t.Fatal(err)
				default:
					q.Schema, q.Data = schema, data
				}
				c.At = append(c.At, q)
			}
		}
		f.Cases = append(f.Cases, c)
	}
	return f
}

// TestVectors_Views writes or checks views.json and replays it as a peer
// would: decode every commit, check its signature or Verify the merge, and
// compare every view and value.
func TestVectors_Views(t *testing.T) {
	reg := testRegistry(t)
	raw := checkFile(t, "views.json", encodeVectors(t, buildViewFile(t, reg)))
	var f viewFile
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	if got, want := len(f.Cases), 2; got != want {
		t.Fatalf("views.json has %d cases, want %d", got, want)
	}
	pub, _ := hex.DecodeString(f.PublicKey)
	for _, c := range f.Cases {
		t.Run(c.Name, func(t *testing.T) {
			g := memGraph{}
			for _, j := range c.Commits {
				cm, err := core.DecodeCommit(j)
				if err != nil {
					t.Fatal(err)
				}
				if cm.IsMerge() {
					if err := Verify(g, reg, cm); err != nil {
						t.Fatal(err)
					}
				} else if err := cm.VerifySig(pub); err != nil {
					t.Fatal(err)
				}
				g[cm.ID] = cm
			}
			for _, q := range c.Views {
				v := View{Versions: q.Versions}
				if q.AsOf != nil {
					v = v.At(*q.AsOf)
				}
				r, err := Resolve(g, reg, testRepo, testKey, c.Heads, v)
				if q.Head == nil {
					if !errors.Is(err, core.ErrNotFound) {
						t.Errorf("view %+v: %v, want nothing visible", v, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("view %+v: %v", v, err)
				}
				if !slices.Equal(r.Heads, q.Heads) || r.Head != *q.Head || r.TS != q.TS || r.Schema != q.Schema || !core.EqualJSON(r.Data, q.Data) {
					t.Errorf("view %+v: %+v, file says %+v", v, r, q)
				}
			}
			for _, q := range c.At {
				schema, data, err := ValueAt(g, reg, q.ID, View{Versions: q.Versions})
				if q.Unreadable != errors.Is(err, core.ErrSchema) || !q.Unreadable && (err != nil || schema != q.Schema || !core.EqualJSON(data, q.Data)) {
					t.Errorf("at %s %v: %s %v %v, file says %+v", q.ID, q.Versions, schema, data, err, q)
				}
			}
		})
	}
}
