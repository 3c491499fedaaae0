package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

type logPage struct {
	Commits []json.RawMessage `json:"commits"`
	Next    string            `json:"next"`
	Tail    bool              `json:"tail"`
}

func TestServer_LogCatchUp(t *testing.T) {
	g := startGateway(t, goattest.Config{})
	alice := g.newAuthor(t, "alice")
	wantStatus(t, g.call(t, "PUT", "/v1/repos/r", alice.Token, nil), 201)
	var cs []*core.Commit
	for i := 0; i < 25; i++ {
		cs = append(cs, alice.CommitAt(int64(1000+i), "r", fmt.Sprintf("k%d", i), map[string]any{"i": float64(i)}))
	}
	wantStatus(t, g.call(t, "POST", "/v1/repos/r/commits", alice.Token, goattest.PushBody(cs...)), 200)

	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		path := "/v1/repos/r/log?limit=10"
		if cursor != "" {
			path += "&after=" + cursor
		}
		r := g.call(t, "GET", path, alice.Token, nil)
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
			wantStatus(t, g.call(t, "GET", path, alice.Token, nil, "If-None-Match", r.Header.Get("ETag")), 304)
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
		r := g.call(t, "GET", "/v1/repos/r/log?after=AAAA", alice.Token, nil)
		wantStatus(t, r, 400)
	})
	t.Run("CursorOfAnotherLog", func(t *testing.T) {
		other := gsync.EncodeCursor(gsync.LogID{1, 2, 3}, 3)
		r := g.call(t, "GET", "/v1/repos/r/log?after="+other, alice.Token, nil)
		wantStatus(t, r, 409)
		if got := r.problemType(); got != "must-reconcile" {
			t.Fatalf("problem %s", got)
		}
	})
	t.Run("LongPoll", func(t *testing.T) {
		type polled struct {
			r   response
			err error
		}
		done := make(chan polled, 1)
		go func() {
			r, err := g.do("GET", "/v1/repos/r/log?wait=20&after="+cursor, alice.Token, nil)
			done <- polled{r, err}
		}()
		late := alice.CommitAt(5000, "r", "late", map[string]any{})
		// The poll may or may not have started yet; either way it must
		// return the new commit, not an empty page after 20 s.
		wantStatus(t, g.call(t, "POST", "/v1/repos/r/commits", alice.Token, goattest.PushBody(late)), 200)
		res := goattest.Recv(t, done, "the long poll to return")
		if res.err != nil {
			t.Fatal(res.err)
		}
		var p logPage
		res.r.json(t, &p)
		if len(p.Commits) != 1 || !strings.Contains(string(p.Commits[0]), late.ID.String()) {
			t.Fatalf("long poll returned %d commits", len(p.Commits))
		}
	})
}

// httpTransport runs the sync protocol against a test gateway, every
// answer checked against openapi.yaml, counting the bytes it exchanges.
type httpTransport struct {
	g     *gateway
	token string
	bytes int
	// versions records each sync request's "v".
	versions []int
}

func (h *httpTransport) Log(ctx context.Context, repo, cursor string, limit int) (*gsync.LogPage, error) {
	path := fmt.Sprintf("/v1/repos/%s/log?limit=%d", repo, limit)
	if cursor != "" {
		path += "&after=" + cursor
	}
	r, err := h.g.do("GET", path, h.token, nil)
	if err != nil {
		return nil, err
	}
	if r.StatusCode == 409 {
		return nil, core.ErrMustReconcile
	}
	var p logPage
	if err := json.Unmarshal(r.body, &p); err != nil {
		return nil, fmt.Errorf("decode %s: %w", r.body, err)
	}
	return &gsync.LogPage{Commits: p.Commits, Next: p.Next, More: !p.Tail}, nil
}

func (h *httpTransport) Sync(ctx context.Context, repo string, req *gsync.Request) (*gsync.Response, error) {
	b, err := req.MarshalJSON()
	if err != nil {
		return nil, err
	}
	h.versions = append(h.versions, req.V)
	r, err := h.g.do("POST", "/v1/repos/"+repo+"/sync", h.token, b)
	if err != nil {
		return nil, err
	}
	if r.StatusCode != 200 {
		return nil, fmt.Errorf("sync: %d %s", r.StatusCode, r.body)
	}
	h.bytes += len(b) + len(r.body)
	return gsync.DecodeResponse(r.body)
}

func TestServer_SyncRounds(t *testing.T) {
	g := startGateway(t, goattest.Config{})
	alice := g.newAuthor(t, "alice")
	wantStatus(t, g.call(t, "PUT", "/v1/repos/r", alice.Token, nil), 201)
	var shared []*core.Commit
	for i := 0; i < 200; i++ {
		shared = append(shared, alice.CommitAt(int64(i), "r", fmt.Sprintf("s%d", i), map[string]any{"i": float64(i)}))
	}
	wantStatus(t, g.call(t, "POST", "/v1/repos/r/commits", alice.Token, goattest.PushBody(shared...)), 200)

	// The client replica, in memory.
	local := goattest.NewMemPeer("r")
	tr := &httpTransport{g: g, token: alice.Token}
	d := &gsync.Driver{Transport: tr}
	if _, err := d.Clone(t.Context(), local, "r", ""); err != nil {
		t.Fatal(err)
	}
	if n := local.Digest().Count; n != 200 {
		t.Fatalf("clone got %d commits", n)
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
			mine = append(mine, alice.CommitAt(10_000+int64(i), "r", fmt.Sprintf("m%d", i), map[string]any{}))
			theirs = append(theirs, alice.CommitAt(20_000+int64(i), "r", fmt.Sprintf("t%d", i), map[string]any{}))
		}
		local.Add(mine...)
		wantStatus(t, g.call(t, "POST", "/v1/repos/r/commits", alice.Token, goattest.PushBody(theirs...)), 200)
		tr.versions = nil
		st, err := d.Heal(t.Context(), local, "r")
		if err != nil {
			t.Fatal(err)
		}
		var info struct{ Count int64 }
		g.call(t, "GET", "/v1/repos/r", alice.Token, nil).json(t, &info)
		if n := local.Digest().Count; n != 260 || info.Count != 260 {
			t.Fatalf("after heal: local %d, server %d, want 260 each (%d rounds)", n, info.Count, st.Rounds)
		}
		if slices.ContainsFunc(tr.versions, func(v int) bool { return v != gsync.Version3 }) {
			t.Fatalf("request versions %v, want all 3 (sync-v3)", tr.versions)
		}
	})
	t.Run("V2ClientsStillServed", func(t *testing.T) {
		// A client of v0.1.0 speaks version 2: the gateway still answers
		// it in the version 2 encoding.
		var mine, theirs []*core.Commit
		for i := range 12 {
			mine = append(mine, alice.CommitAt(40_000+int64(i), "r", fmt.Sprintf("v2m%d", i), map[string]any{}))
			theirs = append(theirs, alice.CommitAt(40_000+int64(i), "r", fmt.Sprintf("v2t%d", i), map[string]any{}))
		}
		before := local.Digest().Count
		local.Add(mine...)
		wantStatus(t, g.call(t, "POST", "/v1/repos/r/commits", alice.Token, goattest.PushBody(theirs...)), 200)
		tr.versions = nil
		st, err := (&gsync.Driver{Transport: tr, V2: true}).Heal(t.Context(), local, "r")
		if err != nil {
			t.Fatal(err)
		}
		var info struct{ Count int64 }
		g.call(t, "GET", "/v1/repos/r", alice.Token, nil).json(t, &info)
		if want := before + 24; local.Digest().Count != want || info.Count != want || st.Rounds > 3 {
			t.Fatalf("after heal: local %d, server %d, want %d each, in %d rounds (at most 3)", local.Digest().Count, info.Count, want, st.Rounds)
		}
		if len(tr.versions) == 0 || slices.ContainsFunc(tr.versions, func(v int) bool { return v != gsync.Version2 }) {
			t.Fatalf("request versions %v, want all 2", tr.versions)
		}
	})
	t.Run("V2PushesPastTheCommitsLimitInOneRequest", func(t *testing.T) {
		// sync-v2 pushes up to 10000 commits in one request; the gateway
		// ingests them 1000 at a time and answers one result each.
		const k = 2500
		var mine []*core.Commit
		for i := range k {
			mine = append(mine, alice.CommitAt(30_000+int64(i), "r", fmt.Sprintf("big%d", i), map[string]any{}))
		}
		before := local.Digest().Count // in sync with the server
		local.Add(mine...)
		st, err := d.Heal(t.Context(), local, "r")
		if err != nil {
			t.Fatal(err)
		}
		var info struct{ Count int64 }
		g.call(t, "GET", "/v1/repos/r", alice.Token, nil).json(t, &info)
		if got, want := info.Count, before+k; got != want {
			t.Fatalf("server count=%d, want %d", got, want)
		}
		if st.Rounds > 3 || st.Pushed != k || st.Rejected != 0 {
			t.Fatalf("heal: %d rounds, %d pushed, %d rejected; want at most 3, %d, 0", st.Rounds, st.Pushed, st.Rejected, k)
		}
	})
}
