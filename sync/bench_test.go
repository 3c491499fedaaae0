package sync

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
)

func BenchmarkBuildFilter(b *testing.B) {
	for _, n := range []int{10_000, 1_000_000} {
		ids := randomIDs(rand.New(rand.NewPCG(1, 1)), n)
		walk := func(fn func(core.CommitID) bool) {
			for _, id := range ids {
				fn(id)
			}
		}
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			r := seededRand(1)
			for b.Loop() {
				if _, err := BuildFilter(walk, int64(n), FilterPolicy{}.Rate(16, 0), r); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/id")
		})
	}
}

func BenchmarkFilterTest(b *testing.B) {
	ids := randomIDs(rand.New(rand.NewPCG(1, 1)), 100_000)
	f, _ := BuildFilter(func(fn func(core.CommitID) bool) {
		for _, id := range ids {
			fn(id)
		}
	}, int64(len(ids)), FilterPolicy{}.Rate(16, 0), seededRand(1))
	i := 0
	for b.Loop() {
		f.Test(ids[i%len(ids)])
		i++
	}
}

func BenchmarkFilterUnmarshal(b *testing.B) {
	ids := randomIDs(rand.New(rand.NewPCG(1, 1)), 100_000)
	f, _ := BuildFilter(func(fn func(core.CommitID) bool) {
		for _, id := range ids {
			fn(id)
		}
	}, int64(len(ids)), FilterPolicy{}.Rate(16, 0), seededRand(1))
	raw, _ := f.MarshalJSON()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		var g Filter
		if err := json.Unmarshal(raw, &g); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAnswer_InSync is the cost of the common case on the server.
func BenchmarkAnswer_InSync(b *testing.B) {
	set := newMemSet(randomIDs(rand.New(rand.NewPCG(1, 1)), 1000), nil)
	c := &Client{Rand: seededRand(1)}
	srv := &Server{Rand: seededRand(2)}
	for b.Loop() {
		req := c.Start(set)
		if _, err := srv.Answer(set, req); err != nil {
			b.Fatal(err)
		}
	}
}
