package cluster

import (
	"context"
	"errors"
	"testing"

	"github.com/goat-gateway/goat-gateway/client"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
)

// A session registered on one node is known to its peers before its
// record replicates: a node meeting a commit by a session it does not know
// asks its peers, verifies the record against the shared root key, and
// accepts the commit (issue 18: it used to be rejected once).
func TestCluster_LookupSessionOnPeers(t *testing.T) {
	// No NATS and hourly reconciliation: the record does not replicate
	// during the test.
	nodes := startCluster(t, 2, clusterOpts{peers: true})
	w := goattest.NewAuthor(t, nodes[0], "alice") // registered on node 0 only
	at1 := w.At(nodes[1].URL())
	at1.CreateRepo(t, "notes")
	before := nodes[1].cl.Stats().SessionLookups
	res := at1.Push(t, w.Commit("notes", "k", map[string]any{"v": 1.0}))
	if got := res[0].Status; got != "accepted" {
		t.Fatalf("commit by a session registered on a peer: %s (%s), want accepted", got, res[0].Reason)
	}
	if got := nodes[1].cl.Stats().SessionLookups - before; got != 1 {
		t.Fatalf("node 1 looked up %d sessions on peers, want 1", got)
	}
	// Known now: the next commit needs no lookup.
	at1.Push(t, w.Commit("notes", "k2", map[string]any{"v": 2.0}))
	if got := nodes[1].cl.Stats().SessionLookups - before; got != 1 {
		t.Fatalf("node 1 looked up %d sessions on peers after the first, want 1", got)
	}
	// A session no node knows is still rejected.
	stranger := goattest.NewSigner("mallory")
	stranger.Token, stranger.URL = nodes[1].Token("mallory"), nodes[1].URL()
	res, err := stranger.TryPush(t.Context(), stranger.Commit("notes", "x", map[string]any{}))
	if err == nil || res[0].Status != "rejected" {
		t.Fatalf("commit by an unknown session: %v %v, want rejected", res, err)
	}
}

// A client asking a node for a session record the node has not received
// yet (through a load balancer, right after the commit it signed reached
// the client from another node) gets it from the node's peers, not a 404:
// the Go SDK quarantined such a commit for the life of its process, which
// made a restore from that client miss it (tests/cluster
// ClientRestoresWipedCluster timed out 2 runs in 7).
func TestCluster_SessionRecordFromPeers(t *testing.T) {
	// No NATS and hourly reconciliation: the record does not replicate
	// during the test.
	nodes := startCluster(t, 2, clusterOpts{peers: true})
	w := goattest.NewAuthor(t, nodes[0], "alice") // registered on node 0 only
	tok := nodes[1].Token("bob")
	reader, err := client.New(nodes[1].URL(), client.Options{Token: func(context.Context) (string, error) { return tok, nil }})
	if err != nil {
		t.Fatal(err)
	}
	before := nodes[1].cl.Stats().SessionLookups
	rec, _, err := reader.SessionRecord(t.Context(), w.ID)
	if err != nil {
		t.Fatalf("node 1 asked for a session registered on node 0: %v, want its record", err)
	}
	if rec.ID != w.ID {
		t.Fatalf("record %s, want %s", rec.ID, w.ID)
	}
	if got := nodes[1].cl.Stats().SessionLookups - before; got != 1 {
		t.Fatalf("node 1 looked up %d sessions on peers, want 1", got)
	}
	// Kept: asked again, node 1 answers from its own directory.
	if _, _, err := reader.SessionRecord(t.Context(), w.ID); err != nil {
		t.Fatal(err)
	}
	if got := nodes[1].cl.Stats().SessionLookups - before; got != 1 {
		t.Fatalf("node 1 looked up %d sessions on peers after the first, want 1", got)
	}
	// An anonymous caller is answered from the node alone.
	w2 := goattest.NewAuthor(t, nodes[0], "carol") // registered on node 0 only
	anon, err := client.New(nodes[1].URL(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := anon.SessionRecord(t.Context(), w2.ID); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("an anonymous caller asked node 1 for a session on node 0 only: %v, want not found", err)
	}
	if got := nodes[1].cl.Stats().SessionLookups - before; got != 1 {
		t.Fatalf("node 1 looked up %d sessions on peers for an anonymous caller, want none more than the 1 before", got)
	}
	// A session no node knows is still a 404.
	if _, _, err := reader.SessionRecord(t.Context(), goattest.NewSigner("mallory").ID); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("a session no node knows: %v, want not found", err)
	}
}
