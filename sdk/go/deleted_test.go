package goat_test

import (
	"context"
	"errors"
	"testing"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/client"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
)

// A repository deleted on the gateway while a client follows it: the
// client stops syncing it (syncing on would create it again and push the
// replica back), says so in its status, and keeps its other repositories
// live.
func TestClient_RepoDeletedOnTheGateway(t *testing.T) {
	ctx := context.Background()
	g := goattest.StartGateway(t, goattest.Config{})
	c := openClient(t, g, "alice", nil)
	team, other := openRepo(t, c, "team"), openRepo(t, c, "other")
	if err := team.Set("t1", "note/1", map[string]any{"title": "Buy milk"}); err != nil {
		t.Fatal(err)
	}
	waitInSync(t, g, "team", team)
	waitInSync(t, g, "other", other)

	tok := g.Token("root", auth.AdminRole)
	admin, err := client.New(g.URL(), client.Options{Token: func(context.Context) (string, error) { return tok, nil }})
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.DeleteRepo(ctx, "team"); err != nil {
		t.Fatal(err)
	}
	goattest.WaitFor(t, "the client to report the deletion", func() bool {
		return errors.Is(c.Status().LastError, core.ErrNotFound)
	})
	// Local writes stay local; the other repository still syncs.
	if err := team.Set("t2", "note/1", map[string]any{"title": "Walk the dog"}); err != nil {
		t.Fatal(err)
	}
	if err := other.Set("o1", "note/1", map[string]any{"title": "Still here"}); err != nil {
		t.Fatal(err)
	}
	waitInSync(t, g, "other", other)
	if err := other.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Node().State("team"); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("the client brought the deleted repository back: %v", err)
	}
	if err := team.Sync(ctx); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("Sync of the deleted repository: %v, want not found", err)
	}
	if _, err := g.Node().State("team"); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("Sync brought the deleted repository back: %v", err)
	}
	if _, err := team.Get("t1"); err != nil {
		t.Fatalf("the local replica lost its item: %v", err)
	}
}
