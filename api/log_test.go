package api

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

type logPage struct {
	Commits []json.RawMessage `json:"commits"`
	Next    string            `json:"next"`
	Tail    bool              `json:"tail"`
}

func TestServer_LogCatchUp(t *testing.T) {
	n := startNode(t, nil)
	alice := n.newClient("alice")
	wantStatus(t, n.call("PUT", "/v1/repos/r", alice.token, nil), 201)
	var cs []*core.Commit
	for i := 0; i < 25; i++ {
		cs = append(cs, alice.commit(t, "r", fmt.Sprintf("k%d", i), int64(1000+i), map[string]any{"i": float64(i)}))
	}
	wantStatus(t, n.call("POST", "/v1/repos/r/commits", alice.token, commitsBody(cs...)), 200)

	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		path := "/v1/repos/r/log?limit=10"
		if cursor != "" {
			path += "&after=" + cursor
		}
		r := n.call("GET", path, alice.token, nil)
		wantStatus(t, r, 200)
		var p logPage
		r.json(t, &p)
		for _, c := range p.Commits {
			var m map[string]any
			_ = json.Unmarshal(c, &m)
			got = append(got, m["id"].(string))
		}
		cc := r.Header.Get("Cache-Control")
		if full := len(p.Commits) == 10 && cursor != ""; full != strings.Contains(cc, "immutable") {
			t.Fatalf("page %d (%d commits, after=%q): Cache-Control %q", pages, len(p.Commits), cursor, cc)
		}
		if strings.Contains(cc, "immutable") {
			wantStatus(t, n.call("GET", path, alice.token, nil, "If-None-Match", r.Header.Get("ETag")), 304)
		}
		cursor = p.Next
		if p.Tail {
			break
		}
	}
	if len(got) != 25 {
		t.Fatalf("log catch-up returned %d commits, want 25", len(got))
	}
	for i, c := range cs {
		if got[i] != c.ID.String() {
			t.Fatalf("log order differs at %d", i)
		}
	}

	t.Run("BadCursor", func(t *testing.T) {
		r := n.call("GET", "/v1/repos/r/log?after=AAAA", alice.token, nil)
		wantStatus(t, r, 400)
	})
	t.Run("CursorOfAnotherLog", func(t *testing.T) {
		other := gsync.EncodeCursor(gsync.LogID{1, 2, 3}, 3)
		r := n.call("GET", "/v1/repos/r/log?after="+other, alice.token, nil)
		wantStatus(t, r, 409)
		if got := r.problemType(); got != "must-reconcile" {
			t.Fatalf("problem %s", got)
		}
	})
	t.Run("LongPoll", func(t *testing.T) {
		done := make(chan logPage, 1)
		go func() {
			r := n.call("GET", "/v1/repos/r/log?wait=20&after="+cursor, alice.token, nil)
			var p logPage
			r.json(t, &p)
			done <- p
		}()
		late := alice.commit(t, "r", "late", 5000, map[string]any{})
		// The poll may or may not have started yet; either way it must
		// return the new commit, not an empty page after 20 s.
		wantStatus(t, n.call("POST", "/v1/repos/r/commits", alice.token, commitsBody(late)), 200)
		select {
		case p := <-done:
			if len(p.Commits) != 1 || !strings.Contains(string(p.Commits[0]), late.ID.String()) {
				t.Fatalf("long poll returned %d commits", len(p.Commits))
			}
		case <-time.After(15 * time.Second):
			t.Fatal("long poll did not return when a commit arrived")
		}
	})
}

// httpTransport runs the sync protocol against a test node.
type httpTransport struct {
	n     *testNode
	token string
	bytes int
}

func (h *httpTransport) Log(ctx context.Context, repo, cursor string, limit int) (*gsync.LogPage, error) {
	path := fmt.Sprintf("/v1/repos/%s/log?limit=%d", repo, limit)
	if cursor != "" {
		path += "&after=" + cursor
	}
	r := h.n.call("GET", path, h.token, nil)
	if r.StatusCode == 409 {
		return nil, core.ErrMustReconcile
	}
	var p logPage
	r.json(h.n.t, &p)
	return &gsync.LogPage{Commits: p.Commits, Next: p.Next, More: !p.Tail}, nil
}

func (h *httpTransport) Sync(ctx context.Context, repo string, req *gsync.Request) (*gsync.Response, error) {
	b, err := req.MarshalJSON()
	if err != nil {
		return nil, err
	}
	r := h.n.call("POST", "/v1/repos/"+repo+"/sync", h.token, b)
	if r.StatusCode != 200 {
		return nil, fmt.Errorf("sync: %d %s", r.StatusCode, r.body)
	}
	h.bytes += len(b) + len(r.body)
	return gsync.DecodeResponse(r.body)
}

// memLocal is a client replica in memory.
type memLocal struct {
	order []core.CommitID
	byID  map[core.CommitID]*core.Commit
}

func newMemLocal() *memLocal { return &memLocal{byID: map[core.CommitID]*core.Commit{}} }

func (m *memLocal) Digest() gsync.Digest { return gsync.DigestOf(m.order...) }
func (m *memLocal) Walk(fn func(core.CommitID) bool) {
	for _, id := range m.order {
		if !fn(id) {
			return
		}
	}
}
func (m *memLocal) Get(id core.CommitID) (*core.Commit, bool) { c, ok := m.byID[id]; return c, ok }
func (m *memLocal) Ingest(ctx context.Context, cs []*core.Commit) error {
	for _, c := range cs {
		if _, ok := m.byID[c.ID]; !ok {
			m.byID[c.ID] = c
			m.order = append(m.order, c.ID)
		}
	}
	return nil
}

func TestServer_SyncRounds(t *testing.T) {
	n := startNode(t, nil)
	alice := n.newClient("alice")
	wantStatus(t, n.call("PUT", "/v1/repos/r", alice.token, nil), 201)
	var shared []*core.Commit
	for i := 0; i < 200; i++ {
		shared = append(shared, alice.commit(t, "r", fmt.Sprintf("s%d", i), int64(i), map[string]any{"i": float64(i)}))
	}
	wantStatus(t, n.call("POST", "/v1/repos/r/commits", alice.token, commitsBody(shared...)), 200)

	local := newMemLocal()
	tr := &httpTransport{n: n, token: alice.token}
	d := &gsync.Driver{Transport: tr}
	if _, err := d.Clone(t.Context(), local, "r", ""); err != nil {
		t.Fatal(err)
	}
	if len(local.order) != 200 {
		t.Fatalf("clone got %d commits", len(local.order))
	}

	t.Run("InSyncIsOneSmallRound", func(t *testing.T) {
		tr.bytes = 0
		st, err := d.Heal(t.Context(), local, "r")
		if err != nil {
			t.Fatal(err)
		}
		if st.Rounds != 1 || tr.bytes >= 300 {
			t.Fatalf("in-sync check took %d rounds and %d bytes, want 1 round under 300 bytes", st.Rounds, tr.bytes)
		}
	})
	t.Run("BothSidesDiverged", func(t *testing.T) {
		var mine, theirs []*core.Commit
		for i := 0; i < 30; i++ {
			mine = append(mine, alice.commit(t, "r", fmt.Sprintf("m%d", i), 10_000+int64(i), map[string]any{}))
			theirs = append(theirs, alice.commit(t, "r", fmt.Sprintf("t%d", i), 20_000+int64(i), map[string]any{}))
		}
		_ = local.Ingest(t.Context(), mine)
		wantStatus(t, n.call("POST", "/v1/repos/r/commits", alice.token, commitsBody(theirs...)), 200)
		st, err := d.Heal(t.Context(), local, "r")
		if err != nil {
			t.Fatal(err)
		}
		var info struct{ Count int64 }
		n.call("GET", "/v1/repos/r", alice.token, nil).json(t, &info)
		if len(local.order) != 260 || info.Count != 260 {
			t.Fatalf("after heal: local %d, server %d, want 260 each (%d rounds)", len(local.order), info.Count, st.Rounds)
		}
	})
	t.Run("V2PushesPastTheCommitsLimitInOneRequest", func(t *testing.T) {
		// sync-v2 pushes up to 10000 commits in one request; the gateway
		// ingests them 1000 at a time and answers one result each.
		const k = 2500
		var mine []*core.Commit
		for i := range k {
			mine = append(mine, alice.commit(t, "r", fmt.Sprintf("big%d", i), 30_000+int64(i), map[string]any{}))
		}
		_ = local.Ingest(t.Context(), mine)
		st, err := d.Heal(t.Context(), local, "r")
		if err != nil {
			t.Fatal(err)
		}
		var info struct{ Count int64 }
		n.call("GET", "/v1/repos/r", alice.token, nil).json(t, &info)
		if got, want := info.Count, int64(260+k); got != want {
			t.Fatalf("server count=%d, want %d", got, want)
		}
		if st.Rounds > 3 || st.Pushed != k || st.Rejected != 0 {
			t.Fatalf("heal: %d rounds, %d pushed, %d rejected; want at most 3, %d, 0", st.Rounds, st.Pushed, st.Rejected, k)
		}
	})
}
