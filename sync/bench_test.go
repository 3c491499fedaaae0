package sync

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
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

// BenchmarkDecodeCommits measures decoding a log page of 1,000 commits
// like goat-bench's clone documents (about 600 bytes each), strictly (ids
// recomputed), as Driver.Clone does: on one core, and on all of them.
func BenchmarkDecodeCommits(b *testing.B) {
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	raw := make([]json.RawMessage, 1000)
	for i := range raw {
		c := &core.Commit{Repo: "clone", Key: fmt.Sprintf("item-%07d", i), Author: "s_aaaaaaaaaaaaaaaaaaaaaaaa", TS: 1_763_800_000_000 + int64(i), Schema: core.AnySchema,
			Data: map[string]any{
				"title": fmt.Sprintf("Task %d: call the plumber about the kitchen sink", i),
				"done":  i%3 == 0, "prio": float64(i % 5),
				"due":   fmt.Sprintf("2026-%02d-%02dT09:30:00.000Z", 1+i%12, 1+i%28),
				"tags":  []any{"home", fmt.Sprintf("room-%d", i%7)},
				"notes": fmt.Sprintf("Ask for a quote first; the last visit (#%d) took two hours and the part was not in stock.", i%1000),
			}}
		if err := c.Sign(priv); err != nil {
			b.Fatal(err)
		}
		raw[i], _ = c.MarshalJSON()
	}
	for _, procs := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run(fmt.Sprintf("procs=%d", procs), func(b *testing.B) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			for b.Loop() {
				if _, _, err := decodeCommits(raw); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(raw))/1000, "us/commit")
		})
	}
}
