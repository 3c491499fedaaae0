package node

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/merge"
	"github.com/goat-gateway/goat-gateway/storage"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

// Authorize checks that repo is a valid name and that p may read it (and
// write it, with write). A repository p may not read is core.ErrNotFound,
// as if it did not exist; one p may read but not write is
// core.ErrForbidden on writes.
func (n *Node) Authorize(p auth.Principal, repo string, write bool) error {
	if err := core.ValidateRepoName(repo); err != nil {
		return err
	}
	return n.cfg.Rules.Authorize(p, repo, write)
}

// CanRead reports whether p may read repo.
func (n *Node) CanRead(p auth.Principal, repo string) bool { return n.cfg.Rules.CanRead(p, repo) }

// Repo is a read-only handle on one open repository. Release it when done.
type Repo struct {
	n       *Node
	r       *storage.Repo
	release func()
	stored  bool // values as stored, without schema defaults (Peek)
}

// Open opens repo for p after Authorize(p, repo, write).
func (n *Node) Open(p auth.Principal, repo string, write bool) (*Repo, error) {
	if err := n.Authorize(p, repo, write); err != nil {
		return nil, err
	}
	r, release, err := n.repoFor(p, repo)
	if err != nil {
		return nil, err
	}
	return &Repo{n: n, r: r, release: release}, nil
}

// Peek opens repo without authorization, for operators' tools and tests:
// its values are as stored, without schema defaults.
func (n *Node) Peek(repo string) (*Repo, error) {
	r, release, err := n.store.Repo(repo)
	if err != nil {
		return nil, err
	}
	return &Repo{n: n, r: r, release: release, stored: true}, nil
}

// Release gives the handle back; the repository may then close when idle.
func (r *Repo) Release() { r.release() }

// RepoInfo describes a repository's state.
type RepoInfo struct {
	Name   string
	Count  int
	Digest [32]byte
	Items  int
	LogID  string
	LogLen int64
	// Cursor is the log cursor at the end of the log.
	Cursor string
}

// Info returns the repository's state as of one instant.
func (r *Repo) Info() RepoInfo {
	count, digest := r.r.State()
	end := r.r.LogLen()
	return RepoInfo{
		Name: r.r.Name(), Count: count, Digest: digest, Items: r.r.ItemCount(),
		LogID: r.r.LogID().String(), LogLen: end,
		Cursor: gsync.EncodeCursor(gsync.LogID(r.r.LogID()), uint64(end)),
	}
}

// LogID returns the identity of the repository's log, as cursors carry it.
func (r *Repo) LogID() gsync.LogID { return gsync.LogID(r.r.LogID()) }

// LogLen returns the number of records in the log.
func (r *Repo) LogLen() int64 { return r.r.LogLen() }

// ReadLog returns up to limit records from offset from on, in log order.
func (r *Repo) ReadLog(from int64, limit int) ([]Record, error) { return r.r.ReadLog(from, limit) }

// WaitLog blocks until the log has more than n records, or ctx is done.
func (r *Repo) WaitLog(ctx context.Context, n int64) error { return r.r.Wait(ctx, n) }

// Record returns the stored record of a commit (core.ErrNotFound if
// absent).
func (r *Repo) Record(id core.CommitID) (Record, error) {
	if !r.r.Has(id) {
		return Record{}, fmt.Errorf("%w: commit %s in %s", core.ErrNotFound, id, r.r.Name())
	}
	return r.r.GetRecord(id)
}

// Value returns an item's current value, as readers see it (schema
// defaults applied).
func (r *Repo) Value(key string) (Value, error) {
	if err := core.ValidateKey(key); err != nil {
		return Value{}, err
	}
	if !r.stored {
		return r.ValueIn(key, merge.View{})
	}
	return r.r.Value(key)
}

func (r *Repo) readable(v Value) Value {
	if r.stored {
		return v
	}
	return r.n.readable(v)
}

// Items returns up to limit items with keys after after, sorted by key, as
// readers see them (upgraded to the newest readable version); schema, if
// not empty, keeps the items of that namespace ("task"), or reads them
// through that branch ("task/1": DESIGN section 2) and keeps them.
func (r *Repo) Items(after string, limit int, withDeleted bool, schema string) (items []Value, more bool, err error) {
	var v merge.View
	ns := schema
	if strings.Contains(schema, "/") {
		if v, err = r.n.Branch(schema); err != nil {
			return nil, false, err
		}
		ns, _, _ = strings.Cut(schema, "/")
	}
	return r.ItemsIn(after, limit, withDeleted, ns, v)
}

// readable applies schema defaults for readers.
func (n *Node) readable(v Value) Value {
	if sc, err := n.reg.Get(v.Schema); err == nil && !v.Deleted {
		v.Data = sc.WithDefaults(v.Data)
	}
	return v
}

// ListRepos returns up to limit repositories p may read, sorted, with
// names after after and the given prefix; more is set when the list was
// cut.
func (n *Node) ListRepos(p auth.Principal, prefix, after string, limit int) (names []string, more bool, err error) {
	all, err := n.store.List()
	if err != nil {
		return nil, false, err
	}
	for _, name := range all {
		if !strings.HasPrefix(name, prefix) || name <= after || !n.cfg.Rules.CanRead(p, name) {
			continue
		}
		if len(names) == limit {
			return names, true, nil
		}
		names = append(names, name)
	}
	return names, false, nil
}

// CreateRepo creates repo for p (idempotent) and returns its state and
// whether it was created.
func (n *Node) CreateRepo(ctx context.Context, p auth.Principal, repo string) (RepoInfo, bool, error) {
	if err := n.Authorize(p, repo, true); err != nil {
		return RepoInfo{}, false, err
	}
	origin := OriginClient
	if p.Node {
		origin = OriginReplica
	}
	var (
		r       *storage.Repo
		release func()
		created bool
		err     error
	)
	if origin == OriginClient {
		r, release, created, err = n.ensureForClient(ctx, p, repo)
	} else {
		r, release, created, err = n.ensure(repo, origin)
	}
	if err != nil {
		return RepoInfo{}, false, err
	}
	defer release()
	if created && origin != OriginReplica {
		n.barrier(ctx, repo, nil, true)
	}
	return (&Repo{n: n, r: r}).Info(), created, nil
}

// OriginOf is the origin of commits p sends: a node principal's are a
// replica's.
func OriginOf(p auth.Principal) Origin {
	if p.Node {
		return OriginReplica
	}
	return OriginClient
}

// MaxCommitsPerRequest bounds the commits of one push or sync round.
const MaxCommitsPerRequest = gsync.MaxCommits

// Push ingests the commits p sends to repo, verified as OriginOf(p)
// requires, and returns a Result per commit in the order given.
func (n *Node) Push(ctx context.Context, p auth.Principal, repo string, commits []*core.Commit) ([]Result, error) {
	return n.PushEncoded(ctx, p, repo, commits, nil)
}

// PushEncoded is Push for commits whose canonical JSON the caller holds
// (a push received in canonical form): encoded[i], when not nil, is
// exactly commits[i].MarshalJSON() and commits[i].ID is the SHA-256 of its
// content, as core.DecodeCanonicalCommitAt returns them. Those commits are
// stored as they are given, and their ids are not recomputed (an encoding
// and a hash less, twice, per commit); the others are treated as Push
// treats them.
func (n *Node) PushEncoded(ctx context.Context, p auth.Principal, repo string, commits []*core.Commit, encoded [][]byte) ([]Result, error) {
	if encoded != nil && len(encoded) != len(commits) {
		return nil, fmt.Errorf("%w: %d commits, %d encodings", core.ErrInvalid, len(commits), len(encoded))
	}
	if err := n.Authorize(p, repo, true); err != nil {
		return nil, err
	}
	r, release, err := n.repoFor(p, repo)
	if err != nil {
		return nil, err
	}
	defer release()
	return n.pushInto(ctx, r, commits, encoded, OriginOf(p))
}

func (n *Node) pushInto(ctx context.Context, r *storage.Repo, commits []*core.Commit, encoded [][]byte, origin Origin) ([]Result, error) {
	if len(commits) > MaxCommitsPerRequest {
		return nil, fmt.Errorf("%w: %d commits in one request, more than %d", core.ErrTooLarge, len(commits), MaxCommitsPerRequest)
	}
	if len(commits) == 0 {
		return nil, nil
	}
	res, err := n.ingestInto(ctx, r, commits, encoded, origin)
	if err != nil {
		return nil, err
	}
	if origin != OriginReplica {
		n.barrier(ctx, r.Name(), res, false)
	}
	return res, nil
}

// SyncRound answers one reconciliation round (DESIGN section 5) for p:
// it ingests commits, the request's commits as the caller decoded them
// (which needs write access when the request carried any; results as Push
// returns them), then answers from a snapshot of the repository.
func (n *Node) SyncRound(ctx context.Context, p auth.Principal, repo string, req *gsync.Request, commits []*core.Commit) (*gsync.Response, []Result, error) {
	if err := n.Authorize(p, repo, len(req.Commits) > 0 || len(commits) > 0); err != nil {
		return nil, nil, err
	}
	// Records first: the commits below may be signed by sessions this
	// node lost or never saw (a client restoring it).
	if err := n.AcceptSessions(ctx, req.Sessions); err != nil {
		return nil, nil, err
	}
	r, release, err := n.repoFor(p, repo)
	if err != nil {
		return nil, nil, err
	}
	defer release()
	// A version 2 round may push up to gsync.MaxStream commits (the
	// decoder checked); they are ingested MaxCommitsPerRequest at a time,
	// in order, so parents land before their children.
	var results []Result
	for i := 0; i < len(commits); i += MaxCommitsPerRequest {
		res, err := n.pushInto(ctx, r, commits[i:min(i+MaxCommitsPerRequest, len(commits))], nil, OriginOf(p))
		if err != nil {
			return nil, nil, err
		}
		results = append(results, res...)
	}
	srv := gsync.Server{Rand: rand.Reader}
	resp, err := srv.Answer(gsync.SetOf(r), req)
	if err != nil {
		return nil, nil, err
	}
	return resp, results, nil
}

// Local opens repo, creating it if absent, as this node's side of a heal
// with a peer (gsync.Driver): a live gsync.Local whose Ingest verifies
// commits as origin requires (OriginReplica for node-to-node sync) and
// reports rejections as gsync.Local's contract says (storage.ResultsError).
func (n *Node) Local(repo string, origin Origin) (*gsync.LogSet, func(), error) {
	if err := core.ValidateRepoName(repo); err != nil {
		return nil, nil, err
	}
	if err := checkOrigin(origin); err != nil {
		return nil, nil, err
	}
	r, release, _, err := n.ensure(repo, origin)
	if err != nil {
		return nil, nil, err
	}
	ingest := func(ctx context.Context, commits []*core.Commit) error {
		res, err := n.ingestInto(ctx, r, commits, nil, origin)
		if err != nil {
			return err
		}
		return storage.ResultsError(res)
	}
	return gsync.LocalOf(r, ingest), release, nil
}
