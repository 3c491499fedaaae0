package cluster

// This file has no build tag: the replica's conformance test runs with
// the module's tests, without the processes the cluster test needs.

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

func TestReplica_LocalConformance(t *testing.T) {
	goattest.RunLocalConformance(t, func(testing.TB) gsync.Local { return newReplica() })
}

// replica is a client's local copy of a repository, in memory, in a
// topological order.
type replica struct {
	order []core.CommitID
	byID  map[core.CommitID]*core.Commit
	head  map[string][]core.CommitID // per key: commits without children
}

var _ gsync.Local = (*replica)(nil)

func newReplica() *replica {
	return &replica{byID: map[core.CommitID]*core.Commit{}, head: map[string][]core.CommitID{}}
}

func (r *replica) Digest() gsync.Digest { return gsync.DigestOf(r.order...) }

func (r *replica) Walk(fn func(core.CommitID) bool) {
	for _, id := range r.order {
		if !fn(id) {
			return
		}
	}
}

func (r *replica) Get(id core.CommitID) (*core.Commit, bool) {
	c, ok := r.byID[id]
	return c, ok
}

// Ingest adds commits whose parents it holds, in order.
func (r *replica) Ingest(_ context.Context, cs []*core.Commit) error {
	missing := 0
	for _, c := range cs {
		if _, ok := r.byID[c.ID]; ok {
			continue
		}
		ok := true
		for _, p := range c.Parents {
			if _, have := r.byID[p]; !have {
				ok = false
			}
		}
		if !ok {
			missing++
			continue
		}
		r.byID[c.ID] = c
		r.order = append(r.order, c.ID)
		heads := slices.DeleteFunc(r.head[c.Key], func(h core.CommitID) bool { return slices.Contains(c.Parents, h) })
		r.head[c.Key] = append(heads, c.ID)
	}
	if missing > 0 {
		return fmt.Errorf("%d commits: %w", missing, core.ErrMissingParents)
	}
	return nil
}
