package api

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/gen"
)

// pushSchema is the PushRequest schema of the embedded openapi.yaml, as the
// validation middleware validates push bodies with it.
func pushSchema(tb testing.TB) *openapi3.Schema {
	tb.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(gen.Spec)
	if err != nil {
		tb.Fatal(err)
	}
	op := doc.Paths.Find("/v1/repos/{repo}/commits").Post
	sr := op.RequestBody.Value.Content.Get("application/json").Schema
	if sr == nil || sr.Value == nil {
		tb.Fatal("no PushRequest schema")
	}
	return sr.Value
}

// sameAsValidator fails unless whatever decodeCanonicalPush takes, the
// general path takes too (core.ParseJSON, the PushRequest schema, then
// core.DecodeCommitValue for each commit) as the same commits, each
// encoded as the bytes it arrived as. It reports whether the fast path
// took raw.
func sameAsValidator(tb testing.TB, sc *openapi3.Schema, label string, raw []byte) bool {
	tb.Helper()
	p, ok := decodeCanonicalPush(raw, pushMaxItems(sc))
	if !ok {
		return false
	}
	v, err := core.ParseJSON(raw)
	if err != nil {
		tb.Fatalf("%s: fast path took a body ParseJSON refuses (%v):\n%s", label, err, raw)
	}
	if err := sc.VisitJSON(v, openapi3.DisableSchemaErrorDetails()); err != nil {
		tb.Fatalf("%s: fast path took a body the validator refuses (%v):\n%s", label, err, raw)
	}
	cs := v.(map[string]any)["commits"].([]any)
	if len(cs) != len(p.commits) || len(p.encoded) != len(p.commits) {
		tb.Fatalf("%s: fast path found %d commits (%d encodings), the parser %d", label, len(p.commits), len(p.encoded), len(cs))
	}
	for i, cv := range cs {
		slow, err := core.DecodeCommitValue(cv)
		if err != nil {
			tb.Fatalf("%s: commit %d: fast path took what DecodeCommitValue refuses: %v", label, i, err)
		}
		sj, _ := slow.MarshalJSON()
		fj, _ := p.commits[i].MarshalJSON()
		if slow.ID != p.commits[i].ID || !bytes.Equal(sj, fj) || !bytes.Equal(sj, p.encoded[i]) {
			tb.Fatalf("%s: commit %d: general path %s, fast path %s, bytes kept %s", label, i, sj, fj, p.encoded[i])
		}
	}
	return true
}

type pushFixture struct {
	priv ed25519.PrivateKey
	id   string
	n    int
}

func newPushFixture(tb testing.TB) *pushFixture {
	tb.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return &pushFixture{priv: priv, id: core.SessionID(priv.Public().(ed25519.PublicKey))}
}

// commit signs a new commit of data (with parents, if any).
func (f *pushFixture) commit(tb testing.TB, data map[string]any, parents ...core.CommitID) *core.Commit {
	tb.Helper()
	f.n++
	c := &core.Commit{Repo: "user.alice.notes", Key: fmt.Sprintf("k%d", f.n), Parents: parents, Author: f.id, TS: 1763800000000 + int64(f.n), Schema: "task/2", Data: data}
	if err := c.Sign(f.priv); err != nil {
		tb.Fatal(err)
	}
	return c
}

func pushOf(tb testing.TB, cs ...*core.Commit) []byte {
	tb.Helper()
	raws := make([]string, len(cs))
	for i, c := range cs {
		b, err := c.MarshalJSON()
		if err != nil {
			tb.Fatal(err)
		}
		raws[i] = string(b)
	}
	return []byte(pushOpen + strings.Join(raws, ",") + pushClose)
}

// pushBodies are push bodies the fast path must take (true) or leave to
// the general path (false).
func pushBodies(tb testing.TB) map[string]struct {
	body []byte
	take bool
} {
	tb.Helper()
	f := newPushFixture(tb)
	data := map[string]any{"title": "Buy milk", "done": false, "tags": []any{"a", "b"}, "n": 1.5, "note": "é \u2028 <&>"}
	c1 := f.commit(tb, data)
	c2 := f.commit(tb, data, c1.ID)
	one := pushOf(tb, c1)
	j1, _ := c1.MarshalJSON()
	out := map[string]struct {
		body []byte
		take bool
	}{}
	add := func(name string, body []byte, take bool) {
		out[name] = struct {
			body []byte
			take bool
		}{body, take}
	}
	add("one commit", one, true)
	add("two commits, one the parent of the other", pushOf(tb, c1, c2), true)
	merge := &core.Commit{Repo: "user.alice.notes", Key: "k1", Parents: []core.CommitID{c1.ID, c2.ID}, Author: core.MergeAuthor, TS: c2.TS, Schema: "task/2", Data: data}
	if c1.ID.Compare(c2.ID) > 0 {
		merge.Parents = []core.CommitID{c2.ID, c1.ID}
	}
	if err := merge.Seal(); err != nil {
		tb.Fatal(err)
	}
	add("a merge commit", pushOf(tb, merge), true)
	many := make([]*core.Commit, 1000)
	for i := range many {
		many[i] = f.commit(tb, map[string]any{"i": float64(i)})
	}
	add("maxItems commits", pushOf(tb, many...), true)
	add("maxItems+1 commits", pushOf(tb, append(many, c1)...), false)

	add("empty", nil, false)
	add("no commits", []byte(`{"commits":[]}`), false)
	add("space after the brace", []byte(`{ "commits":[`+string(j1)+`]}`), false)
	add("trailing newline", append(append([]byte{}, one...), '\n'), false)
	add("space after a comma", []byte(pushOpen+string(j1)+", "+string(j1)+pushClose), false)
	add("two commas", []byte(pushOpen+string(j1)+",,"+string(j1)+pushClose), false)
	add("trailing comma", []byte(pushOpen+string(j1)+","+pushClose), false)
	add("another member after", []byte(pushOpen+string(j1)+`],"x":1}`), false)
	add("another member before", []byte(`{"a":1,"commits":[`+string(j1)+pushClose), false)
	add("cut short", one[:len(one)-5], false)
	add("commit not an object", []byte(`{"commits":["abc"]}`), false)
	add("nested arrays", []byte(`{"commits":[[`+string(j1)+`]]}`), false)
	add("closing twice", []byte(pushOpen+string(j1)+`]}]}`), false)

	edit := func(name string, from, to string) {
		b := bytes.Replace(one, []byte(from), []byte(to), 1)
		if bytes.Equal(b, one) {
			tb.Fatalf("%s: %q not in the body", name, from)
		}
		add(name, b, false)
	}
	edit("id that does not recompute", `"id":"`+c1.ID.String()[:1], `"id":"`+string("0123456789abcdef"[(strings.Index("0123456789abcdef", c1.ID.String()[:1])+1)%16]))
	edit("upper-case id", `"id":"`+c1.ID.String(), `"id":"`+strings.ToUpper(c1.ID.String()))
	edit("data changed after signing", `"Buy milk"`, `"Buy eggs"`)
	edit("html escaped as encoding/json does", `<`, `\u003c`)
	edit("members out of order", `"key":"k1","parents":[]`, `"parents":[],"key":"k1"`)
	edit("space in data", `"done":false`, `"done": false`)
	edit("unknown member", `"key":"k1"`, `"key":"k1","x":1`)
	edit("bad repository name", `"repo":"user.alice.notes"`, `"repo":"User"`)
	edit("bad schema", `"schema":"task/2"`, `"schema":"task/02"`)
	edit("ts with a fraction", fmt.Sprintf(`"ts":%d`, c1.TS), fmt.Sprintf(`"ts":%d.5`, c1.TS))
	edit("negative ts", fmt.Sprintf(`"ts":%d`, c1.TS), fmt.Sprintf(`"ts":-%d`, c1.TS))
	sig := string(j1[bytes.Index(j1, []byte(`"sig":"`))+7:])
	sig = sig[:86]
	// The last character carries 2 bits of the signature and 4 padding
	// bits, zero in the canonical spelling.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	other := alphabet[strings.IndexByte(alphabet, sig[85])|1]
	edit("signature with padding bits set", `"sig":"`+sig, `"sig":"`+sig[:85]+string(other))
	edit("signature padded", `"sig":"`+sig, `"sig":"`+sig+`==`)

	delta := &core.Commit{Repo: "user.alice.notes", Key: "k1", Parents: []core.CommitID{c1.ID}, Author: f.id, TS: c1.TS + 1, Schema: "task/2",
		Delta: &core.Delta{Base: c1.ID, Ops: []core.Op{{Op: "set", Field: "done", Value: true}}}}
	if err := delta.Sign(f.priv); err != nil {
		tb.Fatal(err)
	}
	add("a delta commit", pushOf(tb, c1, delta), false)

	// Nesting that one commit may have on its own but not two levels
	// deeper, in a push body: ParseJSON refuses the body.
	deep := any("x")
	for range core.MaxJSONDepth - 2 {
		deep = []any{deep}
	}
	dc := f.commit(tb, map[string]any{"d": deep})
	if _, err := core.DecodeCommit(must(dc.MarshalJSON())); err != nil {
		tb.Fatalf("deep commit on its own: %v", err)
	}
	add("data too deep for a push body", pushOf(tb, dc), false)
	return out
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestDecodeCanonicalPush(t *testing.T) {
	sc := pushSchema(t)
	if got := pushMaxItems(sc); got != 1000 {
		t.Fatalf("pushMaxItems=%d, want 1000 (openapi.yaml's PushRequest)", got)
	}
	for name, c := range pushBodies(t) {
		t.Run(name, func(t *testing.T) {
			if got := sameAsValidator(t, sc, name, c.body); got != c.take {
				t.Fatalf("taken=%v, want %v", got, c.take)
			}
		})
	}
}

// FuzzDecodeCanonicalPush holds the fast path to the general one on
// mutated bodies: whatever it takes, the validator and the commit decoder
// take as the same commits.
func FuzzDecodeCanonicalPush(f *testing.F) {
	sc := pushSchema(f)
	for name, c := range pushBodies(f) {
		if name != "maxItems commits" && name != "maxItems+1 commits" {
			f.Add(c.body)
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) { sameAsValidator(t, sc, "fuzz", raw) })
}
