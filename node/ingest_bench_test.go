package node_test

import (
	"context"
	"fmt"
	stdsync "sync"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/node"
)

// BenchmarkNode_IngestManyHeads pushes 1,000 concurrent root commits of one
// item in pushes of 50 and 100, one after another and all at once (issue
// 17's many-head attack): what the pushes cost the node once the item has
// many heads, mostly merging.
func BenchmarkNode_IngestManyHeads(b *testing.B) {
	for _, bc := range []struct {
		per        int
		concurrent bool
	}{{50, false}, {100, false}, {50, true}} {
		name := fmt.Sprintf("per%d", bc.per)
		if bc.concurrent {
			name += "/concurrent"
		}
		per := bc.per
		b.Run(name, func(b *testing.B) {
			e := openDev(b)
			alice := user("alice")
			a := e.newAuthor(b, alice)
			const repo, roots = "user.alice.heads", 1000
			e.createRepo(b, alice, repo)
			round := 0
			for b.Loop() {
				b.StopTimer()
				key := fmt.Sprintf("hot-%d", round)
				round++
				pushes := make([][]*core.Commit, 0, roots/per)
				for i := 0; i < roots; i += per {
					var cs []*core.Commit
					for j := i; j < i+per; j++ {
						cs = append(cs, a.commit(b, t0.UnixMilli()+int64(j), repo, key, "", map[string]any{"j": float64(j)}))
					}
					pushes = append(pushes, cs)
				}
				b.StartTimer()
				if !bc.concurrent {
					for _, cs := range pushes {
						e.mustAppend(b, repo, node.OriginClient, cs...)
					}
					continue
				}
				var wg stdsync.WaitGroup
				for _, cs := range pushes {
					wg.Go(func() {
						if _, err := e.n.Ingest(context.Background(), repo, cs, node.OriginClient); err != nil {
							b.Errorf("Ingest: %v", err)
						}
					})
				}
				wg.Wait()
			}
		})
	}
}
