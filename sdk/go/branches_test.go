package goat_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/gen/models"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
	goat "github.com/goat-gateway/goat-gateway/sdk/go"
)

// noteV2 is the issue 21 upgrade of noteSchema: title becomes name, owner
// is added with a default, n becomes a string.
func noteV2() *core.Schema {
	return &core.Schema{NS: "note", Version: 2, Fields: map[string]core.Field{
		"name":  {Type: core.TypeText},
		"owner": {Type: core.TypeString},
		"tags":  {Type: core.TypeSet},
		"done":  {Type: core.TypeBoolean},
		"n":     {Type: core.TypeString},
		"meta":  {Type: core.TypeMap},
	}, Upgrade: []core.Upgrade{
		{Op: "rename", From: "title", To: "name"},
		{Op: "add", Field: "owner", Default: "nobody"},
		{Op: "convert", Field: "n", Conversion: "toString"},
	}}
}

// rest sends one request to the gateway and decodes a 2xx answer into out.
func rest(tb testing.TB, g *goattest.Gateway, tok, method, path string, body any, out any) int {
	tb.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, g.URL()+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 == 2 && out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			tb.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return resp.StatusCode
}

func restItem(tb testing.TB, g *goattest.Gateway, tok, path string) models.Item {
	tb.Helper()
	var it models.Item
	if st := rest(tb, g, tok, "GET", path, nil, &it); st != 200 {
		tb.Fatalf("GET %s: %d", path, st)
	}
	return it
}

// waitBranches waits until both replicas hold the gateway's commits, and
// B (which reads the newest branch) shows the gateway's values; A reads
// its own branch, checked by the tests.
func waitBranches(tb testing.TB, g *goattest.Gateway, a, b *goat.Repo) {
	tb.Helper()
	goattest.WaitFor(tb, "both replicas in sync with the gateway", func() bool { return inSync(g, "team", a, b) })
	waitInSync(tb, g, "team", b)
}

// rolling sets up a rolling upgrade: client A, built with note/1, and
// client B, built with note/1 and note/2 (which it publishes), edit the
// same items concurrently for rounds rounds. A adds tag a<i> and sets n;
// B adds tag b<i> and sets owner. A checks on every round that it sees
// only note/1 values and that nothing fails.
func rolling(t *testing.T, g *goattest.Gateway, rounds int) (a, b *goat.Repo, bc *goat.Client, keys []string) {
	t.Helper()
	ac := openClient(t, g, "alice", nil)
	bc = openClient(t, g, "bob", func(c *goat.Config) { c.Schemas = []*core.Schema{noteSchema(), noteV2()} })
	a, b = openRepo(t, ac, "team"), openRepo(t, bc, "team")
	keys = []string{"k0", "k1", "k2"}
	for _, k := range keys {
		if err := a.Set(k, "note/1", map[string]any{"title": "item " + k, "n": 0.0, "tags": []string{}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitBranches(t, g, a, b)
	for i := range rounds {
		for _, k := range keys {
			if err := a.Update(k, func(d map[string]any) error {
				d["n"] = float64(i + 1)
				d["tags"] = append(d["tags"].([]any), fmt.Sprintf("a%02d", i))
				return nil
			}); err != nil {
				t.Fatalf("round %d: A's update of %s: %v", i, k, err)
			}
			if err := b.Update(k, func(d map[string]any) error {
				d["owner"] = fmt.Sprintf("b%02d", i)
				d["tags"] = append(d["tags"].([]any), fmt.Sprintf("b%02d", i))
				return nil
			}); err != nil {
				t.Fatalf("round %d: B's update of %s: %v", i, k, err)
			}
			it, err := a.Get(k)
			if err != nil || it.Schema != "note/1" || it.Data["owner"] != nil || it.Data["name"] != nil {
				t.Fatalf("round %d: A reads %s as %+v, %v: want a note/1 value", i, k, it, err)
			}
		}
		if i%3 == 0 {
			_ = a.Flush(t.Context())
			_ = b.Flush(t.Context())
		}
	}
	if err := a.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitBranches(t, g, a, b)
	return a, b, bc, keys
}

func tagsOf(tb testing.TB, it goat.Item) []string {
	tb.Helper()
	var out []string
	for _, v := range it.Data["tags"].([]any) {
		out = append(out, v.(string))
	}
	return out
}

// TestRepo_RollingUpgrade is issue 21's rolling upgrade against a real
// gateway: A never sees a note/2 value and never fails; B sees every edit
// of both, upgraded; REST with ?schema=note/1 equals A's view.
func TestRepo_RollingUpgrade(t *testing.T) {
	g := goattest.StartGateway(t, goattest.Config{})
	const rounds = 12
	a, b, _, keys := rolling(t, g, rounds)
	tok := g.Token("carol")
	for _, k := range keys {
		ia, err := a.Get(k)
		if err != nil {
			t.Fatal(err)
		}
		ib, err := b.Get(k)
		if err != nil {
			t.Fatal(err)
		}
		var wantA, wantAll []string
		for i := range rounds {
			wantA = append(wantA, fmt.Sprintf("a%02d", i))
			wantAll = append(wantAll, fmt.Sprintf("a%02d", i), fmt.Sprintf("b%02d", i))
		}
		slices.Sort(wantAll)
		if ia.Schema != "note/1" || !slices.Equal(tagsOf(t, ia), wantA) || ia.Data["n"] != float64(rounds) {
			t.Fatalf("A sees %s as %s %v: want note/1 with its own %d tags and n %d", k, ia.Schema, ia.Data, rounds, rounds)
		}
		// Every edit adds a tag, and sets lose nothing in a merge: B has
		// them all. owner and n are registers, A's n upgraded to a string:
		// each holds one of its writer's values (with criss-cross merges a
		// merge that carries an older value with a newer ts may win a
		// register: section 4's rule), never the default A's upgraded
		// values carry.
		owner, _ := ib.Data["owner"].(string)
		n, _ := ib.Data["n"].(string)
		if ib.Schema != "note/2" || !slices.Equal(tagsOf(t, ib), wantAll) || !strings.HasPrefix(owner, "b") || n == "" || n == "0" || ib.Data["name"] != "item "+k {
			t.Fatalf("B sees %s as %s %v: want note/2 with every tag, an owner of B's and an n of A's", k, ib.Schema, ib.Data)
		}
		old := restItem(t, g, tok, "/v1/repos/team/items/"+k+"?schema=note/1")
		if old.Schema != ia.Schema || !core.EqualJSON(old.Data, ia.Data) || old.Head != ia.Head.String() {
			t.Fatalf("REST ?schema=note/1 of %s: %s %s %v, A: %s %s %v", k, old.Head, old.Schema, old.Data, ia.Head, ia.Schema, ia.Data)
		}
		newest := restItem(t, g, tok, "/v1/repos/team/items/"+k)
		if newest.Schema != ib.Schema || !core.EqualJSON(newest.Data, ib.Data) {
			t.Fatalf("REST of %s: %s %v, B: %s %v", k, newest.Schema, newest.Data, ib.Schema, ib.Data)
		}
	}
}

// TestRepo_Rollback retires note/2 after a rolling upgrade: REST and both
// clients see the note/1 branch again, writes at note/2 are refused, and
// republishing note/2 brings the newer edits back.
func TestRepo_Rollback(t *testing.T) {
	g := goattest.StartGateway(t, goattest.Config{})
	a, b, bc, keys := rolling(t, g, 4)
	tok, admin := g.Token("carol"), g.Token("ops", "admin")
	before := map[string]goat.Item{}
	for _, k := range keys {
		it, _ := b.Get(k)
		before[k] = it
	}
	if st := rest(t, g, admin, "DELETE", "/v1/schemas/note/2", nil, nil); st != 200 {
		t.Fatalf("retire note/2: %d", st)
	}
	if err := bc.RefreshSchemas(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		ia, _ := a.Get(k)
		ib, err := b.Get(k)
		if err != nil {
			t.Fatal(err)
		}
		r := restItem(t, g, tok, "/v1/repos/team/items/"+k)
		if ib.Schema != "note/1" || !core.EqualJSON(ib.Data, ia.Data) || r.Schema != "note/1" || !core.EqualJSON(r.Data, ia.Data) {
			t.Fatalf("after retiring note/2, %s: B %s %v, REST %s %v, A (the note/1 branch) %v", k, ib.Schema, ib.Data, r.Schema, r.Data, ia.Data)
		}
	}
	err := b.Set("k0", "note/2", map[string]any{"name": "x"})
	if !errorsIs(err, core.ErrRetired) || !strings.Contains(err.Error(), "republish") {
		t.Fatalf("B's write at note/2: %v, want ErrRetired saying to republish", err)
	}
	if st := rest(t, g, tok, "PUT", "/v1/repos/team/items/k0", map[string]any{"schema": "note/2", "data": map[string]any{"name": "x"}}, nil); st != 422 {
		t.Fatalf("REST write at note/2: %d, want 422", st)
	}
	// B writes on the note/1 branch meanwhile, as an old build would.
	if err := b.Update("k1", func(d map[string]any) error { d["done"] = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitBranches(t, g, a, b)

	def := noteV2()
	if st := rest(t, g, tok, "PUT", "/v1/schemas/note/2", map[string]any{"fields": def.Fields, "upgrade": def.Upgrade}, nil); st != 201 {
		t.Fatalf("republish note/2: %d", st)
	}
	if err := bc.RefreshSchemas(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		ib, _ := b.Get(k)
		want := core.CloneObject(before[k].Data)
		if k == "k1" {
			want["done"] = true
		}
		if ib.Schema != "note/2" || !core.EqualJSON(ib.Data, want) {
			t.Fatalf("after republishing note/2, B sees %s as %s %v, want %v", k, ib.Schema, ib.Data, want)
		}
		if ia, _ := a.Get(k); ia.Schema != "note/1" {
			t.Fatalf("A sees %s at %s, want its note/1 branch", k, ia.Schema)
		}
	}
}

// TestRepo_TimeTravel reads an item's history, each version At its commit
// and AsOf its ts, and a playback of the repository, and compares them
// with the gateway's ?at= and ?asOf=.
func TestRepo_TimeTravel(t *testing.T) {
	g := goattest.StartGateway(t, goattest.Config{})
	a, b, _, _ := rolling(t, g, 8)
	tok := g.Token("carol")
	hist, err := b.History("k1")
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) < 10 {
		t.Fatalf("history of k1 has %d versions, want at least 10", len(hist))
	}
	merges := 0
	for _, v := range hist {
		if v.Commit.IsMerge() {
			merges++
		}
		id := v.Commit.ID
		r := restItem(t, g, tok, "/v1/repos/team/items/k1?at="+id.String())
		if r.Schema != v.Item.Schema || !core.EqualJSON(r.Data, v.Item.Data) {
			t.Fatalf("history %s: %s %v, REST ?at= %s %v", id, v.Item.Schema, v.Item.Data, r.Schema, r.Data)
		}
		at, err := b.At("k1", id)
		if err != nil || !core.EqualJSON(at.Item.Data, v.Item.Data) {
			t.Fatalf("At(%s): %v %v, history says %v", id, at.Item.Data, err, v.Item.Data)
		}
		asOf, err := b.AsOf("k1", time.UnixMilli(v.Commit.TS))
		if err != nil {
			t.Fatal(err)
		}
		r = restItem(t, g, tok, "/v1/repos/team/items/k1?asOf="+url.QueryEscape(fmt.Sprint(v.Commit.TS)))
		if asOf.Item.Head.String() != r.Head || !core.EqualJSON(asOf.Item.Data, r.Data) {
			t.Fatalf("AsOf(%d): %s %v, REST %s %v", v.Commit.TS, asOf.Item.Head, asOf.Item.Data, r.Head, r.Data)
		}
	}
	if merges == 0 {
		t.Fatal("no merge commit in the history")
	}
	// A's history is its branch: no note/2 commit, no note/2 value.
	ha, err := a.History("k1")
	if err != nil {
		t.Fatal(err)
	}
	if len(ha) == 0 || len(ha) >= len(hist) {
		t.Fatalf("A's history has %d versions, B's %d: want fewer, more than none", len(ha), len(hist))
	}
	for _, v := range ha {
		if v.Commit.Schema != "note/1" || v.Item.Schema != "note/1" {
			t.Fatalf("A's history shows %s at %s", v.Commit.ID, v.Item.Schema)
		}
	}
	// Playback: every commit of the replica in log order, each value equal
	// to At of it.
	n, seen := 0, map[core.CommitID]bool{}
	for v, err := range b.Playback() {
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range v.Commit.Parents {
			if !seen[p] {
				t.Fatalf("playback: %s before its parent %s", v.Commit.ID, p)
			}
		}
		seen[v.Commit.ID] = true
		n++
		at, err := b.At(v.Commit.Key, v.Commit.ID)
		if err != nil || !core.EqualJSON(at.Item.Data, v.Item.Data) {
			t.Fatalf("playback %s: %v, At: %v %v", v.Commit.ID, v.Item.Data, at.Item.Data, err)
		}
	}
	if count, _ := b.Digest(); int64(n) != count {
		t.Fatalf("playback yielded %d commits, the replica holds %d", n, count)
	}
}
