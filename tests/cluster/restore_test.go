//go:build cluster

package cluster

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
	goat "github.com/goat-gateway/goat-gateway/sdk/go"
)

// Issue 18 through the docker-compose topology: every node loses all its
// data (the shared keys directory stays), the nodes restart, and ONE Go
// SDK client reconnecting through nginx restores the repository on every
// node, other users' commits included (another Go client's and REST
// writes signed by a custodial session), with the records of their
// sessions; the other client then reconnects without conflict.
func (h *harness) testClientRestoresWipedCluster(t *testing.T) {
	const repo = "restored"
	ctx := context.Background()
	open := func(sub, dir string) (*goat.Client, *goat.Repo) {
		c, err := goat.Open(goat.Config{URL: h.lb, Token: h.mint(t, sub), Dir: dir, NoSync: true, Logger: slog.New(slog.DiscardHandler),
			CoalesceWindow: 5 * time.Millisecond, ReconnectMin: 50 * time.Millisecond, ReconnectMax: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		r, err := c.Repo(repo)
		if err != nil {
			t.Fatal(err)
		}
		return c, r
	}
	dirA, dirB := t.TempDir(), t.TempDir()
	a, ra := open("alice", dirA)
	// Through nginx the creation and the first log page may reach
	// different nodes, the second before the creation's announcement.
	goattest.WaitFor(t, "alice's first sync", func() bool { return ra.Sync(ctx) == nil })
	b, rb := open("bob", dirB)
	carol := h.mint(t, "carol")
	for i := range 5 {
		if err := ra.Set(fmt.Sprintf("a%d", i), core.AnySchema, map[string]any{"by": "alice", "i": float64(i)}); err != nil {
			t.Fatal(err)
		}
		if err := rb.Set(fmt.Sprintf("b%d", i), core.AnySchema, map[string]any{"by": "bob", "i": float64(i)}); err != nil {
			t.Fatal(err)
		}
		body := []byte(fmt.Sprintf(`{"schema":"any/1","data":{"by":"carol","i":%d}}`, i))
		req, _ := http.NewRequest("PUT", fmt.Sprintf("%s/v1/repos/%s/items/c%d", h.lb, repo, i), bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+carol)
		req.Header.Set("Content-Type", "application/json")
		resp, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			t.Fatalf("carol's REST write: %d", resp.StatusCode)
		}
	}
	h.waitInSync(t, repo)
	goattest.WaitFor(t, "both clients to hold everything", func() bool {
		_, _ = ra.Sync(ctx), rb.Sync(ctx)
		s := h.state(t, h.nodes[0].url, repo)
		an, ad := ra.Digest()
		bn, bd := rb.Digest()
		return an == s.Count && ad == s.Digest && bn == s.Count && bd == s.Digest
	})
	before := h.state(t, h.nodes[0].url, repo)
	// Held means stored: a quarantined commit counts as held for sync
	// but is never stored, so a restore could not bring it back.
	if qa, qb := a.Status().Quarantined, b.Status().Quarantined; qa != 0 || qb != 0 {
		t.Fatalf("before the wipe: alice quarantined %d %v, bob %d %v; want none", qa, a.Quarantined(), qb, b.Quarantined())
	}
	a.Close()
	b.Close()

	for _, n := range h.nodes {
		n.proc.stop(t)
		if err := os.RemoveAll(n.dataDir); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range h.nodes {
		h.startGateway(t, n)
	}

	a, ra = open("alice", dirA)
	// What the last try saw, for the log if the restore never completes.
	var lastSync error
	lastStates := make([]string, len(h.nodes))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("restore: want %+v on every node; alice's last sync: %v; alice: %+v; nodes: %q", before, lastSync, a.Status(), lastStates)
		}
	})
	goattest.WaitFor(t, "alice to restore every node", func() bool {
		lastSync = ra.Sync(ctx)
		done := true
		for i, n := range h.nodes {
			s, err := h.stateErr(n.url, repo)
			lastStates[i] = fmt.Sprintf("%+v %v", s, err)
			if err != nil || s != before {
				done = false
			}
		}
		return done
	})
	b, rb = open("bob", dirB)
	goattest.WaitFor(t, "bob's sync after the restore", func() bool { return rb.Sync(ctx) == nil })
	if s := b.Status(); s.Quarantined != 0 {
		t.Fatalf("bob quarantined %d commits", s.Quarantined)
	}
	if n, d := rb.Digest(); n != before.Count || d != before.Digest {
		t.Fatalf("bob after the restore: %d %.8s, want %d %.8s", n, d, before.Count, before.Digest)
	}
	t.Logf("wiped cluster restored by one client: %d commits on every node", before.Count)
}
