package cluster

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	stdsync "sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/storage"
)

// pubItem is one append of the node, as OnAppend saw it: the commits to
// publish (possibly none) and the append's last sequence number.
type pubItem struct {
	repo   string
	recs   []json.RawMessage
	maxSeq uint64
}

// OnAppend is the server's append hook (api.Config.OnAppend): it queues
// the commits this node appended for publication, except those it
// ingested as a replica (their origin published them). Merge commits are
// published too: which merges a node makes depends on the order in which
// concurrent commits reached it. It never blocks:
// when the queue is full the batch is dropped and the repository is marked
// for reconciliation, which pushes it to the peers.
func (n *Node) OnAppend(repo string, recs []storage.Record) {
	if n.pubq == nil || len(recs) == 0 {
		return
	}
	var out []json.RawMessage
	for _, r := range recs {
		if n.repl.has(r.ID) {
			continue
		}
		out = append(out, r.JSON)
	}
	maxSeq := recs[len(recs)-1].Seq
	n.lastSeq.Store(maxSeq)
	select {
	case n.pubq <- pubItem{repo: repo, recs: out, maxSeq: maxSeq}:
	default:
		n.stats.publishDropped.Add(int64(len(out)))
		n.ack.drop(maxSeq)
		n.markDirty(repo)
	}
}

// publishLoop publishes queued appends in order until Close, then
// publishes what is left in the queue.
func (n *Node) publishLoop() {
	for {
		select {
		case it := <-n.pubq:
			n.publish(it)
		case <-n.pubStop:
			for {
				select {
				case it := <-n.pubq:
					n.publish(it)
				default:
					return
				}
			}
		}
	}
}

func (n *Node) publish(it pubItem) {
	if len(it.recs) > 0 {
		limit := int(n.nc.MaxPayload())
		if limit <= 0 {
			limit = 1 << 20 // the NATS default, until the server said
		}
		msgs, skipped := splitMessages(n.nodeID, it.repo, it.recs, limit)
		sent := len(it.recs) - skipped
		subject := Subject(it.repo)
		for _, m := range msgs {
			if err := n.nc.Publish(subject, m); err != nil {
				n.log.Debug("publish failed", logRepo, it.repo, logErr, err)
				sent = 0 // count the batch as not published
			}
		}
		if sent < len(it.recs) {
			n.stats.publishDropped.Add(int64(len(it.recs) - sent))
			n.markDirty(it.repo)
		}
		n.stats.published.Add(int64(sent))
	}
	n.ack.publishedUpTo(it.maxSeq)
}

// announce tells the other nodes that repo was created here, and waits
// (at most ReplicationWait) until the NATS server has the announcement.
func (n *Node) announce(repo string) {
	msg := AppendMessage(nil, Message{Node: n.nodeID, Repo: repo})
	if err := n.nc.Publish(Subject(repo), msg); err != nil {
		n.markDirty(repo)
		return
	}
	if n.nc.IsConnected() && n.cfg.ReplicationWait >= 0 {
		_ = n.nc.FlushTimeout(max(n.cfg.ReplicationWait, 100*time.Millisecond))
	}
}

// replicated counts the commits being ingested as replicas, so that
// OnAppend, which runs during the ingest, does not publish them again.
type replicated struct {
	mu  stdsync.Mutex
	ids map[core.CommitID]int
}

func newReplicated() *replicated { return &replicated{ids: map[core.CommitID]int{}} }

func (r *replicated) add(cs []*core.Commit) {
	r.mu.Lock()
	for _, c := range cs {
		r.ids[c.ID]++
	}
	r.mu.Unlock()
}

func (r *replicated) remove(cs []*core.Commit) {
	r.mu.Lock()
	for _, c := range cs {
		if r.ids[c.ID]--; r.ids[c.ID] <= 0 {
			delete(r.ids, c.ID)
		}
	}
	r.mu.Unlock()
}

func (r *replicated) has(id core.CommitID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ids[id] > 0
}

// natsConn is what the acker needs of the NATS connection.
type natsConn interface {
	FlushTimeout(time.Duration) error
	IsConnected() bool
}

var _ natsConn = (*nats.Conn)(nil)

// acker tracks how far this node's appends have reached NATS, so that a
// write's acknowledgement can wait until the NATS server holds it: once it
// does, the write reaches the other nodes even if this one dies the next
// instant. Sequence numbers: published (handed to the NATS client, in
// order), flushed (confirmed by a server round trip after being handed),
// dropped (never to be published: the waiter gives up at once).
type acker struct {
	mu        stdsync.Mutex
	published uint64
	flushed   uint64
	dropped   uint64
	failed    uint64 // a flush covering up to here failed: give up
	want      uint64 // the largest target a waiter waits for
	changed   chan struct{}
	kick      chan struct{}
}

func newAcker() *acker {
	return &acker{changed: make(chan struct{}), kick: make(chan struct{}, 1)}
}

// notifyLocked wakes every waiter; a.mu is held.
func (a *acker) notifyLocked() {
	close(a.changed)
	a.changed = make(chan struct{})
}

func (a *acker) kickFlush() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

func (a *acker) publishedUpTo(seq uint64) {
	a.mu.Lock()
	a.published = max(a.published, seq)
	need := a.want > a.flushed
	a.mu.Unlock()
	if need {
		a.kickFlush()
	}
}

func (a *acker) drop(seq uint64) {
	a.mu.Lock()
	a.dropped = max(a.dropped, seq)
	a.notifyLocked()
	a.mu.Unlock()
}

// flushLoop confirms published messages with a server round trip whenever
// a waiter wants it; one flush serves every waiter it covers (like group
// commit).
func (a *acker) flushLoop(ctx context.Context, nc natsConn, timeout time.Duration) {
	for {
		select {
		case <-ctx.Done():
			a.mu.Lock()
			a.failed = ^uint64(0) // release every waiter
			a.notifyLocked()
			a.mu.Unlock()
			return
		case <-a.kick:
		}
		a.mu.Lock()
		upTo := a.published
		need := a.want > a.flushed && upTo > a.flushed
		a.mu.Unlock()
		if !need {
			continue
		}
		err := nc.FlushTimeout(max(timeout, 100*time.Millisecond))
		a.mu.Lock()
		if err == nil {
			a.flushed = max(a.flushed, upTo)
		} else {
			a.failed = max(a.failed, upTo)
		}
		a.notifyLocked()
		a.mu.Unlock()
	}
}

// wait blocks until the NATS server holds every append up to seq, the
// connection is down (the messages wait in the client's reconnect buffer
// and reconciliation covers them), the append was dropped, timeout passes
// or ctx ends.
func (a *acker) wait(ctx context.Context, nc natsConn, seq uint64, timeout time.Duration) {
	var deadline <-chan time.Time
	for {
		a.mu.Lock()
		if a.flushed >= seq || a.dropped >= seq || a.failed >= seq || !nc.IsConnected() {
			a.mu.Unlock()
			return
		}
		a.want = max(a.want, seq)
		ch := a.changed
		kick := a.published >= seq
		a.mu.Unlock()
		if kick {
			a.kickFlush()
		}
		if deadline == nil {
			t := time.NewTimer(timeout)
			defer t.Stop()
			deadline = t.C
		}
		select {
		case <-ch:
		case <-deadline:
			return
		case <-ctx.Done():
			return
		}
	}
}

// Middleware holds the acknowledgement of a request that appended
// something (its response headers) until the NATS server holds the
// appends, at most ReplicationWait (not at all if it is negative), and
// announces the repositories that PUT /v1/repos/{repo} creates. Reads pass
// through untouched. Without NATS it returns next.
func (n *Node) Middleware(next http.Handler) http.Handler {
	if n.ack == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			next.ServeHTTP(w, r)
			return
		}
		aw := &ackWriter{ResponseWriter: w, n: n, ctx: r.Context(), start: n.lastSeq.Load()}
		if r.Method == http.MethodPut {
			if name, ok := strings.CutPrefix(r.URL.Path, "/v1/repos/"); ok && core.ValidateRepoName(name) == nil {
				aw.created = name
			}
		}
		next.ServeHTTP(aw, r)
	})
}

// ackWriter delays the response's first byte until the request's appends
// reached NATS. The handler has appended everything before it writes the
// status, and OnAppend ran before each append returned, so lastSeq then
// covers them (and perhaps other requests' appends, which costs nothing
// but the wait for them).
type ackWriter struct {
	http.ResponseWriter
	n     *Node
	ctx   context.Context
	start uint64
	held  bool
	// created is the repository a PUT /v1/repos/{repo} creates: its 201
	// is announced to the other nodes.
	created string
}

func (a *ackWriter) hold(status int) {
	if a.held {
		return
	}
	a.held = true
	if status >= 300 || a.n.nc == nil {
		return
	}
	if status == http.StatusCreated && a.created != "" {
		a.n.announce(a.created)
	}
	if a.n.cfg.ReplicationWait < 0 {
		return
	}
	if seq := a.n.lastSeq.Load(); seq != a.start {
		a.n.ack.wait(a.ctx, a.n.nc, seq, a.n.cfg.ReplicationWait)
	}
}

func (a *ackWriter) WriteHeader(status int) {
	a.hold(status)
	a.ResponseWriter.WriteHeader(status)
}

func (a *ackWriter) Write(b []byte) (int, error) {
	a.hold(http.StatusOK)
	return a.ResponseWriter.Write(b)
}

func (a *ackWriter) Flush() {
	a.hold(http.StatusOK)
	if f, ok := a.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (a *ackWriter) Unwrap() http.ResponseWriter { return a.ResponseWriter }
