package goat

import (
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/merge"
)

// Version is one commit of an item with the item's value after it (time
// travel, DESIGN section 2), read from the local replica.
type Version struct {
	Commit *core.Commit
	// Item is the value as of Commit: its data (a delta applied to its
	// base), upgraded to this client's branch, defaults filled in; Head is
	// Commit's id.
	Item Item
	// Deleted: the item is a tombstone as of Commit.
	Deleted bool
}

// version resolves one commit for this client, or ok false when the commit
// is newer than the client's branch (invisible to it).
func (r *Repo) version(c *core.Commit) (Version, bool, error) {
	schema, data, err := merge.ValueAt(r.st, r.c.reg, c.ID, r.c.view())
	if errors.Is(err, core.ErrSchema) {
		return Version{}, false, nil
	}
	if err != nil {
		return Version{}, false, err
	}
	it := r.c.present(Item{Key: c.Key, Schema: schema, Data: data, Head: c.ID, TS: c.TS})
	return Version{Commit: c, Item: it, Deleted: core.IsDeleted(data)}, true, nil
}

// History returns an item's commits on this client's branch, newest
// first (the replica's log order reversed: a commit comes before its
// parents), each with the item's value after it. Commits at versions newer
// than the branch are left out. A key with no commits is core.ErrNotFound.
func (r *Repo) History(key string) ([]Version, error) {
	if err := core.ValidateKey(key); err != nil {
		return nil, err
	}
	recs, err := r.st.History(key, 1<<30)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("%w: item %q in %q", core.ErrNotFound, key, r.name)
	}
	out := make([]Version, 0, len(recs))
	for _, rec := range recs {
		c, err := rec.Commit()
		if err != nil {
			return nil, err
		}
		v, ok, err := r.version(c)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, v)
		}
	}
	return out, nil
}

// At returns an item as of one of its commits: the commit's value,
// upgraded to this client's branch. A commit of another item is
// core.ErrNotFound; one newer than the branch core.ErrSchema.
func (r *Repo) At(key string, id core.CommitID) (Version, error) {
	c, err := r.st.Get(id)
	if err != nil || c.Key != key {
		return Version{}, fmt.Errorf("%w: commit %s is not a version of %q", core.ErrNotFound, id, key)
	}
	v, ok, err := r.version(c)
	if err != nil {
		return Version{}, err
	}
	if !ok {
		return Version{}, fmt.Errorf("%w: commit %s is at %s, newer than this client's branch", core.ErrSchema, id, c.Schema)
	}
	return v, nil
}

// AsOf returns an item as of time t: the merge of the heads of its commits
// on this client's branch with ts at most t (and whose parents are too),
// upgraded. Nothing by then is core.ErrNotFound. The Item's Head is the
// merge commit's id when several heads are merged (the commit every peer
// builds; it may not be stored), and Commit is nil then.
func (r *Repo) AsOf(key string, t time.Time) (Version, error) {
	if err := core.ValidateKey(key); err != nil {
		return Version{}, err
	}
	heads := r.st.Heads(key)
	if len(heads) == 0 {
		return Version{}, fmt.Errorf("%w: item %q in %q", core.ErrNotFound, key, r.name)
	}
	res, err := merge.Resolve(r.st, r.c.reg, r.name, key, heads, r.c.view().At(t.UnixMilli()))
	if err != nil {
		return Version{}, err
	}
	it := r.c.present(Item{Key: key, Schema: res.Schema, Data: res.Data, Head: res.Head, TS: res.TS})
	v := Version{Item: it, Deleted: core.IsDeleted(res.Data)}
	if c, err := r.st.Get(res.Head); err == nil {
		v.Commit = c
	}
	return v, nil
}

// Playback iterates over the repository's commits in the replica's log
// order (a topological order: parents first), each with its item's value
// after it, to replay a sequence of changes (GoatDB's history playback).
// Commits newer than this client's branch are skipped. It reads the log
// as it is when each page is read; an error ends the iteration.
func (r *Repo) Playback() iter.Seq2[Version, error] {
	return func(yield func(Version, error) bool) {
		const page = 500
		for off := int64(0); ; {
			recs, err := r.st.ReadLog(off, page)
			if err != nil {
				yield(Version{}, err)
				return
			}
			for _, rec := range recs {
				c, err := rec.Commit()
				if err != nil {
					yield(Version{}, err)
					return
				}
				v, ok, err := r.version(c)
				if err != nil {
					yield(Version{}, err)
					return
				}
				if ok && !yield(v, nil) {
					return
				}
			}
			if len(recs) < page {
				return
			}
			off += int64(len(recs))
		}
	}
}
