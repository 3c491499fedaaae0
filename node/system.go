package node

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	stdsync "sync"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/storage"
)

// The system repositories replicate like any other; this node keeps their
// effect in memory (the session directory, the schema registry). A record
// reaches memory by one of two paths: writeSystem applies what this node
// writes before returning, and onAppend/sysLoop applies what arrives from
// clients and other nodes.

// schemaKey is the item key of a schema in sys.schemas ("task:2"; keys
// cannot hold a slash).
func schemaKey(ns string, version int) string { return ns + ":" + strconv.Itoa(version) }

// loadSystemRepos creates sys.sessions, sys.schemas and sys.repos if
// needed and loads them into the session directory (live sessions only),
// the schema registry and the quota counts.
func (n *Node) loadSystemRepos() error {
	for _, name := range []string{auth.SessionsRepo, auth.SchemasRepo, ReposRepo} {
		r, release, err := n.store.Ensure(name)
		if err != nil {
			return fmt.Errorf("open %s: %w", name, err)
		}
		after := ""
		for {
			vals, err := r.Items(after, 1000, true)
			if err != nil {
				release()
				return fmt.Errorf("load %s: %w", name, err)
			}
			for _, v := range vals {
				// Sessions already expired or revoked stay on disk
				// (sessionDir reads them when asked for).
				if name == auth.SessionsRepo && !n.liveAtStart(v.Key, v.Data, v.Deleted) {
					continue
				}
				n.applySystemValue(name, v.Key, v.Data, v.Deleted)
			}
			if len(vals) < 1000 {
				break
			}
			after = vals[len(vals)-1].Key
		}
		release()
	}
	return nil
}

func (n *Node) applySystemValue(repo, key string, data map[string]any, deleted bool) {
	switch repo {
	case auth.SessionsRepo:
		if err := n.putSessionData(key, data); err != nil {
			n.log.Warn("session record not loaded", "session", key, "err", err)
		}
		n.noteSessionRecord(key)
	case ReposRepo:
		unlock := n.lives.lock(key)
		n.applyRepoValue(key, data, deleted)
		unlock()
	case auth.SchemasRepo:
		if err := applySchemaRecord(n.reg, data, deleted); err != nil {
			n.log.Warn("schema not loaded", "schema", key, "err", err)
		}
	}
}

// putSessionData puts the sys.sessions item key in effect. Its revocation
// is trusted (only nodes write sys.sessions); one recorded before
// revocations were signed is signed here, so that the record this node
// serves proves it to any peer.
func (n *Node) putSessionData(key string, data map[string]any) error {
	s, err := auth.SessionFromData(key, data)
	if err != nil {
		return err
	}
	if !s.Revoked.IsZero() && !s.RevocationValid(n.sessions.Roots()...) {
		if err := s.SignRevocation(n.root); err != nil {
			return err
		}
	}
	return n.sessions.Put(s)
}

// writeSystem writes data to a system repository as this node (signed by
// its root key), replacing the key's current value, and puts it in effect
// here before returning.
func (n *Node) writeSystem(ctx context.Context, repo, key, schema string, data map[string]any) error {
	return n.putSystem(ctx, repo, key, schema, data, true)
}

// putSystem is writeSystem; wait says whether the write waits on the
// Barrier (bookkeeping records that no caller's acknowledgement depends on
// do not).
func (n *Node) putSystem(ctx context.Context, repo, key, schema string, data map[string]any, wait bool) error {
	r, release, err := n.store.Ensure(repo)
	if err != nil {
		return err
	}
	defer release()
	c := &core.Commit{Repo: repo, Key: key, Parents: r.Heads(key), Author: n.rootID, TS: n.now().UnixMilli(), Schema: schema, Data: data}
	if err := c.Sign(n.root); err != nil {
		return err
	}
	res, err := n.ingestInto(ctx, r, []*core.Commit{c}, nil, OriginGateway)
	if err != nil {
		return err
	}
	if res[0].Status == storage.Rejected {
		return res[0].Err
	}
	if wait {
		n.barrier(ctx, repo, res, false)
	}
	return n.applyStored(r, repo, key)
}

// applyStored puts the stored value of a system repository's item in
// effect (r is the repository).
func (n *Node) applyStored(r *storage.Repo, repo, key string) error {
	if repo == ReposRepo {
		n.applyRepoRecord(r, key)
		return nil
	}
	v, err := r.Value(key)
	if err != nil {
		return err
	}
	n.applySystemValue(repo, key, v.Data, v.Deleted)
	return nil
}

// onIndexed runs on repo's writer goroutine as soon as its records are
// durable and indexed, before their writers are answered, in repo's
// sequence order but not waiting for other repositories' earlier records
// (issue 17: a big write elsewhere does not delay them): a stream of repo
// alone that begins from now on replays them. It never blocks.
func (n *Node) onIndexed(repo string, recs []storage.Record) {
	n.hub.markRepo(repo, lastSeq(recs))
}

// onDurable runs on repo's writer goroutine after onIndexed, once the
// records' writers are answered: it fans them out to the streams of repo
// alone that began before, so that no writer's answer waits for thousands
// of streams. It never blocks.
func (n *Node) onDurable(repo string, recs []storage.Record) {
	node := n.store.NodeID().String()
	n.hub.publishRepo(repo, func() []*Event { return n.liveEvents(node, repo, recs) })
}

// onAppend runs on storage's writer goroutines, in node sequence order,
// after records are durable, before their writers are answered: a stream
// of several repositories that begins from now on replays them; it queues
// changes to the system repositories, and tells the observer. It never
// blocks.
func (n *Node) onAppend(repo string, recs []storage.Record) {
	n.ingested.Add(uint64(len(recs)))
	n.hub.advance(repo, lastSeq(recs))
	if strings.HasPrefix(repo, "sys.") {
		n.sysq.push(repo, recs)
		if repo == auth.SessionsRepo {
			n.applySessionsNow(recs)
		}
	}
	if o := n.cfg.Observer; o != nil {
		o.Appended(repo, recs)
	}
}

// lastSeq is the highest sequence number of recs.
func lastSeq(recs []storage.Record) uint64 {
	var last uint64
	for _, rec := range recs {
		last = max(last, rec.Seq)
	}
	return last
}

// afterAppend runs in node sequence order after onAppend, once the
// records' writers are answered: it fans them out to the streams of
// several repositories that began before (onDurable did those of one). It
// never blocks.
func (n *Node) afterAppend(repo string, recs []storage.Record) {
	node := n.store.NodeID().String()
	n.hub.publish(repo, func() []*Event { return n.liveEvents(node, repo, recs) })
}

// applySessionsNow loads session records that arrive whole (full data, as
// nodes write them) at once, so a commit signed by a new session can
// follow it without waiting for sysLoop.
func (n *Node) applySessionsNow(recs []storage.Record) {
	for _, rec := range recs {
		c, err := rec.Commit()
		if err != nil || c.Data == nil || c.IsMerge() {
			continue
		}
		if n.putSessionData(c.Key, c.Data) == nil {
			n.noteSessionRecord(c.Key)
		}
	}
}

// sysQueue carries appended system records from the writer goroutines to
// sysLoop, which may block on storage reads. It is unbounded: system
// writes are rare and must not be dropped.
type sysQueue struct {
	mu      stdsync.Mutex
	pending []sysUpdate
	signal  chan struct{}
}

type sysUpdate struct {
	repo string
	keys []string
}

func newSysQueue() *sysQueue { return &sysQueue{signal: make(chan struct{}, 1)} }

func (q *sysQueue) push(repo string, recs []storage.Record) {
	u := sysUpdate{repo: repo}
	for _, r := range recs {
		u.keys = append(u.keys, r.Key)
	}
	q.mu.Lock()
	q.pending = append(q.pending, u)
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

func (q *sysQueue) take() []sysUpdate {
	q.mu.Lock()
	defer q.mu.Unlock()
	p := q.pending
	q.pending = nil
	return p
}

// sysLoop applies system repository changes until ctx is done.
func (n *Node) sysLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.sysq.signal:
		}
		for _, u := range n.sysq.take() {
			r, release, err := n.store.Repo(u.repo)
			if err != nil {
				n.log.Warn("system repository", "repo", u.repo, "err", err)
				continue
			}
			for _, key := range u.keys {
				_ = n.applyStored(r, u.repo, key) // a key with no value yet: nothing to apply
			}
			release()
		}
	}
}
