package node_test

import (
	"context"
	"fmt"
	stdsync "sync"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/merge"
	"github.com/goat-gateway/goat-gateway/node"
)

// TestNode_IngestManyHeads: concurrent pushes of root commits to one item,
// each leaving it more heads than one merge commit takes, are merged
// (once, by whichever push got there first, going round again for the
// later ones): when every push has returned, the item has one head again.
func TestNode_IngestManyHeads(t *testing.T) {
	e := openDev(t)
	alice := user("alice")
	a := e.newAuthor(t, alice)
	const repo, key, pushes = "user.alice.heads", "hot", 4
	per := merge.GroupSize + 44
	e.createRepo(t, alice, repo)
	batches := make([][]*core.Commit, pushes)
	for p := range batches {
		for j := range per {
			batches[p] = append(batches[p], a.commit(t, t0.UnixMilli()+int64(p*per+j), repo, key, "", map[string]any{"p": float64(p), "j": float64(j)}))
		}
	}
	var wg stdsync.WaitGroup
	errs := make([]error, pushes)
	for p, cs := range batches {
		wg.Go(func() {
			res, err := e.n.Ingest(context.Background(), repo, cs, node.OriginClient)
			for i, x := range res {
				if err == nil && x.Status != node.Appended {
					err = fmt.Errorf("commit %d: %v (%v)", i, x.Status, x.Err)
				}
			}
			errs[p] = err
		})
	}
	wg.Wait()
	for p, err := range errs {
		if err != nil {
			t.Fatalf("push %d: %v", p, err)
		}
	}
	v := e.peekValue(t, repo, key)
	if got, want := v.Heads, 1; got != want {
		t.Fatalf("heads after %d concurrent pushes of %d roots=%d, want %d", pushes, per, got, want)
	}
	if got, want := v.Data["p"], float64(pushes-1); got != want {
		t.Fatalf("merged p=%v, want %v (the last root in head order)", got, want)
	}
}
