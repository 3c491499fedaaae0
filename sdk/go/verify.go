package goat

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	stdsync "sync"
	"time"

	"github.com/goat-gateway/goat-gateway/client"
	"github.com/goat-gateway/goat-gateway/core"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

// The chain of trust on the client side (docs/security.md, "Session
// records are public certificates"): every commit received from the
// gateway is checked against its author's session record, and the record
// against the root keys the gateway publishes, before it enters the
// replica. A commit that fails is quarantined: never stored, never shown,
// reported by Status. The records of the authors of the commits the
// replica holds are kept (DIR/records.json), so that this client can give
// them to a gateway that lost them (sessions of a sync request).

// recordsFile keeps the root keys and the session records.
const recordsFile = "records.json"

// minParallel is the smallest batch whose signatures are checked on
// several cores: below it, starting goroutines costs more than it saves.
const minParallel = 64

// heldRecord is a session record that verified, and its JSON as the
// gateway sent it (what sync requests relay).
type heldRecord struct {
	rec core.SessionRecord
	raw json.RawMessage
}

// trust holds the root keys and the verified records, and fetches the
// records it lacks. It is safe for concurrent use.
type trust struct {
	c *Client

	mu      stdsync.Mutex
	roots   []ed25519.PublicKey
	records map[string]heldRecord
	// missing remembers ids the gateway does not know (404) or whose
	// record does not verify, so each is asked once per process.
	missing map[string]error
	dirty   bool
	// keys holds each author key decoded once (core.VerifyingKey), for
	// all the signatures it verifies: as many as the roots and records
	// held, which bound it.
	keys map[string]*core.VerifyingKey

	// trustAll is set by in-package tests of other contracts (the
	// gsync.Local conformance suite) that feed commits of signers no
	// gateway knows into an offline replica.
	trustAll bool
}

type recordsJSON struct {
	RootKeys []string          `json:"rootKeys"`
	Records  []json.RawMessage `json:"records"`
}

func newTrust(c *Client) *trust {
	return &trust{c: c, records: map[string]heldRecord{}, missing: map[string]error{}}
}

// load reads DIR/records.json; records that no longer verify against the
// stored roots are dropped (they are fetched again when needed).
func (t *trust) load(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, recordsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var j recordsJSON
	if json.Unmarshal(b, &j) != nil {
		return nil // a cache of what the gateway answers again
	}
	roots, err := client.DecodeRootKeys(j.RootKeys)
	if err != nil {
		return nil
	}
	t.roots = roots
	for _, raw := range j.Records {
		if rec, err := core.DecodeSessionRecord(raw); err == nil && rec.VerifyRoot(roots) == nil {
			t.records[rec.ID] = heldRecord{rec: rec, raw: raw}
		}
	}
	return nil
}

// save writes DIR/records.json if something changed.
func (t *trust) save() error {
	t.mu.Lock()
	if !t.dirty || t.c.dir == "" {
		t.mu.Unlock()
		return nil
	}
	j := recordsJSON{RootKeys: make([]string, len(t.roots)), Records: make([]json.RawMessage, 0, len(t.records))}
	for i, r := range t.roots {
		j.RootKeys[i] = base64.RawURLEncoding.EncodeToString(r)
	}
	ids := make([]string, 0, len(t.records))
	for id := range t.records {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		j.Records = append(j.Records, t.records[id].raw)
	}
	t.dirty = false
	t.mu.Unlock()
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(t.c.dir, recordsFile), b, 0o600, !t.c.cfg.NoSync)
}

// setRoots takes the root keys the gateway publishes (GET /v1/info). Held
// records that do not verify against them are dropped.
func (t *trust) setRoots(roots []ed25519.PublicKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if slices.EqualFunc(roots, t.roots, func(a, b ed25519.PublicKey) bool { return a.Equal(b) }) {
		return
	}
	t.roots, t.dirty = roots, true
	for id, h := range t.records {
		if h.rec.VerifyRoot(roots) != nil {
			delete(t.records, id)
		}
	}
	clear(t.missing)
}

// rootsNow returns the root keys, asking the gateway if none are known.
func (t *trust) rootsNow(ctx context.Context) ([]ed25519.PublicKey, error) {
	t.mu.Lock()
	roots := t.roots
	t.mu.Unlock()
	if roots != nil {
		return roots, nil
	}
	roots, err := t.c.api.RootKeys(ctx)
	if err != nil {
		return nil, err
	}
	t.setRoots(roots)
	return roots, nil
}

// add keeps a record after verifying it against roots.
func (t *trust) add(rec core.SessionRecord, raw json.RawMessage, roots []ed25519.PublicKey) error {
	if err := rec.VerifyRoot(roots); err != nil {
		return err
	}
	if !rec.Revoked.IsZero() && !rec.RevocationValid(roots) {
		// An unproven revocation is ignored, and not relayed either.
		rec.Revoked, rec.RevokeSig = time.Time{}, nil
		b, err := rec.MarshalJSON()
		if err != nil {
			return err
		}
		raw = b
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if old, ok := t.records[rec.ID]; ok && !old.rec.Revoked.IsZero() && (rec.Revoked.IsZero() || old.rec.Revoked.Before(rec.Revoked)) {
		return nil // the earliest valid revocation stays
	}
	t.records[rec.ID] = heldRecord{rec: rec, raw: raw}
	t.dirty = true
	return nil
}

// addOwn keeps the client's own record as the gateway answered its
// registration.
func (t *trust) addOwn(ctx context.Context, raw json.RawMessage) error {
	rec, err := core.DecodeSessionRecord(raw)
	if err != nil {
		return err
	}
	roots, err := t.rootsNow(ctx)
	if err != nil {
		return err
	}
	return t.add(rec, raw, roots)
}

// lookup returns the record of id, fetching it once if unknown. A session
// the gateway does not know, or whose record does not verify, is an error
// wrapping errUntrusted; a failure to ask is any other error.
func (t *trust) lookup(ctx context.Context, id string, roots []ed25519.PublicKey) (core.SessionRecord, error) {
	t.mu.Lock()
	h, ok := t.records[id]
	miss := t.missing[id]
	t.mu.Unlock()
	if ok {
		return h.rec, nil
	}
	if miss != nil {
		return core.SessionRecord{}, miss
	}
	rec, raw, err := t.c.api.SessionRecord(ctx, id)
	if errors.Is(err, core.ErrNotFound) {
		err = fmt.Errorf("%w: session %s: the gateway has no record of it", errUntrusted, id)
	} else if err == nil {
		if verr := t.add(rec, raw, roots); verr != nil {
			err = fmt.Errorf("%w: session %s: %w", errUntrusted, id, verr)
		}
	} else if errors.Is(err, core.ErrInvalid) {
		err = fmt.Errorf("%w: session %s: %w", errUntrusted, id, err)
	}
	if err != nil {
		if errors.Is(err, errUntrusted) {
			t.mu.Lock()
			t.missing[id] = err
			t.mu.Unlock()
		}
		return core.SessionRecord{}, err
	}
	t.mu.Lock()
	h = t.records[id]
	t.mu.Unlock()
	return h.rec, nil
}

// relay returns the held records of the authors of raw commits, for the
// sessions of a sync request.
func (t *trust) relay(raw []json.RawMessage) []json.RawMessage {
	var out []json.RawMessage
	seen := map[string]bool{}
	for _, b := range raw {
		var a struct {
			Author string `json:"author"`
		}
		if json.Unmarshal(b, &a) != nil || a.Author == core.MergeAuthor || seen[a.Author] {
			continue
		}
		seen[a.Author] = true
		t.mu.Lock()
		h, ok := t.records[a.Author]
		t.mu.Unlock()
		if ok {
			out = append(out, h.raw)
		}
		if len(out) == gsync.MaxSessions {
			break
		}
	}
	return out
}

// errUntrusted marks a commit that cannot be trusted, as opposed to one
// that could not be checked yet (the gateway unreachable).
var errUntrusted = fmt.Errorf("%w: untrusted", core.ErrBadSignature)

// verifyingKey returns pub decoded, once per key; nil for bytes that are
// no key (every signature by them is refused, as crypto/ed25519 refuses
// them).
func (t *trust) verifyingKey(pub ed25519.PublicKey) *core.VerifyingKey {
	t.mu.Lock()
	defer t.mu.Unlock()
	if k, ok := t.keys[string(pub)]; ok {
		return k
	}
	k, err := core.NewVerifyingKey(pub)
	if err != nil {
		k = nil
	}
	if t.keys == nil {
		t.keys = map[string]*core.VerifyingKey{}
	}
	t.keys[string(pub)] = k
	return k
}

// verifyJob is one signature to check.
type verifyJob struct {
	key *core.VerifyingKey // nil: the author's key does not decode
	c   *core.Commit
	err error
}

// verifySignatures checks jobs' signatures (over the 32 id bytes; storage
// recomputes each id), on every core for a large batch. The check is
// crypto/ed25519's (core.VerifyingKey), over each key decoded once.
func verifySignatures(jobs []verifyJob) {
	check := func(j *verifyJob) {
		if j.key == nil || !j.key.Verify(j.c.ID[:], j.c.Sig) {
			j.err = fmt.Errorf("%w: commit %s: the signature is not its author session's", core.ErrBadSignature, j.c.ID)
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(jobs)/minParallel+1)
	if workers <= 1 {
		for i := range jobs {
			check(&jobs[i])
		}
		return
	}
	var wg stdsync.WaitGroup
	per := (len(jobs) + workers - 1) / workers
	for lo := 0; lo < len(jobs); lo += per {
		part := jobs[lo:min(lo+per, len(jobs))]
		wg.Go(func() {
			for i := range part {
				check(&part[i])
			}
		})
	}
	wg.Wait()
}

// Quarantined is a received commit that failed verification.
type Quarantined struct {
	Repo   string
	ID     core.CommitID
	Reason error
}

// quarantine holds one repository's quarantined commits. They count as
// held for sync (digest and filters), so the gateway does not send them
// again and again, but are never stored or shown.
type quarantine struct {
	mu     stdsync.Mutex
	order  []core.CommitID
	byID   map[core.CommitID]quarantined
	xor    [32]byte
	notify func()
}

type quarantined struct {
	c      *core.Commit
	reason error
}

func (q *quarantine) has(id core.CommitID) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	_, ok := q.byID[id]
	return ok
}

func (q *quarantine) add(c *core.Commit, reason error) {
	q.mu.Lock()
	if _, ok := q.byID[c.ID]; ok {
		q.mu.Unlock()
		return
	}
	if q.byID == nil {
		q.byID = map[core.CommitID]quarantined{}
	}
	q.byID[c.ID] = quarantined{c: c, reason: reason}
	q.order = append(q.order, c.ID)
	for i := range q.xor {
		q.xor[i] ^= c.ID[i]
	}
	q.mu.Unlock()
	if q.notify != nil {
		q.notify()
	}
}

func (q *quarantine) list(repo string) []Quarantined {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]Quarantined, 0, len(q.order))
	for _, id := range q.order {
		out = append(out, Quarantined{Repo: repo, ID: id, Reason: q.byID[id].reason})
	}
	return out
}

func (q *quarantine) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.order)
}

// verifyReceived splits commits received from the gateway into those to
// store and those to quarantine (which it quarantines). Commits the
// replica holds already pass unchecked; merge commits pass (storage
// recomputes them); a commit descending from a quarantined one is
// quarantined. An error means the check could not be made (the gateway is
// unreachable): nothing is stored or quarantined then.
func (r *Repo) verifyReceived(ctx context.Context, cs []*core.Commit) ([]*core.Commit, error) {
	t := r.c.trust
	if t.trustAll {
		return cs, nil
	}
	var roots []ed25519.PublicKey
	jobs := make([]verifyJob, 0, len(cs))
	keep := make([]*core.Commit, 0, len(cs))
	bad := map[core.CommitID]bool{}
	descends := func(c *core.Commit) (core.CommitID, bool) {
		for _, p := range c.Parents {
			if bad[p] || r.q.has(p) {
				return p, true
			}
		}
		if c.Delta != nil && (bad[c.Delta.Base] || r.q.has(c.Delta.Base)) {
			return c.Delta.Base, true
		}
		return core.CommitID{}, false
	}
	for _, c := range cs {
		if r.st.Has(c.ID) || r.q.has(c.ID) {
			continue
		}
		if p, ok := descends(c); ok {
			bad[c.ID] = true
			r.q.add(c, fmt.Errorf("%w: commit %s descends from quarantined commit %s", errUntrusted, c.ID, p))
			continue
		}
		if c.IsMerge() {
			keep = append(keep, c)
			continue
		}
		if roots == nil {
			var err error
			if roots, err = t.rootsNow(ctx); err != nil {
				return nil, err
			}
		}
		pub, rec, err := r.authorKey(ctx, t, c.Author, roots)
		if errors.Is(err, errUntrusted) {
			bad[c.ID] = true
			r.q.add(c, err)
			continue
		}
		if err != nil {
			return nil, err
		}
		if rec != nil {
			if err := rec.SignedAt(c.TS); err != nil {
				bad[c.ID] = true
				r.q.add(c, fmt.Errorf("%w: commit %s: %w", errUntrusted, c.ID, err))
				continue
			}
		}
		jobs = append(jobs, verifyJob{key: t.verifyingKey(pub), c: c})
		keep = append(keep, c)
	}
	if len(jobs) == 0 {
		return keep, nil
	}
	verifySignatures(jobs)
	for _, j := range jobs {
		if j.err != nil {
			bad[j.c.ID] = true
			r.q.add(j.c, fmt.Errorf("%w: %w", errUntrusted, j.err))
		}
	}
	// Drop the failures and, in order, what descends from them.
	out := keep[:0]
	for _, c := range keep {
		if bad[c.ID] {
			continue
		}
		if p, ok := descends(c); ok {
			bad[c.ID] = true
			r.q.add(c, fmt.Errorf("%w: commit %s descends from quarantined commit %s", errUntrusted, c.ID, p))
			continue
		}
		out = append(out, c)
	}
	if err := t.save(); err != nil {
		r.c.log.Warn("save session records", logKeyErr, err)
	}
	return out, nil
}

// authorKey returns the key that must have signed a commit by author: a
// root key for the implicit session of that key (no record), otherwise the
// record's key, and the record.
func (r *Repo) authorKey(ctx context.Context, t *trust, author string, roots []ed25519.PublicKey) (ed25519.PublicKey, *core.SessionRecord, error) {
	for _, k := range roots {
		if core.SessionID(k) == author {
			return k, nil, nil
		}
	}
	rec, err := t.lookup(ctx, author, roots)
	if err != nil {
		return nil, nil, err
	}
	return rec.PublicKey, &rec, nil
}

// ---- the replica as the sync driver sees it ----

// verifiedLog is the replica's log with its quarantined commits after it:
// what the driver reconciles. Quarantined commits count as held (the
// gateway would otherwise send them in every round), and come after every
// stored one, which keeps the order topological: no stored commit
// descends from a quarantined one.
type verifiedLog struct {
	r *Repo
}

var (
	_ gsync.Log   = verifiedLog{}
	_ gsync.TSLog = verifiedLog{}
)

func (l verifiedLog) State() (int, [32]byte) {
	n, xor := l.r.st.State()
	l.r.q.mu.Lock()
	defer l.r.q.mu.Unlock()
	for i := range xor {
		xor[i] ^= l.r.q.xor[i]
	}
	return n + len(l.r.q.order), xor
}

func (l verifiedLog) LogLen() int64 {
	return l.r.st.LogLen() + int64(l.r.q.len())
}

func (l verifiedLog) EachID(from int64, fn func(int64, core.CommitID) bool) {
	l.EachIDTS(from, func(off int64, id core.CommitID, _ int64) bool { return fn(off, id) })
}

func (l verifiedLog) EachIDTS(from int64, fn func(int64, core.CommitID, int64) bool) {
	n := l.r.st.LogLen()
	stopped := false
	l.r.st.EachIDTS(from, func(off int64, id core.CommitID, ts int64) bool {
		if off >= n {
			return false
		}
		if !fn(off, id, ts) {
			stopped = true
			return false
		}
		return true
	})
	if stopped {
		return
	}
	l.r.q.mu.Lock()
	qs := make([]*core.Commit, len(l.r.q.order))
	for i, id := range l.r.q.order {
		qs[i] = l.r.q.byID[id].c
	}
	l.r.q.mu.Unlock()
	for i, c := range qs {
		off := n + int64(i)
		if off < from {
			continue
		}
		if !fn(off, c.ID, c.TS) {
			return
		}
	}
}

func (l verifiedLog) Commit(id core.CommitID) (*core.Commit, bool) {
	if c, ok := l.r.st.Commit(id); ok {
		return c, true
	}
	l.r.q.mu.Lock()
	defer l.r.q.mu.Unlock()
	q, ok := l.r.q.byID[id]
	return q.c, ok
}

// relayTransport adds to every sync request that pushes commits the
// records of their authors (docs/sync.md, "Session records in sync
// requests"), so that a gateway that lost them can verify the commits.
type relayTransport struct {
	gsync.Transport
	t *trust
}

func (rt relayTransport) Sync(ctx context.Context, repo string, req *gsync.Request) (*gsync.Response, error) {
	if len(req.Commits) > 0 && len(req.Sessions) == 0 {
		if recs := rt.t.relay(req.Commits); len(recs) > 0 {
			cp := *req
			cp.Sessions = recs
			req = &cp
		}
	}
	return rt.Transport.Sync(ctx, repo, req)
}
