package cluster

import (
	"context"
	"encoding/json"
	stdsync "sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/goat-gateway/goat-gateway/node"
)

// pubItem is one append of the node, as Appended saw it: the commits to
// publish (possibly none) and the append's last sequence number.
type pubItem struct {
	repo   string
	recs   []json.RawMessage
	maxSeq uint64
}

var (
	_ node.Observer = (*Cluster)(nil)
	_ node.Barrier  = (*Cluster)(nil)
)

// Appended implements node.Observer: it queues the commits the node
// appended for publication, except a replica's (their origin published
// them). Merge commits are published too: which merges a node makes
// depends on the order in which concurrent commits reached it. It never
// blocks: when the queue is full the batch is dropped and the repository
// is marked for reconciliation, which pushes it to the peers.
func (n *Cluster) Appended(repo string, recs []node.Record) {
	if n.pubq == nil || len(recs) == 0 {
		return
	}
	var out []json.RawMessage
	for _, r := range recs {
		if node.Origin(r.Origin) == node.OriginReplica {
			continue
		}
		out = append(out, r.JSON)
	}
	maxSeq := recs[len(recs)-1].Seq
	select {
	case n.pubq <- pubItem{repo: repo, recs: out, maxSeq: maxSeq}:
	default:
		n.stats.publishDropped.Add(int64(len(out)))
		n.ack.drop(maxSeq)
		n.markDirty(repo)
	}
}

// Created implements node.Observer: a repository created here (not one
// another node announced) is announced to the other nodes, before any of
// its commits can be published.
func (n *Cluster) Created(repo string, origin node.Origin) {
	if n.nc == nil || origin == node.OriginReplica {
		return
	}
	msg := AppendMessage(nil, Message{Node: n.nodeID, Repo: repo})
	if err := n.nc.Publish(Subject(repo), msg); err != nil {
		n.markDirty(repo)
	}
}

// Wait implements node.Barrier: it holds a write's acknowledgement until
// the NATS server holds the write (its own appends, up to w.Seq, and the
// announcement of a repository it created), at most ReplicationWait, not
// at all if that is negative or NATS is not configured. Once the NATS
// server has it, the write reaches the other nodes even if this one dies
// the next instant.
func (n *Cluster) Wait(ctx context.Context, w node.Write) {
	if n.ack == nil || n.cfg.ReplicationWait < 0 {
		return
	}
	if w.Seq > 0 {
		n.ack.wait(ctx, n.nc, w.Seq, n.cfg.ReplicationWait)
	}
	if w.Created && n.nc.IsConnected() {
		_ = n.nc.FlushTimeout(max(n.cfg.ReplicationWait, 100*time.Millisecond))
	}
}

// publishLoop publishes queued appends in order until Close, then
// publishes what is left in the queue.
func (n *Cluster) publishLoop() {
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

func (n *Cluster) publish(it pubItem) {
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
