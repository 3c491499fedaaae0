package goat

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	stdsync "sync"
	"time"

	"github.com/goat-gateway/goat-gateway/client"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/merge"
	"github.com/goat-gateway/goat-gateway/storage"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

// Item is an item's current value as this replica sees it.
type Item struct {
	Key string
	// Schema is the schema of Data: the newest version of the item's
	// namespace this client knows (older values are upgraded on read).
	Schema string
	// Data is the value, with schema defaults filled in. Items returned by
	// Get and Items are the caller's; items in query events are shared
	// and must not be modified.
	Data map[string]any
	// Head is the commit whose value this is; zero while Pending.
	Head core.CommitID
	// TS is the commit timestamp (unix ms), or the time of the local edit
	// while Pending.
	TS int64
	// Pending: a local edit still gathering into a commit (at most the
	// coalescing window).
	Pending bool
}

// pending is an edit of one item not yet committed: the value to commit
// and the heads it was made on (the new commit's parents), so that
// anything that arrives meanwhile merges with it instead of being
// overwritten.
type pending struct {
	schema string
	data   map[string]any // never modified once stored: edits replace it
	base   []core.CommitID
	ts     int64
	gen    uint64
}

func (p *pending) item(key string) Item {
	return Item{Key: key, Schema: p.schema, Data: p.data, TS: p.ts, Pending: true}
}

// Repo is one repository of the replica. Reads and writes are local and
// synchronous: they never wait on the network. Its methods are safe for
// concurrent use.
type Repo struct {
	c       *Client
	name    string
	st      *storage.Repo
	release func()

	mu       stdsync.Mutex
	overlay  map[string]*pending
	gen      uint64
	timer    *time.Timer
	outbox   []core.CommitID // made here, not yet acknowledged by the gateway
	cursor   string
	cloned   bool // the initial clone ran in this process
	created  bool // the repository exists on the gateway (since the last connection loss)
	deleted  bool // the gateway deleted it (a reset with code "deleted"): no more syncing
	needHeal bool
	syncing  bool
	err      error
	errAt    time.Time
	closed   bool

	flushMu stdsync.Mutex // one flush at a time
	netMu   stdsync.Mutex // one clone, heal or push at a time
	kick    chan struct{}
	wg      stdsync.WaitGroup

	qmu     stdsync.Mutex
	queries map[*LiveQuery]struct{}

	chMu      stdsync.Mutex // also guards newMerges; never held with mu
	changed   map[string]struct{}
	newMerges []core.CommitID // merges made here, for the outbox
	chSignal  chan struct{}

	// q holds received commits that failed verification (verify.go).
	q quarantine
}

func newRepo(c *Client, name string, st *storage.Repo, release func()) *Repo {
	r := &Repo{
		c: c, name: name, st: st, release: release,
		overlay: map[string]*pending{}, kick: make(chan struct{}, 1),
		queries: map[*LiveQuery]struct{}{}, changed: map[string]struct{}{}, chSignal: make(chan struct{}, 1),
	}
	r.q.notify = c.statusChanged
	return r
}

// Name returns the repository name.
func (r *Repo) Name() string { return r.name }

func (r *Repo) start(ctx context.Context) {
	r.wg.Add(2)
	go func() { defer r.wg.Done(); r.syncLoop(ctx) }()
	go func() { defer r.wg.Done(); r.notifyLoop(ctx) }()
	r.kickSync()
}

func (r *Repo) wait() { r.wg.Wait() }

// refuseWrites makes reads and writes fail with core.ErrClosed; a flush
// still commits what is pending.
func (r *Repo) refuseWrites() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
}

// closeLocal stops the flush timer and ends the live queries.
func (r *Repo) closeLocal() {
	r.mu.Lock()
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	r.mu.Unlock()
	r.qmu.Lock()
	qs := make([]*LiveQuery, 0, len(r.queries))
	for q := range r.queries {
		qs = append(qs, q)
	}
	r.qmu.Unlock()
	for _, q := range qs {
		q.Close()
	}
}

// ---- reads ----

// Get returns an item (core.ErrNotFound if it does not exist or was
// deleted).
func (r *Repo) Get(key string) (Item, error) {
	it, ok, err := r.lookup(key)
	if err != nil {
		return Item{}, err
	}
	if !ok {
		return Item{}, fmt.Errorf("%w: item %q in %q", core.ErrNotFound, key, r.name)
	}
	it.Data = core.CloneObject(it.Data)
	return it, nil
}

// lookup returns the current item, pending edit first; ok is false when
// the item does not exist or is deleted. The data may be shared.
func (r *Repo) lookup(key string) (Item, bool, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return Item{}, false, core.ErrClosed
	}
	if p := r.overlay[key]; p != nil {
		it := p.item(key)
		r.mu.Unlock()
		if core.IsDeleted(it.Data) {
			return Item{}, false, nil
		}
		return r.c.present(it), true, nil
	}
	r.mu.Unlock()
	it, _, err := r.readItem(key)
	if errors.Is(err, core.ErrNotFound) {
		return Item{}, false, nil
	}
	if err != nil {
		return Item{}, false, err
	}
	if core.IsDeleted(it.Data) {
		return Item{}, false, nil
	}
	return r.c.present(it), true, nil
}

// readItem reads an item through the client's branch (DESIGN section 2):
// the merge of the heads this client sees, and those heads. When the
// branch sees every head (fast), that is the stored value (the greatest
// head while several are not merged yet) and every head.
func (r *Repo) readItem(key string) (Item, []core.CommitID, error) {
	v := r.c.view()
	if r.fast(key) {
		val, err := r.st.Value(key)
		if err != nil {
			return Item{}, nil, err
		}
		return Item{Key: key, Schema: val.Schema, Data: val.Data, Head: val.Head, TS: val.TS}, r.st.Heads(key), nil
	}
	heads := r.st.Heads(key)
	if len(heads) == 0 {
		return Item{}, nil, fmt.Errorf("%w: item %q in %q", core.ErrNotFound, key, r.name)
	}
	res, err := merge.Resolve(r.st, r.c.reg, r.name, key, heads, v)
	if err != nil {
		return Item{}, nil, err
	}
	return Item{Key: key, Schema: res.Schema, Data: res.Data, Head: res.Head, TS: res.TS}, res.Heads, nil
}

// Items returns every item that is not deleted, sorted by key.
func (r *Repo) Items() ([]Item, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, core.ErrClosed
	}
	ov := make(map[string]Item, len(r.overlay))
	for k, p := range r.overlay {
		ov[k] = p.item(k)
	}
	r.mu.Unlock()
	var out []Item
	const page = 1000
	for after := ""; ; {
		// A branch may see a tombstone where the stored value is none, or
		// the reverse: items whose heads it does not all see are decided
		// by readItem.
		vals, err := r.st.Items(after, page, true)
		if err != nil {
			return nil, err
		}
		for _, v := range vals {
			if _, ok := ov[v.Key]; ok {
				continue
			}
			it := Item{Key: v.Key, Schema: v.Schema, Data: v.Data, Head: v.Head, TS: v.TS}
			if !r.fast(v.Key) {
				if it, _, err = r.readItem(v.Key); errors.Is(err, core.ErrNotFound) {
					continue
				} else if err != nil {
					return nil, err
				}
			}
			if core.IsDeleted(it.Data) {
				continue
			}
			out = append(out, r.c.present(it))
		}
		if len(vals) < page {
			break
		}
		after = vals[len(vals)-1].Key
	}
	for _, it := range ov {
		if !core.IsDeleted(it.Data) {
			it = r.c.present(it)
			it.Data = core.CloneObject(it.Data)
			out = append(out, it)
		}
	}
	slices.SortFunc(out, func(a, b Item) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// fast reports whether the client's branch sees every head of key itself,
// so the stored value is the branch's: the replica may hold commits at
// versions this client does not read (or even know), so a registry with
// no newer version proves nothing. Writers never write below a parent's
// version, so the heads decide for their ancestors.
func (r *Repo) fast(key string) bool {
	v := r.c.view()
	for _, h := range r.st.Heads(key) {
		c, ok := r.st.Commit(h)
		if !ok || !v.Sees(r.c.reg, c) {
			return false
		}
	}
	return true
}

// present returns an item as readers see it: upgraded to the newest
// version of its namespace this client reads (its branch), with defaults
// filled in.
func (c *Client) present(it Item) Item {
	ns, ver, err := core.ParseSchemaRef(it.Schema)
	if err != nil {
		return it
	}
	cap, ok := c.view().Cap(c.reg, ns)
	if !ok || cap < ver {
		return it
	}
	latest, err := c.reg.Get(core.SchemaRef(ns, cap))
	if err != nil {
		return it
	}
	if latest.Ref() != it.Schema {
		up, err := c.reg.Upgrade(it.Data, it.Schema, latest.Ref())
		if err != nil {
			return it
		}
		it.Schema, it.Data = latest.Ref(), up
	}
	if len(latest.Fields) > 0 {
		it.Data = latest.WithDefaults(it.Data)
	}
	return it
}

// readHeads returns an item's heads and the value they show (the greatest
// head by (ts, id), as storage does), read together, so that an edit of
// that value is based on exactly those heads.
func (r *Repo) readHeads(key string) ([]core.CommitID, *Item, error) {
	heads := r.st.Heads(key)
	if len(heads) == 0 {
		return nil, nil, nil
	}
	best := heads[0]
	bm, _ := r.st.Meta(best)
	for _, h := range heads[1:] {
		m, _ := r.st.Meta(h)
		if m.TS > bm.TS || (m.TS == bm.TS && h.Compare(best) > 0) {
			best, bm = h, m
		}
	}
	c, err := r.st.Get(best)
	if err != nil {
		return nil, nil, err
	}
	data, err := r.st.Data(best)
	if err != nil {
		return nil, nil, err
	}
	return heads, &Item{Key: key, Schema: c.Schema, Data: data, Head: best, TS: c.TS}, nil
}

// currentLocked returns the item an edit applies to and the heads to base
// a new pending edit on. r.mu is held.
func (r *Repo) currentLocked(key string) (Item, []core.CommitID, bool, error) {
	if r.closed {
		return Item{}, nil, false, core.ErrClosed
	}
	if p := r.overlay[key]; p != nil {
		it := r.c.present(p.item(key))
		return it, nil, !core.IsDeleted(it.Data), nil
	}
	if !r.fast(key) {
		// The branch's value is the merge of its heads: an edit of it
		// descends from them all.
		it, heads, err := r.readItem(key)
		if errors.Is(err, core.ErrNotFound) {
			return Item{}, nil, false, nil
		}
		if err != nil {
			return Item{}, nil, false, err
		}
		pit := r.c.present(it)
		return pit, heads, !core.IsDeleted(pit.Data), nil
	}
	_, it, err := r.readHeads(key)
	if err != nil || it == nil {
		return Item{}, nil, false, err
	}
	pit := r.c.present(*it)
	// The edit applies to the value read, which is one head's while the
	// merger has not yet merged several: it descends from that head alone.
	// Naming every head as a parent would make it undo what the others
	// added (a set element, a text insertion) that its value lacks; as a
	// child of one head it merges with the others like any concurrent edit.
	return pit, []core.CommitID{it.Head}, !core.IsDeleted(pit.Data), nil
}

// ---- writes ----

// Set replaces an item's value (creating the item) with data of schema
// ("ns/version", core.AnySchema for free-form data). data is copied and
// validated against the schema. The write is visible at once and
// committed within the coalescing window.
func (r *Repo) Set(key, schema string, data map[string]any) error {
	if err := core.ValidateKey(key); err != nil {
		return err
	}
	m, err := r.validate(schema, data)
	if err != nil {
		return err
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return core.ErrClosed
	}
	var base []core.CommitID
	if r.overlay[key] == nil {
		base = r.st.Heads(key)
		if v := r.c.view(); !r.fast(key) {
			// On the client's branch: its heads are the parents, and the
			// gateway merges the write with newer branches.
			if base, err = merge.Heads(r.st, r.c.reg, base, v); err != nil {
				r.mu.Unlock()
				return err
			}
		}
	}
	if schema, m, err = r.c.upgradeToParents(r.st, schema, m, base); err != nil {
		r.mu.Unlock()
		return err
	}
	r.writeLocked(key, schema, m, base)
	r.mu.Unlock()
	r.afterWrite(key)
	return nil
}

// Update edits an existing item: fn gets a copy of its current data (at
// the newest schema version) to modify in place. fn runs under the
// repository's write lock: it must be quick and must not call r. An error
// from fn cancels the update and is returned; a missing or deleted item
// is core.ErrNotFound.
func (r *Repo) Update(key string, fn func(data map[string]any) error) error {
	if err := core.ValidateKey(key); err != nil {
		return err
	}
	r.mu.Lock()
	cur, base, ok, err := r.currentLocked(key)
	if err != nil {
		r.mu.Unlock()
		return err
	}
	if !ok {
		r.mu.Unlock()
		return fmt.Errorf("%w: item %q in %q", core.ErrNotFound, key, r.name)
	}
	data := core.CloneObject(cur.Data)
	if err := fn(data); err != nil {
		r.mu.Unlock()
		return err
	}
	m, err := r.validate(cur.Schema, data)
	if err != nil {
		r.mu.Unlock()
		return err
	}
	r.writeLocked(key, cur.Schema, m, base)
	r.mu.Unlock()
	r.afterWrite(key)
	return nil
}

// Delete deletes an item: a tombstone commit (its value with isDeleted
// true), so history stays and concurrent edits merge with the deletion.
func (r *Repo) Delete(key string) error {
	if err := core.ValidateKey(key); err != nil {
		return err
	}
	r.mu.Lock()
	cur, base, ok, err := r.currentLocked(key)
	if err != nil {
		r.mu.Unlock()
		return err
	}
	if !ok {
		r.mu.Unlock()
		return fmt.Errorf("%w: item %q in %q", core.ErrNotFound, key, r.name)
	}
	data := core.CloneObject(cur.Data)
	data[core.DeletedField] = true
	r.writeLocked(key, cur.Schema, data, base)
	r.mu.Unlock()
	r.afterWrite(key)
	return nil
}

// upgradeToParents upgrades a write at schema to the newest version of its
// namespace among parents: no writer moves an item back to an older
// version (DESIGN section 2).
func (c *Client) upgradeToParents(st *storage.Repo, schema string, data map[string]any, parents []core.CommitID) (string, map[string]any, error) {
	ns, ver, err := core.ParseSchemaRef(schema)
	if err != nil {
		return "", nil, err
	}
	to := ver
	for _, p := range parents {
		if pc, err := st.Get(p); err == nil {
			if pns, pv, err := core.ParseSchemaRef(pc.Schema); err == nil && pns == ns && pv > to {
				to = pv
			}
		}
	}
	if to == ver {
		return schema, data, nil
	}
	up, err := c.reg.Upgrade(data, schema, core.SchemaRef(ns, to))
	if err != nil {
		return "", nil, err
	}
	return core.SchemaRef(ns, to), up, nil
}

// validate copies data into the value model and checks it against schema,
// a version this client may write: published and not retired.
func (r *Repo) validate(schema string, data map[string]any) (map[string]any, error) {
	sc, err := r.c.reg.Get(schema)
	if err != nil {
		return nil, err
	}
	if c, ok := r.c.reg.Cap(sc.NS); ok && sc.Version > c {
		return nil, fmt.Errorf("%w: %s was retired (rolled back): write at %s, or republish %s", core.ErrRetired, schema, core.SchemaRef(sc.NS, c), schema)
	}
	v, err := core.Normalize(data)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok || m == nil {
		m = map[string]any{}
	}
	normalizeSets(sc, m)
	if err := sc.Validate(m); err != nil {
		return nil, err
	}
	return m, nil
}

// writeLocked records a pending edit and arms the flush timer. base is
// used when the item has no pending edit yet. r.mu is held.
func (r *Repo) writeLocked(key, schema string, data map[string]any, base []core.CommitID) {
	p := r.overlay[key]
	if p == nil {
		p = &pending{base: base}
		r.overlay[key] = p
	}
	p.schema, p.data, p.ts = schema, data, r.c.cfg.Now().UnixMilli()
	r.gen++
	p.gen = r.gen
	if r.timer == nil {
		r.timer = time.AfterFunc(max(r.c.cfg.CoalesceWindow, 0), func() {
			if err := r.flush(r.c.ctx); err != nil && !isCanceled(err) {
				r.c.log.Warn("commit pending edits", logKeyRepo, r.name, logKeyErr, err)
			}
		})
	}
}

func (r *Repo) afterWrite(key string) {
	r.changedKeys(key)
	r.c.statusChanged()
}

// Flush commits pending edits to the local replica now instead of at the
// end of the coalescing window.
func (r *Repo) Flush(ctx context.Context) error { return r.flush(ctx) }

type flushEntry struct {
	key string
	p   pending
}

// flush turns the pending edits into signed commits, appends them to the
// replica (durably, with a local directory) and queues them for the
// gateway.
func (r *Repo) flush(ctx context.Context) error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	r.mu.Lock()
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	entries := make([]flushEntry, 0, len(r.overlay))
	for k, p := range r.overlay {
		entries = append(entries, flushEntry{key: k, p: *p})
	}
	r.mu.Unlock()
	if len(entries) == 0 {
		return nil
	}
	slices.SortFunc(entries, func(a, b flushEntry) int { return strings.Compare(a.key, b.key) })

	commits := make([]*core.Commit, 0, len(entries))
	at := make([]int, len(entries)) // index into commits; -1: nothing to commit
	var buildErr error
	for i, e := range entries {
		cm, err := r.buildCommit(e)
		if err != nil {
			at[i] = -1
			buildErr = err
			continue
		}
		if cm == nil {
			at[i] = -1
			continue
		}
		at[i] = len(commits)
		commits = append(commits, cm)
	}
	var results []storage.Result
	if len(commits) > 0 {
		var err error
		if results, err = r.st.Append(ctx, commits); err != nil {
			r.setErr(fmt.Errorf("commit to the local replica: %w", err))
			r.mu.Lock()
			if !r.closed && r.timer == nil {
				r.timer = time.AfterFunc(time.Second, func() { _ = r.flush(r.c.ctx) })
			}
			r.mu.Unlock()
			return err
		}
	}

	keys := make([]string, 0, len(entries))
	r.mu.Lock()
	for i, e := range entries {
		keys = append(keys, e.key)
		cur := r.overlay[e.key]
		var res *storage.Result
		if at[i] >= 0 {
			res = &results[at[i]]
		}
		if res != nil && res.Status == storage.Rejected {
			buildErr = fmt.Errorf("local commit of %q refused: %w", e.key, res.Err)
			res = nil
		}
		switch {
		case cur == nil:
		case cur.gen == e.p.gen:
			delete(r.overlay, e.key)
		case res != nil:
			// Edited again while this commit was made: the newer edit
			// builds on it.
			cur.base = []core.CommitID{res.ID}
		}
		if res != nil && res.Status == storage.Appended {
			r.outbox = append(r.outbox, res.ID)
		}
	}
	outbox, cursor := slices.Clone(r.outbox), r.cursor
	r.mu.Unlock()
	if buildErr != nil {
		r.setErr(buildErr)
	}
	r.c.updateState(r.name, cursor, outbox)
	r.kickSync()
	r.changedKeys(keys...)
	r.c.statusChanged()
	return buildErr
}

// buildCommit makes the signed commit of one pending edit, or nil when the
// edit ends where it began.
func (r *Repo) buildCommit(e flushEntry) (*core.Commit, error) {
	parents := slices.Clone(e.p.base)
	slices.SortFunc(parents, func(a, b core.CommitID) int { return a.Compare(b) })
	parents = slices.Compact(parents)
	ts := e.p.ts
	for _, p := range parents {
		// Never older than what it replaces (the gateway does the same).
		if m, ok := r.st.Meta(p); ok && m.TS > ts {
			ts = m.TS
		}
	}
	cm := &core.Commit{Repo: r.name, Key: e.key, Parents: parents, TS: ts, Schema: e.p.schema, Data: e.p.data}
	if len(parents) == 1 {
		base, err := r.st.Get(parents[0])
		if err != nil {
			return nil, err
		}
		baseData, err := r.st.Data(parents[0])
		if err != nil {
			return nil, err
		}
		if base.Schema == e.p.schema && core.EqualJSON(baseData, e.p.data) {
			return nil, nil
		}
		if base.Delta == nil {
			sc, _ := r.c.reg.Get(e.p.schema)
			cm.Data, cm.Delta = core.Encode(sc, parents[0], baseData, e.p.data)
		}
	}
	if err := r.c.sign(cm); err != nil {
		return nil, err
	}
	return cm, nil
}

// sign signs a commit with the session key, first replacing a key that
// nears its expiry: the gateway refuses new commits of an expired
// session, so a commit must have time to reach it. The new key is
// registered at the next sync.
func (c *Client) sign(cm *core.Commit) error {
	c.sessMu.Lock()
	defer c.sessMu.Unlock()
	if now := c.cfg.Now(); c.key.expires.Sub(now) < c.cfg.SessionTTL/4 {
		k, err := newSessionKey(now, c.cfg.SessionTTL)
		if err == nil && c.dir != "" {
			err = saveSessionKey(c.dir, k, !c.cfg.NoSync)
		}
		if err != nil {
			return fmt.Errorf("replace the session key: %w", err)
		}
		c.key, c.registered = k, false
	}
	cm.Author = sessionIDOf(c.key)
	return cm.Sign(c.key.priv)
}

// ---- sync ----

// Sync commits pending edits, then reconciles the repository with the
// gateway now (pushing and pulling whatever differs), and returns its
// error: ErrOffline when the gateway is unreachable. The background sync
// does the same on its own; Sync is for callers that want to know.
func (r *Repo) Sync(ctx context.Context) error {
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return core.ErrClosed
	}
	if err := r.flush(ctx); err != nil {
		return err
	}
	r.mu.Lock()
	r.needHeal = true
	deleted, err := r.deleted, r.err
	r.mu.Unlock()
	if deleted {
		return err // syncing would create it again on the gateway
	}
	return r.syncOnce(ctx)
}

func (r *Repo) kickSync() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// markDeleted stops the repository's syncing for good in this process:
// the gateway deleted it (DELETE /v1/repos/{repo}). Syncing on would
// create it again on the gateway (as after a gateway lost its data) and
// push this replica's commits into it; the application decides instead,
// told by Status().LastError (core.ErrNotFound).
func (r *Repo) markDeleted() {
	r.mu.Lock()
	r.deleted, r.err = true, nil
	r.mu.Unlock()
	r.setErr(fmt.Errorf("%w: repository %q was deleted on the gateway: this client no longer syncs it; the local replica is kept as it was", core.ErrNotFound, r.name))
	r.c.log.Warn("repository deleted on the gateway: syncing stopped", logKeyRepo, r.name)
}

func (r *Repo) isDeleted() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.deleted
}

// requestHeal schedules a heal (digest check, then reconciliation).
func (r *Repo) requestHeal() {
	r.mu.Lock()
	r.needHeal = true
	r.mu.Unlock()
	r.kickSync()
}

func (r *Repo) setErr(err error) {
	r.mu.Lock()
	if r.deleted && r.err != nil {
		// The deletion stands: a sync that was running when it was
		// learned must not clear or replace it.
		r.mu.Unlock()
		return
	}
	r.err = err
	if err != nil {
		r.errAt = time.Now()
	}
	r.mu.Unlock()
	r.c.statusChanged()
}

func (r *Repo) setSyncing(on bool) {
	r.mu.Lock()
	r.syncing = on
	r.mu.Unlock()
	r.c.statusChanged()
}

// syncLoop runs the repository's network work: the initial clone, pushes
// after local commits, heals when asked (reconnect, reset, missing
// parents) and every HealInterval.
func (r *Repo) syncLoop(ctx context.Context) {
	periodic := time.NewTimer(r.c.cfg.HealInterval)
	defer periodic.Stop()
	var retry <-chan time.Time
	var backoff time.Duration
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		case <-periodic.C:
			r.mu.Lock()
			r.needHeal = true
			r.mu.Unlock()
			periodic.Reset(r.c.cfg.HealInterval)
		case <-retry:
			retry = nil
		}
		if r.isDeleted() {
			return
		}
		err := r.syncOnce(ctx)
		switch {
		case err == nil || ctx.Err() != nil:
			backoff = 0
		case isOffline(err):
			// The event stream probes the gateway and kicks every
			// repository when it is back.
		default:
			backoff = r.c.nextBackoff(backoff)
			retry = time.After(jitter(backoff))
			r.c.log.Warn("sync failed", logKeyRepo, r.name, logKeyErr, err, logKeyRetryIn, backoff)
		}
	}
}

// nextBackoff doubles d within [ReconnectMin (or 1 s), ReconnectMax].
func (c *Client) nextBackoff(d time.Duration) time.Duration {
	lo := c.cfg.ReconnectMin
	if lo <= 0 {
		lo = time.Second
	}
	if d < lo {
		return lo
	}
	return min(2*d, max(c.cfg.ReconnectMax, lo))
}

// jitter spreads d by ±20% so that clients do not retry in lockstep.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d + time.Duration((rand.Float64()*0.4-0.2)*float64(d))
}

// syncOnce does whatever network work is due, one step after another.
func (r *Repo) syncOnce(ctx context.Context) (err error) {
	r.netMu.Lock()
	defer r.netMu.Unlock()
	r.setSyncing(true)
	defer func() {
		r.mu.Lock()
		r.syncing = false
		r.mu.Unlock()
		if !isCanceled(err) {
			r.setErr(err)
		} else {
			r.c.statusChanged()
		}
	}()
	r.takeMerges()
	if err := r.c.ensureSession(ctx); err != nil {
		return err
	}
	if err := r.ensureCreated(ctx); err != nil {
		return err
	}
	r.mu.Lock()
	cloned, cursor := r.cloned, r.cursor
	r.mu.Unlock()
	if !cloned {
		// From the start for an empty replica, from the saved cursor
		// otherwise; a replica with commits but no cursor heals instead
		// of downloading everything again.
		if n, _ := r.st.State(); n == 0 || cursor != "" {
			st, err := r.c.driver.Clone(ctx, r.local(), r.name, cursor)
			if err != nil {
				return r.remoteErr(err)
			}
			cursor = st.Cursor
		}
		r.mu.Lock()
		r.cloned, r.cursor, r.needHeal = true, cursor, true
		outbox := slices.Clone(r.outbox)
		r.mu.Unlock()
		r.c.updateState(r.name, cursor, outbox)
	}
	r.mu.Lock()
	heal := r.needHeal
	r.mu.Unlock()
	if !heal {
		if err := r.pushOutbox(ctx); err != nil {
			return r.remoteErr(err)
		}
		r.mu.Lock()
		heal = r.needHeal
		r.mu.Unlock()
	}
	if !heal {
		return nil
	}
	r.mu.Lock()
	r.needHeal = false
	sent := slices.Clone(r.outbox)
	r.mu.Unlock()
	if _, err := r.c.driver.Heal(ctx, r.local(), r.name); err != nil {
		r.mu.Lock()
		r.needHeal = true
		r.mu.Unlock()
		return r.remoteErr(err)
	}
	// The gateway now holds everything this replica held when the heal
	// began, the outbox included.
	r.ackOutbox(sent)
	r.advanceCursor(ctx)
	return nil
}

// advanceCursor moves the saved log cursor to the end of the gateway's
// log after a heal, so that the next Open catches up from there instead
// of from the first clone. It may skip commits appended after the heal;
// that is safe because Open always heals after catching up from the log.
// Only a client with a local directory keeps cursors.
func (r *Repo) advanceCursor(ctx context.Context) {
	if r.c.dir == "" {
		return
	}
	info, err := r.c.api.GetRepo(ctx, r.name)
	if err != nil {
		return // an optimization only
	}
	cursor := info.Cursor
	r.mu.Lock()
	changed := r.cursor != cursor
	r.cursor = cursor
	outbox := slices.Clone(r.outbox)
	r.mu.Unlock()
	if changed {
		r.c.updateState(r.name, cursor, outbox)
	}
}

// remoteErr notes what an error says about the gateway's state: a missing
// repository (a gateway that lost its data) is created again next time.
func (r *Repo) remoteErr(err error) error {
	if errors.Is(err, core.ErrNotFound) {
		r.mu.Lock()
		r.created = false
		r.mu.Unlock()
	}
	return err
}

// ensureCreated creates the repository on the gateway (idempotent) once
// per connection, so that writes and the event stream find it.
func (r *Repo) ensureCreated(ctx context.Context) error {
	r.mu.Lock()
	done := r.created
	r.mu.Unlock()
	if done {
		return nil
	}
	_, _, err := r.c.api.CreateRepo(ctx, r.name)
	if errors.Is(err, core.ErrForbidden) {
		// A reader may not create: the repository has to exist already,
		// which the log and sync requests find out.
		err = nil
	}
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.created = true
	r.mu.Unlock()
	return nil
}

// maxPushBytes caps the commit bytes of one push (the gateway's body limit
// is 16 MiB by default).
const maxPushBytes = 4 << 20

// pushOutbox sends the commits made here that the gateway has not
// acknowledged (POST commits: one request, no filters). Commits whose
// parents the gateway lacks call for a heal instead.
func (r *Repo) pushOutbox(ctx context.Context) error {
	for {
		r.mu.Lock()
		ids := slices.Clone(r.outbox[:min(len(r.outbox), gsync.MaxCommits)])
		r.mu.Unlock()
		if len(ids) == 0 {
			return nil
		}
		var raws [][]byte
		var sent, gone []core.CommitID
		size := 0
		for _, id := range ids {
			rec, err := r.st.GetRecord(id)
			if err != nil {
				gone = append(gone, id)
				continue
			}
			if len(raws) > 0 && size+len(rec.JSON) > maxPushBytes {
				break
			}
			size += len(rec.JSON)
			raws = append(raws, rec.JSON)
			sent = append(sent, id)
		}
		r.ackOutbox(gone)
		if len(raws) == 0 {
			continue
		}
		results, err := r.c.api.PushCommits(ctx, r.name, raws)
		if err != nil {
			return err
		}
		var done []core.CommitID
		var rejErr error
		heal := false
		for i, res := range results {
			switch res.Status {
			case "accepted", "duplicate":
				done = append(done, sent[i])
				continue
			}
			rerr := client.RejectedError(r.name, res)
			switch {
			case errors.Is(rerr, core.ErrMissingParents):
				// The gateway lacks history (it lost data, or a parent
				// came from elsewhere): a heal sends it.
				heal = true
			case errors.Is(rerr, core.ErrUnauthenticated):
				// Our session is unknown there: register it again and
				// retry.
				r.c.sessMu.Lock()
				r.c.registered = false
				r.c.sessMu.Unlock()
				rejErr = rerr
			default:
				// Refused for good (forbidden, schema): it stays in the
				// local replica, and the error says why.
				done = append(done, sent[i])
				rejErr = rerr
				r.c.log.Warn("gateway rejected a commit", logKeyRepo, r.name, logKeyCommit, res.ID, logKeyProblem, res.ProblemType, logKeyReason, res.Reason)
			}
		}
		r.ackOutbox(done)
		if rejErr != nil {
			return rejErr
		}
		if heal {
			r.mu.Lock()
			r.needHeal = true
			r.mu.Unlock()
			return nil
		}
		if len(done) == 0 {
			return nil
		}
	}
}

// takeMerges moves the merges made here into the outbox.
func (r *Repo) takeMerges() {
	r.chMu.Lock()
	merges := r.newMerges
	r.newMerges = nil
	r.chMu.Unlock()
	if len(merges) == 0 {
		return
	}
	r.mu.Lock()
	r.outbox = append(r.outbox, merges...)
	outbox, cursor := slices.Clone(r.outbox), r.cursor
	r.mu.Unlock()
	r.c.updateState(r.name, cursor, outbox)
}

// ackOutbox removes acknowledged commits from the outbox.
func (r *Repo) ackOutbox(ids []core.CommitID) {
	if len(ids) == 0 {
		return
	}
	set := make(map[core.CommitID]struct{}, len(ids))
	for _, id := range ids {
		set[id] = struct{}{}
	}
	r.mu.Lock()
	before := len(r.outbox)
	r.outbox = slices.DeleteFunc(r.outbox, func(id core.CommitID) bool { _, ok := set[id]; return ok })
	changed := len(r.outbox) != before
	outbox, cursor := slices.Clone(r.outbox), r.cursor
	r.mu.Unlock()
	if changed {
		r.c.updateState(r.name, cursor, outbox)
		r.c.statusChanged()
	}
}

// ingest stores commits received from the gateway once they verify
// against their authors' session records (verifyReceived); those that do
// not are quarantined.
func (r *Repo) ingest(ctx context.Context, cs []*core.Commit) error {
	for _, cm := range cs {
		if cm.Repo != r.name {
			return fmt.Errorf("%w: commit %s belongs to %q, not %q", core.ErrInvalid, cm.ID, cm.Repo, r.name)
		}
	}
	cs, err := r.verifyReceived(ctx, cs)
	if err != nil {
		return fmt.Errorf("verify received commits: %w", err)
	}
	if len(cs) == 0 {
		return nil
	}
	res, err := r.st.Append(ctx, cs)
	if err != nil {
		return err
	}
	if err := storage.ResultsError(res); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, cm := range cs {
		if !seen[cm.Key] {
			seen[cm.Key] = true
			if err := r.collapse(ctx, cm.Key); err != nil {
				return err
			}
		}
	}
	return nil
}

// collapse merges key's heads when they are more than one merge commit
// takes (localMerger leaves those) with merge.MergeAll, as the gateway
// does: the same heads give the same merge commits on every peer, so the
// ones pushed are usually duplicates.
func (r *Repo) collapse(ctx context.Context, key string) error {
	heads := r.st.Heads(key)
	if len(heads) <= merge.GroupSize {
		return nil
	}
	ms, err := merge.MergeAll(r.st, r.c.reg, r.name, key, heads)
	if errors.Is(err, core.ErrSchema) {
		return nil // a schema not learned yet: the gateway's merges will come
	}
	if err != nil {
		return fmt.Errorf("merge %d heads of %q: %w", len(heads), key, err)
	}
	for _, m := range ms {
		r.c.localMerges.Store(m.ID, struct{}{})
	}
	res, err := r.st.Append(ctx, ms)
	if err != nil {
		return err
	}
	return storage.ResultsError(res)
}

// local is the replica as the sync driver sees it: the one adapter from a
// log to a gsync.Local, over the replica with its quarantined commits.
func (r *Repo) local() gsync.Local { return gsync.LocalOf(verifiedLog{r}, r.ingest) }

// ---- change notification ----

// changedKeys queues keys whose value may have changed for the live
// queries. It never blocks.
func (r *Repo) changedKeys(keys ...string) {
	if len(keys) == 0 {
		return
	}
	r.chMu.Lock()
	for _, k := range keys {
		r.changed[k] = struct{}{}
	}
	r.chMu.Unlock()
	select {
	case r.chSignal <- struct{}{}:
	default:
	}
}

// notifyLoop updates the live queries with each changed key: one lookup
// per changed key, never a scan of the repository.
func (r *Repo) notifyLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.chSignal:
		}
		r.chMu.Lock()
		changed := r.changed
		r.changed = map[string]struct{}{}
		r.chMu.Unlock()
		r.qmu.Lock()
		if len(r.queries) > 0 {
			keys := make([]string, 0, len(changed))
			for k := range changed {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				it, ok, err := r.lookup(k)
				if err != nil {
					continue
				}
				for q := range r.queries {
					q.apply(k, it, ok)
				}
			}
			for q := range r.queries {
				q.publish()
			}
		}
		r.qmu.Unlock()
	}
}

// Digest returns the replica's count of commits and their digest (XOR of
// the ids, lowercase hex): two replicas with equal digests hold the same
// commits (DESIGN section 5). The gateway reports the same pair in GET
// /v1/repos/{repo}.
func (r *Repo) Digest() (count int64, digest string) {
	d := r.local().Digest()
	return d.Count, d.XOR.String()
}

// normalizeSets sorts and deduplicates the arrays of strings in set
// fields: a set's canonical form, which callers should not have to build.
func normalizeSets(sc *core.Schema, m map[string]any) {
	for name, v := range m {
		arr, ok := v.([]any)
		if !ok || sc.FieldType(name) != core.TypeSet {
			continue
		}
		strs := make([]string, 0, len(arr))
		for _, e := range arr {
			s, ok := e.(string)
			if !ok {
				strs = nil
				break
			}
			strs = append(strs, s)
		}
		if strs == nil && len(arr) > 0 {
			continue // not a set of strings: Validate says so
		}
		slices.SortFunc(strs, core.CompareStrings)
		m[name] = core.SetValue(slices.Compact(strs))
	}
}
