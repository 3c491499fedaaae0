package client_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/client"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/gen/models"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

// newClient returns a client of g acting for sub with a dev token.
func newClient(tb testing.TB, g *goattest.Gateway, sub string, opts client.Options) *client.Client {
	tb.Helper()
	tok := g.Token(sub)
	opts.Token = func(context.Context) (string, error) { return tok, nil }
	c, err := client.New(g.URL(), opts)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// TestClient_Transport runs the gsync.Transport contract over the client
// against a real gateway.
func TestClient_Transport(t *testing.T) {
	goattest.RunTransportConformance(t, func(tb testing.TB, a *goattest.Author) (gsync.Transport, func(...*core.Commit)) {
		tb.Helper()
		g := goattest.StartGateway(tb, goattest.Config{})
		a.Register(tb, g)
		a.CreateRepo(tb, goattest.ConformanceRepo)
		return newClient(tb, g, a.Sub, client.Options{}), func(cs ...*core.Commit) { a.Push(tb, cs...) }
	})
}

func TestNew_RefusesBadURLs(t *testing.T) {
	for _, u := range []string{"", "localhost:8080", "ftp://example.com", "http://", "://x"} {
		t.Run(u, func(t *testing.T) {
			if _, err := client.New(u, client.Options{}); !errors.Is(err, core.ErrInvalid) {
				t.Fatalf("New(%q): err=%v, want core.ErrInvalid", u, err)
			}
		})
	}
}

// TestClient_Operations calls every operation the callers use against a
// real gateway and checks what comes back, commits byte for byte.
func TestClient_Operations(t *testing.T) {
	ctx := context.Background()
	g := goattest.StartGateway(t, goattest.Config{})
	const sub, repo = "alice", "user.alice.notes"
	c := newClient(t, g, sub, client.Options{Timeout: time.Minute})
	a := goattest.NewSigner(sub)

	t.Run("InfoAndReady", func(t *testing.T) {
		info, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.NodeId == "" || info.Audience == "" || info.Limits.MaxPageLimit <= 0 {
			t.Fatalf("Info = %+v, want a node id, an audience and limits", info)
		}
		if err := c.Ready(ctx); err != nil {
			t.Fatalf("Ready: %v", err)
		}
		m, err := c.Metrics(ctx)
		if err != nil || !bytes.Contains(m, []byte("\ngoat_")) {
			t.Fatalf("Metrics: %d bytes, err=%v; want the node's goat_ series", len(m), err)
		}
	})

	t.Run("Sessions", func(t *testing.T) {
		info, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		body, err := client.SessionBody(a.Key, info.Audience, sub, time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		s, created, err := c.CreateSession(ctx, body)
		if err != nil || !created || s.Id != a.ID || s.Owner != sub {
			t.Fatalf("CreateSession = %+v, created=%v, err=%v; want session %s of %s, created", s, created, err, a.ID, sub)
		}
		if _, created, err := c.CreateSession(ctx, body); err != nil || created {
			t.Fatalf("CreateSession again: created=%v, err=%v; want the existing one", created, err)
		}
		got, err := c.GetSession(ctx, a.ID)
		if err != nil || got.Id != a.ID || got.PublicKey != body.PublicKey {
			t.Fatalf("GetSession = %+v, %v", got, err)
		}
		if _, err := c.GetSession(ctx, "s_AAAAAAAAAAAAAAAAAAAAAAAA"); !errors.Is(err, core.ErrNotFound) {
			t.Fatalf("GetSession of an unknown id: err=%v, want core.ErrNotFound", err)
		}
	})

	t.Run("Repos", func(t *testing.T) {
		info, created, err := c.CreateRepo(ctx, repo)
		if err != nil || !created || info.Name != repo || info.Count != 0 {
			t.Fatalf("CreateRepo = %+v, created=%v, err=%v", info, created, err)
		}
		if _, created, err := c.CreateRepo(ctx, repo); err != nil || created {
			t.Fatalf("CreateRepo again: created=%v, err=%v; want the existing one", created, err)
		}
		for _, name := range []string{"user.alice.a", "user.alice.b"} {
			if _, _, err := c.CreateRepo(ctx, name); err != nil {
				t.Fatal(err)
			}
		}
		got, err := c.GetRepo(ctx, repo)
		if err != nil || got.Name != repo || got.Cursor == "" {
			t.Fatalf("GetRepo = %+v, %v", got, err)
		}
		first, err := c.ListRepos(ctx, "user.alice.", "", 2)
		if err != nil || len(first.Repos) != 2 || first.Next == nil {
			t.Fatalf("ListRepos page 1 = %+v, %v; want 2 and a next", first, err)
		}
		rest, err := c.ListRepos(ctx, "user.alice.", *first.Next, 2)
		if err != nil || len(rest.Repos) != 1 || rest.Repos[0].Name != repo {
			t.Fatalf("ListRepos page 2 = %+v, %v; want %s", rest, err, repo)
		}
		if _, err := c.GetRepo(ctx, "user.alice.missing"); !errors.Is(err, core.ErrNotFound) {
			t.Fatalf("GetRepo of a missing repository: err=%v, want core.ErrNotFound", err)
		}
	})

	t.Run("Items", func(t *testing.T) {
		put, err := c.PutItem(ctx, repo, "task-1", models.ItemWrite{Schema: core.AnySchema, Data: map[string]any{"title": "milk", "n": 1.0}}, "")
		if err != nil || put.Key != "task-1" || put.Head == "" || put.Data["title"] != "milk" {
			t.Fatalf("PutItem = %+v, %v", put, err)
		}
		patched, err := c.PatchItem(ctx, repo, "task-1", models.MergePatch{"title": "oat milk"}, put.Head)
		if err != nil || patched.Data["title"] != "oat milk" || patched.Data["n"] != 1.0 || patched.Head == put.Head {
			t.Fatalf("PatchItem = %+v, %v", patched, err)
		}
		got, err := c.GetItem(ctx, repo, "task-1")
		if err != nil || got.Head != patched.Head {
			t.Fatalf("GetItem = %+v, %v; want head %s", got, err, patched.Head)
		}
		if _, err := c.PutItem(ctx, repo, "task-2", models.ItemWrite{Schema: core.AnySchema, Data: map[string]any{"title": "bread"}}, ""); err != nil {
			t.Fatal(err)
		}
		page, err := c.ListItems(ctx, repo, models.ListItemsParams{})
		if err != nil || len(page.Items) != 2 {
			t.Fatalf("ListItems = %+v, %v; want 2 items", page, err)
		}
		hist, err := c.ItemHistory(ctx, repo, "task-1", "", 0)
		if err != nil || len(hist.Commits) != 2 {
			t.Fatalf("ItemHistory = %+v, %v; want 2 commits", hist, err)
		}
		newest, err := core.DecodeCommit(hist.Commits[0])
		if err != nil || newest.ID.String() != patched.Head {
			t.Fatalf("newest commit of the history: %v (%v), want %s", newest, err, patched.Head)
		}
		raw, err := c.GetCommit(ctx, repo, patched.Head)
		if err != nil || !bytes.Equal(raw, hist.Commits[0]) {
			t.Fatalf("GetCommit: %v; bytes equal to the history's: %v", err, bytes.Equal(raw, hist.Commits[0]))
		}
		deleted, err := c.DeleteItem(ctx, repo, "task-2", "")
		if err != nil || deleted.Deleted == nil || !*deleted.Deleted {
			t.Fatalf("DeleteItem = %+v, %v", deleted, err)
		}
		if _, err := c.GetItem(ctx, repo, "task-2"); !errors.Is(err, core.ErrNotFound) {
			t.Fatalf("GetItem of a deleted item: err=%v, want core.ErrNotFound", err)
		}
		if _, err := c.PutItem(ctx, repo, "task-3", models.ItemWrite{Schema: "nope/1", Data: map[string]any{}}, ""); !errors.Is(err, core.ErrSchema) {
			t.Fatalf("PutItem with an unknown schema: err=%v, want core.ErrSchema", err)
		}
	})

	t.Run("PushCommits", func(t *testing.T) {
		first := a.Commit(repo, "pushed", map[string]any{"v": "one"})
		second := a.Commit(repo, "pushed", map[string]any{"v": "two"}, first.ID)
		orphan := a.Commit(repo, "orphan", map[string]any{"v": "x"}, core.CommitID{1})
		var raws [][]byte
		for _, cm := range []*core.Commit{first, second, first, orphan} {
			b, err := cm.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			raws = append(raws, b)
		}
		res, err := c.PushCommits(ctx, repo, raws)
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range []string{gsync.StatusAccepted, gsync.StatusAccepted, gsync.StatusDuplicate, gsync.StatusRejected} {
			if res[i].Status != want {
				t.Fatalf("result %d = %+v, want %s", i, res[i], want)
			}
		}
		if err := client.RejectedError(repo, res[3]); !errors.Is(err, core.ErrMissingParents) {
			t.Fatalf("RejectedError of the orphan: %v, want core.ErrMissingParents", err)
		}
		raw, err := c.GetCommit(ctx, repo, second.ID.String())
		if err != nil || !bytes.Equal(raw, raws[1]) {
			t.Fatalf("GetCommit of a pushed commit: %v; the bytes pushed come back: %v", err, bytes.Equal(raw, raws[1]))
		}
	})

	t.Run("Schemas", func(t *testing.T) {
		sc := &core.Schema{NS: "task", Version: 1, Fields: map[string]core.Field{"title": {Type: core.TypeString, Required: true}}}
		if err := c.PutSchema(ctx, sc); err != nil {
			t.Fatal(err)
		}
		list, err := c.ListSchemas(ctx)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, s := range list {
			found = found || s.Ref() == sc.Ref()
		}
		if !found {
			t.Fatalf("ListSchemas has no %s", sc.Ref())
		}
	})

	t.Run("Events", func(t *testing.T) {
		sctx, cancel := context.WithTimeout(ctx, goattest.Patience)
		defer cancel()
		resp, err := c.Events(sctx, []string{repo}, "")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
			t.Fatalf("Content-Type %q, want text/event-stream", ct)
		}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if sc.Text() == "event: ready" {
				break
			}
		}
		if err := sc.Err(); err != nil {
			t.Fatalf("reading the stream before its ready event: %v", err)
		}
		if _, err := c.Events(ctx, []string{"user.alice.missing"}, ""); !errors.Is(err, core.ErrNotFound) {
			t.Fatalf("Events of a missing repository: err=%v, want core.ErrNotFound", err)
		}
	})
}

// TestClient_Errors checks the errors that do not come from a problem:
// no token, an unreachable gateway, a cancelled caller, a body too large.
func TestClient_Errors(t *testing.T) {
	ctx := context.Background()
	g := goattest.StartGateway(t, goattest.Config{})

	t.Run("Unauthenticated", func(t *testing.T) {
		c, err := client.New(g.URL(), client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		a := goattest.NewSigner("alice")
		body, err := client.SessionBody(a.Key, "goat-gateway", a.Sub, time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = c.CreateSession(ctx, body)
		var p *client.ProblemError
		if !errors.As(err, &p) || !errors.Is(err, core.ErrUnauthenticated) || p.Status != http.StatusUnauthorized {
			t.Fatalf("CreateSession without a token: err=%v, want a 401 problem matching core.ErrUnauthenticated", err)
		}
	})

	t.Run("TokenError", func(t *testing.T) {
		boom := errors.New("no token today")
		c, err := client.New(g.URL(), client.Options{Token: func(context.Context) (string, error) { return "", boom }})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Info(ctx); !errors.Is(err, boom) {
			t.Fatalf("Info with a failing token source: err=%v, want it", err)
		}
	})

	t.Run("Offline", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nothing listens there any more
		c, err := client.New("http://"+addr, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Info(ctx); !errors.Is(err, client.ErrOffline) {
			t.Fatalf("Info of a closed port: err=%v, want ErrOffline", err)
		}
		if _, err := c.Events(ctx, []string{"a"}, ""); !errors.Is(err, client.ErrOffline) {
			t.Fatalf("Events of a closed port: err=%v, want ErrOffline", err)
		}
	})

	t.Run("Cancelled", func(t *testing.T) {
		c := newClient(t, g, "alice", client.Options{})
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := c.Info(cctx); !errors.Is(err, context.Canceled) || errors.Is(err, client.ErrOffline) {
			t.Fatalf("Info with a cancelled context: err=%v, want context.Canceled, not ErrOffline", err)
		}
	})

	t.Run("TooLarge", func(t *testing.T) {
		c := newClient(t, g, "alice", client.Options{MaxResponseBytes: 16})
		if _, err := c.Info(ctx); !errors.Is(err, core.ErrTooLarge) {
			t.Fatalf("Info over MaxResponseBytes: err=%v, want core.ErrTooLarge", err)
		}
	})
}
