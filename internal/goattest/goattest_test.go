package goattest_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

func TestMemPeer_Local(t *testing.T) {
	goattest.RunLocalConformance(t, func(testing.TB) gsync.Local { return goattest.NewMemPeer(goattest.ConformanceRepo) })
}

func TestMemPeer_Transport(t *testing.T) {
	goattest.RunTransportConformance(t, func(_ testing.TB, _ *goattest.Author) (gsync.Transport, func(...*core.Commit)) {
		p := goattest.NewMemPeer(goattest.ConformanceRepo)
		return p, p.Add
	})
}

func TestGateway_Restart(t *testing.T) {
	g := goattest.StartGateway(t, goattest.Config{})
	a := goattest.NewAuthor(t, g, "alice")
	a.CreateRepo(t, "r")
	c := a.Commit("r", "k", map[string]any{"v": 1.0})
	res := a.Push(t, c)
	if len(res) != 1 || res[0].Status != gsync.StatusAccepted || res[0].ID != c.ID.String() {
		t.Fatalf("push results %+v, want %s accepted", res, c.ID)
	}
	if res := a.Push(t, c); res[0].Status != gsync.StatusDuplicate {
		t.Fatalf("push again: %+v, want duplicate", res)
	}
	url := g.URL()
	g.Restart(t)
	if got := g.URL(); got != url {
		t.Fatalf("URL after restart %s, want %s", got, url)
	}
	if !g.Has("r", c.ID) {
		t.Fatal("the commit did not survive the restart")
	}
	if d, ok := g.Digest("r"); !ok || d != gsync.DigestOf(c.ID) {
		t.Fatalf("Digest=%v %v, want the one commit", d, ok)
	}
	if got := g.Items(t, "r")["k"]["v"]; got != 1.0 {
		t.Fatalf("item k: v=%v, want 1", got)
	}
	// The session survived too: the author pushes on.
	a.Push(t, a.Commit("r", "k", map[string]any{"v": 2.0}, c.ID))
	if _, ok := g.Digest("missing"); ok {
		t.Fatal("Digest of a missing repository reports it")
	}
}

func TestGateway_Stop(t *testing.T) {
	g := goattest.StartGateway(t, goattest.Config{})
	a := goattest.NewAuthor(t, g, "alice")
	a.CreateRepo(t, "r")
	g.Stop()
	g.Stop() // stopping twice is harmless
	if _, err := a.TryPush(context.Background(), a.Commit("r", "k", map[string]any{})); err == nil {
		t.Fatal("a push to a stopped gateway succeeded")
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	a.Push(t, a.Commit("r", "k", map[string]any{}))
}

func TestAuthor_TryPush(t *testing.T) {
	g := goattest.StartGateway(t, goattest.Config{})
	a := goattest.NewAuthor(t, g, "alice")
	a.CreateRepo(t, "r")
	stranger := goattest.NewSigner("alice") // a key never registered
	stranger.Token, stranger.URL = a.Token, a.URL
	res, err := stranger.TryPush(context.Background(), stranger.Commit("r", "k", map[string]any{}))
	if !errors.Is(err, goattest.ErrRejected) || len(res) != 1 || res[0].Status != gsync.StatusRejected {
		t.Fatalf("push signed by an unregistered key: %+v %v, want rejected", res, err)
	}
	absent := a.Commit("r", "k", map[string]any{"v": "never pushed"})
	res, err = a.TryPush(context.Background(), a.Commit("r", "k", map[string]any{}, absent.ID))
	if !errors.Is(err, goattest.ErrRejected) || !errors.Is(err, core.ErrMissingParents) || res[0].Status != gsync.StatusRejected {
		t.Fatalf("push of an orphan: %+v %v, want rejected for missing parents", res, err)
	}
	if _, err := a.TryPush(context.Background(), a.Commit("nope", "k", map[string]any{})); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("push to a missing repository: %v, want core.ErrNotFound", err)
	}
}

func TestGateway_Token(t *testing.T) {
	g := goattest.StartGateway(t, goattest.Config{})
	for _, tc := range []struct {
		name  string
		token string
		want  int
	}{
		{"Valid", g.Token("alice"), http.StatusOK},
		{"Expired", mustMint(t, g, time.Now().Add(-2*time.Hour)), http.StatusUnauthorized},
		{"OtherGateway", goattest.StartGateway(t, goattest.Config{}).Token("alice"), http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", g.URL()+"/v1/repos", nil)
			req.Header.Set("Authorization", "Bearer "+tc.token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}

func mustMint(tb testing.TB, g *goattest.Gateway, now time.Time) string {
	tb.Helper()
	tok, err := g.Mint("alice", nil, time.Hour, now)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

func TestWaitFor(t *testing.T) {
	n := 0
	goattest.WaitFor(t, "the third call", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Fatalf("cond called %d times, want 3", n)
	}
	if goattest.Eventually(20*time.Millisecond, func() bool { return false }) {
		t.Fatal("Eventually reported a condition that never holds")
	}
	ch := make(chan int, 1)
	ch <- 7
	if got := goattest.Recv(t, ch, "a value"); got != 7 {
		t.Fatalf("Recv=%d, want 7", got)
	}
	done := make(chan struct{})
	close(done)
	goattest.Recv(t, done, "a closed channel")
}
