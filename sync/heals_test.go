package sync

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	stdsync "sync"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
)

// poolSize is the commits of each pool of TestHeal_Randomized.
const poolSize = 100

var healsN = flag.Int("heals.n", 0, "randomized heals of TestHeal_Randomized (default 10000, 1000 under -race)")

// TestHeal_Randomized runs many simulated version 2 heals over random
// shapes (set sizes, divergence on either or both sides, recent, old or
// future ts, loose filters that force false positives, small limits that
// force cuts) and checks each against the oracle: both sides end with
// exactly the union, no round sends a commit its receiver has, and every
// heal whose divergence fits one response and one push takes at most 3
// requests.
func TestHeal_Randomized(t *testing.T) {
	n := *healsN
	if n == 0 {
		n = 10000
		if raceEnabled {
			n = 1000
		}
	}
	r := rand.New(rand.NewPCG(20, 26))
	ghosts := randomIDs(r, 2000)
	// Pools per side and kind of ts; heals take prefixes, so a commit's
	// chain parents are always present with it.
	kinds := []struct {
		name string
		ts   func(i int) int64
	}{
		{"recent", func(i int) int64 { return ghostTS(len(ghosts)) + int64(i)*7 }},
		{"old", func(i int) int64 { return ghostTS(0) + int64(i*6151%len(ghosts))*1000 + 1 }},
		{"future", func(i int) int64 { return ghostTS(len(ghosts)) + 1e9 + int64(i) }},
		{"same-ts", func(int) int64 { return ghostTS(len(ghosts) - 1) }},
	}

	pools := map[string][][]*core.Commit{}
	for _, side := range []string{"c", "s"} {
		for _, k := range kinds {
			pools[side] = append(pools[side], makeCommitsTS(t, side+k.name, poolSize, 1+poolSize/20, k.ts))
		}
	}
	// Two halves in parallel (the machine has two cores); each has its own
	// random stream, so the run is deterministic.
	var mu stdsync.Mutex
	hist := map[int]int{}
	t.Run("Halves", func(t *testing.T) {
		for half := range 2 {
			t.Run(fmt.Sprint(half), func(t *testing.T) {
				t.Parallel()
				h := healRandom(t, uint64(half), half*n/2, (half+1)*n/2, ghosts, pools, len(kinds))
				mu.Lock()
				defer mu.Unlock()
				for k, v := range h {
					hist[k] += v
				}
			})
		}
	})
	t.Logf("requests per heal (%d heals that fit the limits): %s", sum(hist), describe(hist))
}

// healRandom runs heals first..last-1 of TestHeal_Randomized and returns
// the histogram of requests of those that fit the limits.
func healRandom(t *testing.T, stream uint64, first, last int, ghosts []core.CommitID, pools map[string][][]*core.Commit, kinds int) map[int]int {
	t.Helper()
	r := rand.New(rand.NewPCG(27, stream))
	hist := map[int]int{}
	size := func() int {
		switch r.IntN(4) {
		case 0:
			return 0
		case 1:
			return r.IntN(4)
		case 2:
			return r.IntN(20)
		default:
			return r.IntN(poolSize)
		}
	}
	for i := first; i < last; i++ {
		shared := []int{0, 1, 50, 500, 2000}[r.IntN(5)]
		shared = min(shared, len(ghosts))
		cOwn := pools["c"][r.IntN(kinds)][:size()]
		sOwn := pools["s"][r.IntN(kinds)][:size()]
		policy := FilterPolicy{}
		if r.IntN(4) == 0 {
			policy.Misses = 1e6 // p = 0.5: false positives in every filter
		}
		limit := 0
		if r.IntN(8) == 0 {
			limit = 5 + r.IntN(30)
		}
		client, server := newMemSet(ghosts[:shared], cOwn), newMemSet(ghosts[:shared], sOwn)
		mt := &memTransport{tb: t, srv: &Server{Rand: seededRand(uint64(2 * i)), StreamLimit: limit, Policy: policy}, server: server, client: client}
		d := &Driver{Transport: mt, Rand: seededRand(uint64(2*i + 1)), Limit: limit, PushLimit: limit, Policy: policy, MaxRounds: 1000}
		st, err := d.Heal(context.Background(), client, "sim.repo")
		name := fmt.Sprintf("heal %d: shared=%d client=%d server=%d misses=%v limit=%d", i, shared, len(cOwn), len(sOwn), policy.Misses, limit)
		if err != nil {
			t.Fatalf("%s: %v%s", name, err, traceString(mt.trace[:min(len(mt.trace), 8)]))
		}
		checkConverged(t, client, server, shared, unionOf(cOwn, sOwn))
		fits := limit == 0 || (len(cOwn) <= limit && len(sOwn) <= limit)
		if fits && st.Rounds > 3 {
			t.Fatalf("%s: %d requests, want at most 3:%s", name, st.Rounds, traceString(mt.trace))
		}
		if len(cOwn)+len(sOwn) == 0 && st.Rounds != 1 {
			t.Fatalf("%s: in sync in %d requests, want 1", name, st.Rounds)
		}
		if fits {
			hist[st.Rounds]++
		}
	}
	return hist
}

func sum(h map[int]int) int {
	n := 0
	for _, v := range h {
		n += v
	}
	return n
}

// traceString describes the rounds of a trace for failure messages.
func traceString(tr []roundTrace) string {
	var b []byte
	for i, rt := range tr {
		q, a := rt.req, rt.resp
		diff := 0
		if q.Parts != nil {
			diff = len(q.Parts.Diff)
		}
		parts := 0
		if a.Parts != nil {
			parts = a.Parts.Parts()
		}
		b = fmt.Appendf(b, "\n  %d: req v=%d count=%d diff=%d filter=%v commits=%d need=%d | resp count=%d inSync=%v parts=%d commits=%d more=%v rest=%d lists=%d",
			i+1, q.V, q.Count, diff, q.Filter != nil, len(q.Commits), len(q.Need), a.Count, a.InSync, parts, len(a.Commits), a.More, len(a.Rest), len(a.Lists))
	}
	return string(b)
}
