package goat_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
	goat "github.com/goat-gateway/goat-gateway/sdk/go"
)

// BenchmarkRepo_Set is the cost of a local write as the caller sees it
// (the commit follows in the background).
func BenchmarkRepo_Set(b *testing.B) {
	c := offlineClient(b, func(cfg *goat.Config) { cfg.CoalesceWindow = time.Hour })
	r := openRepo(b, c, "bench")
	data := map[string]any{"title": "some title", "n": 1}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := r.Set(fmt.Sprintf("k%d", i%1000), core.AnySchema, data); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkLiveQuery_Update is the time from an edit to the live query's
// event, with the result holding n items: it grows with log n and the
// move within the result, not with a rescan of the repository.
func BenchmarkLiveQuery_Update(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			c := offlineClient(b, func(cfg *goat.Config) { cfg.CoalesceWindow = time.Hour })
			r := openRepo(b, c, "bench")
			for i := range n {
				if err := r.Set(fmt.Sprintf("k%05d", i), core.AnySchema, map[string]any{"rank": float64(i)}); err != nil {
					b.Fatal(err)
				}
			}
			if err := r.Flush(b.Context()); err != nil {
				b.Fatal(err)
			}
			got := make(chan struct{}, 1)
			q, err := r.Query(goat.Query{Less: rankLess, OnChange: func(ev goat.QueryEvent) {
				if len(ev.Changes) > 0 {
					got <- struct{}{}
				}
			}})
			if err != nil {
				b.Fatal(err)
			}
			defer q.Close()
			i := 0
			for b.Loop() {
				key := fmt.Sprintf("k%05d", (i*7919)%n)
				if err := r.Set(key, core.AnySchema, map[string]any{"rank": float64(-i - 1)}); err != nil {
					b.Fatal(err)
				}
				<-got
				i++
			}
		})
	}
}
