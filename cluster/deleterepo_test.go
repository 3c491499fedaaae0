package cluster

import (
	"context"
	"testing"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/client"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
	"github.com/goat-gateway/goat-gateway/node"
)

// adminClient is a client of n for an admin.
func adminClient(tb testing.TB, n *testNode) *client.Client {
	tb.Helper()
	tok := n.Token("root", auth.AdminRole)
	c, err := client.New(n.URL(), client.Options{Token: func(context.Context) (string, error) { return tok, nil }})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// A repository deleted on one node is deleted on the others, and neither
// NATS nor reconciliation brings it back from a node that still had it.
func TestNode_DeleteRepo(t *testing.T) {
	ctx := context.Background()

	t.Run("OverNATS", func(t *testing.T) {
		ns := startNATS(t)
		nodes := startCluster(t, 3, clusterOpts{nats: ns.url(), peers: true})
		a := nodes[0]
		w := goattest.NewAuthor(t, a, "alice")
		w.At(a.URL()).CreateRepo(t, "notes")
		c := w.Commit("notes", "k", map[string]any{"v": "1"})
		w.At(a.URL()).Push(t, c)
		goattest.WaitFor(t, "notes everywhere", func() bool { return inSync(nodes, "notes") })
		sub := subscribe(t, nodes[2], w.Token, "notes")

		if err := adminClient(t, nodes[1]).DeleteRepo(ctx, "notes"); err != nil {
			t.Fatalf("DeleteRepo on node 1: %v", err)
		}
		goattest.WaitFor(t, "notes deleted everywhere", func() bool {
			for _, n := range nodes {
				if count, _ := n.state("notes"); count >= 0 {
					return false
				}
			}
			return true
		})
		if got := sub.next(t); got != "reset" {
			t.Fatalf("node 2's live stream got %q, want a reset", got)
		}
		// A full reconciliation between every pair brings nothing back.
		for _, n := range nodes {
			if err := n.cl.HealAll(ctx); err != nil {
				t.Fatalf("HealAll: %v", err)
			}
		}
		for i, n := range nodes {
			if count, _ := n.state("notes"); count >= 0 {
				t.Fatalf("node %d has notes again (%d commits)", i, count)
			}
		}
		// A client may create the name again: it starts empty everywhere.
		w.At(a.URL()).CreateRepo(t, "notes")
		t.Cleanup(func() {
			if t.Failed() {
				for i, n := range nodes {
					count, digest := n.state("notes")
					_, err := n.nd.State("notes")
					t.Logf("node %d: notes %d commits, digest %.8x, the old commit %v (%v)", i, count, digest, n.has("notes", c.ID), err)
					logRecordHistory(t, n, node.ReposRepo, "notes")
				}
			}
		})
		goattest.WaitFor(t, "the new notes everywhere", func() bool { return inSync(nodes, "notes") })
		if count, _ := nodes[2].state("notes"); count != 0 || nodes[2].has("notes", c.ID) {
			t.Fatalf("the re-created repository has %d commits on node 2", count)
		}
	})

	t.Run("APeerThatMissedIt", func(t *testing.T) {
		// No NATS: the deletion travels by reconciliation alone, and the
		// peer that still has the repository reconciles first.
		nodes := startCluster(t, 2, clusterOpts{peers: true})
		a, b := nodes[0], nodes[1]
		w := goattest.NewAuthor(t, a, "alice")
		w.At(a.URL()).CreateRepo(t, "notes")
		c := w.Commit("notes", "k", map[string]any{"v": "1"})
		w.At(a.URL()).Push(t, c)
		if err := a.cl.HealAll(ctx); err != nil {
			t.Fatal(err)
		}
		if !b.has("notes", c.ID) {
			t.Fatal("b did not get notes")
		}

		if err := adminClient(t, a).DeleteRepo(ctx, "notes"); err != nil {
			t.Fatal(err)
		}
		if count, _ := b.state("notes"); count != 1 {
			t.Fatalf("b already lost notes (%d commits) without NATS or a heal", count)
		}
		// b offers notes to a, which refuses it; b learns of the
		// deletion from a's sys.repos in the same pass.
		_ = b.cl.HealAll(ctx)
		if count, _ := a.state("notes"); count >= 0 {
			t.Fatalf("b's reconciliation re-created notes on a (%d commits)", count)
		}
		goattest.WaitFor(t, "b to delete notes", func() bool { count, _ := b.state("notes"); return count < 0 })
		for _, n := range nodes {
			if err := n.cl.HealAll(ctx); err != nil {
				t.Fatalf("HealAll after the deletion: %v", err)
			}
		}
		for i, n := range nodes {
			if count, _ := n.state("notes"); count >= 0 {
				t.Fatalf("node %d has notes again (%d commits)", i, count)
			}
		}
		if _, err := a.nd.Ensure(ctx, "notes", node.OriginReplica); err == nil {
			t.Fatal("a replica may create the deleted repository")
		}
	})
}

// logRecordHistory logs the commits of key in repo on n, newest first.
func logRecordHistory(t *testing.T, n *testNode, repo, key string) {
	r, err := n.nd.Peek(repo)
	if err != nil {
		t.Logf("  %s: %v", repo, err)
		return
	}
	defer r.Release()
	recs, err := r.History(key, core.CommitID{}, 100)
	if err != nil {
		t.Logf("  %s/%s: %v", repo, key, err)
		return
	}
	for _, rec := range recs {
		t.Logf("  %s/%s seq %d: %s", repo, key, rec.Seq, rec.JSON)
	}
}
