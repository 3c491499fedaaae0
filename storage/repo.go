package storage

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
)

// Status says what Append did with one commit.
type Status int

const (
	// Appended: the commit is now in the log, durably.
	Appended Status = iota + 1
	// Duplicate: the commit was already present (or came twice); it is
	// durable.
	Duplicate
	// Rejected: the commit was not appended; Result.Err says why.
	Rejected
)

func (s Status) String() string {
	switch s {
	case Appended:
		return "appended"
	case Duplicate:
		return "duplicate"
	case Rejected:
		return "rejected"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Result reports what happened to one commit of an Append call.
type Result struct {
	ID     core.CommitID
	Status Status
	Offset int64  // the record's log offset; -1 when rejected
	Seq    uint64 // the record's sequence number; 0 when rejected
	Err    error  // why it was rejected: wraps core.ErrMissingParents, core.ErrInvalid, or the Verify hook's error
}

// Record is one record of a repository log.
type Record struct {
	Offset int64 // ordinal in the log
	Seq    uint64
	ID     core.CommitID
	Key    string
	JSON   []byte // the commit's canonical JSON; shared: never modify it
	// Origin is what the appender passed to AppendFrom, for Config.OnAppend
	// (a node tells its own writes from a replica's). It is not stored:
	// merge commits the store makes and records read back have 0.
	Origin uint8
}

// ResultsError sums up the results of an Append as gsync.Local.Ingest
// reports them: nil when nothing was rejected; an error wrapping
// core.ErrMissingParents when the only rejections were for missing parents
// (a later batch may bring them); else an error naming the first other
// rejection.
func ResultsError(res []Result) error {
	var missing, rejected int
	var first error
	for _, x := range res {
		if x.Status != Rejected {
			continue
		}
		if errors.Is(x.Err, core.ErrMissingParents) {
			missing++
			continue
		}
		rejected++
		if first == nil {
			first = fmt.Errorf("commit %s: %w", x.ID, x.Err)
		}
	}
	switch {
	case rejected > 0:
		return fmt.Errorf("%d of %d commits rejected, first %w", rejected, len(res), first)
	case missing > 0:
		return fmt.Errorf("%d of %d commits: %w", missing, len(res), core.ErrMissingParents)
	}
	return nil
}

// Commit decodes the record's commit. The JSON was checksummed by this
// process, so the id is not recomputed.
func (r Record) Commit() (*core.Commit, error) { return core.DecodeCommitTrusted(r.JSON) }

// Value is the current value of an item.
type Value struct {
	Key     string
	Schema  string
	Data    map[string]any // freshly decoded: the caller may keep and modify it
	Head    core.CommitID  // the commit whose value this is
	TS      int64
	Deleted bool // Data["isDeleted"] == true: a tombstone
	Heads   int  // how many heads the item has; more than 1 until merged
}

// CommitMeta is what the index knows about a commit without reading it.
type CommitMeta struct {
	ID      core.CommitID
	Key     string
	Parents []core.CommitID
	TS      int64
	Offset  int64
	Seq     uint64
	Delta   bool // the commit carries a delta (Base is set)
	Base    core.CommitID
	Merge   bool
	Deleted bool // its resolved value is a tombstone
}

// VerifyFunc checks one commit before it is appended: signatures,
// schemas, authorization, merge recomputation (not storage's business).
// data is the commit's full value (its delta applied); v sees the
// repository and the other commits of the same batch, so a merge commit or
// a delta whose parents arrive in the same batch can be checked. An error
// rejects that commit alone.
type VerifyFunc func(v View, c *core.Commit, data map[string]any) error

// batchView is a View over the repository plus a batch being prepared.
type batchView struct {
	r       *Repo
	inBatch map[core.CommitID]*pending
}

func (b batchView) Name() string { return b.r.name }

func (b batchView) Commit(id core.CommitID) (*core.Commit, bool) {
	if p := b.inBatch[id]; p != nil {
		return p.c, true
	}
	return b.r.Commit(id)
}

// Parents is Repo.Parents over the batch too (merge.Ancestors, so that
// verifying a pushed merge commit walks the index, not the log).
func (b batchView) Parents(id core.CommitID) (int64, []core.CommitID, bool) {
	if p := b.inBatch[id]; p != nil {
		return p.c.TS, p.c.Parents, true
	}
	return b.r.Parents(id)
}

// View is the read access a Merger gets to a repository. *Repo implements
// it; its Commit method also makes it a merge.Graph.
type View interface {
	// Name returns the repository name.
	Name() string
	// Commit returns a stored commit as stored (with Data or a Delta), or
	// false if it is absent or cannot be read (that error is logged).
	Commit(id core.CommitID) (*core.Commit, bool)
}

// Merger makes the merge commit for an item that an append left with
// several heads (DESIGN section 4). heads are sorted by id. It returns nil
// to leave the heads alone. The storage appends what it returns (without
// calling Config.Verify) before acknowledging the append that caused it; a
// merge commit is derived data, so an error is logged, not returned to the
// appender. It runs on the repository's writer goroutine: it must not call
// Append.
type Merger interface {
	Merge(v View, key string, heads []core.CommitID) (*core.Commit, error)
}

var _ View = (*Repo)(nil)

// Repo is one open repository: its log file and its index. Its methods are
// safe for concurrent use. Get one from Store.Repo and release it when
// done; a released repository may be closed when idle, after which its
// methods return core.ErrClosed.
type Repo struct {
	name   string
	path   string
	cfg    *Config
	seq    *sequencer
	logger *slog.Logger
	log    *logFile // appended to by the writer goroutine only

	mu         sync.RWMutex // guards idx, changed, fileClosed; held (read) across file reads
	idx        *index
	changed    chan struct{} // closed and replaced after every append
	fileClosed bool

	sendMu sync.RWMutex // held (read) while sending to reqs, (write) to close it
	closed bool
	reqs   chan *appendReq
	wg     sync.WaitGroup

	ckptRecords atomic.Int64 // records covered by the newest checkpoint on disk; -1 for none
	ckptBusy    atomic.Bool  // a checkpoint is being written in the background

	// Owned by the Store, under Store.mu.
	refs      int
	idleSince time.Time
}

// appendReq is one Append call handed to the writer.
type appendReq struct {
	items []*pending
	bytes int
	err   error
	done  chan struct{}
}

// pending is one commit on its way to the log.
type pending struct {
	c      *core.Commit
	in     int    // index in the caller's slice
	body   []byte // commit body: index fields then the canonical JSON
	json   []byte // aliases body
	flags  byte
	res    Result
	settle bool           // res is final before the writer sees it
	same   *pending       // a repeat, within one group, of this earlier item
	data   map[string]any // the commit's full value (delta applied), for Verify
	origin uint8          // Record.Origin
}

func openRepo(name, path string, cfg *Config, seq *sequencer, logger *slog.Logger) (*Repo, error) {
	idx := newIndex()
	idx.bulk = true
	ckpt := -1 // records covered by the checkpoint the index was loaded from
	var ckptLog LogID
	resume := func(f File, size int64, id LogID) *ckptStart {
		if cfg.CheckpointEvery < 0 {
			return nil
		}
		x, st, err := loadCheckpoint(cfg.FS, ckptPath(path), f, size, id)
		if err != nil {
			logger.Warn("index checkpoint not used: indexing the whole log", logKeyRepo, name, logKeyReason, err.Error())
			return nil
		}
		if x == nil {
			return nil
		}
		idx, ckpt, ckptLog = x, st.records, id
		idx.bulk = true
		return &st
	}
	var parents []int32
	var size int64
	visit := func(pos int64, n int, h payloadHeader, body []byte) error {
		if n == 1000 && size > 0 {
			// Records are much alike: the first thousand predict the rest.
			idx.reserve(int(float64(size) / float64(pos-headerSize) * 1000 * 1.05))
		}
		v, err := parseCommitBody(body)
		if err != nil {
			return err
		}
		if idx.lookup(v.id) >= 0 {
			return fmt.Errorf("%w: commit %s appears twice", core.ErrCorrupt, v.id)
		}
		if len(idx.ents) >= maxCommits {
			return fmt.Errorf("%w: more than %d commits", core.ErrTooLarge, maxCommits)
		}
		parents = parents[:0]
		for i := range v.nparents() {
			p := idx.lookup(v.parent(i))
			if p < 0 {
				return fmt.Errorf("%w: commit %s precedes its parent %s", core.ErrCorrupt, v.id, v.parent(i))
			}
			if idx.keys[idx.ents[p].key].name != string(v.key) {
				return fmt.Errorf("%w: commit %s has a parent of another item", core.ErrCorrupt, v.id)
			}
			parents = append(parents, p)
		}
		base := int32(-1)
		if v.flags&flagDelta != 0 {
			if base = idx.lookup(v.base); base < 0 || idx.ents[base].flags&flagDelta != 0 {
				return fmt.Errorf("%w: commit %s: delta base %s absent or not full data", core.ErrCorrupt, v.id, v.base)
			}
		}
		idx.add(entry{
			id: v.id, seq: h.seq, ts: v.ts, pos: pos,
			size:  uint32(frameHeaderSize + payloadHeaderSize + len(body)),
			flags: v.flags, base: base,
		}, v.key, parents)
		return nil
	}
	if f, err := cfg.FS.OpenFile(path, os.O_RDONLY, 0); err == nil {
		if st, err := f.Stat(); err == nil {
			size = st.Size()
		}
		f.Close()
	}
	l, res, err := openLog(cfg.FS, path, cfg.NoSync, logger, resume, visit)
	if err != nil {
		idx.huge.withdraw()
	}
	if errors.Is(err, core.ErrNotFound) {
		return nil, fmt.Errorf("repository %s: %w", name, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open repo %q: %w", name, err)
	}
	idx.finishBulk()
	seq.observe(res.lastSeq)
	r := &Repo{
		name: name, path: path, cfg: cfg, seq: seq, logger: logger, log: l,
		idx: idx, changed: make(chan struct{}),
		reqs: make(chan *appendReq, 256),
	}
	if ckpt >= 0 && l.id == ckptLog {
		// A checkpoint on disk covers this many records of this log; one
		// is written again only when enough has been appended since.
		r.ckptRecords.Store(int64(ckpt))
	} else {
		r.ckptRecords.Store(-1)
	}
	r.wg.Add(1)
	go r.run()
	return r, nil
}

// maxCommits bounds a repository so that ordinals fit the index's int32s.
const maxCommits = 1<<31 - 2

// close stops the writer after it has finished every append already
// handed to it, then closes the file.
func (r *Repo) close() error {
	r.sendMu.Lock()
	if r.closed {
		r.sendMu.Unlock()
		return nil
	}
	r.closed = true
	close(r.reqs)
	r.sendMu.Unlock()
	r.wg.Wait()
	r.mu.Lock()
	r.fileClosed = true
	// Wake long polls (Wait): they find the repository closed and return.
	close(r.changed)
	var lastSeq uint64
	n := len(r.idx.ents)
	if n > 0 {
		lastSeq = r.idx.ents[n-1].seq
	}
	err := r.log.seal(lastSeq)
	var snap *ckptSnapshot
	if err == nil && r.wantCheckpoint(true) {
		var serr error
		if snap, serr = r.snapshotLocked(r.log.size, r.log.sealed); serr != nil {
			r.logger.Warn("index checkpoint not written", logKeyRepo, r.name, logKeyErr, serr)
		}
	}
	if cerr := r.log.close(); err == nil {
		err = cerr
	}
	r.mu.Unlock()
	if snap != nil {
		r.saveCheckpoint(snap)
	}
	return err
}

// wantCheckpoint reports whether the index should be checkpointed now:
// while open, once the records appended since the last checkpoint reach
// Config.CheckpointEvery and a quarter of what it covers (so that the
// bytes written for checkpoints stay proportional to the bytes appended,
// whatever the log's size); when closing, once there is anything new in a
// log of at least ckptMinOnClose records (smaller logs open fast without
// one). Called by the writer, or by close after the writer ended.
func (r *Repo) wantCheckpoint(closing bool) bool {
	every := r.cfg.CheckpointEvery
	if every < 0 || r.log.broken != nil {
		return false
	}
	n, have := int64(len(r.idx.ents)), r.ckptRecords.Load()
	if n == have {
		return false
	}
	if closing {
		return n >= min(ckptMinOnClose, int64(every))
	}
	return n-max(have, 0) >= max(int64(every), have/4)
}

// ckptMinOnClose is the smallest log that closing checkpoints.
const ckptMinOnClose = 4096

// saveCheckpoint writes a checkpoint. A failure costs the next open time,
// never data, so it is logged rather than returned.
func (r *Repo) saveCheckpoint(s *ckptSnapshot) {
	start := time.Now()
	if err := writeCheckpoint(r.cfg.FS, ckptPath(r.path), s, r.cfg.NoSync); err != nil {
		r.logger.Warn("index checkpoint not written", logKeyRepo, r.name, logKeyErr, err)
		return
	}
	r.ckptRecords.Store(int64(s.hdr.records))
	if d := time.Since(start); d > time.Second {
		r.logger.Info("wrote a large index checkpoint", logKeyRepo, r.name, logKeyRecords, s.hdr.records, logKeyElapsed, d)
	}
}

// checkpointInBackground starts writing a checkpoint of the index as it
// is now, if one is due and none is being written. The writer calls it
// after a write: the snapshot is taken under the read lock, and encoding
// and writing it run on their own goroutine, which close waits for.
func (r *Repo) checkpointInBackground() {
	if !r.wantCheckpoint(false) || !r.ckptBusy.CompareAndSwap(false, true) {
		return
	}
	r.mu.RLock()
	e := &r.idx.ents[len(r.idx.ents)-1]
	snap, err := r.snapshotLocked(e.pos+int64(e.size), false)
	r.mu.RUnlock()
	if err != nil {
		r.ckptBusy.Store(false)
		r.logger.Warn("index checkpoint not written", logKeyRepo, r.name, logKeyErr, err)
		return
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer r.ckptBusy.Store(false)
		r.saveCheckpoint(snap)
	}()
}

func (r *Repo) isClosed() bool {
	r.sendMu.RLock()
	defer r.sendMu.RUnlock()
	return r.closed
}

// Name returns the repository name.
func (r *Repo) Name() string { return r.name }

// LogID returns the identity of the repository's log (see the package
// comment).
func (r *Repo) LogID() LogID { return r.log.id }

// Append appends the commits whose parents are present, in a topological
// order of the batch, and returns one Result per commit in the caller's
// order, after the appended records are durable.
//
// A commit already present is a Duplicate, not an error. A commit whose
// parents (or delta base) are neither present nor in the batch is Rejected
// with core.ErrMissingParents; one that Config.Verify refuses, whose id does
// not recompute, whose parents belong to another item, or whose delta does
// not apply, is Rejected with the reason; the rest of the batch is appended
// all the same.
//
// The error is for the call as a whole: core.ErrClosed, an I/O error (the
// repository then refuses writes until reopened), or ctx's error. After an
// error some commits may have been appended; appending them again is
// harmless.
func (r *Repo) Append(ctx context.Context, commits []*core.Commit) ([]Result, error) {
	return r.AppendVerified(ctx, commits, r.cfg.Verify)
}

// AppendVerified is Append with verify in place of Config.Verify, for
// callers whose checks depend on where the commits came from (a client's
// push is authorized against the rules; a peer node's replication is not).
func (r *Repo) AppendVerified(ctx context.Context, commits []*core.Commit, verify VerifyFunc) ([]Result, error) {
	return r.AppendFrom(ctx, commits, verify, 0)
}

// AppendFrom is AppendVerified whose records carry origin (Record.Origin)
// when Config.OnAppend sees them.
func (r *Repo) AppendFrom(ctx context.Context, commits []*core.Commit, verify VerifyFunc, origin uint8) ([]Result, error) {
	return r.appendFrom(ctx, commits, nil, verify, origin)
}

// AppendEncoded is AppendFrom for commits whose JSON the caller has:
// jsons[i] is exactly what commits[i].MarshalJSON returns and commits[i].ID
// the hash of its content (a commit the caller signed: core.Commit.SignJSON
// gives both from one encoding; or one received in canonical form:
// core.DecodeCanonicalCommitAt checks both). It is stored as given,
// without encoding the commit again to check its id. A nil jsons[i] is
// encoded and checked as AppendFrom does.
func (r *Repo) AppendEncoded(ctx context.Context, commits []*core.Commit, jsons [][]byte, verify VerifyFunc, origin uint8) ([]Result, error) {
	if len(jsons) != len(commits) {
		return nil, fmt.Errorf("%w: %d commits, %d encodings", core.ErrInvalid, len(commits), len(jsons))
	}
	return r.appendFrom(ctx, commits, jsons, verify, origin)
}

func (r *Repo) appendFrom(ctx context.Context, commits []*core.Commit, jsons [][]byte, verify VerifyFunc, origin uint8) ([]Result, error) {
	results := make([]Result, len(commits))
	items := r.prepare(commits, jsons, verify)
	var send []*pending
	size := 0
	for _, p := range items {
		if p.settle {
			results[p.in] = p.res
			continue
		}
		p.origin = origin
		send = append(send, p)
		size += len(p.body)
	}
	if len(send) == 0 {
		return results, nil
	}
	req := &appendReq{items: send, bytes: size, done: make(chan struct{})}
	r.sendMu.RLock()
	if r.closed {
		r.sendMu.RUnlock()
		return nil, fmt.Errorf("append to %q: %w", r.name, core.ErrClosed)
	}
	select {
	case r.reqs <- req:
	case <-ctx.Done():
		r.sendMu.RUnlock()
		return nil, ctx.Err()
	}
	r.sendMu.RUnlock()
	select {
	case <-req.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if req.err != nil {
		return nil, fmt.Errorf("append to %q: %w", r.name, req.err)
	}
	for _, p := range send {
		results[p.in] = p.res
	}
	return results, nil
}

func reject(p *pending, err error) {
	p.res = Result{ID: p.res.ID, Status: Rejected, Offset: -1, Err: err}
	p.settle = true
}

// prepare does everything that needs no ordering with other appends, on
// the caller's goroutine so that it runs in parallel: the duplicate check,
// id recomputation, the Verify hook, encoding, delta validation, and a
// topological order of the batch.
func (r *Repo) prepare(commits []*core.Commit, jsons [][]byte, verify VerifyFunc) []*pending {
	items := make([]*pending, len(commits))
	inBatch := make(map[core.CommitID]*pending, len(commits))
	for i, c := range commits {
		p := &pending{c: c, in: i}
		items[i] = p
		if c == nil {
			reject(p, fmt.Errorf("%w: nil commit", core.ErrInvalid))
			continue
		}
		p.res.ID = c.ID
		if res, ok := r.existing(c.ID); ok {
			p.res, p.settle = res, true
			continue
		}
		if c.Repo != r.name {
			reject(p, fmt.Errorf("%w: commit %s belongs to repository %q, not %q", core.ErrInvalid, c.ID, c.Repo, r.name))
			continue
		}
		if !c.IsMerge() && len(c.Sig) == 0 {
			// Stored commits are decoded by DecodeCommitTrusted, which
			// (like every peer) wants a signature on every non-merge.
			reject(p, fmt.Errorf("%w: commit %s: unsigned", core.ErrInvalid, c.ID))
			continue
		}
		if jsons != nil && jsons[i] != nil {
			p.json = jsons[i] // the caller's encoding (AppendEncoded)
		} else {
			// One encoding gives both the record's JSON and the id check.
			json, id, err := c.MarshalJSONAndID()
			if err != nil {
				reject(p, fmt.Errorf("commit %s: %w", c.ID, err))
				continue
			}
			if id != c.ID {
				reject(p, fmt.Errorf("%w: commit %s: id does not match the content (computed %s)", core.ErrInvalid, c.ID, id))
				continue
			}
			p.json = json
		}
		if _, dup := inBatch[c.ID]; !dup {
			inBatch[c.ID] = p
		}
	}
	for _, p := range items {
		if p.settle {
			continue
		}
		if err := r.encode(p, inBatch); err != nil {
			reject(p, err)
			continue
		}
		if verify != nil {
			if err := verify(batchView{r, inBatch}, p.c, p.data); err != nil {
				reject(p, fmt.Errorf("commit %s: %w", p.c.ID, err))
			}
		}
		p.data = nil
	}
	return topoOrder(items, inBatch)
}

// encode checks p's delta against its base, works out its flags, and
// builds its record body.
func (r *Repo) encode(p *pending, inBatch map[core.CommitID]*pending) error {
	c := p.c
	data := c.Data
	if c.IsMerge() {
		p.flags |= flagMerge
	}
	if c.Delta != nil {
		p.flags |= flagDelta
		var base map[string]any
		if b := inBatch[c.Delta.Base]; b != nil {
			if b.c.Key != c.Key || b.c.Data == nil {
				return fmt.Errorf("%w: commit %s: delta base %s is not a full-data commit of the same item", core.ErrInvalid, c.ID, c.Delta.Base)
			}
			base = b.c.Data
		} else {
			m, ok := r.Meta(c.Delta.Base)
			if !ok {
				return fmt.Errorf("%w: commit %s: delta base %s", core.ErrMissingParents, c.ID, c.Delta.Base)
			}
			if m.Key != c.Key || m.Delta {
				return fmt.Errorf("%w: commit %s: delta base %s is not a full-data commit of the same item", core.ErrInvalid, c.ID, c.Delta.Base)
			}
			var err error
			if base, err = r.Data(c.Delta.Base); err != nil {
				return fmt.Errorf("commit %s: read delta base: %w", c.ID, err)
			}
		}
		var err error
		if data, err = core.ApplyDelta(base, c.Delta); err != nil {
			return fmt.Errorf("commit %s: delta: %w", c.ID, err)
		}
	}
	if core.IsDeleted(data) {
		p.flags |= flagDeleted
	}
	p.data = data
	m := commitMeta{id: c.ID, ts: c.TS, flags: p.flags, parents: c.Parents, key: c.Key}
	if c.Delta != nil {
		m.base = c.Delta.Base
	}
	p.body = appendCommitBody(make([]byte, 0, 43+32*len(c.Parents)+32+1+len(c.Key)+len(p.json)), &m, p.json)
	p.json = p.body[len(p.body)-len(p.json):]
	if payloadHeaderSize+len(p.body) > maxPayload {
		return fmt.Errorf("%w: commit %s: record of %d bytes", core.ErrTooLarge, c.ID, payloadHeaderSize+len(p.body))
	}
	return nil
}

// topoOrder orders the batch so that every commit follows its parents that
// are in the batch, and otherwise keeps the caller's order: Kahn's
// algorithm, always taking the earliest ready commit. Settled items and
// repeats go last (the writer decides about repeats).
func topoOrder(items []*pending, inBatch map[core.CommitID]*pending) []*pending {
	indeg := make([]int, len(items))
	kids := make(map[int][]int)
	live := func(p *pending) bool { return !p.settle && inBatch[p.c.ID] == p }
	for i, p := range items {
		if !live(p) {
			continue
		}
		for _, par := range p.c.Parents {
			if q := inBatch[par]; q != nil && live(q) {
				indeg[i]++
				kids[q.in] = append(kids[q.in], i)
			}
		}
	}
	out := make([]*pending, 0, len(items))
	placed := make([]bool, len(items))
	ready := &intHeap{}
	for i, p := range items {
		if live(p) && indeg[i] == 0 {
			heap.Push(ready, i)
		}
	}
	for ready.Len() > 0 {
		i := heap.Pop(ready).(int)
		out = append(out, items[i])
		placed[i] = true
		for _, k := range kids[i] {
			if indeg[k]--; indeg[k] == 0 {
				heap.Push(ready, k)
			}
		}
	}
	for i, p := range items {
		if !placed[i] {
			out = append(out, p)
		}
	}
	return out
}

type intHeap []int

func (h intHeap) Len() int           { return len(h) }
func (h intHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h intHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *intHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// existing reports the Result of a commit that is already present.
func (r *Repo) existing(id core.CommitID) (Result, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	i := r.idx.lookup(id)
	if i < 0 {
		return Result{}, false
	}
	return Result{ID: id, Status: Duplicate, Offset: int64(i), Seq: r.idx.ents[i].seq}, true
}

// run is the writer goroutine: it takes every append waiting, writes them
// with one write and one fsync, and acknowledges them together.
func (r *Repo) run() {
	defer r.wg.Done()
	g := &group{pend: map[core.CommitID]int32{}}
	for req := range r.reqs {
		batch := []*appendReq{req}
		size := req.bytes
	drain:
		for size < r.cfg.MaxBatchBytes {
			select {
			case q, ok := <-r.reqs:
				if !ok {
					break drain
				}
				batch = append(batch, q)
				size += q.bytes
			default:
				break drain
			}
		}
		r.commit(g, batch)
	}
}

// group is one write: the records it carries, in log order.
type group struct {
	items []*pending
	pend  map[core.CommitID]int32 // id -> ordinal, for the items of this group
	buf   []byte
}

func (g *group) reset() {
	g.items = g.items[:0]
	clear(g.pend)
	g.buf = g.buf[:0]
}

func (r *Repo) commit(g *group, batch []*appendReq) {
	g.reset()
	for _, req := range batch {
		for _, p := range req.items {
			r.admit(g, p)
		}
	}
	touched, deliver, err := r.writeGroup(g)
	for _, req := range batch {
		for _, p := range req.items {
			if p.same != nil {
				p.res = p.same.res
				if p.res.Status == Appended {
					p.res.Status = Duplicate
				}
			}
		}
	}
	if err == nil && r.cfg.Merger != nil && len(touched) > 0 {
		deliver = r.merge(g, touched, deliver)
	}
	// The appenders are answered before OnDurable and AfterAppend: a
	// writer's acknowledgement does not wait for the fan-out to the
	// streams (at 1,000 of them it waited about half a millisecond at the
	// median for it, and for the fan-out writers it set going).
	for _, req := range batch {
		req.err = err
		close(req.done)
	}
	if deliver != nil {
		deliver()
	}
	if err == nil {
		r.checkpointInBackground()
	}
}

// admit decides, now that the order is fixed, whether p goes into the
// group: the last checks are the ones that depend on other appends.
func (r *Repo) admit(g *group, p *pending) {
	if p.settle {
		return
	}
	c := p.c
	base := int32(len(r.idx.ents)) // the writer is the only mutator: no lock needed to read
	if i := r.idx.lookup(c.ID); i >= 0 {
		p.res = Result{ID: c.ID, Status: Duplicate, Offset: int64(i), Seq: r.idx.ents[i].seq}
		return
	}
	if o, ok := g.pend[c.ID]; ok {
		p.res = Result{ID: c.ID, Status: Duplicate, Offset: int64(o)}
		p.same = g.items[o-base]
		return
	}
	keyOf := func(id core.CommitID) (string, byte, bool) {
		if i := r.idx.lookup(id); i >= 0 {
			e := &r.idx.ents[i]
			return r.idx.keys[e.key].name, e.flags, true
		}
		if o, ok := g.pend[id]; ok {
			q := g.items[o-base]
			return q.c.Key, q.flags, true
		}
		return "", 0, false
	}
	var missing []string
	for _, par := range c.Parents {
		k, _, ok := keyOf(par)
		if !ok {
			missing = append(missing, par.String())
			continue
		}
		if k != c.Key {
			reject(p, fmt.Errorf("%w: commit %s: parent %s belongs to item %q, not %q", core.ErrInvalid, c.ID, par, k, c.Key))
			return
		}
	}
	if c.Delta != nil {
		if _, fl, ok := keyOf(c.Delta.Base); !ok {
			missing = append(missing, c.Delta.Base.String())
		} else if fl&flagDelta != 0 {
			reject(p, fmt.Errorf("%w: commit %s: delta base %s carries a delta itself", core.ErrInvalid, c.ID, c.Delta.Base))
			return
		}
	}
	if len(missing) > 0 {
		reject(p, fmt.Errorf("%w: commit %s: %d absent: %v", core.ErrMissingParents, c.ID, len(missing), missing))
		return
	}
	if c.Delta != nil && !r.reaches(g, c.Delta.Base, c.Parents) {
		// DESIGN section 3: the base is an ancestor. A base elsewhere in
		// the item's graph would make the value depend on a branch the
		// commit never saw, which a merge cannot account for.
		reject(p, fmt.Errorf("%w: commit %s: delta.base %s is not an ancestor of the commit (it must be one of its parents or their ancestors)", core.ErrInvalid, c.ID, c.Delta.Base))
		return
	}
	if int(base)+len(g.items) >= maxCommits {
		reject(p, fmt.Errorf("%w: repository holds %d commits", core.ErrTooLarge, maxCommits))
		return
	}
	o := base + int32(len(g.items))
	g.pend[c.ID] = o
	p.res = Result{ID: c.ID, Status: Appended, Offset: int64(o)}
	g.items = append(g.items, p)
}

// reaches reports whether target is one of parents or an ancestor of
// them, searching the index and the group's pending commits (all present:
// admit checked). The log is a topological order, so nothing stored before
// target can descend from it and the search never goes below target's
// ordinal: it costs the item's commits between the base and the commit,
// not its whole history.
func (r *Repo) reaches(g *group, target core.CommitID, parents []core.CommitID) bool {
	base := int32(len(r.idx.ents))
	ordinal := func(id core.CommitID) int32 {
		if i := r.idx.lookup(id); i >= 0 {
			return i
		}
		if o, ok := g.pend[id]; ok {
			return o
		}
		return -1
	}
	t := ordinal(target)
	if t < 0 {
		return false
	}
	seen := map[int32]bool{}
	var stack []int32
	push := func(o int32) {
		if o >= t && !seen[o] {
			seen[o] = true
			stack = append(stack, o)
		}
	}
	for _, par := range parents {
		push(ordinal(par))
	}
	for len(stack) > 0 {
		o := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if o == t {
			return true
		}
		if o >= base {
			for _, par := range g.items[o-base].c.Parents {
				push(ordinal(par))
			}
			continue
		}
		e := &r.idx.ents[o]
		for _, par := range r.idx.edgeParent[e.par : e.par+uint32(e.npar)] {
			push(par)
		}
	}
	return false
}

// writeGroup writes, syncs and indexes the group's records, hands them to
// OnIndexed at once and to OnAppend in node sequence order. It returns the
// keys it touched and deliver, which hands them to OnDurable at once and
// to AfterAppend in node sequence order: the caller runs it once it has
// answered the group's appenders, whatever happens (nil: nothing to run).
func (r *Repo) writeGroup(g *group) (touched []string, deliver func(), err error) {
	if len(g.items) == 0 {
		return nil, nil, nil
	}
	if r.log.broken != nil {
		r.failGroup(g, r.log.broken)
		return nil, nil, r.log.broken
	}
	t, err := r.seq.reserve(len(g.items))
	if err != nil {
		r.failGroup(g, err)
		return nil, nil, err
	}
	start := r.log.size
	positions := make([]int64, len(g.items))
	for i, p := range g.items {
		positions[i] = start + int64(len(g.buf))
		p.res.Seq = t.first + uint64(i)
		g.buf = appendFrame(g.buf, payloadHeader{seq: p.res.Seq, group: start, kind: kindCommit}, p.body)
	}
	if err := r.log.append(g.buf); err != nil {
		r.seq.complete(t, nil, nil)
		r.failGroup(g, err)
		r.logger.Error("log write failed", logKeyRepo, r.name, logKeyErr, err)
		return nil, nil, err
	}
	recs := make([]Record, len(g.items))
	seen := make(map[string]struct{}, len(g.items))
	r.mu.Lock()
	for i, p := range g.items {
		c := p.c
		var parents []int32
		for _, par := range c.Parents {
			parents = append(parents, r.idx.lookup(par))
		}
		base := int32(-1)
		if c.Delta != nil {
			base = r.idx.lookup(c.Delta.Base)
		}
		end := start + int64(len(g.buf))
		if i+1 < len(positions) {
			end = positions[i+1]
		}
		r.idx.add(entry{
			id: c.ID, seq: p.res.Seq, ts: c.TS, pos: positions[i], size: uint32(end - positions[i]),
			flags: p.flags, base: base,
		}, []byte(c.Key), parents)
		recs[i] = Record{Offset: p.res.Offset, Seq: p.res.Seq, ID: c.ID, Key: c.Key, JSON: p.json, Origin: p.origin}
		if _, ok := seen[c.Key]; !ok {
			seen[c.Key] = struct{}{}
			touched = append(touched, c.Key)
		}
	}
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	name := r.name
	if f := r.cfg.OnIndexed; f != nil {
		f(name, recs) // this repository's order: the writer is serial
	}
	var appended, after func()
	if f := r.cfg.OnAppend; f != nil {
		appended = func() { f(name, recs) }
	}
	if f := r.cfg.AfterAppend; f != nil {
		after = func() { f(name, recs) }
	}
	r.seq.complete(t, appended, after)
	durable := r.cfg.OnDurable
	if durable != nil || after != nil {
		// The caller must run it: until the ticket is answered, no
		// later AfterAppend of the node runs.
		deliver = func() {
			if durable != nil {
				durable(name, recs) // as OnIndexed
			}
			if after != nil {
				r.seq.answer(t)
			}
		}
	}
	return touched, deliver, nil
}

func (r *Repo) failGroup(g *group, err error) {
	for _, p := range g.items {
		p.res = Result{ID: p.c.ID, Status: Rejected, Offset: -1, Err: err}
	}
}

// merge asks the Merger for a merge commit for each touched key left with
// several heads, and appends them as one more group. deliver is the
// delivery of the group that touched the keys; merge returns the one the
// caller is left to run once it has answered the appenders: deliver
// itself when there is nothing to merge, else the merge group's (deliver
// then runs before the merge group is written: the answer waits for that
// write, the group's subscribers need not).
func (r *Repo) merge(g *group, touched []string, deliver func()) func() {
	slices.Sort(touched)
	var merges []*pending
	for _, key := range touched {
		heads := r.Heads(key)
		if len(heads) < 2 {
			continue
		}
		mc, err := r.cfg.Merger.Merge(r, key, heads)
		if err != nil {
			r.logger.Warn("merge failed", logKeyRepo, r.name, logKeyItem, key, logKeyErr, err)
			continue
		}
		if mc == nil {
			continue
		}
		p := &pending{c: mc, res: Result{ID: mc.ID}}
		var err2 error
		if mc.Repo != r.name || mc.Key != key {
			err2 = fmt.Errorf("%w: merge commit for %q/%q names %q/%q", core.ErrInvalid, r.name, key, mc.Repo, mc.Key)
		} else if p.json, err2 = mc.MarshalJSON(); err2 == nil {
			err2 = r.encode(p, nil)
		}
		if err2 != nil {
			r.logger.Warn("merge commit refused", logKeyRepo, r.name, logKeyItem, key, logKeyErr, err2)
			continue
		}
		merges = append(merges, p)
	}
	if len(merges) == 0 {
		return deliver
	}
	if deliver != nil {
		deliver()
	}
	g.reset()
	for _, p := range merges {
		r.admit(g, p)
		if p.settle && p.res.Status == Rejected {
			r.logger.Warn("merge commit refused", logKeyRepo, r.name, logKeyErr, p.res.Err)
		}
	}
	_, deliver, err := r.writeGroup(g)
	if err != nil {
		r.logger.Error("append merge commits", logKeyRepo, r.name, logKeyErr, err)
	}
	return deliver
}

// ---- reads ----

// Has reports whether the commit is present.
func (r *Repo) Has(id core.CommitID) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.idx.lookup(id) >= 0
}

// Count returns the number of commits.
func (r *Repo) Count() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.idx.ents)
}

// LogLen returns the number of records in the log: the offset the next
// record will get.
func (r *Repo) LogLen() int64 { return int64(r.Count()) }

// Digest returns the XOR of the ids of all commits (DESIGN section 5).
func (r *Repo) Digest() [32]byte {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.idx.digest
}

// State returns Count and Digest as of one instant (the digest protocol
// compares them together).
func (r *Repo) State() (count int, digest [32]byte) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.idx.ents), r.idx.digest
}

// Meta returns what the index knows of a commit.
func (r *Repo) Meta(id core.CommitID) (CommitMeta, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	i := r.idx.lookup(id)
	if i < 0 {
		return CommitMeta{}, false
	}
	return r.metaAt(i), true
}

func (r *Repo) metaAt(i int32) CommitMeta {
	e := &r.idx.ents[i]
	m := CommitMeta{
		ID: e.id, Key: r.idx.keys[e.key].name, TS: e.ts, Offset: int64(i), Seq: e.seq,
		Delta: e.flags&flagDelta != 0, Merge: e.flags&flagMerge != 0, Deleted: e.flags&flagDeleted != 0,
	}
	for _, p := range r.idx.parents(e) {
		m.Parents = append(m.Parents, r.idx.ents[p].id)
	}
	if e.base >= 0 {
		m.Base = r.idx.ents[e.base].id
	}
	return m
}

// Children returns the ids of a commit's children, sorted; ok is false if
// the commit is absent.
func (r *Repo) Children(id core.CommitID) (children []core.CommitID, ok bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	i := r.idx.lookup(id)
	if i < 0 {
		return nil, false
	}
	for _, c := range r.idx.children(i) {
		children = append(children, r.idx.ents[c].id)
	}
	slices.SortFunc(children, core.CommitID.Compare)
	return children, true
}

// Heads returns the ids of an item's heads, sorted; none if the item does
// not exist.
func (r *Repo) Heads(key string) []core.CommitID {
	r.mu.RLock()
	defer r.mu.RUnlock()
	k := r.idx.keyOf(key)
	if k < 0 {
		return nil
	}
	heads := make([]core.CommitID, len(r.idx.keys[k].heads))
	for j, h := range r.idx.keys[k].heads {
		heads[j] = r.idx.ents[h].id
	}
	return heads
}

// ItemCount returns the number of items, tombstoned ones included.
func (r *Repo) ItemCount() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.idx.keys)
}

// FirstAfterSeq returns the offset of the first record whose sequence
// number is greater than seq, or LogLen() if there is none (SSE replay
// after Last-Event-ID).
func (r *Repo) FirstAfterSeq(seq uint64) int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ents := r.idx.ents
	return int64(sort.Search(len(ents), func(i int) bool { return ents[i].seq > seq }))
}

// EachID calls fn with the offset and id of every record from offset from
// on, in log order, until fn returns false. It holds no lock while fn runs
// (fn may call r's methods) and sees the records present when it started.
func (r *Repo) EachID(from int64, fn func(offset int64, id core.CommitID) bool) {
	r.mu.RLock()
	ents := r.idx.ents // entries are immutable: the prefix stays valid
	r.mu.RUnlock()
	for i := max(from, 0); i < int64(len(ents)); i++ {
		if !fn(i, ents[i].id) {
			return
		}
	}
}

// EachIDTS is EachID with each record's ts, read from the index (no commit
// is loaded): the sync protocol partitions sets by ts.
func (r *Repo) EachIDTS(from int64, fn func(offset int64, id core.CommitID, ts int64) bool) {
	r.mu.RLock()
	ents := r.idx.ents
	r.mu.RUnlock()
	for i := max(from, 0); i < int64(len(ents)); i++ {
		if !fn(i, ents[i].id, ents[i].ts) {
			return
		}
	}
}

// Wait blocks until the log has more than n records, or ctx is done (for
// long polls at the tail of the log).
func (r *Repo) Wait(ctx context.Context, n int64) error {
	for {
		r.mu.RLock()
		have, ch := int64(len(r.idx.ents)), r.changed
		r.mu.RUnlock()
		if have > n {
			return nil
		}
		if r.isClosed() {
			return fmt.Errorf("wait on %q: %w", r.name, core.ErrClosed)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ReadLog returns up to limit records from offset from on, in log order
// (a topological order). Fewer (or none) at the end of the log.
func (r *Repo) ReadLog(from int64, limit int) ([]Record, error) {
	r.mu.RLock()
	n := int64(len(r.idx.ents))
	from = min(max(from, 0), n)
	to := min(from+int64(max(limit, 0)), n)
	ents := r.idx.ents[from:to]
	if len(ents) == 0 {
		r.mu.RUnlock()
		return nil, nil
	}
	if r.fileClosed {
		r.mu.RUnlock()
		return nil, fmt.Errorf("read %q: %w", r.name, core.ErrClosed)
	}
	start, end := ents[0].pos, ents[len(ents)-1].pos+int64(ents[len(ents)-1].size)
	buf, err := r.log.readAt(start, int(end-start))
	r.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	recs := make([]Record, len(ents))
	for j := range ents {
		e := &ents[j]
		if recs[j], err = r.decodeFrame(buf[e.pos-start:e.pos-start+int64(e.size)], e, from+int64(j)); err != nil {
			return nil, err
		}
	}
	return recs, nil
}

// decodeFrame checks a frame read back from disk against its entry.
func (r *Repo) decodeFrame(frame []byte, e *entry, off int64) (Record, error) {
	h, st := checkFrame(frame, e.pos)
	if st != frameOK || h.seq != e.seq {
		return Record{}, fmt.Errorf("%w: repo %q: record %d at byte %d changed on disk since it was opened (%s)", core.ErrCorrupt, r.name, off, e.pos, st)
	}
	v, err := parseCommitBody(frame[frameHeaderSize+payloadHeaderSize:])
	if err != nil {
		return Record{}, err
	}
	if v.id != e.id {
		return Record{}, fmt.Errorf("%w: repo %q: record %d holds %s, the index says %s", core.ErrCorrupt, r.name, off, v.id, e.id)
	}
	return Record{Offset: off, Seq: e.seq, ID: e.id, Key: string(v.key), JSON: v.json}, nil
}

// recordAt reads one record.
func (r *Repo) recordAt(i int32) (Record, error) {
	r.mu.RLock()
	e := r.idx.ents[i]
	if r.fileClosed {
		r.mu.RUnlock()
		return Record{}, fmt.Errorf("read %q: %w", r.name, core.ErrClosed)
	}
	frame, err := r.log.readAt(e.pos, int(e.size))
	r.mu.RUnlock()
	if err != nil {
		return Record{}, err
	}
	return r.decodeFrame(frame, &e, int64(i))
}

func (r *Repo) ordinal(id core.CommitID) (int32, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	i := r.idx.lookup(id)
	if i < 0 {
		return -1, fmt.Errorf("%w: commit %s in %q", core.ErrNotFound, id, r.name)
	}
	return i, nil
}

// GetRecord returns the record of a commit (core.ErrNotFound if absent).
func (r *Repo) GetRecord(id core.CommitID) (Record, error) {
	i, err := r.ordinal(id)
	if err != nil {
		return Record{}, err
	}
	return r.recordAt(i)
}

// Get returns a commit (core.ErrNotFound if absent).
func (r *Repo) Get(id core.CommitID) (*core.Commit, error) {
	rec, err := r.GetRecord(id)
	if err != nil {
		return nil, err
	}
	return rec.Commit()
}

// Commit implements View: the stored commit, or false if it is absent or
// unreadable.
func (r *Repo) Commit(id core.CommitID) (*core.Commit, bool) {
	c, err := r.Get(id)
	if err != nil {
		if !errors.Is(err, core.ErrNotFound) {
			r.logger.Warn("read commit", logKeyRepo, r.name, logKeyErr, err)
		}
		return nil, false
	}
	return c, true
}

// Parents returns a stored commit's ts and parents from the index, without
// reading the log (merge.Ancestors: a merge walks an item's history this
// way and reads only its heads and base whole).
func (r *Repo) Parents(id core.CommitID) (int64, []core.CommitID, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	i := r.idx.lookup(id)
	if i < 0 {
		return 0, nil, false
	}
	e := &r.idx.ents[i]
	ps := make([]core.CommitID, e.npar)
	for j, o := range r.idx.edgeParent[e.par : e.par+uint32(e.npar)] {
		ps[j] = r.idx.ents[o].id
	}
	return e.ts, ps, true
}

// Data returns a commit's full value: its data, or its delta applied to
// its base.
func (r *Repo) Data(id core.CommitID) (map[string]any, error) {
	i, err := r.ordinal(id)
	if err != nil {
		return nil, err
	}
	_, data, err := r.resolve(i)
	return data, err
}

// resolve decodes commit i and its full value.
func (r *Repo) resolve(i int32) (*core.Commit, map[string]any, error) {
	rec, err := r.recordAt(i)
	if err != nil {
		return nil, nil, err
	}
	c, err := rec.Commit()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: repo %q: record %d: %v", core.ErrCorrupt, r.name, i, err)
	}
	if c.Delta == nil {
		return c, c.Data, nil
	}
	r.mu.RLock()
	b := r.idx.ents[i].base
	r.mu.RUnlock()
	brec, err := r.recordAt(b)
	if err != nil {
		return nil, nil, err
	}
	bc, err := brec.Commit()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: repo %q: record %d: %v", core.ErrCorrupt, r.name, b, err)
	}
	data, err := core.ApplyDelta(bc.Data, c.Delta)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: repo %q: record %d: delta no longer applies: %v", core.ErrCorrupt, r.name, i, err)
	}
	return c, data, nil
}

// Value returns an item's current value (core.ErrNotFound if the item has
// no commits). With several heads and no merge yet, it is the value of the
// head greatest by (ts, id).
func (r *Repo) Value(key string) (Value, error) {
	r.mu.RLock()
	k := r.idx.keyOf(key)
	if k < 0 {
		r.mu.RUnlock()
		return Value{}, fmt.Errorf("%w: item %q in %q", core.ErrNotFound, key, r.name)
	}
	heads := r.idx.keys[k].heads
	w, n := r.idx.winner(heads), len(heads)
	r.mu.RUnlock()
	return r.valueAt(key, w, n)
}

func (r *Repo) valueAt(key string, i int32, heads int) (Value, error) {
	c, data, err := r.resolve(i)
	if err != nil {
		return Value{}, err
	}
	return Value{Key: key, Schema: c.Schema, Data: data, Head: c.ID, TS: c.TS, Deleted: core.IsDeleted(data), Heads: heads}, nil
}

// Items returns up to limit items with keys greater than after, sorted by
// key (pass "" to start). Tombstoned items are skipped unless
// withDeleted, without reading them.
func (r *Repo) Items(after string, limit int, withDeleted bool) ([]Value, error) {
	type pick struct {
		key   string
		i     int32
		heads int
	}
	var picks []pick
	r.mu.RLock()
	x := r.idx
	at, _ := slices.BinarySearchFunc(x.sortedKeys, after, func(k uint32, s string) int { return compareKeys(x.keys[k].name, s) })
	for ; at < len(x.sortedKeys) && len(picks) < limit; at++ {
		ks := &x.keys[x.sortedKeys[at]]
		if ks.name == after {
			continue
		}
		w := x.winner(ks.heads)
		if !withDeleted && x.ents[w].flags&flagDeleted != 0 {
			continue
		}
		picks = append(picks, pick{ks.name, w, len(ks.heads)})
	}
	r.mu.RUnlock()
	out := make([]Value, 0, len(picks))
	for _, p := range picks {
		v, err := r.valueAt(p.key, p.i, p.heads)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// History returns up to limit commits of an item, newest first in log
// order (children before parents).
func (r *Repo) History(key string, limit int) ([]Record, error) {
	var ords []int32
	r.mu.RLock()
	if k := r.idx.keyOf(key); k >= 0 {
		for i := r.idx.keys[k].last; i >= 0 && len(ords) < limit; i = r.idx.ents[i].prev {
			ords = append(ords, i)
		}
	}
	r.mu.RUnlock()
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
