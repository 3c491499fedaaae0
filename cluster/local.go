package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/storage"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

// Server is what the cluster needs of the node it runs in (*api.Server).
type Server interface {
	// IngestReplicated appends commits another node replicated, verified
	// as a replica, creating the repository if needed.
	IngestReplicated(ctx context.Context, repo string, commits []*core.Commit) ([]storage.Result, error)
	// Store is the node's storage.
	Store() *storage.Store
}

// local is the driver's side of node-to-node sync: one repository of this
// node, ingesting through the server's replica verification.
type local struct {
	n    *Node
	repo string
	r    *storage.Repo
}

var _ gsync.Local = (*local)(nil)

func (l *local) Digest() gsync.Digest {
	count, xor := l.r.State()
	return gsync.Digest{Count: int64(count), XOR: gsync.Sum(xor)}
}

func (l *local) Walk(fn func(core.CommitID) bool) {
	l.r.EachID(0, func(_ int64, id core.CommitID) bool { return fn(id) })
}

func (l *local) Get(id core.CommitID) (*core.Commit, bool) { return l.r.Commit(id) }

// WalkTS implements gsync.TSWalker from the index, so that sync-v2's time
// partitions read no commit.
func (l *local) WalkTS(fn func(core.CommitID, int64) bool) {
	l.r.EachIDTS(0, func(_ int64, id core.CommitID, ts int64) bool { return fn(id, ts) })
}

// Ingest implements gsync.Local: commits are appended as replicas and are
// not published again (their origin published them). Commits rejected for
// missing parents are left for a later round; any other rejection (a
// session this node does not know yet, a bad commit) stops this heal with
// that error, and the next heal tries again after sys.sessions.
func (l *local) Ingest(ctx context.Context, commits []*core.Commit) error {
	res, err := l.n.ingest(ctx, l.repo, commits)
	if err != nil {
		return err
	}
	var missing, rejected int
	var first error
	for _, x := range res {
		if x.Status != storage.Rejected {
			continue
		}
		if errors.Is(x.Err, core.ErrMissingParents) {
			missing++
			continue
		}
		rejected++
		if first == nil {
			first = fmt.Errorf("commit %s: %w", x.ID, x.Err)
		}
	}
	switch {
	case rejected > 0:
		return fmt.Errorf("%d of %d commits rejected, first %w", rejected, len(commits), first)
	case missing > 0:
		return fmt.Errorf("%d of %d commits: %w", missing, len(commits), core.ErrMissingParents)
	}
	return nil
}
