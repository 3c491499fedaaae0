package storage

import (
	"fmt"

	"github.com/goat-gateway/goat-gateway/core"
)

// HistoryBefore returns up to limit commits of an item that come before
// the commit before in the item's history, newest first in log order: the
// page of History that follows before. It reads only the records it
// returns (the walk to before is one index lookup), so a page costs
// O(limit) whatever the length of the history. before must be a commit of
// key (core.ErrNotFound otherwise).
func (r *Repo) HistoryBefore(key string, before core.CommitID, limit int) ([]Record, error) {
	var ords []int32
	r.mu.RLock()
	i := r.idx.lookup(before)
	if k := r.idx.keyOf(key); i < 0 || k < 0 || r.idx.ents[i].key != uint32(k) {
		r.mu.RUnlock()
		return nil, fmt.Errorf("%w: commit %s of item %q in %q", core.ErrNotFound, before, key, r.name)
	}
	for i = r.idx.ents[i].prev; i >= 0 && len(ords) < limit; i = r.idx.ents[i].prev {
		ords = append(ords, i)
	}
	r.mu.RUnlock()
	return r.records(ords)
}

// records reads the records of ordinals ords, in that order.
func (r *Repo) records(ords []int32) ([]Record, error) {
	out := make([]Record, 0, len(ords))
	for _, i := range ords {
		rec, err := r.recordAt(i)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}
