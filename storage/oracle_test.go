package storage

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
)

var oracleSeeds = flag.Int("oracle.seeds", 6, "seeds of TestRepo_RandomAgainstOracle")

// workload generates random commit graphs over a few items: concurrent
// branches, merges, deltas and tombstones, with parents drawn from every
// commit generated so far (appended or not), so that batches often miss
// parents.
type workload struct {
	rng   *rand.Rand
	repo  string
	keys  []string
	byKey map[string][]*core.Commit
	ts    int64
}

func newWorkload(rng *rand.Rand, repo string, nkeys int) *workload {
	w := &workload{rng: rng, repo: repo, byKey: map[string][]*core.Commit{}, ts: 1000}
	for i := range nkeys {
		w.keys = append(w.keys, fmt.Sprintf("item-%d", i))
	}
	return w
}

func (w *workload) next(tb testing.TB) *core.Commit {
	key := w.keys[w.rng.IntN(len(w.keys))]
	prev := w.byKey[key]
	w.ts += int64(w.rng.IntN(3)) // ties happen
	// The padding makes records straddle 4 KiB pages now and then, which
	// is where crashes that reorder pages do their damage.
	data := map[string]any{"n": float64(w.rng.IntN(100)), "who": fmt.Sprint(w.rng.IntN(5)), "pad": strings.Repeat("p", w.rng.IntN(700))}
	if w.rng.IntN(10) == 0 {
		data["isDeleted"] = true
	}
	var c *core.Commit
	if len(prev) == 0 {
		c = mkCommit(tb, w.repo, key, w.ts, data)
	} else {
		np := 1 + w.rng.IntN(min(3, len(prev)))
		var parents []core.CommitID
		for len(parents) < np {
			// Prefer recent commits, as real edits do.
			p := prev[len(prev)-1-w.rng.IntN(min(len(prev), 4))]
			if !slices.Contains(parents, p.ID) {
				parents = append(parents, p.ID)
			}
		}
		var base *core.Commit
		for _, p := range prev {
			if slices.Contains(parents, p.ID) && p.Data != nil {
				base = p
			}
		}
		if base != nil && w.rng.IntN(3) == 0 {
			c = mkDelta(tb, w.repo, key, w.ts, base.ID, "n", float64(w.rng.IntN(100)), parents...)
		} else {
			c = mkCommit(tb, w.repo, key, w.ts, data, parents...)
		}
	}
	w.byKey[key] = append(w.byKey[key], c)
	return c
}

// model is the oracle: the accepted commits, computed naively.
type model struct {
	commits map[core.CommitID]*core.Commit
}

// apply decides each commit of a batch the slow way: accept, in rounds,
// whatever has all its parents (and delta base) accepted. Of several
// copies of one commit, the first in the batch is the appended one.
func (m *model) apply(batch []*core.Commit) []Status {
	st := make([]Status, len(batch))
	first := map[core.CommitID]int{}
	for i, c := range batch {
		if _, seen := first[c.ID]; seen || m.commits[c.ID] != nil {
			st[i] = Duplicate
			continue
		}
		first[c.ID] = i
	}
	for progress := true; progress; {
		progress = false
		for i, c := range batch {
			if st[i] != 0 {
				continue
			}
			ok := true
			for _, p := range c.Parents {
				ok = ok && m.commits[p] != nil
			}
			if c.Delta != nil {
				ok = ok && m.commits[c.Delta.Base] != nil
			}
			if ok {
				m.commits[c.ID] = c
				st[i] = Appended
				progress = true
			}
		}
	}
	for i, c := range batch {
		switch {
		case st[i] == 0:
			st[i] = Rejected
		case st[i] == Duplicate && first[c.ID] != i && m.commits[c.ID] == nil:
			st[i] = Rejected // a copy of a commit that was itself rejected
		}
	}
	return st
}

func (m *model) heads(key string) []core.CommitID {
	hasChild := map[core.CommitID]bool{}
	for _, c := range m.commits {
		for _, p := range c.Parents {
			hasChild[p] = true
		}
	}
	var hs []core.CommitID
	for id, c := range m.commits {
		if c.Key == key && !hasChild[id] {
			hs = append(hs, id)
		}
	}
	slices.SortFunc(hs, core.CommitID.Compare)
	return hs
}

func (m *model) value(tb testing.TB, key string) (core.CommitID, map[string]any) {
	hs := m.heads(key)
	best := m.commits[hs[0]]
	for _, h := range hs[1:] {
		c := m.commits[h]
		if c.TS > best.TS || (c.TS == best.TS && c.ID.Compare(best.ID) > 0) {
			best = c
		}
	}
	if best.Data != nil {
		return best.ID, best.Data
	}
	d, err := core.ApplyDelta(m.commits[best.Delta.Base].Data, best.Delta)
	if err != nil {
		tb.Fatal(err)
	}
	return best.ID, d
}

func TestRepo_RandomAgainstOracle(t *testing.T) {
	for seed := range *oracleSeeds {
		t.Run(fmt.Sprintf("Seed%d", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(seed), 42))
			fsys := NewMemFS()
			s := openStore(t, fsys, nil)
			r := repo(t, s, "r")
			w := newWorkload(rng, "r", 1+rng.IntN(6))
			m := &model{commits: map[core.CommitID]*core.Commit{}}
			var generated []*core.Commit
			for round := range 60 {
				if round%20 == 19 {
					// Close and reopen: close markers end up between records.
					s.Close()
					var err error
					if s, r, err = reopen(t, fsys); err != nil {
						t.Fatalf("reopen: %v", err)
					}
					compareWithModel(t, r, m, w.keys)
				}
				// A batch: new commits and resends of old ones, shuffled.
				var batch []*core.Commit
				for range 1 + rng.IntN(8) {
					if len(generated) > 0 && rng.IntN(4) == 0 {
						batch = append(batch, generated[rng.IntN(len(generated))])
						continue
					}
					c := w.next(t)
					generated = append(generated, c)
					batch = append(batch, c)
				}
				rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
				want := m.apply(batch)
				res, err := r.Append(context.Background(), batch)
				if err != nil {
					t.Fatalf("Append: %v", err)
				}
				for i := range batch {
					if res[i].Status != want[i] {
						t.Fatalf("commit %s: %v (%v), oracle says %v", batch[i].ID, res[i].Status, res[i].Err, want[i])
					}
					if want[i] == Rejected && !errors.Is(res[i].Err, core.ErrMissingParents) {
						t.Fatalf("commit %s rejected with %v, want ErrMissingParents", batch[i].ID, res[i].Err)
					}
				}
				compareWithModel(t, r, m, w.keys)
			}
			before := snapshot(t, r)
			s.Close()
			_, r2, err := reopen(t, fsys)
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			compareWithModel(t, r2, m, w.keys)
			if after := snapshot(t, r2); !slices.Equal(after, before) {
				t.Fatalf("log differs after reopen")
			}
		})
	}
}

// snapshot lists a log as (offset, seq, id) strings.
func snapshot(tb testing.TB, r *Repo) []string {
	tb.Helper()
	recs, err := r.ReadLog(0, r.Count())
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, rec := range recs {
		out = append(out, fmt.Sprintf("%d/%d/%s", rec.Offset, rec.Seq, rec.ID))
	}
	return out
}

func compareWithModel(tb testing.TB, r *Repo, m *model, keys []string) {
	tb.Helper()
	if got, want := r.Count(), len(m.commits); got != want {
		tb.Fatalf("Count=%d, want %d", got, want)
	}
	var dig [32]byte
	for id := range m.commits {
		for i := range dig {
			dig[i] ^= id[i]
		}
		if !r.Has(id) {
			tb.Fatalf("commit %s missing", id)
		}
	}
	if r.Digest() != dig {
		tb.Fatalf("Digest differs from the XOR of the ids")
	}
	checkTopological(tb, r)
	recs, _ := r.ReadLog(0, r.Count())
	for id, c := range m.commits {
		var want []core.CommitID
		for _, d := range m.commits {
			if slices.Contains(d.Parents, id) {
				want = append(want, d.ID)
			}
		}
		slices.SortFunc(want, core.CommitID.Compare)
		got, ok := r.Children(id)
		if !ok || !slices.Equal(got, want) {
			tb.Fatalf("Children(%s)=%v, want %v", id, got, want)
		}
		meta, ok := r.Meta(id)
		if !ok || meta.Key != c.Key || meta.TS != c.TS || !slices.Equal(meta.Parents, c.Parents) || meta.Delta != (c.Delta != nil) {
			tb.Fatalf("Meta(%s)=%+v", id, meta)
		}
	}
	var present []string
	for _, k := range keys {
		hs := m.heads(k)
		if got := r.Heads(k); !slices.Equal(got, hs) {
			tb.Fatalf("Heads(%s)=%v, want %v", k, got, hs)
		}
		if len(hs) == 0 {
			if _, err := r.Value(k); !errors.Is(err, core.ErrNotFound) {
				tb.Fatalf("Value of an absent item: %v", err)
			}
			continue
		}
		present = append(present, k)
		head, data := m.value(tb, k)
		v, err := r.Value(k)
		if err != nil || v.Head != head || !core.EqualJSON(v.Data, data) || v.Deleted != core.IsDeleted(data) || v.Heads != len(hs) {
			tb.Fatalf("Value(%s)=%+v %v, want head %s data %v", k, v, err, head, data)
		}
		// History is the item's records, newest first in log order.
		var want []core.CommitID
		for i := len(recs) - 1; i >= 0; i-- {
			if recs[i].Key == k {
				want = append(want, recs[i].ID)
			}
		}
		hist, err := r.History(k, len(recs))
		if err != nil {
			tb.Fatal(err)
		}
		var got []core.CommitID
		for _, h := range hist {
			got = append(got, h.ID)
		}
		if !slices.Equal(got, want) {
			tb.Fatalf("History(%s)=%v, want %v", k, got, want)
		}
	}
	slices.Sort(present)
	// Items, paged one at a time, lists every present item in order.
	var paged []string
	for after := ""; ; {
		page, err := r.Items(after, 1, true)
		if err != nil {
			tb.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		paged = append(paged, page[0].Key)
		after = page[0].Key
	}
	if !slices.Equal(paged, present) {
		tb.Fatalf("Items paged=%v, want %v", paged, present)
	}
	for i, rec := range recs {
		if got, want := r.FirstAfterSeq(rec.Seq-1), int64(i); got != want {
			tb.Fatalf("FirstAfterSeq(%d)=%d, want %d", rec.Seq-1, got, want)
		}
	}
}
