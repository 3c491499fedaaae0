package client_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/client"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
)

// deleteRules give each subject its user.<sub>.* namespace and let admins
// read every user's.
const deleteRules = `
rules:
  - repos: "user.{sub}.*"
    read: ["{sub}"]
    write: ["{sub}"]
  - repos: "user.*"
    read: ["role:admin"]
`

func TestClient_DeleteRepo(t *testing.T) {
	ctx := context.Background()
	rules, err := auth.ParseRules([]byte(deleteRules))
	if err != nil {
		t.Fatal(err)
	}
	g := goattest.StartGateway(t, goattest.Config{Rules: rules})
	const repo = "user.alice.notes"
	alice := newClient(t, g, "alice", client.Options{})
	bob := newClient(t, g, "bob", client.Options{})
	tok := g.Token("root", auth.AdminRole)
	admin, err := client.New(g.URL(), client.Options{Token: func(context.Context) (string, error) { return tok, nil }})
	if err != nil {
		t.Fatal(err)
	}
	anon, err := client.New(g.URL(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := alice.CreateRepo(ctx, repo); err != nil {
		t.Fatal(err)
	}

	wantProblem := func(t *testing.T, what string, err error, sentinel error, status int) {
		t.Helper()
		var p *client.ProblemError
		if !errors.As(err, &p) || !errors.Is(err, sentinel) || p.Status != status {
			t.Fatalf("%s: err=%v, want a %d problem matching %v", what, err, status, sentinel)
		}
	}
	var cursor string // the deleted log's tail
	t.Run("RefusedWithoutRoleAdmin", func(t *testing.T) {
		wantProblem(t, "the owner, not an admin", alice.DeleteRepo(ctx, repo), core.ErrForbidden, http.StatusForbidden)
	})
	t.Run("HiddenFromWhoMayNotRead", func(t *testing.T) {
		wantProblem(t, "another user", bob.DeleteRepo(ctx, repo), core.ErrNotFound, http.StatusNotFound)
		wantProblem(t, "an anonymous caller", anon.DeleteRepo(ctx, repo), core.ErrNotFound, http.StatusNotFound)
		wantProblem(t, "a repository that does not exist", admin.DeleteRepo(ctx, "user.alice.nothing"), core.ErrNotFound, http.StatusNotFound)
	})
	t.Run("DeletesAndResetsLiveStreams", func(t *testing.T) {
		sctx, cancel := context.WithTimeout(ctx, goattest.Patience)
		defer cancel()
		resp, err := alice.Events(sctx, []string{repo}, "")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() && sc.Text() != "event: ready" {
		}
		info, err := alice.GetRepo(ctx, repo)
		if err != nil {
			t.Fatal(err)
		}
		cursor = info.Cursor
		openBefore := openRepos(t, g)
		if err := admin.DeleteRepo(ctx, repo); err != nil {
			t.Fatalf("DeleteRepo as an admin: %v", err)
		}
		// The repository's log is closed: the metric of open repositories
		// (there are no per-repository series) counts it no more.
		if got, want := openRepos(t, g), openBefore-1; got != want {
			t.Fatalf("goat_open_repositories=%d after the deletion, want %d", got, want)
		}
		var data string
		for sc.Scan() {
			if sc.Text() == "event: reset" {
				for sc.Scan() && !strings.HasPrefix(sc.Text(), "data: ") {
				}
				data = strings.TrimPrefix(sc.Text(), "data: ")
				break
			}
		}
		var reset struct{ Repo, Reason, Code string }
		if err := json.Unmarshal([]byte(data), &reset); err != nil || reset.Repo != repo || reset.Code != "deleted" {
			t.Fatalf("reset event data %q (%v), want code deleted for %s; stream: %v", data, err, repo, sc.Err())
		}
		if _, err := alice.GetRepo(ctx, repo); !errors.Is(err, core.ErrNotFound) {
			t.Fatalf("GetRepo after the deletion: %v, want not found", err)
		}
		wantProblem(t, "deleting it again", admin.DeleteRepo(ctx, repo), core.ErrNotFound, http.StatusNotFound)
		if _, err := alice.Events(ctx, []string{repo}, ""); !errors.Is(err, core.ErrNotFound) {
			t.Fatalf("a stream of the deleted repository: %v, want not found", err)
		}
		if _, err := alice.Log(ctx, repo, cursor, 10); !errors.Is(err, core.ErrNotFound) {
			t.Fatalf("a log cursor into the deleted repository: %v, want not found", err)
		}
	})
	t.Run("CreatedAgainStartsEmpty", func(t *testing.T) {
		info, created, err := alice.CreateRepo(ctx, repo)
		if err != nil || !created || info.Count != 0 {
			t.Fatalf("CreateRepo after the deletion: %+v, created=%v, %v", info, created, err)
		}
		// A cursor into the deleted log is from another log now.
		if _, err := alice.Log(ctx, repo, cursor, 10); !errors.Is(err, core.ErrMustReconcile) {
			t.Fatalf("a log cursor into the deleted repository after its re-creation: %v, want must-reconcile", err)
		}
	})
}

// openRepos reads goat_open_repositories from the gateway's /metrics.
func openRepos(tb testing.TB, g *goattest.Gateway) int {
	tb.Helper()
	resp, err := http.Get(g.URL() + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "goat_open_repositories "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				tb.Fatalf("goat_open_repositories %q: %v", v, err)
			}
			return n
		}
	}
	tb.Fatalf("no goat_open_repositories in /metrics (%v)", sc.Err())
	return 0
}
