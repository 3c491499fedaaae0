package node

import (
	"context"
	"errors"
	"fmt"
	stdsync "sync"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/merge"
	"github.com/goat-gateway/goat-gateway/storage"
)

// merger makes the node's merge commits (storage.Merger). storage appends
// one merge commit per key; more heads than one merge commit takes need a
// tree of them (merge.MergeAll), which collapse appends after the append
// that made them.
type merger struct{ reg *core.Registry }

// A merge walks an item's history through storage's index
// (merge.Ancestors), reading only the heads and the base from the log.
var _ merge.Ancestors = (*storage.Repo)(nil)

func (m merger) Merge(v storage.View, key string, heads []core.CommitID) (*core.Commit, error) {
	if len(heads) > merge.GroupSize {
		return nil, nil
	}
	return merge.Merge(v, m.reg, v.Name(), key, heads)
}

// collapse merges key's heads when they are more than one merge commit
// takes (the merger leaves those): merge.MergeAll's merges, appended as one
// group, so that the item has one head again and can be written (a commit
// has at most core.MaxParents parents).
func (n *Node) collapse(ctx context.Context, r *storage.Repo, key string) error {
	heads := r.Heads(key)
	if len(heads) <= merge.GroupSize {
		return nil
	}
	ms, err := merge.MergeAll(r, n.reg, r.Name(), key, heads)
	if err != nil {
		return fmt.Errorf("merge %d heads of %q: %w", len(heads), key, err)
	}
	res, err := r.AppendFrom(ctx, ms, nil, uint8(OriginGateway))
	if err != nil {
		return err
	}
	for _, x := range res {
		if x.Status == storage.Rejected {
			return fmt.Errorf("merge %d heads of %q: %w", len(heads), key, x.Err)
		}
	}
	return nil
}

// collapseAppended collapses the keys that appended commits touched. A
// merge is derived data: its failure is logged, not the appender's error.
func (n *Node) collapseAppended(ctx context.Context, r *storage.Repo, commits []*core.Commit, res []Result) {
	seen := map[string]bool{}
	for i, x := range res {
		if x.Status != storage.Appended || i >= len(commits) || seen[commits[i].Key] {
			continue
		}
		key := commits[i].Key
		seen[key] = true
		n.collapseCoalesced(ctx, r, key)
	}
}

// collapses tracks the collapses under way, by repository and item, so
// that concurrent pushes to one item with many heads merge it once, not
// once each (issue 17: n pushes of roots to one item re-merged all of its
// heads n times over, on every core).
type collapses struct {
	mu      stdsync.Mutex
	running map[[2]string]*collapseRun
}

// collapseRun is one item's collapse under way; again asks it for one more
// round, because commits were appended after its round took the heads.
type collapseRun struct{ again bool }

// collapseCoalesced collapses key unless a collapse of it is under way, in
// which case that one goes round once more (seeing the heads this append
// left) and the caller returns at once: its commits are durable already,
// and the merges are a function of the heads, whoever computes them. The
// round that sees no newer append is the last. If the running caller's ctx
// ends first, the item may keep more than GroupSize heads until its next
// append or write (Put collapses before it writes).
func (n *Node) collapseCoalesced(ctx context.Context, r *storage.Repo, key string) {
	if len(r.Heads(key)) <= merge.GroupSize {
		return
	}
	id := [2]string{r.Name(), key}
	m := &n.merging
	m.mu.Lock()
	if run := m.running[id]; run != nil {
		run.again = true
		m.mu.Unlock()
		return
	}
	if m.running == nil {
		m.running = map[[2]string]*collapseRun{}
	}
	run := &collapseRun{}
	m.running[id] = run
	m.mu.Unlock()
	for {
		if err := n.collapse(ctx, r, key); err != nil {
			n.log.Warn("merge of many heads failed", "repo", r.Name(), "item", key, "err", err)
		}
		m.mu.Lock()
		if !run.again || ctx.Err() != nil {
			delete(m.running, id)
			m.mu.Unlock()
			return
		}
		run.again = false
		m.mu.Unlock()
	}
}

// verifyFromClient checks a commit pushed by a client: merge commits are
// recomputed; any other commit must verify against its session, whose
// owner may write the repository, and its value must fit its schema.
// checked holds the signatures of the batch already checked in parallel
// (auth.CheckSigs).
func (n *Node) verifyFromClient(v storage.View, c *core.Commit, data map[string]any, checked *auth.CheckedSigs) error {
	if c.IsMerge() {
		return merge.Verify(v, n.reg, c)
	}
	if err := auth.VerifyCommitChecked(c, n.sessions, n.now(), n.cfg.Rules.CanWrite, checked); err != nil {
		return err
	}
	return n.validate(c.Schema, data)
}

// verifyReplicated checks a commit another node replicates: it must verify
// against a session valid at its ts, but is not authorized against the
// rules again.
func (n *Node) verifyReplicated(v storage.View, c *core.Commit, data map[string]any, checked *auth.CheckedSigs) error {
	if c.IsMerge() {
		return merge.Verify(v, n.reg, c)
	}
	if err := auth.VerifyReplicatedCommitChecked(c, n.sessions, checked); err != nil {
		return err
	}
	return n.validate(c.Schema, data)
}

func (n *Node) validate(ref string, data map[string]any) error {
	sc, err := n.reg.Get(ref)
	if err != nil {
		return err
	}
	return sc.Validate(data)
}

// Ingest appends commits to repo, verified as their origin requires, and
// returns a Result per commit in the order given. A client's commits need
// the repository to exist (callers authorize first, see Authorize); a
// replica's create it. The error is for the call as a whole (the node is
// closing, an I/O error, ctx ended); after one, some commits may have been
// appended, and ingesting them again is harmless.
func (n *Node) Ingest(ctx context.Context, repo string, commits []*core.Commit, origin Origin) ([]Result, error) {
	if err := core.ValidateRepoName(repo); err != nil {
		return nil, err
	}
	if err := checkOrigin(origin); err != nil {
		return nil, err
	}
	var (
		r       *storage.Repo
		release func()
		created bool
		err     error
	)
	if origin == OriginReplica {
		r, release, created, err = n.ensure(repo, origin)
	} else {
		r, release, err = n.store.Repo(repo)
	}
	if err != nil {
		return nil, err
	}
	defer release()
	res, err := n.ingestInto(ctx, r, commits, nil, origin)
	if err != nil {
		return nil, err
	}
	if origin != OriginReplica {
		n.barrier(ctx, repo, res, created)
	}
	return res, nil
}

// checkOrigin refuses an origin that is none of the three, before it can
// open or create anything.
func checkOrigin(origin Origin) error {
	switch origin {
	case OriginGateway, OriginClient, OriginReplica:
		return nil
	}
	return fmt.Errorf("%w: unknown origin %d", core.ErrInvalid, origin)
}

// ingestInto appends to an open repository. Barriers are the caller's.
// encoded is nil, or holds for each commit nil or its canonical JSON with
// its id checked over it (PushEncoded).
func (n *Node) ingestInto(ctx context.Context, r *storage.Repo, commits []*core.Commit, encoded [][]byte, origin Origin) ([]Result, error) {
	var verify storage.VerifyFunc
	switch origin {
	case OriginClient, OriginReplica:
		// Authors this node does not know are asked of the
		// SessionSource (the cluster's peers) first.
		n.resolveAuthors(ctx, commits)
		// The batch's signatures are checked up front, across the cores
		// (most of a pushed commit's CPU); the per-commit check in the
		// storage's prepare then does the rest (session validity, rules,
		// schema, merges) in order. Commits already stored are skipped:
		// storage settles them as duplicates without verifying.
		var idChecked []bool
		if encoded != nil {
			idChecked = make([]bool, len(commits))
			for i, js := range encoded {
				idChecked[i] = js != nil
			}
		}
		checked := auth.CheckSigsIDsChecked(commits, idChecked, n.sessions, func(c *core.Commit) bool { return r.Has(c.ID) })
		if origin == OriginClient {
			verify = func(v storage.View, c *core.Commit, data map[string]any) error {
				return n.verifyFromClient(v, c, data, checked)
			}
		} else {
			verify = func(v storage.View, c *core.Commit, data map[string]any) error {
				return n.verifyReplicated(v, c, data, checked)
			}
		}
	case OriginGateway:
		// Built from validated values and signed here.
	default:
		return nil, fmt.Errorf("%w: unknown origin %d", core.ErrInvalid, origin)
	}
	var res []Result
	var err error
	if encoded != nil {
		res, err = r.AppendEncoded(ctx, commits, encoded, verify, uint8(origin))
	} else {
		res, err = r.AppendFrom(ctx, commits, verify, uint8(origin))
	}
	if err != nil {
		return nil, err
	}
	n.collapseAppended(ctx, r, commits, res)
	return res, nil
}

// barrier waits for the write's replication, if a Barrier is configured.
func (n *Node) barrier(ctx context.Context, repo string, res []Result, created bool) {
	if n.cfg.Barrier == nil {
		return
	}
	w := Write{Repo: repo, Created: created}
	for _, x := range res {
		if x.Status != storage.Rejected {
			w.Seq = max(w.Seq, x.Seq)
		}
	}
	if w.Seq > 0 || w.Created {
		n.cfg.Barrier.Wait(ctx, w)
	}
}

// ensure opens repo, creating it if absent, and tells the observer of a
// creation.
func (n *Node) ensure(repo string, origin Origin) (*storage.Repo, func(), bool, error) {
	r, release, err := n.store.Repo(repo)
	if err == nil {
		return r, release, false, nil
	}
	if !errors.Is(err, core.ErrNotFound) {
		return nil, nil, false, err
	}
	r, release, err = n.createLog(repo, origin)
	switch {
	case err == nil:
		if o := n.cfg.Observer; o != nil {
			o.Created(repo, origin)
		}
		return r, release, true, nil
	case errors.Is(err, core.ErrConflict): // created meanwhile
		r, release, err = n.store.Repo(repo)
		return r, release, false, err
	}
	return nil, nil, false, err
}

// createLog creates this node's log of repo in the life sys.repos records,
// under the lock of the name's life (deleterepo.go).
func (n *Node) createLog(repo string, origin Origin) (*storage.Repo, func(), error) {
	unlock := n.lives.lock(repo)
	defer unlock()
	// A deleted repository is created again by a client only (a new
	// life, deleterepo.go); a peer that offers it has not applied the
	// deletion yet.
	if origin != OriginClient {
		if err := n.checkNotDeleted(repo); err != nil {
			return nil, nil, err
		}
	}
	if gen := n.generationFor(repo); gen > 0 {
		if err := n.store.SetGeneration(repo, gen); err != nil {
			return nil, nil, err
		}
	}
	return n.store.Create(repo)
}

// Ensure creates repo if it does not exist (for replicas: a repository
// another node announced), and reports whether it did.
func (n *Node) Ensure(ctx context.Context, repo string, origin Origin) (bool, error) {
	if err := checkOrigin(origin); err != nil {
		return false, err
	}
	if err := core.ValidateRepoName(repo); err != nil {
		return false, err
	}
	_, release, created, err := n.ensure(repo, origin)
	if err != nil {
		return false, err
	}
	release()
	if created && origin != OriginReplica {
		n.barrier(ctx, repo, nil, true)
	}
	return created, nil
}
