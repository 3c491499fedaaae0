package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	stdsync "sync"
	"sync/atomic"
	"time"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/storage"
)

// Config configures a Node. The zero value of every field but DataDir is a
// usable default.
type Config struct {
	// DataDir holds the repository logs (and keys/, unless KeysDir is set).
	DataDir string
	// KeysDir holds the root key and the dev issuer key; default
	// DataDir/keys. Keep it apart from DataDir to wipe repositories without
	// losing identities.
	KeysDir string
	// FS is the storage's filesystem; nil means the operating system's.
	FS storage.FS
	// Dev lets every authenticated caller read and write every non-system
	// repository and publish schemas. Never in production.
	Dev bool
	// Rules authorizes callers; nil means default deny (or auth.DevRules
	// with Dev).
	Rules *auth.Rules
	// Audience is the aud sessions are registered for; default the dev
	// issuer's audience, "goat-gateway".
	Audience string
	// NoSync turns fsync off: tests and benchmarks only.
	NoSync bool
	// IdleTimeout closes idle repositories; default 5 min.
	IdleTimeout time.Duration
	// MaxOpenRepos is the open-files budget: repositories open at once
	// (storage.Config.MaxOpen); default storage.DefaultMaxOpen.
	MaxOpenRepos int
	// MaxReposPerOwner bounds the repositories one owner (token subject)
	// may create; default DefaultMaxReposPerOwner, negative: no quota.
	MaxReposPerOwner int
	// MaxSessionsPerOwner bounds one owner's live sessions; default
	// DefaultMaxSessionsPerOwner, negative: no quota.
	MaxSessionsPerOwner int
	// InlineLimit is the largest commit pushed inline in a live event;
	// larger ones are announced by id; default 64 KiB.
	InlineLimit int
	// MaxStreamsPerCaller bounds concurrent live streams per caller (per
	// remote address for anonymous callers); default 64.
	MaxStreamsPerCaller int
	// Observer, if set, sees repository creations and durable appends.
	Observer Observer
	// Barrier, if set, holds each write's acknowledgement until the write
	// has left the node.
	Barrier Barrier
	// SessionSource, if set, is asked for the record of a session this
	// node does not know before a commit it signed is rejected (the
	// cluster asks its peers: a session registered on one node may not
	// have replicated yet).
	SessionSource SessionSource
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.KeysDir == "" {
		c.KeysDir = filepath.Join(c.DataDir, "keys")
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.InlineLimit == 0 {
		c.InlineLimit = 64 << 10
	}
	if c.MaxStreamsPerCaller == 0 {
		c.MaxStreamsPerCaller = 64
	}
	if c.MaxReposPerOwner == 0 {
		c.MaxReposPerOwner = DefaultMaxReposPerOwner
	}
	if c.MaxSessionsPerOwner == 0 {
		c.MaxSessionsPerOwner = DefaultMaxSessionsPerOwner
	}
	if c.Audience == "" {
		c.Audience = auth.DevAudience
	}
	if c.Rules == nil {
		if c.Dev {
			c.Rules = auth.DevRules()
		} else {
			c.Rules = &auth.Rules{}
		}
	}
}

// Origin says where commits came from (see the package comment).
type Origin uint8

// Origins.
const (
	// OriginGateway is this node: merges, system records, custodial writes.
	OriginGateway Origin = iota
	// OriginClient is a caller's push or sync round.
	OriginClient
	// OriginReplica is another node.
	OriginReplica
)

func (o Origin) String() string {
	switch o {
	case OriginGateway:
		return "gateway"
	case OriginClient:
		return "client"
	case OriginReplica:
		return "replica"
	}
	return fmt.Sprintf("origin(%d)", uint8(o))
}

// Record is one record of a repository log; Record.Origin holds the Origin
// of the append that wrote it (OriginGateway for merges).
type Record = storage.Record

// Value is the current value of an item.
type Value = storage.Value

// Result reports what Ingest did with one commit.
type Result = storage.Result

// Statuses of a Result.
const (
	Appended  = storage.Appended
	Duplicate = storage.Duplicate
	Rejected  = storage.Rejected
)

// Observer sees what happens to the node's repositories. Its methods run
// on the storage's goroutines and must not block (queue and drop, as the
// event hub does).
type Observer interface {
	// Created is called once a repository exists that did not before.
	Created(repo string, origin Origin)
	// Appended is called with the records of one durable write, in node
	// sequence order across all repositories. rec.Origin is an Origin.
	Appended(repo string, recs []Record)
}

// Write identifies one acknowledged write for a Barrier.
type Write struct {
	Repo string
	// Seq is the highest sequence number the write appended or found
	// already present; 0 when it appended nothing.
	Seq uint64
	// Created is set when the write created the repository.
	Created bool
}

// Barrier holds a write's acknowledgement until the write has left the
// node (package cluster: until the NATS server holds it). Wait returns when
// that happened, when its own bound passes, or when ctx ends; the write is
// durable here whatever it returns, so it returns nothing.
type Barrier interface {
	Wait(ctx context.Context, w Write)
}

// Node is one gateway node.
type Node struct {
	cfg      Config
	log      *slog.Logger
	store    *storage.Store
	reg      *core.Registry
	sessions sessionDir
	dev      *auth.DevIssuer
	root     ed25519.PrivateKey
	rootID   string
	hub      *hub
	custody  *custody
	streams  *streamLimiter
	quotas   *quotas
	lives    *repoLives // sys.repos by name: generations and deletions
	// loading is set while Open loads the system repositories; restored
	// collects what it finds restored (deleterepo.go).
	loading  bool
	restored []string
	sysq     *sysQueue
	ingested atomic.Uint64
	merging  collapses
	// sessMu serializes session registrations and revocations.
	sessMu stdsync.Mutex

	ctx    context.Context
	cancel context.CancelFunc
	wg     stdsync.WaitGroup

	closeOnce stdsync.Once
	closeErr  error
}

// Open starts a node on cfg.DataDir: it opens the storage and loads keys,
// sessions and schemas. Close stops it.
func Open(cfg Config) (*Node, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("node: Config.DataDir is required")
	}
	cfg.setDefaults()
	n := &Node{cfg: cfg, log: cfg.Logger, reg: core.NewRegistry(), hub: newHub(), sysq: newSysQueue(), quotas: newQuotas(), lives: newRepoLives(), streams: newStreamLimiter(cfg.MaxStreamsPerCaller)}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	if err := n.reg.Add(auth.SessionSchema()); err != nil {
		return nil, err
	}
	var err error
	if n.root, err = auth.LoadOrCreateKey(filepath.Join(cfg.KeysDir, auth.RootKeyFile)); err != nil {
		return nil, fmt.Errorf("root key: %w", err)
	}
	rootPub := n.root.Public().(ed25519.PublicKey)
	n.rootID = auth.NodeSessionID(rootPub)
	n.sessions = sessionDir{Sessions: auth.NewSessions(rootPub), n: n}
	n.custody = newCustody(n)
	if n.dev, err = auth.OpenDevIssuer(cfg.KeysDir); err != nil {
		return nil, fmt.Errorf("dev issuer: %w", err)
	}
	n.store, err = storage.Open(storage.Config{
		Dir:         cfg.DataDir,
		FS:          cfg.FS,
		NoSync:      cfg.NoSync,
		IdleTimeout: cfg.IdleTimeout,
		MaxOpen:     cfg.MaxOpenRepos,
		Merger:      merger{n.reg},
		OnAppend:    n.onAppend,
		AfterAppend: n.afterAppend,
		OnDurable:   n.onDurable,
		OnIndexed:   n.onIndexed,
		Logger:      n.log,
	})
	if err != nil {
		return nil, err
	}
	// Every record numbered up to the store's last sequence number is in
	// the durable log (numbering resumes past it), so live events start
	// there: a client's Last-Event-ID from before the restart is replayed,
	// not reset, and a new client's first id is not "<node>.0".
	n.hub.resume(n.store.LastSeq())
	n.loading = true
	err = n.loadSystemRepos()
	n.loading = false
	if err != nil {
		n.store.Close()
		return nil, err
	}
	n.restoreRepos()
	n.wg.Add(1)
	go func() { defer n.wg.Done(); n.sysLoop(n.ctx) }()
	// In the background, so that a large data directory does not delay
	// serving; /readyz names what it finds (Damaged). It gives way to
	// repository opens (storage.Store.ScanForDamage).
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		start := time.Now()
		scanned, err := n.store.ScanForDamage(n.ctx)
		if err != nil && n.ctx.Err() == nil {
			n.log.Warn("damage scan stopped", "err", err)
			return
		}
		n.log.Info("damage scan done", "repos", scanned, "damaged", len(n.store.Damaged()), "elapsed", time.Since(start))
	}()
	if cfg.Dev {
		n.log.Warn("DEV MODE: every authenticated caller may read and write every repository; never run this in production")
	}
	return n, nil
}

// Close ends every live subscription, stops background work and closes the
// storage. Calls still in flight get core.ErrClosed.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.hub.close()
		n.cancel()
		n.wg.Wait()
		n.closeErr = n.store.Close()
	})
	return n.closeErr
}

// Shutdown ends every live subscription and marks the node as closing
// (Ready fails), before the HTTP server drains; Close follows.
func (n *Node) Shutdown() {
	n.hub.close()
	n.cancel()
}

// Ready returns an error wrapping core.ErrClosed once the node is shutting
// down.
func (n *Node) Ready() error {
	if n.ctx.Err() != nil {
		return fmt.Errorf("%w: shutting down", core.ErrClosed)
	}
	return nil
}

// ID returns the node id: the identity of its data directory, which event
// ids and log cursors carry.
func (n *Node) ID() string { return n.store.NodeID().String() }

// Audience returns the audience sessions are registered for.
func (n *Node) Audience() string { return n.cfg.Audience }

// Dev reports whether the node runs in dev mode.
func (n *Node) Dev() bool { return n.cfg.Dev }

// DevIssuer returns the node's dev token issuer (trusted only when the
// HTTP face is told to).
func (n *Node) DevIssuer() *auth.DevIssuer { return n.dev }

// RootPublicKey returns the public half of the root key that signs session
// records.
func (n *Node) RootPublicKey() ed25519.PublicKey { return n.root.Public().(ed25519.PublicKey) }

// RootKeys returns the root public keys whose records this node trusts
// (GET /v1/info rootKeys); the first signs new records.
func (n *Node) RootKeys() []ed25519.PublicKey { return n.sessions.Roots() }

// Subscribers returns the number of live subscriptions.
func (n *Node) Subscribers() int { return n.hub.subscribers() }

// OpenRepos returns the number of repositories open in memory.
func (n *Node) OpenRepos() int { return n.store.OpenCount() }

// Damaged returns the repositories whose logs refused to open as corrupt,
// or that the scan at start found damaged, sorted: /readyz names them, and an operator
// repairs them with goat-gateway fsck --repair while the node is stopped.
func (n *Node) Damaged() []string { return n.store.Damaged() }

// Ingested returns the number of commits appended durably since Open.
func (n *Node) Ingested() uint64 { return n.ingested.Load() }

// Repos lists every repository of the node, sorted (for scale-out and
// tools; callers of the API use ListRepos).
func (n *Node) Repos() ([]string, error) { return n.store.List() }

func (n *Node) now() time.Time { return n.cfg.Now() }

// LastSeq returns the highest sequence number the node has handed out.
func (n *Node) LastSeq() uint64 { return n.store.LastSeq() }

// State returns a repository's state, for operators and tests, without
// authorization (callers of the API use Open).
func (n *Node) State(repo string) (RepoInfo, error) {
	r, err := n.Peek(repo)
	if err != nil {
		return RepoInfo{}, err
	}
	defer r.Release()
	return r.Info(), nil
}

// Has reports whether repo holds commit id (for operators and tests).
func (n *Node) Has(repo string, id core.CommitID) bool {
	r, err := n.Peek(repo)
	if err != nil {
		return false
	}
	defer r.Release()
	return r.r.Has(id)
}
