package goat

import (
	"slices"
	"sort"
	"strings"
	stdsync "sync"

	"github.com/goat-gateway/goat-gateway/core"
)

// Query selects and orders items of a repository for a live query.
type Query struct {
	// Filter selects items; nil selects every item that is not deleted.
	Filter func(Item) bool
	// Less orders the result; nil orders by key. Items that Less leaves
	// unordered are ordered by key, so the order is total.
	Less func(a, b Item) bool
	// OnChange, if set, receives the events (one call at a time, from a
	// goroutine of the query); otherwise they are sent on Events().
	OnChange func(QueryEvent)
	// Buffer is how many events may wait for a slow consumer; past it the
	// waiting events are replaced by one snapshot. Default 256.
	Buffer int
}

// ChangeKind says what happened to an item of a live query's result.
type ChangeKind int

const (
	// Added: the item entered the result at Index.
	Added ChangeKind = iota + 1
	// Removed: the item at OldIndex left the result (deleted, or no
	// longer matching the filter).
	Removed
	// Changed: the item's value changed; it moved from OldIndex to Index
	// (which may be equal).
	Changed
)

func (k ChangeKind) String() string {
	switch k {
	case Added:
		return "added"
	case Removed:
		return "removed"
	case Changed:
		return "changed"
	}
	return "unknown"
}

// Change is one change of a live query's result. Indexes are positions in
// the result: OldIndex before this change, Index after it (-1 where it
// does not apply). The changes of one event apply one after another, so a
// consumer that removes at OldIndex and inserts at Index, in order, keeps
// an exact copy of the result.
type Change struct {
	Kind     ChangeKind
	Key      string
	Item     Item // the new item; zero for Removed
	Old      Item // the previous item; zero for Added
	Index    int
	OldIndex int
}

// QueryEvent is one update of a live query.
type QueryEvent struct {
	// Snapshot: Items is the whole result, replacing whatever the consumer
	// had. The first event is a snapshot, and so is the event after a
	// consumer fell more than Buffer events behind.
	Snapshot bool
	Items    []Item
	// Changes are the changes since the previous event.
	Changes []Change
}

// LiveQuery is a query whose result is kept current as commits arrive and
// local edits are made: each changed item is looked up once and moved
// within the sorted result, found by binary search, so an update costs
// O(log n) comparisons and a move of n pointers at most, never a scan of
// the repository.
//
// Queries compose: LiveQuery.Query starts a query over another query's
// result, which is updated only with the items that changed upstream.
type LiveQuery struct {
	r      *Repo
	filter func(Item) bool
	less   func(a, b Item) bool

	// Guarded by r.qmu. Pointers keep the moves within the sorted
	// result to 8 bytes per item.
	items   []*Item
	byKey   map[string]*Item
	changes []Change
	// The query whose result this one's is drawn from (nil: the
	// repository's items), and the queries drawn from this one's.
	parent   *LiveQuery
	children map[*LiveQuery]struct{}
	closed   bool

	dmu    stdsync.Mutex
	queue  []QueryEvent
	resync bool
	buffer int

	signal   chan struct{}
	ch       chan QueryEvent
	onChange func(QueryEvent)
	done     chan struct{}
	once     stdsync.Once
}

// Query starts a live query over the repository's items. Call Close when
// done with it.
func (r *Repo) Query(q Query) (*LiveQuery, error) {
	lq := newLiveQuery(r, q)
	r.qmu.Lock()
	all, err := r.Items()
	if err != nil {
		r.qmu.Unlock()
		return nil, err
	}
	for i := range all {
		lq.seed(&all[i])
	}
	r.queries[lq] = struct{}{}
	lq.begin()
	r.qmu.Unlock()
	go lq.deliver()
	return lq, nil
}

// Query starts a live query over this query's result: the items of q's
// result that sub.Filter selects, in sub.Less's order. It is kept current
// with q's changes alone: an item that q adds, removes or changes is
// looked up in it once, as q's are in the repository, and nothing else
// is; its events are as a repository query's. Queries compose to any
// depth. Closing q closes it; a closed q returns core.ErrClosed.
func (q *LiveQuery) Query(sub Query) (*LiveQuery, error) {
	lq := newLiveQuery(q.r, sub)
	q.r.qmu.Lock()
	if q.closed {
		q.r.qmu.Unlock()
		return nil, core.ErrClosed
	}
	for _, it := range q.items {
		lq.seed(it)
	}
	lq.parent = q
	q.children[lq] = struct{}{}
	lq.begin()
	q.r.qmu.Unlock()
	go lq.deliver()
	return lq, nil
}

func newLiveQuery(r *Repo, q Query) *LiveQuery {
	lq := &LiveQuery{
		r: r, filter: q.Filter, less: q.Less, byKey: map[string]*Item{}, children: map[*LiveQuery]struct{}{},
		buffer: q.Buffer, signal: make(chan struct{}, 1), onChange: q.OnChange, done: make(chan struct{}),
	}
	if lq.buffer <= 0 {
		lq.buffer = 256
	}
	if lq.onChange == nil {
		lq.ch = make(chan QueryEvent)
	}
	return lq
}

// seed adds an item to the initial result if the filter selects it.
// r.qmu is held.
func (q *LiveQuery) seed(it *Item) {
	if q.filter == nil || q.filter(*it) {
		q.items = append(q.items, it)
		q.byKey[it.Key] = it
	}
}

// begin sorts the initial result and queues it as the first event.
// r.qmu is held.
func (q *LiveQuery) begin() {
	slices.SortFunc(q.items, q.cmpp)
	q.enqueue(QueryEvent{Snapshot: true, Items: q.snapshot()})
}

// Events returns the channel of events, or nil when the query has an
// OnChange callback. It is closed by Close.
func (q *LiveQuery) Events() <-chan QueryEvent { return q.ch }

// Items returns the current result (the data is shared: do not modify).
func (q *LiveQuery) Items() []Item {
	q.r.qmu.Lock()
	defer q.r.qmu.Unlock()
	return q.snapshot()
}

// snapshot copies the result. r.qmu is held.
func (q *LiveQuery) snapshot() []Item {
	out := make([]Item, len(q.items))
	for i, it := range q.items {
		out[i] = *it
	}
	return out
}

// Len returns the number of items in the result.
func (q *LiveQuery) Len() int {
	q.r.qmu.Lock()
	defer q.r.qmu.Unlock()
	return len(q.items)
}

// Close stops the query and the queries drawn from it. An event being
// delivered completes; no other follows.
func (q *LiveQuery) Close() {
	q.r.qmu.Lock()
	if q.parent != nil {
		delete(q.parent.children, q)
	} else {
		delete(q.r.queries, q)
	}
	var closed []*LiveQuery
	var detach func(x *LiveQuery)
	detach = func(x *LiveQuery) {
		x.closed = true
		closed = append(closed, x)
		for ch := range x.children {
			detach(ch)
		}
		clear(x.children)
	}
	detach(q)
	q.r.qmu.Unlock()
	for _, x := range closed {
		x.once.Do(func() { close(x.done) })
	}
}

func (q *LiveQuery) cmp(a, b Item) int {
	if q.less != nil {
		if q.less(a, b) {
			return -1
		}
		if q.less(b, a) {
			return 1
		}
	}
	return strings.Compare(a.Key, b.Key)
}

func (q *LiveQuery) cmpp(a, b *Item) int { return q.cmp(*a, *b) }

// search returns the position where it belongs.
func (q *LiveQuery) search(it *Item) int {
	return sort.Search(len(q.items), func(i int) bool { return q.cmp(*q.items[i], *it) >= 0 })
}

// indexOf finds the entry of a key, by binary search on its stored value
// (a linear scan backs it up in case a comparator is not consistent).
func (q *LiveQuery) indexOf(old *Item) int {
	if i := q.search(old); i < len(q.items) && q.items[i] == old {
		return i
	}
	return slices.Index(q.items, old)
}

// apply brings one key up to date; exists is false for a deleted or
// missing item (or, for a query over a query, one not in the upstream
// result). The queries drawn from this one get the key when it was or is
// in this one's result. r.qmu is held.
func (q *LiveQuery) apply(key string, item Item, exists bool) {
	old, had := q.byKey[key]
	match := exists && (q.filter == nil || q.filter(item))
	if !had && !match {
		return // not in the result before or after: nothing downstream changes
	}
	if had && match && old.Head == item.Head && old.Pending == item.Pending && old.TS == item.TS &&
		old.Schema == item.Schema && core.EqualJSON(old.Data, item.Data) {
		return // looked up again, unchanged
	}
	q.update(key, old, had, item, match)
	for ch := range q.children {
		ch.apply(key, item, match)
	}
}

func (q *LiveQuery) update(key string, old *Item, had bool, item Item, match bool) {
	it := &item
	switch {
	case had && !match:
		i := q.indexOf(old)
		q.items = slices.Delete(q.items, i, i+1)
		delete(q.byKey, key)
		q.changes = append(q.changes, Change{Kind: Removed, Key: key, Old: *old, Index: -1, OldIndex: i})
	case !had:
		i := q.search(it)
		q.items = slices.Insert(q.items, i, it)
		q.byKey[key] = it
		q.changes = append(q.changes, Change{Kind: Added, Key: key, Item: item, Index: i, OldIndex: -1})
	default:
		i := q.indexOf(old)
		q.byKey[key] = it
		same := old.Schema == it.Schema && core.EqualJSON(old.Data, it.Data)
		inPlace := (i == 0 || q.cmp(*q.items[i-1], item) < 0) && (i == len(q.items)-1 || q.cmp(item, *q.items[i+1]) < 0)
		if same && inPlace {
			// Only the version changed (a pending edit got its commit).
			q.items[i] = it
			return
		}
		q.items = slices.Delete(q.items, i, i+1)
		j := q.search(it)
		q.items = slices.Insert(q.items, j, it)
		q.changes = append(q.changes, Change{Kind: Changed, Key: key, Item: item, Old: *old, Index: j, OldIndex: i})
	}
}

// publish queues the changes gathered since the last call as one event,
// here and in the queries drawn from this one. r.qmu is held.
func (q *LiveQuery) publish() {
	for ch := range q.children {
		ch.publish()
	}
	if len(q.changes) == 0 {
		return
	}
	ev := QueryEvent{Changes: q.changes}
	q.changes = nil
	q.enqueue(ev)
}

// enqueue never blocks: a consumer that falls Buffer events behind gets a
// snapshot instead of the backlog. r.qmu is held.
func (q *LiveQuery) enqueue(ev QueryEvent) {
	q.dmu.Lock()
	switch {
	case q.resync:
	case len(q.queue) >= q.buffer:
		q.queue, q.resync = nil, true
	default:
		q.queue = append(q.queue, ev)
	}
	q.dmu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// next takes the next event to deliver.
func (q *LiveQuery) next() (QueryEvent, bool) {
	q.dmu.Lock()
	if q.resync {
		q.dmu.Unlock()
		// Lock order: r.qmu before dmu, as enqueue's callers hold it.
		q.r.qmu.Lock()
		q.dmu.Lock()
		ev := QueryEvent{Snapshot: true, Items: q.snapshot()}
		q.queue, q.resync = nil, false
		q.dmu.Unlock()
		q.r.qmu.Unlock()
		return ev, true
	}
	defer q.dmu.Unlock()
	if len(q.queue) == 0 {
		return QueryEvent{}, false
	}
	ev := q.queue[0]
	q.queue[0] = QueryEvent{}
	q.queue = q.queue[1:]
	return ev, true
}

func (q *LiveQuery) deliver() {
	if q.ch != nil {
		defer close(q.ch)
	}
	for {
		select {
		case <-q.done:
			return
		case <-q.signal:
		}
		for {
			ev, ok := q.next()
			if !ok {
				break
			}
			if q.onChange != nil {
				select {
				case <-q.done:
					return
				default:
				}
				q.onChange(ev)
				continue
			}
			select {
			case q.ch <- ev:
			case <-q.done:
				return
			}
		}
	}
}
