package cluster

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
	"github.com/goat-gateway/goat-gateway/node"
)

// A commit written on one node reaches the SSE subscribers of the others
// over NATS alone (no peers, no reconciliation), and nobody republishes it.
func TestNode_FanOut(t *testing.T) {
	ns := startNATS(t)
	nodes := startCluster(t, 3, clusterOpts{nats: ns.url()})
	goattest.WaitFor(t, "nodes connected", func() bool {
		for _, n := range nodes {
			if !n.cl.nc.IsConnected() {
				return false
			}
		}
		return true
	})
	w := goattest.NewAuthor(t, nodes[0], "alice")
	w.At(nodes[0].URL()).CreateRepo(t, "notes")
	goattest.WaitFor(t, "notes announced", func() bool { return inSync(nodes, "notes") })
	sub := subscribe(t, nodes[2], w.Token, "notes")

	const writes = 20
	var prev []core.CommitID
	for i := range writes {
		c := w.Commit("notes", "k", map[string]any{"i": float64(i)}, prev...)
		w.At(nodes[0].URL()).Push(t, c)
		if got, want := sub.next(t), c.ID.String(); got != want {
			t.Fatalf("event %d on node 2: %s, want %s", i, got, want)
		}
		prev = []core.CommitID{c.ID}
	}
	goattest.WaitFor(t, "notes in sync", func() bool { return inSync(nodes, "notes") })
	goattest.WaitFor(t, "sessions in sync", func() bool { return inSync(nodes, auth.SessionsRepo) })
	// The counters move just after the appends they count become visible
	// (a receiver counts once its ingest returns; the publisher once the
	// NATS client took the message): wait for them to settle.
	// Besides the writes: the session record, and the record of who
	// created the repository (sys.repos, for the per-owner quota).
	const system = 2
	goattest.WaitFor(t, "counters settled", func() bool {
		return nodes[0].cl.Stats().Published >= writes+system && nodes[1].cl.Stats().Appended >= writes+system && nodes[2].cl.Stats().Appended >= writes+system
	})

	s0, s1, s2 := nodes[0].cl.Stats(), nodes[1].cl.Stats(), nodes[2].cl.Stats()
	if got, want := s0.Published, int64(writes+system); got != want {
		t.Errorf("node 0 published %d commits, want %d", got, want)
	}
	if s1.Published != 0 || s2.Published != 0 {
		t.Errorf("replicas republished: node 1 %d, node 2 %d, want 0", s1.Published, s2.Published)
	}
	for i, s := range []Stats{s1, s2} {
		if got, want := s.Appended, int64(writes+system); got != want {
			t.Errorf("node %d appended %d from NATS, want %d", i+1, got, want)
		}
	}
	// The same counters, as /metrics shows them (Collector).
	reg := prometheus.NewRegistry()
	reg.MustRegister(nodes[1].cl.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		got[mf.GetName()] = mf.GetMetric()[0].GetCounter().GetValue()
	}
	if len(got) != 11 || got["goat_cluster_appended_total"] != float64(s1.Appended) || got["goat_cluster_received_total"] != float64(s1.Received) {
		t.Errorf("node 1's collector: %v, want Stats %+v", got, s1)
	}
}

// Concurrent writes to one item on different nodes make merges; merges
// are not published (each node derives the same one), and all nodes end
// with the same commits.
func TestNode_ConcurrentWritesConverge(t *testing.T) {
	ns := startNATS(t)
	nodes := startCluster(t, 3, clusterOpts{nats: ns.url()})
	ws := make([]*goattest.Author, len(nodes))
	for i, n := range nodes {
		ws[i] = goattest.NewAuthor(t, n, fmt.Sprintf("w%d", i))
	}
	goattest.WaitFor(t, "sessions in sync", func() bool {
		c, _ := nodes[0].state(auth.SessionsRepo)
		return c == len(nodes) && inSync(nodes, auth.SessionsRepo)
	})
	ws[0].At(nodes[0].URL()).CreateRepo(t, "shared")
	base := ws[0].Commit("shared", "doc", map[string]any{"v": 0.0})
	ws[0].At(nodes[0].URL()).Push(t, base)
	goattest.WaitFor(t, "base everywhere", func() bool {
		return nodes[1].has("shared", base.ID) && nodes[2].has("shared", base.ID)
	})
	const writesEach = 5
	done := make(chan struct{})
	for i, n := range nodes {
		go func() {
			defer func() { done <- struct{}{} }()
			prev := base.ID
			for j := range writesEach {
				c := ws[i].Commit("shared", "doc", map[string]any{fmt.Sprintf("f%d", i): float64(j)}, prev)
				if _, err := ws[i].At(n.URL()).TryPush(context.Background(), c); err != nil {
					t.Error(err)
					return
				}
				prev = c.ID
			}
		}()
	}
	for range nodes {
		<-done
	}
	goattest.WaitFor(t, "shared in sync", func() bool { return inSync(nodes, "shared") })
	count, _ := nodes[0].state("shared")
	const written = 3 + 1 + 3*writesEach // sessions, base, writes
	merges := count - (1 + 3*writesEach)
	if merges <= 0 {
		t.Fatalf("shared has %d commits, want merges beyond the %d written", count, 1+3*writesEach)
	}
	// Each commit is published by at most the nodes that made it: the
	// writes by their one node, a merge by each node that derived it
	// before receiving it.
	var published int64
	for _, n := range nodes {
		published += n.cl.Stats().Published
	}
	if max := int64(written + merges*len(nodes)); published < written || published > max {
		t.Errorf("published %d commits in all, want %d to %d", published, written, max)
	}
}

// Without NATS, reconciliation alone moves commits both ways, creates
// repositories that one side lacks, and skips the node itself in the peer
// list.
func TestNode_HealAll(t *testing.T) {
	nodes := startCluster(t, 2, clusterOpts{peers: true})
	a, b := nodes[0], nodes[1]
	wa, wb := goattest.NewAuthor(t, a, "alice"), goattest.NewAuthor(t, b, "bob")
	wa.At(a.URL()).CreateRepo(t, "only-a")
	wb.At(b.URL()).CreateRepo(t, "only-b")
	wb.At(b.URL()).CreateRepo(t, "empty")
	ca := wa.Commit("only-a", "k", map[string]any{"from": "a"})
	wa.At(a.URL()).Push(t, ca)
	cb := wb.Commit("only-b", "k", map[string]any{"from": "b"})
	wb.At(b.URL()).Push(t, cb)

	if err := a.cl.HealAll(context.Background()); err != nil {
		t.Fatalf("HealAll: %v", err)
	}
	for _, repo := range []string{auth.SessionsRepo, "only-a", "only-b", "empty"} {
		if !inSync(nodes, repo) {
			t.Errorf("%s differs after one pass from a", repo)
		}
	}
	if !b.has("only-a", ca.ID) || !a.has("only-b", cb.ID) {
		t.Fatal("commits did not move both ways")
	}
	if _, err := b.nd.State("empty"); err != nil {
		t.Fatalf("empty repository: %v", err)
	}
	if _, err := a.nd.State("empty"); err != nil {
		t.Fatalf("empty repository not created on a: %v", err)
	}
	st := a.cl.Stats()
	if st.HealPulled < 2 || st.HealPushed < 2 { // a session and a commit each way
		t.Errorf("stats %+v, want at least 2 pulled and 2 pushed", st)
	}
	if st.HealErrors != 0 {
		t.Errorf("%d heal errors", st.HealErrors)
	}
	// A second pass has nothing to move.
	if err := a.cl.HealAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st2 := a.cl.Stats(); st2.HealPulled != st.HealPulled || st2.HealPushed != st.HealPushed {
		t.Errorf("second pass moved commits: %+v then %+v", st, st2)
	}
}

// A node that starts empty (its files lost) refills from its peers at
// start, with nothing lost; writes on the survivors continue meanwhile.
func TestNode_EmptyNodeRefillsAtStart(t *testing.T) {
	ns := startNATS(t)
	nodes := startCluster(t, 2, clusterOpts{nats: ns.url(), peers: true})
	a := nodes[0]
	w := goattest.NewAuthor(t, a, "alice")
	w.At(a.URL()).CreateRepo(t, "big")
	heads := map[string][]core.CommitID{}
	var batch []*core.Commit
	for i := range 1100 { // more than one log page and one sync response
		key := fmt.Sprintf("k%d", i%50)
		c := w.Commit("big", key, map[string]any{"i": float64(i)}, heads[key]...)
		heads[key] = []core.CommitID{c.ID}
		if batch = append(batch, c); len(batch) == 100 {
			w.At(a.URL()).Push(t, batch...)
			batch = nil
		}
	}
	goattest.WaitFor(t, "b in sync", func() bool { return inSync(nodes, "big") })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := startNode(t, a.keysDir, ln, ns.url(), []string{a.url, nodes[1].url}, nil)
	all := append(nodes, c)
	goattest.WaitFor(t, "new node refilled", func() bool { return inSync(all, "big") && inSync(all, auth.SessionsRepo) })
	// The commits came by reconciliation (NATS carries only new ones).
	goattest.WaitFor(t, "pulled counted", func() bool { return c.cl.Stats().HealPulled >= 1101 })
}

// NATS going away and coming back: writes made meanwhile on each side end
// up everywhere, through the reconnect's reconciliation.
func TestNode_NATSRestart(t *testing.T) {
	ns := startNATS(t)
	nodes := startCluster(t, 3, clusterOpts{nats: ns.url(), peers: true})
	w := goattest.NewAuthor(t, nodes[0], "alice")
	w.At(nodes[0].URL()).CreateRepo(t, "r")
	goattest.WaitFor(t, "session everywhere", func() bool { return inSync(nodes, auth.SessionsRepo) && inSync(nodes, "r") })
	passes := nodes[2].cl.Stats().HealPasses

	ns.stop()
	goattest.WaitFor(t, "nodes disconnected", func() bool {
		for _, n := range nodes {
			if n.cl.nc.IsConnected() {
				return false
			}
		}
		return true
	})
	var ids []core.CommitID
	for i, n := range nodes {
		c := w.Commit("r", fmt.Sprintf("outage-%d", i), map[string]any{"i": float64(i)})
		w.At(n.URL()).Push(t, c) // acknowledged without waiting for NATS
		ids = append(ids, c.ID)
	}
	ns.start()
	goattest.WaitFor(t, "r in sync after NATS restart", func() bool { return inSync(nodes, "r") })
	for _, n := range nodes {
		for _, id := range ids {
			if !n.has("r", id) {
				t.Fatalf("%s missing %s", n.url, id)
			}
		}
	}
	goattest.WaitFor(t, "a reconciliation after reconnecting", func() bool { return nodes[2].cl.Stats().HealPasses > passes })
}

// A commit that arrives over NATS before its parent is rejected, and the
// repository is reconciled promptly (not at the next full pass).
func TestNode_MissingParentsHealPromptly(t *testing.T) {
	ns := startNATS(t)
	nodes := startCluster(t, 2, clusterOpts{nats: ns.url(), peers: true})
	a, b := nodes[0], nodes[1]
	w := goattest.NewAuthor(t, a, "alice")
	w.At(a.URL()).CreateRepo(t, "r")
	goattest.WaitFor(t, "session on b", func() bool { return inSync(nodes, auth.SessionsRepo) })
	c1 := w.Commit("r", "k", map[string]any{"n": 1.0})
	// c1 enters a as a replica does, so a does not publish it.
	if res, err := a.nd.Ingest(context.Background(), "r", []*core.Commit{c1}, node.OriginReplica); err != nil || res[0].Status != node.Appended {
		t.Fatalf("ingest c1: %v %+v", err, res)
	}
	c2 := w.Commit("r", "k", map[string]any{"n": 2.0}, c1.ID)
	w.At(a.URL()).Push(t, c2) // published alone: b lacks its parent
	goattest.WaitFor(t, "b healed r", func() bool { return b.has("r", c1.ID) && b.has("r", c2.ID) })
	goattest.WaitFor(t, "b's pass counted", func() bool { return b.cl.Stats().HealPulled > 0 })
	if st := b.cl.Stats(); st.Rejected == 0 {
		t.Errorf("b stats %+v: want c2 rejected over NATS first", st)
	}
}

// A write is acknowledged only after the NATS server confirmed the
// publication of its own commits (a flush round trip), when NATS is up.
func TestNode_AckWaitsForFlush(t *testing.T) {
	ns := startNATS(t)
	nodes := startCluster(t, 2, clusterOpts{nats: ns.url()})
	w := goattest.NewAuthor(t, nodes[0], "alice")
	w.At(nodes[0].URL()).CreateRepo(t, "r")
	for i := range 5 {
		c := w.Commit("r", "k", map[string]any{"i": float64(i)})
		w.At(nodes[0].URL()).Push(t, c)
		a := nodes[0].cl.ack
		a.mu.Lock()
		flushed := a.flushed
		a.mu.Unlock()
		r, err := nodes[0].nd.Open(auth.Principal{Sub: "alice"}, "r", false)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := r.Record(c.ID)
		r.Release()
		if err != nil {
			t.Fatal(err)
		}
		if seq := rec.Seq; flushed < seq {
			t.Fatalf("write %d acknowledged with seq %d not flushed (flushed %d)", i, seq, flushed)
		}
	}
}

// A node configured with an unreachable NATS starts, serves, and
// acknowledges writes without waiting for NATS (the test's HTTP client
// would time out long before ReplicationWait).
func TestNode_UnreachableNATS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "nats://" + ln.Addr().String()
	ln.Close()
	nodes := startCluster(t, 1, clusterOpts{nats: dead, config: func(_ int, c *Config) { c.ReplicationWait = time.Hour }})
	w := goattest.NewAuthor(t, nodes[0], "alice")
	w.At(nodes[0].URL()).CreateRepo(t, "r")
	c := w.Commit("r", "k", map[string]any{})
	w.At(nodes[0].URL()).Push(t, c)
	if !nodes[0].has("r", c.ID) {
		t.Fatal("commit not stored")
	}
}
