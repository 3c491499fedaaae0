package storage

import (
	"errors"
	"slices"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
)

func TestRepo_HistoryBefore(t *testing.T) {
	s := openStore(t, NewMemFS(), nil)
	r := repo(t, s, "r")
	// Two items whose commits interleave in the log, each a chain.
	var a, b []core.CommitID
	for i := range 12 {
		pa, pb := tailOf(a), tailOf(b)
		ca := mkCommit(t, "r", "a", int64(i), map[string]any{"n": i}, pa...)
		cb := mkCommit(t, "r", "b", int64(i), map[string]any{"n": i}, pb...)
		mustAppend(t, r, ca, cb)
		a, b = append(a, ca.ID), append(b, cb.ID)
	}
	all, err := r.History("a", len(a))
	if err != nil {
		t.Fatal(err)
	}
	full := recordIDs(all)
	for i, before := range full {
		for _, limit := range []int{1, 3, len(full)} {
			page, err := r.HistoryBefore("a", before, limit)
			if err != nil {
				t.Fatalf("HistoryBefore(%d, %d): %v", i, limit, err)
			}
			want := full[i+1 : min(i+1+limit, len(full))]
			if got := recordIDs(page); !slices.Equal(got, want) {
				t.Fatalf("HistoryBefore(commit %d, limit %d)=%v, want %v", i, limit, got, want)
			}
		}
	}
	for name, c := range map[string]struct {
		key    string
		before core.CommitID
	}{
		"AnotherItemsCommit": {"a", b[3]},
		"UnknownCommit":      {"a", core.CommitID{1}},
		"UnknownItem":        {"zzz", a[3]},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := r.HistoryBefore(c.key, c.before, 5); !errors.Is(err, core.ErrNotFound) {
				t.Fatalf("err=%v, want %v", err, core.ErrNotFound)
			}
		})
	}
}

func tailOf(ids []core.CommitID) []core.CommitID {
	if len(ids) == 0 {
		return nil
	}
	return ids[len(ids)-1:]
}

func recordIDs(recs []Record) []core.CommitID {
	out := make([]core.CommitID, len(recs))
	for i, rec := range recs {
		out[i] = rec.ID
	}
	return out
}
