package api_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/gen"
	"github.com/goat-gateway/goat-gateway/gen/models"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
)

func TestServer_Probes(t *testing.T) {
	g := startGateway(t, goattest.Config{})
	wantStatus(t, g.call(t, "GET", "/healthz", "", nil), 200)
	wantStatus(t, g.call(t, "GET", "/readyz", "", nil), 200)
	m := g.call(t, "GET", "/metrics", "", nil)
	wantStatus(t, m, 200)
	if !strings.Contains(string(m.body), "goat_http_requests_total") {
		t.Fatalf("metrics lack request counters:\n%.500s", m.body)
	}
	spec := g.call(t, "GET", "/openapi.yaml", "", nil)
	wantStatus(t, spec, 200)
	if string(spec.body) != string(gen.Spec) {
		t.Fatal("served spec differs from the embedded one")
	}
	var info models.Info
	r := g.call(t, "GET", "/v1/info", "", nil)
	wantStatus(t, r, 200)
	r.json(t, &info)
	if info.NodeId == "" || info.Limits.MaxCommitBytes != core.MaxCommitBytes {
		t.Fatalf("info=%+v", info)
	}
	for _, c := range []string{"sync-v1", "sync-v2", "sync-v3"} {
		if !slices.Contains(info.Capabilities, c) {
			t.Fatalf("capabilities %v lack %q", info.Capabilities, c)
		}
	}
}

func TestServer_ReposAndItems(t *testing.T) {
	g := startGateway(t, goattest.Config{})
	tok := g.Token("alice")
	wantStatus(t, g.call(t, "PUT", "/v1/repos/user.alice.notes", tok, nil), 201)
	wantStatus(t, g.call(t, "PUT", "/v1/repos/user.alice.notes", tok, nil), 200)

	var list models.RepoList
	r := g.call(t, "GET", "/v1/repos?prefix=user.", tok, nil)
	wantStatus(t, r, 200)
	r.json(t, &list)
	if len(list.Repos) != 1 || list.Repos[0].Name != "user.alice.notes" {
		t.Fatalf("repos=%+v", list.Repos)
	}

	put := g.call(t, "PUT", "/v1/repos/user.alice.notes/items/task-1", tok, `{"schema":"any/1","data":{"title":"Buy milk","done":false}}`)
	wantStatus(t, put, 201)
	var it models.Item
	put.json(t, &it)
	etag := put.Header.Get("ETag")
	if etag != `"`+it.Head+`"` {
		t.Fatalf("ETag %s, head %s", etag, it.Head)
	}
	get := g.call(t, "GET", "/v1/repos/user.alice.notes/items/task-1", tok, nil)
	wantStatus(t, get, 200)
	wantStatus(t, g.call(t, "GET", "/v1/repos/user.alice.notes/items/task-1", tok, nil, "If-None-Match", etag), 304)

	same := g.call(t, "PUT", "/v1/repos/user.alice.notes/items/task-1", tok, `{"schema":"any/1","data":{"done":false,"title":"Buy milk"}}`)
	wantStatus(t, same, 200)
	if same.Header.Get("ETag") != etag {
		t.Fatal("writing an equal value made a new commit")
	}
	patch := g.call(t, "PATCH", "/v1/repos/user.alice.notes/items/task-1", tok, `{"done":true,"note":"2%"}`, "Content-Type", "application/merge-patch+json")
	wantStatus(t, patch, 200)
	patch.json(t, &it)
	if it.Data["done"] != true || it.Data["title"] != "Buy milk" || it.Data["note"] != "2%" {
		t.Fatalf("after patch: %v", it.Data)
	}

	var hist struct{ Commits []map[string]any }
	h := g.call(t, "GET", "/v1/repos/user.alice.notes/items/task-1/history", tok, nil)
	wantStatus(t, h, 200)
	h.json(t, &hist)
	if len(hist.Commits) != 2 || hist.Commits[0]["id"] != it.Head {
		t.Fatalf("history (newest first) has %d commits, first %v, want head %s", len(hist.Commits), hist.Commits[0]["id"], it.Head)
	}

	wantStatus(t, g.call(t, "DELETE", "/v1/repos/user.alice.notes/items/task-1", tok, nil), 200)
	wantStatus(t, g.call(t, "GET", "/v1/repos/user.alice.notes/items/task-1", tok, nil), 404)
	var page models.ItemPage
	l := g.call(t, "GET", "/v1/repos/user.alice.notes/items?includeDeleted=true", tok, nil)
	wantStatus(t, l, 200)
	l.json(t, &page)
	if len(page.Items) != 1 || page.Items[0].Deleted == nil || !*page.Items[0].Deleted {
		t.Fatalf("items=%+v", page.Items)
	}
	l = g.call(t, "GET", "/v1/repos/user.alice.notes/items", tok, nil)
	l.json(t, &page)
	if len(page.Items) != 0 {
		t.Fatalf("deleted item listed: %+v", page.Items)
	}
}

// Two edits of one version made with If-Match both survive: the second is
// merged 3-way with the first, not written over it.
func TestServer_IfMatchEditsMerge(t *testing.T) {
	g := startGateway(t, goattest.Config{})
	tok := g.Token("alice")
	wantStatus(t, g.call(t, "PUT", "/v1/repos/r/items/k", tok, `{"schema":"any/1","data":{}}`), 404)
	wantStatus(t, g.call(t, "PUT", "/v1/repos/r", tok, nil), 201)
	v0 := g.call(t, "PUT", "/v1/repos/r/items/k", tok, `{"schema":"any/1","data":{"title":"draft","done":false,"n":1}}`)
	wantStatus(t, v0, 201)
	etag := v0.Header.Get("ETag")
	wantStatus(t, g.call(t, "PUT", "/v1/repos/r/items/k", tok, `{"schema":"any/1","data":{"title":"final","done":false,"n":1}}`, "If-Match", etag), 200)
	r := g.call(t, "PUT", "/v1/repos/r/items/k", tok, `{"schema":"any/1","data":{"title":"draft","done":true,"n":1}}`, "If-Match", etag)
	wantStatus(t, r, 200)
	var it models.Item
	r.json(t, &it)
	if it.Data["title"] != "final" || it.Data["done"] != true {
		t.Fatalf("merged value %v: both edits must survive", it.Data)
	}
	bad := g.call(t, "PUT", "/v1/repos/r/items/k", tok, `{"schema":"any/1","data":{}}`, "If-Match", `"`+strings.Repeat("0", 64)+`"`)
	wantStatus(t, bad, http.StatusConflict)
}

func TestServer_PushCommitsAndGet(t *testing.T) {
	g := startGateway(t, goattest.Config{})
	alice := g.newAuthor(t, "alice")
	wantStatus(t, g.call(t, "PUT", "/v1/repos/r", alice.Token, nil), 201)
	c1 := alice.CommitAt(1000, "r", "a", map[string]any{"x": 1.0})
	c2 := alice.CommitAt(2000, "r", "a", map[string]any{"x": 2.0}, c1.ID)
	forged := alice.CommitAt(1000, "r", "b", map[string]any{"x": 3.0})
	forged.Sig[0] ^= 1
	orphan := alice.CommitAt(1000, "r", "c", map[string]any{}, core.CommitID{9})
	other := alice.CommitAt(1000, "elsewhere", "d", map[string]any{})
	r := g.call(t, "POST", "/v1/repos/r/commits", alice.Token, goattest.PushBody(c2, forged, c1, orphan, other, c1))
	wantStatus(t, r, 200)
	var res models.PushResponse
	r.json(t, &res)
	want := []models.PushResultStatus{"accepted", "rejected", "accepted", "rejected", "rejected", "duplicate"}
	for i, w := range want {
		if res.Results[i].Status != w {
			t.Errorf("result %d: %s (%v), want %s", i, res.Results[i].Status, deref(res.Results[i].Reason), w)
		}
	}
	if pt := *res.Results[1].ProblemType; pt != models.ProblemTypeBadSignature {
		t.Errorf("forged commit problem type %s", pt)
	}
	if pt := *res.Results[3].ProblemType; pt != models.ProblemTypeMissingParents {
		t.Errorf("orphan problem type %s", pt)
	}

	got := g.call(t, "GET", "/v1/repos/r/commits/"+c2.ID.String(), alice.Token, nil)
	wantStatus(t, got, 200)
	want2, _ := c2.MarshalJSON()
	if string(got.body) != string(want2) {
		t.Fatalf("commit bytes differ:\n%s\n%s", got.body, want2)
	}
	if cc := got.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
		t.Fatalf("Cache-Control %q", cc)
	}
	wantStatus(t, g.call(t, "GET", "/v1/repos/r/commits/"+c2.ID.String(), alice.Token, nil, "If-None-Match", got.Header.Get("ETag")), 304)
	wantStatus(t, g.call(t, "GET", "/v1/repos/r/commits/"+forged.ID.String(), alice.Token, nil), 404)
}
