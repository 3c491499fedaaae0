package node

import (
	"errors"
	"fmt"

	"github.com/goat-gateway/goat-gateway/core"
)

// History returns up to limit commits of an item, newest first in log
// order. With a non-zero before, it returns the commits that come before
// that one: the next page of a history read page by page. It reads only
// the records it returns, so a page costs O(limit) however long the
// history. A before that is not a commit of key is core.ErrInvalid.
func (r *Repo) History(key string, before core.CommitID, limit int) ([]Record, error) {
	if before.IsZero() {
		return r.r.History(key, limit)
	}
	recs, err := r.r.HistoryBefore(key, before, limit)
	if errors.Is(err, core.ErrNotFound) {
		return nil, fmt.Errorf("%w: before: %s is not a commit of %q", core.ErrInvalid, before, key)
	}
	return recs, err
}
