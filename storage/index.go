package storage

import (
	"encoding/binary"
	"hash/maphash"
	"slices"
	"sync"

	"github.com/goat-gateway/goat-gateway/core"
)

// entry is what the index keeps per commit. The commit's JSON stays in the
// log file (and the page cache) and is read back on demand, which keeps a
// repository at about a hundred bytes of memory per commit whatever the
// size of its values (docs/storage.md has the measurement).
//
// An entry never changes once appended, so a reader may iterate a prefix of
// the slice without holding the lock (see Repo.EachID).
type entry struct {
	id    core.CommitID
	seq   uint64
	ts    int64
	pos   int64  // byte position of the record's frame in the log file
	size  uint32 // frame length, header included
	key   uint32 // index into index.keys
	par   uint32 // the parents are edgeParent[par : par+npar]
	npar  uint16
	flags byte
	base  int32 // ordinal of the delta base; -1 when the commit has full data
	prev  int32 // previous commit of the same key in log order; -1 if none
}

// keyState is the per-item part of the index.
type keyState struct {
	name  string
	heads []int32 // commits of the key without children, sorted by id
	last  int32   // the key's newest commit in log order
}

// index is a repository's in-memory index. Ordinals (positions in ents)
// are log offsets. It is not safe for concurrent use by itself: Repo holds
// a RWMutex around it.
type index struct {
	ents       []entry
	childHead  []int32 // per commit: its first child edge + 1; 0 if it has no children
	edgeParent []int32 // per parent edge, in log order of the child
	edgeChild  []int32
	edgeNext   []int32 // the next child edge of the same parent + 1; 0 ends the list
	ids        idTable
	keys       []keyState
	// keyIdx maps item keys to indices of keys. An index loaded from a
	// checkpoint builds it on first use (keyMap): a sync round, a log
	// page or a repository's state need none, and 100,000 inserts are a
	// good part of what opening a big repository costs.
	keyIdx     map[string]uint32
	keyIdxOnce sync.Once
	sortedKeys []uint32   // key indices by name; built once after a bulk load, then kept sorted
	bulk       bool       // loading a log: sortedKeys is appended to, sorted by finishBulk
	huge       hugeAdvice // huge pages asked for the arrays a bulk load fills; finishBulk withdraws it
	digest     [32]byte
}

func newIndex() *index {
	return &index{keyIdx: map[string]uint32{}, ids: newIDTable(16, nil)}
}

// keyMap returns keyIdx, building it first if the index was loaded
// without it. Readers call it under the repository's read lock, so the
// build is guarded by its own once.
func (x *index) keyMap() map[string]uint32 {
	x.keyIdxOnce.Do(func() {
		if x.keyIdx != nil {
			return
		}
		m := make(map[string]uint32, cap(x.keys))
		for k := range x.keys {
			m[x.keys[k].name] = uint32(k)
		}
		x.keyIdx = m
	})
	return x.keyIdx
}

// lookup returns the ordinal of id, or -1.
func (x *index) lookup(id core.CommitID) int32 { return x.ids.find(x.ents, id) }

// keyOf returns the index of the named key, or -1.
func (x *index) keyOf(name string) int {
	k, ok := x.keyMap()[name]
	if !ok {
		return -1
	}
	return int(k)
}

// add appends a commit whose parents are present (ordinals in parents, all
// of the same key) and returns its ordinal. e's key, par, npar and prev
// fields are filled in here.
func (x *index) add(e entry, key []byte, parents []int32) int32 {
	i := int32(len(x.ents))
	keyIdx := x.keyMap()
	k, ok := keyIdx[string(key)]
	if !ok {
		k = uint32(len(x.keys))
		name := string(key)
		x.keys = append(x.keys, keyState{name: name, last: -1})
		keyIdx[name] = k
		if x.bulk {
			x.sortedKeys = append(x.sortedKeys, k)
		} else {
			at, _ := slices.BinarySearchFunc(x.sortedKeys, name, func(a uint32, n string) int { return compareKeys(x.keys[a].name, n) })
			x.sortedKeys = slices.Insert(x.sortedKeys, at, k)
		}
	}
	ks := &x.keys[k]
	e.key, e.prev = k, ks.last
	e.par, e.npar = uint32(len(x.edgeParent)), uint16(len(parents))
	for _, p := range parents {
		edge := int32(len(x.edgeParent))
		x.edgeParent = append(x.edgeParent, p)
		x.edgeChild = append(x.edgeChild, i)
		x.edgeNext = append(x.edgeNext, x.childHead[p])
		x.childHead[p] = edge + 1
		if at := slices.Index(ks.heads, p); at >= 0 {
			ks.heads = slices.Delete(ks.heads, at, at+1)
		}
	}
	x.ents = append(x.ents, e)
	x.childHead = append(x.childHead, 0)
	at, _ := slices.BinarySearchFunc(ks.heads, e.id, func(h int32, id core.CommitID) int { return x.ents[h].id.Compare(id) })
	ks.heads = slices.Insert(ks.heads, at, i)
	ks.last = i
	x.ids.insert(x.ents, i)
	xorID(&x.digest, &e.id)
	return i
}

// xorID adds id to digest d (XOR), eight bytes at a time: a million
// commits are a million of these when an index loads.
func xorID(d *[32]byte, id *core.CommitID) {
	for j := 0; j < 32; j += 8 {
		binary.LittleEndian.PutUint64(d[j:], binary.LittleEndian.Uint64(d[j:])^binary.LittleEndian.Uint64(id[j:]))
	}
}

// reserve makes room for n commits in all, so that a bulk load of a big
// log grows its slices once instead of a dozen times.
func (x *index) reserve(n int) {
	if n <= cap(x.ents) {
		return
	}
	x.ents = slices.Grow(x.ents, n-len(x.ents))
	x.childHead = slices.Grow(x.childHead, n-len(x.childHead))
	adviseHuge(&x.huge, x.ents)
	adviseHuge(&x.huge, x.childHead)
	if e := n - len(x.edgeParent); e > 0 {
		x.edgeParent = slices.Grow(x.edgeParent, e)
		x.edgeChild = slices.Grow(x.edgeChild, e)
		x.edgeNext = slices.Grow(x.edgeNext, e)
		for _, s := range [][]int32{x.edgeParent, x.edgeChild, x.edgeNext} {
			adviseHuge(&x.huge, s)
		}
	}
	if 2*n > len(x.ids.slots) {
		size := len(x.ids.slots)
		for size < 2*n {
			size *= 2
		}
		x.ids.resize(x.ents, size, &x.huge)
	}
}

// finishBulk ends a bulk load: sorts the keys once and gives back the
// slack of an overestimated reserve.
func (x *index) finishBulk() {
	x.bulk = false
	x.huge.withdraw()
	byName := func(a, b uint32) int { return compareKeys(x.keys[a].name, x.keys[b].name) }
	if !slices.IsSortedFunc(x.sortedKeys, byName) { // sorted already when a checkpoint had every key
		slices.SortFunc(x.sortedKeys, byName)
	}
	x.ents = trim(x.ents)
	x.childHead = trim(x.childHead)
	x.edgeParent = trim(x.edgeParent)
	x.edgeChild = trim(x.edgeChild)
	x.edgeNext = trim(x.edgeNext)
}

// trim reallocates s to its length when more than 1/8 of it is slack.
func trim[S ~[]E, E any](s S) S {
	if cap(s)-len(s) <= len(s)/8 {
		return s
	}
	return append(S(nil), s...)
}

// compareKeys orders item keys. Keys are ASCII (^[A-Za-z0-9._~:@-]+$), so
// byte order is also the UTF-16 order that core.CompareStrings defines.
func compareKeys(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// parents returns the ordinals of e's parents.
func (x *index) parents(e *entry) []int32 { return x.edgeParent[e.par : e.par+uint32(e.npar)] }

// children returns the ordinals of i's children.
func (x *index) children(i int32) []int32 {
	var out []int32
	for edge := x.childHead[i]; edge != 0; edge = x.edgeNext[edge-1] {
		out = append(out, x.edgeChild[edge-1])
	}
	return out
}

// winner returns the head whose value an item shows while it has several
// heads and no merge: the greatest by (ts, id), the head that merging puts
// last (DESIGN section 4).
func (x *index) winner(heads []int32) int32 {
	best := heads[0]
	for _, h := range heads[1:] {
		a, b := &x.ents[h], &x.ents[best]
		if a.ts > b.ts || (a.ts == b.ts && a.id.Compare(b.id) > 0) {
			best = h
		}
	}
	return best
}

// idTable maps commit ids to ordinals: open addressing with linear probing
// over 4-byte slots, the ids themselves living in the entries. A Go map
// would store each 32-byte id a second time, for about 50 more bytes per
// commit. (A parallel tag byte per slot, to spare probes a look at the
// entry, measured slower: the slot array itself is the cache miss.) The
// hash is seeded per process, so crafted ids cannot aim at one probe chain.
type idTable struct {
	slots []int32 // ordinal + 1; 0 is empty
	n     int
	seed  maphash.Seed
}

// newIDTable returns a table for capacity ids. Its slots are filled
// while h is in force (nil: small, or filled later by inserts).
func newIDTable(capacity int, h *hugeAdvice) idTable {
	size := 16
	for size < 2*capacity {
		size *= 2
	}
	slots := make([]int32, size)
	adviseHuge(h, slots)
	return idTable{slots: slots, seed: maphash.MakeSeed()}
}

func (t *idTable) home(id *core.CommitID) int {
	return int(maphash.Bytes(t.seed, id[:]) & uint64(len(t.slots)-1))
}

func (t *idTable) find(ents []entry, id core.CommitID) int32 {
	mask := len(t.slots) - 1
	for h := t.home(&id); ; h = (h + 1) & mask {
		s := t.slots[h]
		if s == 0 {
			return -1
		}
		if ents[s-1].id == id {
			return s - 1
		}
	}
}

// insert adds ordinal i (whose id is ents[i].id and not yet present).
func (t *idTable) insert(ents []entry, i int32) {
	if 2*(t.n+1) > len(t.slots) {
		t.resize(ents, 2*len(t.slots), nil)
	}
	t.place(&ents[i].id, i)
	t.n++
}

func (t *idTable) place(id *core.CommitID, i int32) {
	mask := len(t.slots) - 1
	h := t.home(id)
	for t.slots[h] != 0 {
		h = (h + 1) & mask
	}
	t.slots[h] = i + 1
}

// placeNew places ordinal i unless its id is already in the table, and
// reports whether it did.
func (t *idTable) placeNew(ents []entry, i int32) bool {
	id := &ents[i].id
	mask := len(t.slots) - 1
	h := t.home(id)
	for s := t.slots[h]; s != 0; s = t.slots[h] {
		if ents[s-1].id == *id {
			return false
		}
		h = (h + 1) & mask
	}
	t.slots[h] = i + 1
	return true
}

// resize rebuilds the table with size slots (a power of two). A bulk
// load passes its hugeAdvice, which it withdraws once it has filled the
// table; nil means that the table is filled here.
func (t *idTable) resize(ents []entry, size int, h *hugeAdvice) {
	old := t.slots
	t.slots = make([]int32, size)
	if h == nil { // filled here and now
		h = &hugeAdvice{}
		defer h.withdraw()
	}
	adviseHuge(h, t.slots)
	for _, s := range old {
		if s != 0 {
			t.place(&ents[s-1].id, s-1)
		}
	}
}
