package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/gen/models"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
	"github.com/goat-gateway/goat-gateway/merge"
)

// The note schemas of the branch tests: note/2 renames title to name,
// adds owner with a default and turns prio into a string (the issue 21
// upgrade).
const (
	noteV1 = `{"fields":{"title":{"type":"string"},"prio":{"type":"number"},"body":{"type":"text"}}}`
	noteV2 = `{"fields":{"name":{"type":"string"},"owner":{"type":"string"},"prio":{"type":"string"},"body":{"type":"text"}},
	  "upgrade":[{"op":"rename","from":"title","to":"name"},{"op":"add","field":"owner","default":"nobody"},{"op":"convert","field":"prio","conversion":"toString"}]}`
)

func getItem(tb testing.TB, g *gateway, tok, path string) models.Item {
	tb.Helper()
	r := g.call(tb, "GET", path, tok, nil)
	wantStatus(tb, r, 200)
	var it models.Item
	r.json(tb, &it)
	return it
}

func wantData(tb testing.TB, it models.Item, schema string, data map[string]any) {
	tb.Helper()
	if it.Schema != schema || !core.EqualJSON(it.Data, data) {
		tb.Fatalf("item %s %v, want %s %v", it.Schema, it.Data, schema, data)
	}
}

func wantProblem(tb testing.TB, r response, status int, slug, detail string) {
	tb.Helper()
	wantStatus(tb, r, status)
	if got := r.problemType(); got != slug || !strings.Contains(string(r.body), detail) {
		tb.Fatalf("problem %s %s, want %s mentioning %q", got, r.body, slug, detail)
	}
}

func TestServer_SchemaBranches(t *testing.T) {
	g := startGateway(t, goattest.Config{})
	tok, admin := g.Token("alice"), g.Token("root", "admin")
	wantStatus(t, g.call(t, "PUT", "/v1/repos/r", tok, nil), 201)
	wantStatus(t, g.call(t, "PUT", "/v1/schemas/note/1", tok, noteV1), 201)
	wantStatus(t, g.call(t, "PUT", "/v1/repos/r/items/n1", tok, `{"schema":"note/1","data":{"title":"milk","prio":1}}`), 201)
	wantStatus(t, g.call(t, "PUT", "/v1/schemas/note/2", tok, noteV2), 201)

	t.Run("EveryReaderUpgrades", func(t *testing.T) {
		want := map[string]any{"name": "milk", "owner": "nobody", "prio": "1"}
		wantData(t, getItem(t, g, tok, "/v1/repos/r/items/n1"), "note/2", want)
		var page models.ItemPage
		g.call(t, "GET", "/v1/repos/r/items?schema=note/2", tok, nil).json(t, &page)
		if len(page.Items) != 1 {
			t.Fatalf("list ?schema=note/2: %d items, want 1", len(page.Items))
		}
		wantData(t, page.Items[0], "note/2", want)
		g.call(t, "GET", "/v1/repos/r/items?schema=note", tok, nil).json(t, &page)
		if len(page.Items) != 1 || page.Items[0].Schema != "note/2" {
			t.Fatalf("list ?schema=note: %+v", page.Items)
		}
		wantData(t, getItem(t, g, tok, "/v1/repos/r/items/n1?schema=note/1"), "note/1", map[string]any{"title": "milk", "prio": 1.0})
	})

	t.Run("OldWriterStaysOnItsBranch", func(t *testing.T) {
		// A note/2 edit, then a note/1 write without If-Match: the old
		// writer edits its branch, and the gateway merges both.
		wantStatus(t, g.call(t, "PUT", "/v1/repos/r/items/n1", tok, `{"schema":"note/2","data":{"name":"oat milk","owner":"bob","prio":"1"}}`), 200)
		r := g.call(t, "PUT", "/v1/repos/r/items/n1", tok, `{"schema":"note/1","data":{"title":"milk","prio":5}}`)
		wantStatus(t, r, 200)
		var it models.Item
		r.json(t, &it)
		wantData(t, it, "note/1", map[string]any{"title": "milk", "prio": 5.0}) // the writer's branch
		wantData(t, getItem(t, g, tok, "/v1/repos/r/items/n1"), "note/2", map[string]any{"name": "oat milk", "owner": "bob", "prio": "5"})
		wantData(t, getItem(t, g, tok, "/v1/repos/r/items/n1?schema=note/1"), "note/1", map[string]any{"title": "milk", "prio": 5.0})
		var list models.ItemPage
		g.call(t, "GET", "/v1/repos/r/items?schema=note/1", tok, nil).json(t, &list)
		if len(list.Items) != 1 || list.Items[0].Schema != "note/1" || list.Items[0].Data["title"] != "milk" {
			t.Fatalf("list ?schema=note/1: %+v", list.Items)
		}
	})

	t.Run("IfMatchOfANewerVersionUpgradesTheWrite", func(t *testing.T) {
		head := getItem(t, g, tok, "/v1/repos/r/items/n1")
		r := g.call(t, "PUT", "/v1/repos/r/items/n1", tok, `{"schema":"note/1","data":{"title":"soy milk","prio":5}}`, "If-Match", `"`+head.Head+`"`)
		wantStatus(t, r, 200)
		var it models.Item
		r.json(t, &it)
		if it.Schema != "note/2" || it.Data["name"] != "soy milk" {
			t.Fatalf("a note/1 edit of a note/2 version: %s %v, want note/2 with name soy milk", it.Schema, it.Data)
		}
	})

	t.Run("Rollback", func(t *testing.T) {
		newest := getItem(t, g, tok, "/v1/repos/r/items/n1")
		oldBranch := getItem(t, g, tok, "/v1/repos/r/items/n1?schema=note/1")
		wantProblem(t, g.call(t, "DELETE", "/v1/schemas/note/2", tok, nil), 403, "forbidden", "admin")
		wantProblem(t, g.call(t, "DELETE", "/v1/schemas/note/1", admin, nil), 409, "conflict", "first version")
		wantProblem(t, g.call(t, "DELETE", "/v1/schemas/note/9", admin, nil), 404, "not-found", "note/9")
		r := g.call(t, "DELETE", "/v1/schemas/note/2", admin, nil)
		wantStatus(t, r, 200)
		var sc models.ItemSchema
		r.json(t, &sc)
		if sc.Retired == nil || !*sc.Retired {
			t.Fatalf("retired schema %+v, want retired true", sc)
		}
		wantStatus(t, g.call(t, "DELETE", "/v1/schemas/note/2", admin, nil), 200) // again: unchanged

		got := getItem(t, g, tok, "/v1/repos/r/items/n1")
		if got.Schema != "note/1" || got.Head != oldBranch.Head || !core.EqualJSON(got.Data, oldBranch.Data) {
			t.Fatalf("after retiring note/2: %+v, want the note/1 branch %+v", got, oldBranch)
		}
		wantProblem(t, g.call(t, "PUT", "/v1/repos/r/items/n1", tok, `{"schema":"note/2","data":{"name":"x"}}`), 422, "schema-retired", "republish note/2")
		wantProblem(t, g.call(t, "PUT", "/v1/repos/r/items/n2", tok, `{"schema":"note/2","data":{"name":"x"}}`), 422, "schema-retired", "write at note/1")
		wantProblem(t, g.call(t, "PUT", "/v1/schemas/note/3", tok, noteV2), 409, "conflict", "note/2 is retired")
		// The note/1 branch is writable as usual, and PATCH and DELETE act on it.
		wantStatus(t, g.call(t, "PATCH", "/v1/repos/r/items/n1", tok, `{"prio":7}`, "Content-Type", "application/merge-patch+json"), 200)
		var list models.SchemaList
		g.call(t, "GET", "/v1/schemas", tok, nil).json(t, &list)
		for _, s := range list.Schemas {
			if s.Ns == "note" && (s.Version == 2) != (s.Retired != nil && *s.Retired) {
				t.Fatalf("schema list: %s/%d retired=%v", s.Ns, s.Version, s.Retired)
			}
		}

		// Retirement survives a restart: it is a record of sys.schemas.
		g.Restart(t)
		tok = g.Token("alice")
		if got := getItem(t, g, tok, "/v1/repos/r/items/n1"); got.Schema != "note/1" || got.Data["prio"] != 7.0 {
			t.Fatalf("after a restart: %+v, want note/1 with prio 7", got)
		}

		// Republishing brings note/2 and its edits back, merged with what
		// the note/1 branch did meanwhile.
		wantStatus(t, g.call(t, "PUT", "/v1/schemas/note/2", tok, noteV2), 201)
		back := getItem(t, g, tok, "/v1/repos/r/items/n1")
		want := core.CloneObject(newest.Data)
		want["prio"] = "7"
		wantData(t, back, "note/2", want)
	})

	t.Run("BadQueries", func(t *testing.T) {
		h := getItem(t, g, tok, "/v1/repos/r/items/n1")
		for _, q := range []string{
			"at=zzz", "asOf=yesterday", "schema=note/9", "schema=note", "at=" + h.Head + "&asOf=1",
			"at=" + strings.Repeat("0", 64),
		} {
			r := g.call(t, "GET", "/v1/repos/r/items/n1?"+q, tok, nil)
			if r.StatusCode != 400 && r.StatusCode != 404 {
				t.Fatalf("?%s: %d, want 400 (404 for an unknown commit): %s", q, r.StatusCode, r.body)
			}
		}
		wantStatus(t, g.call(t, "PUT", "/v1/repos/r/items/other", tok, `{"schema":"note/1","data":{"title":"x"}}`), 201)
		wantProblem(t, g.call(t, "GET", "/v1/repos/r/items/other?at="+h.Head, tok, nil), 404, "not-found", "not a version of")
		wantStatus(t, g.call(t, "GET", "/v1/repos/r/items?schema=note/9", tok, nil), 400)
		wantStatus(t, g.call(t, "GET", "/v1/repos/r/items/n1/history?schema=note/1", tok, nil), 400)
		wantStatus(t, g.call(t, "GET", "/v1/repos/r/items/n1/history?resolve=maybe", tok, nil), 400)
	})
}

// logCommits reads a repository's whole log through the API, in log order.
func logCommits(tb testing.TB, g *gateway, tok, repo string) []*core.Commit {
	tb.Helper()
	var out []*core.Commit
	path := "/v1/repos/" + repo + "/log?limit=1000"
	for {
		var page struct {
			Commits []json.RawMessage `json:"commits"`
			Next    string            `json:"next"`
			Tail    bool              `json:"tail"`
		}
		g.call(tb, "GET", path, tok, nil).json(tb, &page)
		for _, raw := range page.Commits {
			c, err := core.DecodeCommit(raw)
			if err != nil {
				tb.Fatal(err)
			}
			out = append(out, c)
		}
		if page.Tail {
			return out
		}
		path = "/v1/repos/" + repo + "/log?limit=1000&after=" + url.QueryEscape(page.Next)
	}
}

// TestServer_TimeTravel writes an item of more than 50 commits through
// REST (full values, deltas, concurrent edits from stale If-Match and a
// note/1 writer after note/2 is out, and the merges the gateway makes),
// then reads it ?at= every commit and ?asOf= every commit's ts, and
// compares each answer with an oracle that replays the log from the
// start: the full value of every commit (deltas applied to their base),
// and, as of a time, the commits with ts at most that time whose parents
// are all in, merged when several are heads.
func TestServer_TimeTravel(t *testing.T) {
	var clock testClock
	clock.Set(time.Now())
	g := startGateway(t, goattest.Config{Now: clock.Now})
	tok := g.Token("alice")
	wantStatus(t, g.call(t, "PUT", "/v1/repos/r", tok, nil), 201)
	wantStatus(t, g.call(t, "PUT", "/v1/schemas/note/1", tok, noteV1), 201)
	body := strings.Repeat("a long body, so that small edits travel as deltas. ", 10)
	put := func(schema string, data map[string]any, ifMatch string) models.Item {
		t.Helper()
		var h []string
		if ifMatch != "" {
			h = []string{"If-Match", `"` + ifMatch + `"`}
		}
		r := g.call(t, "PUT", "/v1/repos/r/items/n", tok, map[string]any{"schema": schema, "data": data}, h...)
		if r.StatusCode != 200 && r.StatusCode != 201 {
			t.Fatalf("PUT: %d %s", r.StatusCode, r.body)
		}
		var it models.Item
		r.json(t, &it)
		return it
	}
	var heads []string
	for i := 0; len(logCommits(t, g, tok, "r")) < 50; i++ {
		clock.Advance(time.Duration(1+i%3) * time.Millisecond) // some commits share a ms
		if i == 12 {
			wantStatus(t, g.call(t, "PUT", "/v1/schemas/note/2", tok, noteV2), 201)
		}
		var stale string
		if len(heads) > 3 && i%4 == 0 {
			stale = heads[len(heads)-3] // concurrent with the last two: the gateway merges
		}
		var it models.Item
		switch {
		case i < 12 || i%5 == 1:
			it = put("note/1", map[string]any{"title": fmt.Sprintf("t%d", i%4), "prio": float64(i), "body": body + fmt.Sprint(i)}, stale)
		default:
			it = put("note/2", map[string]any{"name": fmt.Sprintf("n%d", i%3), "owner": "o", "prio": fmt.Sprint(i), "body": fmt.Sprint(i) + body}, stale)
		}
		heads = append(heads, it.Head)
		if i > 200 {
			t.Fatal("no 50 commits after 200 writes")
		}
	}
	wantStatus(t, g.call(t, "DELETE", "/v1/repos/r/items/n", tok, nil), 200)

	log := logCommits(t, g, tok, "r")
	var schemas models.SchemaList
	g.call(t, "GET", "/v1/schemas", tok, nil).json(t, &schemas)
	o := newReplayOracle(t, schemas, log, "n")
	if o.merges == 0 || o.deltas == 0 || len(o.commits) < 50 {
		t.Fatalf("%d commits, %d merges, %d deltas: want 50 commits with merges and deltas", len(o.commits), o.merges, o.deltas)
	}
	for _, c := range o.commits {
		got := getItem(t, g, tok, "/v1/repos/r/items/n?at="+c.ID.String())
		wantSchema, wantData := o.at(t, c.ID)
		if got.Head != c.ID.String() || got.Schema != wantSchema || !core.EqualJSON(got.Data, wantData) {
			t.Fatalf("?at=%s: %s %v, oracle %s %v", c.ID, got.Schema, got.Data, wantSchema, wantData)
		}
		for _, q := range []string{fmt.Sprint(c.TS), time.UnixMilli(c.TS).UTC().Format(time.RFC3339Nano)} {
			got := getItem(t, g, tok, "/v1/repos/r/items/n?asOf="+url.QueryEscape(q))
			head, wantSchema, wantData := o.asOf(t, c.TS)
			if got.Head != head.String() || got.Schema != wantSchema || !core.EqualJSON(got.Data, wantData) {
				t.Fatalf("?asOf=%s: %s %s %v, oracle %s %s %v", q, got.Head, got.Schema, got.Data, head, wantSchema, wantData)
			}
		}
	}
	wantStatus(t, g.call(t, "GET", fmt.Sprintf("/v1/repos/r/items/n?asOf=%d", o.commits[0].TS-1), tok, nil), http.StatusNotFound)

	// History with resolve carries the same values, page by page.
	var values []*models.ResolvedValue
	var ids []string
	for path := "/v1/repos/r/items/n/history?resolve=true&limit=7"; ; {
		var page models.HistoryPage
		g.call(t, "GET", path, tok, nil).json(t, &page)
		if page.Values == nil || len(*page.Values) != len(page.Commits) {
			t.Fatalf("history page: %d commits, values %v", len(page.Commits), page.Values)
		}
		values = append(values, *page.Values...)
		for _, c := range page.Commits {
			ids = append(ids, c.Id)
		}
		if page.Next == nil {
			break
		}
		path = "/v1/repos/r/items/n/history?resolve=true&limit=7&before=" + *page.Next
	}
	if len(ids) != len(o.commits) {
		t.Fatalf("history has %d commits, the log %d", len(ids), len(o.commits))
	}
	for i, id := range ids {
		cid, _ := core.ParseCommitID(id)
		wantSchema, wantData := o.at(t, cid)
		if v := values[i]; v == nil || v.Schema != wantSchema || !core.EqualJSON(v.Data, wantData) {
			t.Fatalf("history value of %s: %+v, oracle %s %v", id, v, wantSchema, wantData)
		}
	}
}

// testClock is a settable clock for the gateway's commit timestamps.
type testClock struct{ ms atomic.Int64 }

func (c *testClock) Set(t time.Time)         { c.ms.Store(t.UnixMilli()) }
func (c *testClock) Advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }
func (c *testClock) Now() time.Time          { return time.UnixMilli(c.ms.Load()) }

// replayOracle knows an item's history by replaying a log from the start,
// the simplest way: the full value of each commit as it comes.
type replayOracle struct {
	reg            *core.Registry
	commits        []*core.Commit // of the key, in log order
	full           map[core.CommitID]map[string]any
	graph          map[core.CommitID]*core.Commit
	merges, deltas int
}

func newReplayOracle(tb testing.TB, schemas models.SchemaList, log []*core.Commit, key string) *replayOracle {
	tb.Helper()
	o := &replayOracle{reg: core.NewRegistry(), full: map[core.CommitID]map[string]any{}, graph: map[core.CommitID]*core.Commit{}}
	for _, s := range schemas.Schemas {
		b, _ := json.Marshal(s)
		var def map[string]any
		_ = json.Unmarshal(b, &def)
		delete(def, "retired")
		b, _ = json.Marshal(def)
		sc, err := core.DecodeSchema(b)
		if err != nil {
			tb.Fatal(err)
		}
		if err := o.reg.Add(sc); err != nil && sc.Ref() != core.AnySchema {
			tb.Fatal(err)
		}
		if s.Retired != nil && *s.Retired {
			_ = o.reg.Retire(sc.Ref(), true)
		}
	}
	for _, c := range log {
		if c.Key != key {
			continue
		}
		data := c.Data
		if c.Delta != nil {
			o.deltas++
			var err error
			if data, err = core.ApplyDelta(o.full[c.Delta.Base], c.Delta); err != nil {
				tb.Fatal(err)
			}
		}
		if c.IsMerge() {
			o.merges++
		}
		o.full[c.ID], o.graph[c.ID] = data, c
		o.commits = append(o.commits, c)
	}
	return o
}

// read upgrades a value to the newest readable version and fills in
// defaults, as every reader gets it.
func (o *replayOracle) read(tb testing.TB, schema string, data map[string]any) (string, map[string]any) {
	tb.Helper()
	ns, _, _ := core.ParseSchemaRef(schema)
	latest, err := o.reg.Latest(ns)
	if err != nil {
		tb.Fatal(err)
	}
	up, err := o.reg.Upgrade(data, schema, latest.Ref())
	if err != nil {
		tb.Fatal(err)
	}
	if !core.IsDeleted(up) {
		up = latest.WithDefaults(up)
	}
	return latest.Ref(), up
}

func (o *replayOracle) at(tb testing.TB, id core.CommitID) (string, map[string]any) {
	tb.Helper()
	return o.read(tb, o.graph[id].Schema, o.full[id])
}

// asOf: the commits with ts <= t whose parents are all in (the log is in
// topological order, so one pass decides), their heads, and their merge.
func (o *replayOracle) asOf(tb testing.TB, t int64) (core.CommitID, string, map[string]any) {
	tb.Helper()
	in := map[core.CommitID]bool{}
	for _, c := range o.commits {
		ok := c.TS <= t
		for _, p := range c.Parents {
			ok = ok && in[p]
		}
		in[c.ID] = ok
	}
	parent := map[core.CommitID]bool{}
	for _, c := range o.commits {
		if in[c.ID] {
			for _, p := range c.Parents {
				parent[p] = true
			}
		}
	}
	var heads []core.CommitID
	for _, c := range o.commits {
		if in[c.ID] && !parent[c.ID] {
			heads = append(heads, c.ID)
		}
	}
	if len(heads) == 1 {
		s, d := o.at(tb, heads[0])
		return heads[0], s, d
	}
	g := merge.GraphFunc(func(id core.CommitID) (*core.Commit, bool) { c, ok := o.graph[id]; return c, ok })
	ms, err := merge.MergeAll(g, o.reg, o.commits[0].Repo, o.commits[0].Key, heads)
	if err != nil {
		tb.Fatal(err)
	}
	m := ms[len(ms)-1]
	s, d := o.read(tb, m.Schema, m.Data)
	return m.ID, s, d
}
