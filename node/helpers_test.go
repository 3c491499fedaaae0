package node_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"slices"
	stdsync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
	"github.com/goat-gateway/goat-gateway/node"
)

// t0 is when every test clock starts: tests that revoke sessions or
// check timestamps move the clock themselves.
var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// clock is a node's clock, moved by the test.
type clock struct{ ms atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ms.Store(t0.UnixMilli())
	return c
}

func (c *clock) Now() time.Time      { return time.UnixMilli(c.ms.Load()).UTC() }
func (c *clock) Add(d time.Duration) { c.ms.Add(d.Milliseconds()) }
func (c *clock) UnixMilli() int64    { return c.ms.Load() }

// env is a node opened for one test, with its clock and recording fakes.
type env struct {
	n     *node.Node
	clock *clock
	obs   *observer
	bar   *barrier
}

// open opens a node on a fresh directory (or cfg.DataDir) with fsync off,
// a discarded log, a test clock and recording Observer and Barrier, unless
// cfg sets its own; Dev is the caller's choice. The node is closed when tb
// ends.
func open(tb testing.TB, cfg node.Config) *env {
	tb.Helper()
	e := &env{clock: newClock(), obs: newObserver(), bar: &barrier{}}
	if cfg.DataDir == "" {
		cfg.DataDir = tb.TempDir()
	}
	cfg.NoSync = true
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = e.clock.Now
	}
	if cfg.Observer == nil {
		cfg.Observer = e.obs
	}
	if cfg.Barrier == nil {
		cfg.Barrier = e.bar
	}
	n, err := node.Open(cfg)
	if err != nil {
		tb.Fatalf("open node: %v", err)
	}
	tb.Cleanup(func() {
		if err := n.Close(); err != nil {
			tb.Errorf("close node: %v", err)
		}
	})
	e.n = n
	return e
}

// openDev opens a dev-mode node (every authenticated caller may read and
// write every non-system repository).
func openDev(tb testing.TB) *env {
	tb.Helper()
	return open(tb, node.Config{Dev: true})
}

// testRules gives each subject its user.<sub>.* namespace, lets every
// authenticated caller read public.* and editors write it.
const testRules = `
rules:
  - repos: "user.{sub}.*"
    read: ["{sub}"]
    write: ["{sub}"]
  - repos: "public.*"
    read: ["authenticated"]
    write: ["role:editor"]
`

func openWithRules(tb testing.TB) *env {
	tb.Helper()
	rules, err := auth.ParseRules([]byte(testRules))
	if err != nil {
		tb.Fatalf("parse rules: %v", err)
	}
	return open(tb, node.Config{Rules: rules})
}

// user is the principal a dev token for sub with roles authenticates as.
func user(sub string, roles ...string) auth.Principal {
	r := slices.Clone(roles)
	if r == nil {
		r = []string{}
	}
	slices.Sort(r)
	return auth.Principal{Sub: sub, Roles: r, Issuer: auth.DevIssuerName, Expires: t0.Add(24 * time.Hour)}
}

// nodePrincipal is another gateway node, as a node token authenticates.
var nodePrincipal = auth.Principal{Sub: "node:peer", Node: true}

// author is a client with a session key.
type author struct {
	sub string
	id  string
	key ed25519.PrivateKey
}

// newSigner returns an author whose key is registered nowhere.
func newSigner(tb testing.TB, sub string) *author {
	tb.Helper()
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return &author{sub: sub, id: auth.SessionID(key.Public().(ed25519.PublicKey)), key: key}
}

// newAuthor registers a session for p with e's node, as the SDK does.
func (e *env) newAuthor(tb testing.TB, p auth.Principal) *author {
	tb.Helper()
	a := newSigner(tb, p.Sub)
	sess, created := e.register(tb, p, a.key)
	if !created {
		tb.Fatalf("RegisterSession of a new key: created=false")
	}
	if got, want := sess.ID, a.id; got != want {
		tb.Fatalf("session id=%s, want %s", got, want)
	}
	return a
}

// register registers key's session for p, valid for an hour.
func (e *env) register(tb testing.TB, p auth.Principal, key ed25519.PrivateKey) (auth.Session, bool) {
	tb.Helper()
	req, err := auth.NewSessionRequest(key, e.n.Audience(), p.Sub, e.clock.Now().Add(time.Hour))
	if err != nil {
		tb.Fatal(err)
	}
	sess, created, err := e.n.RegisterSession(context.Background(), p, req)
	if err != nil {
		tb.Fatalf("RegisterSession for %s: %v", p.Sub, err)
	}
	return sess, created
}

// commit returns a's signed commit of repo/key at ts with full data in
// schema (any/1 if empty).
func (a *author) commit(tb testing.TB, ts int64, repo, key, schema string, data map[string]any, parents ...core.CommitID) *core.Commit {
	tb.Helper()
	if schema == "" {
		schema = core.AnySchema
	}
	parents = slices.Clone(parents)
	slices.SortFunc(parents, core.CommitID.Compare)
	c := &core.Commit{Repo: repo, Key: key, Parents: parents, Author: a.id, TS: ts, Schema: schema, Data: data}
	if err := c.Sign(a.key); err != nil {
		tb.Fatalf("sign: %v", err)
	}
	return c
}

// createRepo creates repo as p.
func (e *env) createRepo(tb testing.TB, p auth.Principal, repo string) {
	tb.Helper()
	if _, _, err := e.n.CreateRepo(context.Background(), p, repo); err != nil {
		tb.Fatalf("CreateRepo %s: %v", repo, err)
	}
}

// ingest ingests commits and fails tb on a call error.
func (e *env) ingest(tb testing.TB, repo string, origin node.Origin, commits ...*core.Commit) []node.Result {
	tb.Helper()
	res, err := e.n.Ingest(context.Background(), repo, commits, origin)
	if err != nil {
		tb.Fatalf("Ingest into %s as %s: %v", repo, origin, err)
	}
	if got, want := len(res), len(commits); got != want {
		tb.Fatalf("Ingest returned %d results for %d commits", got, want)
	}
	return res
}

// mustAppend ingests commits and fails tb unless every one is Appended.
func (e *env) mustAppend(tb testing.TB, repo string, origin node.Origin, commits ...*core.Commit) []node.Result {
	tb.Helper()
	res := e.ingest(tb, repo, origin, commits...)
	for i, r := range res {
		if r.Status != node.Appended {
			tb.Fatalf("commit %d: status %v (%v), want appended", i, r.Status, r.Err)
		}
	}
	return res
}

// putSchema publishes def as ns/version for p.
func (e *env) putSchema(tb testing.TB, p auth.Principal, ns string, version int, def map[string]any) {
	tb.Helper()
	if _, _, err := e.n.PutSchema(context.Background(), p, ns, version, def); err != nil {
		tb.Fatalf("PutSchema %s/%d: %v", ns, version, err)
	}
}

// taskSchema is task/1: a required title and a done flag defaulting to
// false.
func taskSchema() map[string]any {
	return map[string]any{"fields": map[string]any{
		"title": map[string]any{"type": "string", "required": true},
		"done":  map[string]any{"type": "boolean", "default": false},
	}}
}

// peekValue reads key of repo as stored.
func (e *env) peekValue(tb testing.TB, repo, key string) node.Value {
	tb.Helper()
	r, err := e.n.Peek(repo)
	if err != nil {
		tb.Fatalf("Peek %s: %v", repo, err)
	}
	defer r.Release()
	v, err := r.Value(key)
	if err != nil {
		tb.Fatalf("value of %s/%s: %v", repo, key, err)
	}
	return v
}

// record returns the stored record and commit of id in repo.
func (e *env) record(tb testing.TB, repo string, id core.CommitID) (node.Record, *core.Commit) {
	tb.Helper()
	r, err := e.n.Peek(repo)
	if err != nil {
		tb.Fatalf("Peek %s: %v", repo, err)
	}
	defer r.Release()
	rec, err := r.Record(id)
	if err != nil {
		tb.Fatalf("record %s in %s: %v", id, repo, err)
	}
	c, err := rec.Commit()
	if err != nil {
		tb.Fatalf("decode %s: %v", id, err)
	}
	return rec, c
}

// history returns up to 100 records of key in repo, newest first.
func (e *env) history(tb testing.TB, repo, key string) []node.Record {
	tb.Helper()
	r, err := e.n.Peek(repo)
	if err != nil {
		tb.Fatalf("Peek %s: %v", repo, err)
	}
	defer r.Release()
	h, err := r.History(key, core.CommitID{}, 100)
	if err != nil {
		tb.Fatalf("history of %s/%s: %v", repo, key, err)
	}
	return h
}

// wantErr fails tb unless err wraps want.
func wantErr(tb testing.TB, what string, err, want error) {
	tb.Helper()
	if !errors.Is(err, want) {
		tb.Fatalf("%s: err=%v, want %v", what, err, want)
	}
}

// wantRejected fails tb unless res is a rejection wrapping want.
func wantRejected(tb testing.TB, what string, res node.Result, want error) {
	tb.Helper()
	if res.Status != node.Rejected {
		tb.Fatalf("%s: status %v, want rejected (%v)", what, res.Status, want)
	}
	if !errors.Is(res.Err, want) {
		tb.Fatalf("%s: rejected for %v, want %v", what, res.Err, want)
	}
	if res.Seq != 0 {
		tb.Fatalf("%s: rejected with seq %d, want 0", what, res.Seq)
	}
}

// observer records what a node.Observer sees.
type observer struct {
	mu       stdsync.Mutex
	created  []created
	appended []appended
	calls    [][]node.Record // each Appended call's records
	signal   chan struct{}
}

type created struct {
	repo   string
	origin node.Origin
}

type appended struct {
	repo string
	rec  node.Record
}

func newObserver() *observer { return &observer{signal: make(chan struct{}, 1)} }

func (o *observer) Created(repo string, origin node.Origin) {
	o.mu.Lock()
	o.created = append(o.created, created{repo, origin})
	o.mu.Unlock()
	o.notify()
}

func (o *observer) Appended(repo string, recs []node.Record) {
	o.mu.Lock()
	for _, r := range recs {
		o.appended = append(o.appended, appended{repo, r})
	}
	o.calls = append(o.calls, slices.Clone(recs))
	o.mu.Unlock()
	o.notify()
}

func (o *observer) notify() {
	select {
	case o.signal <- struct{}{}:
	default:
	}
}

// createdSoFar returns the creations seen.
func (o *observer) createdSoFar() []created {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.created)
}

// waitRecord waits until the observer has seen commit id in repo and
// returns its record. The node tells the observer on the storage's
// goroutines, so this does not assume it happened before Ingest returned.
func (o *observer) waitRecord(tb testing.TB, repo string, id core.CommitID) node.Record {
	tb.Helper()
	timer := time.NewTimer(goattest.Patience)
	defer timer.Stop()
	for {
		o.mu.Lock()
		for _, a := range o.appended {
			if a.repo == repo && a.rec.ID == id {
				o.mu.Unlock()
				return a.rec
			}
		}
		o.mu.Unlock()
		select {
		case <-o.signal:
		case <-timer.C:
			tb.Fatalf("observer never saw commit %s of %s", id, repo)
		}
	}
}

// barrier records the writes a node.Barrier is asked to wait for. hold,
// if set, runs inside Wait.
type barrier struct {
	mu     stdsync.Mutex
	writes []node.Write
	tags   []any // ctx.Value(tagKey{}) of each Wait
	hold   func(ctx context.Context, w node.Write)
}

type tagKey struct{}

func (b *barrier) Wait(ctx context.Context, w node.Write) {
	b.mu.Lock()
	b.writes = append(b.writes, w)
	b.tags = append(b.tags, ctx.Value(tagKey{}))
	hold := b.hold
	b.mu.Unlock()
	if hold != nil {
		hold(ctx, w)
	}
}

// take returns the writes seen since the last take and forgets them.
func (b *barrier) take() []node.Write {
	b.mu.Lock()
	defer b.mu.Unlock()
	w := b.writes
	b.writes, b.tags = nil, nil
	return w
}
