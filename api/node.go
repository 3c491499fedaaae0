package api

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	stdsync "sync"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/merge"
	"github.com/goat-gateway/goat-gateway/storage"
)

// merger makes the node's merge commits (storage.Merger).
type merger struct{ reg *core.Registry }

func (m merger) Merge(v storage.View, key string, heads []core.CommitID) (*core.Commit, error) {
	return merge.Merge(v, m.reg, v.Name(), key, heads)
}

// verifyFromClient checks a commit pushed by a client (or written by this
// node on a caller's behalf): merge commits are recomputed; any other
// commit must verify against its session, whose owner may write the
// repository, and its value must fit its schema.
func (s *Server) verifyFromClient(v storage.View, c *core.Commit, data map[string]any) error {
	if c.IsMerge() {
		return merge.Verify(v, s.reg, c)
	}
	if err := auth.VerifyCommit(c, s.sessions, s.now(), s.cfg.Rules.CanWrite); err != nil {
		return err
	}
	return s.validate(c.Schema, data)
}

// verifyReplicated checks a commit that another node replicates (over
// NATS, node-to-node sync, or a push by a node principal): it must verify
// against a session valid at its ts, but is not authorized against the
// rules again (its author's rights were checked where it entered), so a
// revoked session's earlier commits keep replicating.
func (s *Server) verifyReplicated(v storage.View, c *core.Commit, data map[string]any) error {
	if c.IsMerge() {
		return merge.Verify(v, s.reg, c)
	}
	if err := auth.VerifyReplicatedCommit(c, s.sessions); err != nil {
		return err
	}
	return s.validate(c.Schema, data)
}

// IngestReplicated appends commits that another node replicated, creating
// the repository if needed. System repositories are ingested in an order
// that lets sessions arrive before the commits they sign: callers send
// sys.sessions first.
func (s *Server) IngestReplicated(ctx context.Context, repo string, commits []*core.Commit) ([]storage.Result, error) {
	r, release, err := s.store.Ensure(repo)
	if err != nil {
		return nil, err
	}
	defer release()
	return r.AppendVerified(ctx, commits, s.verifyReplicated)
}

func (s *Server) validate(ref string, data map[string]any) error {
	sc, err := s.reg.Get(ref)
	if err != nil {
		return err
	}
	return sc.Validate(data)
}

// schemaKey is the item key of a schema in sys.schemas ("task:2"; keys
// cannot hold a slash).
func schemaKey(ns string, version int) string { return ns + ":" + strconv.Itoa(version) }

// loadSystemRepos creates sys.sessions and sys.schemas if needed and loads
// them into the session directory and the schema registry.
func (s *Server) loadSystemRepos() error {
	for _, name := range []string{auth.SessionsRepo, auth.SchemasRepo} {
		r, release, err := s.store.Ensure(name)
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
				s.applySystemValue(name, v.Key, v.Data, v.Deleted)
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

func (s *Server) applySystemValue(repo, key string, data map[string]any, deleted bool) {
	switch repo {
	case auth.SessionsRepo:
		if err := s.sessions.PutData(key, data); err != nil {
			s.log.Warn("session record not loaded", "session", key, "err", err)
		}
	case auth.SchemasRepo:
		if deleted {
			return
		}
		b, err := json.Marshal(data)
		if err == nil {
			var sc *core.Schema
			if sc, err = core.DecodeSchema(b); err == nil {
				err = s.reg.Add(sc)
			}
		}
		if err != nil {
			s.log.Warn("schema not loaded", "schema", key, "err", err)
		}
	}
}

// onAppend runs on storage's writer goroutines, in node sequence order,
// after records are durable: it fans them out to SSE subscribers and
// queues changes to the system repositories. It never blocks.
func (s *Server) onAppend(repo string, recs []storage.Record) {
	s.metrics.commitsIngested.Add(float64(len(recs)))
	node := s.store.NodeID().String()
	for _, rec := range recs {
		s.hub.publish(s.commitEvent(node, repo, rec))
	}
	if strings.HasPrefix(repo, "sys.") {
		s.sysq.push(repo, recs)
		if repo == auth.SessionsRepo {
			s.applySessionsNow(recs)
		}
	}
	if s.cfg.OnAppend != nil {
		s.cfg.OnAppend(repo, recs)
	}
}

// applySessionsNow loads session records that arrive whole (full data, as
// this node and its peers write them) at once, so a commit signed by a new
// session can follow it without waiting for sysLoop.
func (s *Server) applySessionsNow(recs []storage.Record) {
	for _, rec := range recs {
		c, err := rec.Commit()
		if err != nil || c.Data == nil || c.IsMerge() {
			continue
		}
		_ = s.sessions.PutData(c.Key, c.Data)
	}
}

// commitEvent encodes one record as an SSE event: the commit inline, or
// only its id when it is larger than the inline limit.
func (s *Server) commitEvent(node, repo string, rec storage.Record) event {
	var data []byte
	name := "commit"
	if len(rec.JSON) <= s.cfg.InlineLimit {
		data = make([]byte, 0, len(rec.JSON)+len(repo)+24)
		data = append(data, `{"commit":`...)
		data = append(data, rec.JSON...)
		data = append(data, `,"repo":`...)
		data = strconv.AppendQuote(data, repo)
		data = append(data, '}')
	} else {
		name = "commits"
		data = fmt.Appendf(nil, `{"ids":[%q],"repo":%q}`, rec.ID.String(), repo)
	}
	return event{Seq: rec.Seq, Repo: repo, Name: name, Data: data, ID: eventID(node, rec.Seq)}
}

func eventID(node string, seq uint64) string { return node + "." + strconv.FormatUint(seq, 10) }

// parseEventID splits "<node>.<seq>".
func parseEventID(id string) (node string, seq uint64, err error) {
	node, s, ok := strings.Cut(id, ".")
	if !ok || node == "" {
		return "", 0, fmt.Errorf("%w: event id %q is not <node>.<seq>", core.ErrInvalid, id)
	}
	seq, err = strconv.ParseUint(s, 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("%w: event id %q has a bad sequence number", core.ErrInvalid, id)
	}
	return node, seq, nil
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
func (s *Server) sysLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.sysq.signal:
		}
		for _, u := range s.sysq.take() {
			r, release, err := s.store.Repo(u.repo)
			if err != nil {
				s.log.Warn("system repository", "repo", u.repo, "err", err)
				continue
			}
			for _, key := range u.keys {
				if v, err := r.Value(key); err == nil {
					s.applySystemValue(u.repo, key, v.Data, v.Deleted)
				}
			}
			release()
		}
	}
}
