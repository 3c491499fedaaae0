package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/goat-gateway/goat-gateway/core"
)

var errNope = errors.New("nope")

func TestRepo_Append(t *testing.T) {
	root := func(tb testing.TB, key string) *core.Commit {
		return mkCommit(tb, "r", key, 1, map[string]any{"v": "root"})
	}
	tests := []struct {
		name string
		// setup commits appended first (must all succeed); batch is then
		// appended and checked against want (per commit: status and error).
		setup func(tb testing.TB) []*core.Commit
		batch func(tb testing.TB, setup []*core.Commit) []*core.Commit
		want  []error // nil: appended; errDup: duplicate; else Rejected wrapping it
	}{
		{
			name:  "Root",
			batch: func(tb testing.TB, _ []*core.Commit) []*core.Commit { return []*core.Commit{root(tb, "a")} },
			want:  []error{nil},
		},
		{
			name:  "AlreadyPresent",
			setup: func(tb testing.TB) []*core.Commit { return []*core.Commit{root(tb, "a")} },
			batch: func(tb testing.TB, s []*core.Commit) []*core.Commit { return s },
			want:  []error{errDup},
		},
		{
			name: "TwiceInBatch",
			batch: func(tb testing.TB, _ []*core.Commit) []*core.Commit {
				c := root(tb, "a")
				return []*core.Commit{c, c}
			},
			want: []error{nil, errDup},
		},
		{
			name: "ChildBeforeParentInBatch",
			batch: func(tb testing.TB, _ []*core.Commit) []*core.Commit {
				p := root(tb, "a")
				c := mkCommit(tb, "r", "a", 2, map[string]any{"v": 2}, p.ID)
				return []*core.Commit{c, p}
			},
			want: []error{nil, nil},
		},
		{
			name: "MissingParentRestOfBatchKept",
			batch: func(tb testing.TB, _ []*core.Commit) []*core.Commit {
				orphan := mkCommit(tb, "r", "a", 2, map[string]any{"v": 2}, core.CommitID{7})
				return []*core.Commit{root(tb, "b"), orphan, root(tb, "c")}
			},
			want: []error{nil, core.ErrMissingParents, nil},
		},
		{
			name: "ChildOfRejectedParent",
			batch: func(tb testing.TB, _ []*core.Commit) []*core.Commit {
				p := root(tb, "a")
				p.TS = 99 // id no longer matches
				c := mkCommit(tb, "r", "a", 100, map[string]any{"v": 2}, p.ID)
				return []*core.Commit{p, c}
			},
			want: []error{core.ErrInvalid, core.ErrMissingParents},
		},
		{
			name: "OtherRepository",
			batch: func(tb testing.TB, _ []*core.Commit) []*core.Commit {
				return []*core.Commit{mkCommit(tb, "other", "a", 1, map[string]any{})}
			},
			want: []error{core.ErrInvalid},
		},
		{
			name: "Unsigned",
			batch: func(tb testing.TB, _ []*core.Commit) []*core.Commit {
				c := root(tb, "a")
				c.Sig = nil
				return []*core.Commit{c}
			},
			want: []error{core.ErrInvalid},
		},
		{
			name: "Nil",
			batch: func(tb testing.TB, _ []*core.Commit) []*core.Commit {
				return []*core.Commit{nil, root(tb, "a")}
			},
			want: []error{core.ErrInvalid, nil},
		},
		{
			name: "VerifyRefuses",
			batch: func(tb testing.TB, _ []*core.Commit) []*core.Commit {
				return []*core.Commit{root(tb, "refuse-me"), root(tb, "a")}
			},
			want: []error{errNope, nil},
		},
		{
			name:  "ParentOfAnotherItem",
			setup: func(tb testing.TB) []*core.Commit { return []*core.Commit{root(tb, "a")} },
			batch: func(tb testing.TB, s []*core.Commit) []*core.Commit {
				return []*core.Commit{mkCommit(tb, "r", "b", 2, map[string]any{}, s[0].ID)}
			},
			want: []error{core.ErrInvalid},
		},
		{
			name:  "Delta",
			setup: func(tb testing.TB) []*core.Commit { return []*core.Commit{root(tb, "a")} },
			batch: func(tb testing.TB, s []*core.Commit) []*core.Commit {
				return []*core.Commit{mkDelta(tb, "r", "a", 2, s[0].ID, "v", "new", s[0].ID)}
			},
			want: []error{nil},
		},
		{
			name: "DeltaBaseInBatch",
			batch: func(tb testing.TB, _ []*core.Commit) []*core.Commit {
				b := root(tb, "a")
				return []*core.Commit{mkDelta(tb, "r", "a", 2, b.ID, "v", "new", b.ID), b}
			},
			want: []error{nil, nil},
		},
		{
			name: "DeltaBaseMissing",
			batch: func(tb testing.TB, _ []*core.Commit) []*core.Commit {
				return []*core.Commit{mkDelta(tb, "r", "a", 2, core.CommitID{5}, "v", "new", core.CommitID{5})}
			},
			want: []error{core.ErrMissingParents},
		},
		{
			name:  "DeltaOnDelta",
			setup: func(tb testing.TB) []*core.Commit { return []*core.Commit{root(tb, "a")} },
			batch: func(tb testing.TB, s []*core.Commit) []*core.Commit {
				d1 := mkDelta(tb, "r", "a", 2, s[0].ID, "v", "one", s[0].ID)
				d2 := mkDelta(tb, "r", "a", 3, d1.ID, "v", "two", d1.ID)
				return []*core.Commit{d1, d2}
			},
			want: []error{nil, core.ErrInvalid},
		},
		{
			name:  "DeltaBaseNotAncestor",
			setup: func(tb testing.TB) []*core.Commit { return []*core.Commit{root(tb, "a")} },
			batch: func(tb testing.TB, s []*core.Commit) []*core.Commit {
				// A sibling of the commit's parent: same item, full data,
				// present, but not an ancestor (DESIGN section 3).
				sib := mkCommit(tb, "r", "a", 5, map[string]any{"v": "sibling"})
				return []*core.Commit{sib, mkDelta(tb, "r", "a", 6, sib.ID, "v", "new", s[0].ID)}
			},
			want: []error{nil, core.ErrInvalid},
		},
		{
			name:  "DeltaBaseGrandparent",
			setup: func(tb testing.TB) []*core.Commit { return []*core.Commit{root(tb, "a")} },
			batch: func(tb testing.TB, s []*core.Commit) []*core.Commit {
				mid := mkCommit(tb, "r", "a", 5, map[string]any{"v": "mid"}, s[0].ID)
				return []*core.Commit{mid, mkDelta(tb, "r", "a", 6, s[0].ID, "v", "new", mid.ID)}
			},
			want: []error{nil, nil},
		},
		{
			name: "DeltaBaseInBatchNotAncestor",
			batch: func(tb testing.TB, _ []*core.Commit) []*core.Commit {
				x, y := root(tb, "a"), mkCommit(tb, "r", "a", 7, map[string]any{"v": "y"})
				return []*core.Commit{x, y, mkDelta(tb, "r", "a", 8, y.ID, "v", "new", x.ID)}
			},
			want: []error{nil, nil, core.ErrInvalid},
		},
		{
			name:  "DeltaDoesNotApply",
			setup: func(tb testing.TB) []*core.Commit { return []*core.Commit{root(tb, "a")} },
			batch: func(tb testing.TB, s []*core.Commit) []*core.Commit {
				c := &core.Commit{Repo: "r", Key: "a", Parents: []core.CommitID{s[0].ID}, Author: "s_test", TS: 2, Schema: "any/1", Sig: fakeSig,
					Delta: &core.Delta{Base: s[0].ID, Ops: []core.Op{{Op: core.OpSplice, Field: "v", At: 99, Ins: "x"}}}}
				if err := c.Seal(); err != nil {
					tb.Fatal(err)
				}
				return []*core.Commit{c}
			},
			want: []error{core.ErrInvalid},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, NewMemFS(), func(c *Config) {
				c.Verify = func(_ View, c *core.Commit, _ map[string]any) error {
					if c.Key == "refuse-me" {
						return errNope
					}
					return nil
				}
			})
			r := repo(t, s, "r")
			var setup []*core.Commit
			if tt.setup != nil {
				setup = tt.setup(t)
				mustAppend(t, r, setup...)
			}
			before := r.Count()
			batch := tt.batch(t, setup)
			res, err := r.Append(context.Background(), batch)
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			if got, want := len(res), len(batch); got != want {
				t.Fatalf("%d results, want %d", got, want)
			}
			appended := 0
			for i, want := range tt.want {
				got := res[i]
				switch {
				case want == nil:
					if got.Status != Appended || got.Err != nil {
						t.Fatalf("commit %d: %v %v, want appended", i, got.Status, got.Err)
					}
					appended++
				case want == errDup:
					if got.Status != Duplicate || got.Offset < 0 || got.Seq == 0 {
						t.Fatalf("commit %d: %+v, want duplicate with offset and seq", i, got)
					}
				default:
					if got.Status != Rejected || !errors.Is(got.Err, want) || got.Offset != -1 {
						t.Fatalf("commit %d: %v %v, want rejected with %v", i, got.Status, got.Err, want)
					}
				}
				if got.Status != Rejected {
					if !r.Has(batch[i].ID) {
						t.Fatalf("commit %d: reported %v but absent", i, got.Status)
					}
					if rec, err := r.ReadLog(got.Offset, 1); err != nil || rec[0].ID != batch[i].ID || rec[0].Seq != got.Seq {
						t.Fatalf("commit %d: record at its offset %d: %v %v", i, got.Offset, rec, err)
					}
				}
			}
			if got, want := r.Count(), before+appended; got != want {
				t.Fatalf("Count=%d, want %d", got, want)
			}
			checkTopological(t, r)
		})
	}
}

// errDup marks an expected Duplicate in TestRepo_Append.
var errDup = errors.New("duplicate")

// checkTopological asserts that the log lists every commit after its
// parents and that sequence numbers increase along it.
func checkTopological(tb testing.TB, r *Repo) {
	tb.Helper()
	recs, err := r.ReadLog(0, r.Count())
	if err != nil {
		tb.Fatalf("ReadLog: %v", err)
	}
	seen := map[core.CommitID]bool{}
	var last uint64
	for i, rec := range recs {
		if rec.Offset != int64(i) || rec.Seq <= last {
			tb.Fatalf("record %d: offset %d seq %d after %d", i, rec.Offset, rec.Seq, last)
		}
		last = rec.Seq
		c, err := rec.Commit()
		if err != nil {
			tb.Fatalf("record %d: %v", i, err)
		}
		if c.ID != rec.ID {
			tb.Fatalf("record %d: id %s, commit says %s", i, rec.ID, c.ID)
		}
		for _, p := range c.Parents {
			if !seen[p] {
				tb.Fatalf("record %d (%s) precedes its parent %s", i, c.ID, p)
			}
		}
		seen[c.ID] = true
	}
}

func TestRepo_Index(t *testing.T) {
	s := openStore(t, NewMemFS(), nil)
	r := repo(t, s, "r")
	root := mkCommit(t, "r", "a", 10, map[string]any{"title": "first"})
	x := mkCommit(t, "r", "a", 20, map[string]any{"title": "x"}, root.ID)
	y := mkDelta(t, "r", "a", 20, root.ID, "title", "y", root.ID)
	other := mkCommit(t, "r", "b", 5, map[string]any{"isDeleted": true})
	third := mkCommit(t, "r", "c", 5, map[string]any{"n": 1.0})
	mustAppend(t, r, root, x, y, other, third)

	if got, want := r.Heads("a"), sortedIDs(x.ID, y.ID); !slices.Equal(got, want) {
		t.Fatalf("Heads=%v, want %v", got, want)
	}
	kids, ok := r.Children(root.ID)
	if !ok || !slices.Equal(kids, sortedIDs(x.ID, y.ID)) {
		t.Fatalf("Children=%v %v", kids, ok)
	}
	if kids, ok := r.Children(x.ID); !ok || len(kids) != 0 {
		t.Fatalf("Children(head)=%v %v", kids, ok)
	}
	if _, ok := r.Children(core.CommitID{1}); ok {
		t.Fatalf("Children of an absent commit: ok")
	}
	// Two heads, same ts: the greater id shows.
	win := x
	if y.ID.Compare(x.ID) > 0 {
		win = y
	}
	v, err := r.Value("a")
	if err != nil {
		t.Fatal(err)
	}
	if v.Head != win.ID || v.Heads != 2 || v.Deleted || v.Schema != "any/1" || v.TS != 20 {
		t.Fatalf("Value=%+v, want head %s of 2", v, win.ID)
	}
	if got, want := v.Data["title"], map[core.CommitID]string{x.ID: "x", y.ID: "y"}[win.ID]; got != want {
		t.Fatalf("title=%v, want %v", got, want)
	}
	if d, err := r.Data(y.ID); err != nil || d["title"] != "y" {
		t.Fatalf("Data(delta)=%v %v", d, err)
	}
	if v, err := r.Value("b"); err != nil || !v.Deleted {
		t.Fatalf("Value(tombstone)=%+v %v", v, err)
	}
	if _, err := r.Value("zzz"); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("Value(absent) err=%v", err)
	}
	if _, err := r.Get(core.CommitID{1}); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("Get(absent) err=%v", err)
	}
	if c, err := r.Get(y.ID); err != nil || c.Delta == nil || c.ID != y.ID {
		t.Fatalf("Get(delta)=%v %v", c, err)
	}

	// Merge: one head again, with the merge's value.
	m := mkMerge(t, "r", "a", 20, map[string]any{"title": "merged"}, x.ID, y.ID)
	mustAppend(t, r, m)
	if got, want := r.Heads("a"), []core.CommitID{m.ID}; !slices.Equal(got, want) {
		t.Fatalf("Heads after merge=%v, want %v", got, want)
	}
	if v, _ := r.Value("a"); v.Head != m.ID || v.Heads != 1 || v.Data["title"] != "merged" {
		t.Fatalf("Value after merge=%+v", v)
	}
	if meta, ok := r.Meta(m.ID); !ok || !meta.Merge || len(meta.Parents) != 2 {
		t.Fatalf("Meta(merge)=%+v %v", meta, ok)
	}
	if meta, ok := r.Meta(y.ID); !ok || !meta.Delta || meta.Base != root.ID {
		t.Fatalf("Meta(delta)=%+v %v", meta, ok)
	}

	// History: newest first in log order.
	hist, err := r.History("a", 10)
	if err != nil {
		t.Fatal(err)
	}
	var hids []core.CommitID
	for _, h := range hist {
		hids = append(hids, h.ID)
	}
	if want := []core.CommitID{m.ID, y.ID, x.ID, root.ID}; !slices.Equal(hids, want) {
		t.Fatalf("History=%v, want %v", hids, want)
	}
	if hist, _ := r.History("a", 2); len(hist) != 2 {
		t.Fatalf("History limit 2: %d", len(hist))
	}

	// Items: sorted by key, tombstones skipped unless asked, paginated.
	items, err := r.Items("", 10, false)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := itemKeys(items), []string{"a", "c"}; !slices.Equal(got, want) {
		t.Fatalf("Items=%v, want %v", got, want)
	}
	all, _ := r.Items("", 10, true)
	if got, want := itemKeys(all), []string{"a", "b", "c"}; !slices.Equal(got, want) {
		t.Fatalf("Items(withDeleted)=%v, want %v", got, want)
	}
	page, _ := r.Items("a", 1, true)
	if got, want := itemKeys(page), []string{"b"}; !slices.Equal(got, want) {
		t.Fatalf("Items(after a, 1)=%v, want %v", got, want)
	}

	// Count, digest, log.
	if got, want := r.Count(), 6; got != want {
		t.Fatalf("Count=%d, want %d", got, want)
	}
	var dig [32]byte
	for _, c := range []*core.Commit{root, x, y, other, third, m} {
		for i := range dig {
			dig[i] ^= c.ID[i]
		}
	}
	if r.Digest() != dig {
		t.Fatalf("Digest mismatch")
	}
	recs, _ := r.ReadLog(2, 2)
	if len(recs) != 2 || recs[0].ID != y.ID || recs[1].ID != other.ID || recs[0].Offset != 2 {
		t.Fatalf("ReadLog(2,2)=%v", recs)
	}
	if recs, err := r.ReadLog(6, 10); err != nil || len(recs) != 0 {
		t.Fatalf("ReadLog at the end=%v %v", recs, err)
	}
	if got, want := r.FirstAfterSeq(recs0Seq(t, r, 3)), int64(4); got != want {
		t.Fatalf("FirstAfterSeq=%d, want %d", got, want)
	}
	if got, want := r.FirstAfterSeq(0), int64(0); got != want {
		t.Fatalf("FirstAfterSeq(0)=%d, want %d", got, want)
	}
	if got, want := r.FirstAfterSeq(1<<62), int64(6); got != want {
		t.Fatalf("FirstAfterSeq(huge)=%d, want %d", got, want)
	}
	var eachIDs []core.CommitID
	r.EachID(4, func(off int64, id core.CommitID) bool { eachIDs = append(eachIDs, id); return true })
	if want := []core.CommitID{third.ID, m.ID}; !slices.Equal(eachIDs, want) {
		t.Fatalf("EachID(4)=%v, want %v", eachIDs, want)
	}
}

func recs0Seq(tb testing.TB, r *Repo, off int64) uint64 {
	tb.Helper()
	recs, err := r.ReadLog(off, 1)
	if err != nil || len(recs) != 1 {
		tb.Fatalf("ReadLog(%d): %v %v", off, recs, err)
	}
	return recs[0].Seq
}

func sortedIDs(ids ...core.CommitID) []core.CommitID {
	ids = slices.Clone(ids)
	slices.SortFunc(ids, core.CommitID.Compare)
	return ids
}

func itemKeys(vs []Value) []string {
	var ks []string
	for _, v := range vs {
		ks = append(ks, v.Key)
	}
	return ks
}

// maxMerger merges heads into the value of the greatest head by (ts, id),
// the simplest deterministic merge.
type maxMerger struct {
	tb    testing.TB
	calls int
}

func (m *maxMerger) Merge(v View, key string, heads []core.CommitID) (*core.Commit, error) {
	m.calls++
	if !slices.IsSortedFunc(heads, core.CommitID.Compare) {
		m.tb.Errorf("heads not sorted: %v", heads)
	}
	var best *core.Commit
	for _, h := range heads {
		c, ok := v.Commit(h)
		if !ok {
			return nil, fmt.Errorf("head %s not found", h)
		}
		if best == nil || c.TS > best.TS || (c.TS == best.TS && c.ID.Compare(best.ID) > 0) {
			best = c
		}
	}
	data := best.Data
	if best.Delta != nil {
		base, ok := v.Commit(best.Delta.Base)
		if !ok {
			return nil, fmt.Errorf("base %s not found", best.Delta.Base)
		}
		var err error
		if data, err = core.ApplyDelta(base.Data, best.Delta); err != nil {
			return nil, err
		}
	}
	if key == "fail" {
		return nil, errNope
	}
	c := &core.Commit{Repo: v.Name(), Key: key, Parents: heads, Author: core.MergeAuthor, TS: best.TS, Schema: "any/1", Data: data}
	return c, c.Seal()
}

func TestRepo_Merger(t *testing.T) {
	m := &maxMerger{tb: t}
	var mu sync.Mutex
	var seen []Record
	s := openStore(t, NewMemFS(), func(c *Config) {
		c.Merger = m
		c.OnAppend = func(_ string, recs []Record) { mu.Lock(); seen = append(seen, recs...); mu.Unlock() }
	})
	r := repo(t, s, "r")
	root := mkCommit(t, "r", "a", 1, map[string]any{"v": 0.0})
	mustAppend(t, r, root)
	x := mkCommit(t, "r", "a", 2, map[string]any{"v": 1.0}, root.ID)
	y := mkCommit(t, "r", "a", 3, map[string]any{"v": 2.0}, root.ID)
	res := mustAppend(t, r, x, y)
	if got, want := m.calls, 1; got != want {
		t.Fatalf("Merge called %d times, want %d", got, want)
	}
	heads := r.Heads("a")
	if len(heads) != 1 {
		t.Fatalf("Heads=%v, want one merge", heads)
	}
	meta, _ := r.Meta(heads[0])
	if !meta.Merge || !slices.Equal(meta.Parents, sortedIDs(x.ID, y.ID)) {
		t.Fatalf("head %+v is not the merge of x and y", meta)
	}
	if v, _ := r.Value("a"); v.Data["v"] != 2.0 {
		t.Fatalf("merged value=%v", v.Data)
	}
	if res[0].Status != Appended || res[1].Status != Appended {
		t.Fatalf("results=%+v", res)
	}
	mu.Lock()
	if got, want := len(seen), 4; got != want {
		t.Fatalf("OnAppend saw %d records, want %d (the merge included)", got, want)
	}
	mu.Unlock()

	// A failing merge is logged; the append stands.
	f0 := mkCommit(t, "r", "fail", 1, map[string]any{})
	mustAppend(t, r, f0)
	mustAppend(t, r, mkCommit(t, "r", "fail", 2, map[string]any{"a": 1.0}, f0.ID), mkCommit(t, "r", "fail", 2, map[string]any{"b": 1.0}, f0.ID))
	if got := len(r.Heads("fail")); got != 2 {
		t.Fatalf("heads after a failed merge=%d, want 2", got)
	}
}

// Group commit: while one fsync is in progress, every append that arrives
// waits for the next write, and all of them share it.
//
// It runs in a synctest bubble: "every append has queued" is the moment
// every goroutine of the bubble is blocked, which synctest.Wait observes.
func TestRepo_GroupCommit(t *testing.T) {
	synctest.Test(t, testGroupCommit)
}

func testGroupCommit(t *testing.T) {
	fsys := NewMemFS()
	gate := make(chan struct{})
	entered := make(chan struct{}, 1)
	s := openStore(t, fsys, func(c *Config) { c.Merger = &gateMerger{entered: entered, gate: gate} })
	r := repo(t, s, "r")
	writes := 0 // counted under the MemFS lock
	fsys.SetFault(func(op, name string) error {
		if op == "write" && name == logPath("r") {
			writes++
		}
		return nil
	})
	const n = 64
	var wg sync.WaitGroup
	first := mkCommit(t, "r", "first", 1, map[string]any{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Two heads: the writer calls the merger, which holds it.
		mustAppend(t, r, first, mkCommit(t, "r", "first", 2, map[string]any{"x": 1.0}, first.ID), mkCommit(t, "r", "first", 2, map[string]any{"y": 1.0}, first.ID))
	}()
	<-entered
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mustAppend(t, r, mkCommit(t, "r", fmt.Sprintf("k%d", i), 1, map[string]any{}))
		}()
	}
	synctest.Wait()
	if got := len(r.reqs); got != n {
		t.Fatalf("%d appends queued behind the held writer, want %d", got, n)
	}
	close(gate)
	wg.Wait()
	if got, want := r.Count(), 3+n; got != want {
		t.Fatalf("Count=%d, want %d", got, want)
	}
	// One write for the first append, one shared by the 64 queued ones.
	if got, want := writes, 2; got != want {
		t.Fatalf("%d writes, want %d", got, want)
	}
}

// gateMerger blocks the writer goroutine once, so that a test can queue
// appends behind it.
type gateMerger struct {
	entered chan struct{}
	gate    chan struct{}
	once    sync.Once
}

func (g *gateMerger) Merge(View, string, []core.CommitID) (*core.Commit, error) {
	g.once.Do(func() {
		g.entered <- struct{}{}
		<-g.gate
	})
	return nil, nil
}

func TestRepo_WriteFailure(t *testing.T) {
	fsys := NewMemFS()
	s := openStore(t, fsys, nil)
	r := repo(t, s, "r")
	a := mkCommit(t, "r", "a", 1, map[string]any{})
	mustAppend(t, r, a)
	errDisk := errors.New("disk on fire")
	fsys.SetFault(func(op, name string) error {
		if op == "sync" && name == logPath("r") {
			return errDisk
		}
		return nil
	})
	b := mkCommit(t, "r", "b", 1, map[string]any{})
	if _, err := r.Append(context.Background(), []*core.Commit{b}); !errors.Is(err, errDisk) {
		t.Fatalf("Append during a failing fsync: err=%v", err)
	}
	fsys.SetFault(nil)
	if r.Has(b.ID) {
		t.Fatalf("a commit whose fsync failed is visible")
	}
	c := mkCommit(t, "r", "c", 1, map[string]any{})
	if _, err := r.Append(context.Background(), []*core.Commit{c}); err == nil {
		t.Fatalf("Append after a failed fsync succeeded; want the log read-only until reopened")
	}
	s.Close()
	_, r2, err := reopen(t, fsys)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if !r2.Has(a.ID) || r2.Has(b.ID) {
		t.Fatalf("after reopen: has a=%v b=%v", r2.Has(a.ID), r2.Has(b.ID))
	}
	mustAppend(t, r2, b, c)
}

func TestRepo_Wait(t *testing.T) {
	s := openStore(t, NewMemFS(), nil)
	r := repo(t, s, "r")
	done := make(chan error, 1)
	go func() { done <- r.Wait(context.Background(), 0) }()
	mustAppend(t, r, mkCommit(t, "r", "a", 1, map[string]any{}))
	if err := <-done; err != nil {
		t.Fatalf("Wait: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Wait(ctx, 5); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait with a cancelled context: %v", err)
	}
	if err := r.Wait(ctx, 0); err != nil {
		t.Fatalf("Wait for what is there: %v", err)
	}
}

func TestRepo_Closed(t *testing.T) {
	s := openStore(t, NewMemFS(), nil)
	r := repo(t, s, "r")
	mustAppend(t, r, mkCommit(t, "r", "a", 1, map[string]any{}))
	s.Close()
	if _, err := r.Append(context.Background(), []*core.Commit{mkCommit(t, "r", "b", 1, map[string]any{})}); !errors.Is(err, core.ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if _, err := r.ReadLog(0, 1); !errors.Is(err, core.ErrClosed) {
		t.Fatalf("ReadLog after Close: %v", err)
	}
	if err := r.Wait(context.Background(), 1); !errors.Is(err, core.ErrClosed) {
		t.Fatalf("Wait after Close: %v", err)
	}
	if _, _, err := s.Repo("r"); !errors.Is(err, core.ErrClosed) {
		t.Fatalf("Store.Repo after Close: %v", err)
	}
}

func TestRepo_AppendVerifiedSeesBatchAndResolvedData(t *testing.T) {
	s := openStore(t, NewMemFS(), nil)
	r := repo(t, s, "r")
	base := mkCommit(t, "r", "k", 1, map[string]any{"a": 1.0, "b": "x"})
	delta := mkDelta(t, "r", "k", 2, base.ID, "a", 2.0, base.ID)
	other := mkCommit(t, "r", "k", 3, map[string]any{"c": true}, base.ID)
	merged := mkMerge(t, "r", "k", 3, map[string]any{"c": true}, delta.ID, other.ID)
	seen := map[core.CommitID]map[string]any{}
	verify := func(v View, c *core.Commit, data map[string]any) error {
		for _, p := range c.Parents {
			if _, ok := v.Commit(p); !ok {
				t.Errorf("commit %s: parent %s not visible to verify", c.ID, p)
			}
		}
		seen[c.ID] = data
		return nil
	}
	res, err := r.AppendVerified(t.Context(), []*core.Commit{merged, other, delta, base}, verify)
	if err != nil {
		t.Fatal(err)
	}
	for i, x := range res {
		if x.Status != Appended {
			t.Fatalf("result %d: %v %v", i, x.Status, x.Err)
		}
	}
	if got, want := seen[delta.ID], map[string]any{"a": 2.0, "b": "x"}; !core.EqualJSON(got, want) {
		t.Fatalf("verify saw delta data %v, want %v", got, want)
	}

	refuse := func(View, *core.Commit, map[string]any) error { return errNope }
	late := mkCommit(t, "r", "k", 4, map[string]any{"d": 1.0}, merged.ID)
	res, err = r.AppendVerified(t.Context(), []*core.Commit{late}, refuse)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Status != Rejected || !errors.Is(res[0].Err, errNope) || r.Has(late.ID) {
		t.Fatalf("refused commit: %+v, present=%v", res[0], r.Has(late.ID))
	}
}

func TestRepo_AppendEncoded(t *testing.T) {
	s := openStore(t, NewMemFS(), nil)
	r := repo(t, s, "r")
	ctx := context.Background()
	t.Run("StoresTheGivenEncoding", func(t *testing.T) {
		c := mkCommit(t, "r", "a", 1, map[string]any{"v": "x"})
		js, err := c.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		res, err := r.AppendEncoded(ctx, []*core.Commit{c}, [][]byte{js}, nil, 3)
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Status != Appended {
			t.Fatalf("status %v (%v), want Appended", res[0].Status, res[0].Err)
		}
		rec, err := r.GetRecord(c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(rec.JSON, js) {
			t.Fatalf("stored %s, want %s", rec.JSON, js)
		}
		got, err := r.Get(c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != c.ID || got.Key != "a" {
			t.Fatalf("read back %s %q, want %s %q", got.ID, got.Key, c.ID, "a")
		}
	})
	t.Run("LengthsDiffer", func(t *testing.T) {
		c := mkCommit(t, "r", "b", 1, map[string]any{"v": "y"})
		if _, err := r.AppendEncoded(ctx, []*core.Commit{c}, nil, nil, 0); !errors.Is(err, core.ErrInvalid) {
			t.Fatalf("err %v, want ErrInvalid", err)
		}
		if r.Has(c.ID) {
			t.Fatal("stored a commit whose encoding was missing")
		}
	})
}
