package goat

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
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

// Config configures a Client. URL and a token (Token or TokenSource) are
// required; the zero value of every other field is a usable default.
type Config struct {
	// URL is the gateway's base URL, e.g. "https://sync.example.com".
	URL string
	// Token is the bearer token (a JWT; its sub owns the session).
	Token string
	// TokenSource, if set, is asked for a token before every request and
	// stream, instead of Token (for tokens that expire).
	TokenSource func(ctx context.Context) (string, error)
	// Dir is the local directory holding a durable replica, the session
	// key and the sync state; created if absent. Empty means memory only:
	// nothing survives Close, and every Open registers a new session.
	Dir string
	// Schemas are the schemas the application writes with. They are known
	// offline (validation, merges) and published to the gateway when it
	// lacks them (where the caller may publish).
	Schemas []*core.Schema
	// Versions are, per namespace, the newest schema version this build
	// reads and writes (DESIGN section 2, "Schema branches"): {"note": 1}
	// for a build that knows note/1, while newer builds may write note/2.
	// The client sees items through that branch: commits at newer
	// versions, and their descendants, are invisible to it, and its writes
	// merge with them on the gateway. Nil means the newest version of each
	// namespace in Schemas (the versions the app was built with); other
	// namespaces read at the newest version the gateway publishes.
	// Retired versions are skipped either way.
	Versions map[string]int

	// HTTPClient sends every request; nil means a client of its own.
	// It must not have a Timeout: the event stream is one long response.
	HTTPClient *http.Client
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// OnStatus, if set, is called (from a goroutine of the client, one call
	// at a time) whenever Status changes. It must not block for long.
	OnStatus func(Status)

	// CoalesceWindow is how long writes to one item gather into one
	// commit; default 250 ms (at most 4 commits per item per second).
	CoalesceWindow time.Duration
	// HealInterval is the period of the background digest check of every
	// open repository; default 1 minute.
	HealInterval time.Duration
	// RequestTimeout bounds each request; default 30 s.
	RequestTimeout time.Duration
	// ReconnectMin and ReconnectMax bound the exponential backoff between
	// attempts to reach the gateway; defaults: the gateway's retry hint
	// (2 s) and 30 s.
	ReconnectMin, ReconnectMax time.Duration
	// StreamIdleTimeout drops an event stream that sent nothing, not even
	// a heartbeat, for this long; default 45 s (three heartbeats).
	StreamIdleTimeout time.Duration
	// SessionTTL is the lifetime asked for a new session key; default 29
	// days (the gateway's default maximum is 30). A stored key with less
	// than a quarter of it left is replaced at Open.
	SessionTTL time.Duration
	// MaxEventBytes bounds one line and one event of the stream; default
	// 2 MiB (commits are at most 1 MiB).
	MaxEventBytes int
	// ReadyTimeout is how long a new event stream may take to say
	// `ready`; default 10 s. A stream that does not is taken to be
	// buffered by a proxy, and the client long polls the log of every
	// open repository instead (Status.Polling).
	ReadyTimeout time.Duration
	// PollWait is how long the gateway holds one long poll of the log
	// when nothing is new; default 25 s (the gateway caps it, 30 s by
	// default, below common proxy read timeouts).
	PollWait time.Duration
	// StreamProbeInterval is how often a client that long polls tries the
	// event stream again, and goes back to it once it says `ready` in
	// time; default 1 minute.
	StreamProbeInterval time.Duration
	// NoSync turns off fsync of the local replica: tests only.
	NoSync bool
	// Now is the clock of commit timestamps; default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.CoalesceWindow == 0 {
		c.CoalesceWindow = 250 * time.Millisecond
	}
	if c.HealInterval == 0 {
		c.HealInterval = time.Minute
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 30 * time.Second
	}
	if c.ReconnectMax == 0 {
		c.ReconnectMax = 30 * time.Second
	}
	if c.StreamIdleTimeout == 0 {
		c.StreamIdleTimeout = 45 * time.Second
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = 29 * 24 * time.Hour
	}
	if c.MaxEventBytes == 0 {
		c.MaxEventBytes = 2 << 20
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = 10 * time.Second
	}
	if c.PollWait == 0 {
		c.PollWait = 25 * time.Second
	}
	if c.StreamProbeInterval == 0 {
		c.StreamProbeInterval = time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Status is what the client knows about its sync state.
type Status struct {
	// Online: live updates reach the replica: the event stream is
	// connected and live, or (Polling) long polls reach the gateway.
	Online bool
	// Polling: the event stream did not become live within
	// Config.ReadyTimeout (a proxy that buffers responses), so live
	// updates come by long polls of each repository's log, until the
	// stream works again.
	Polling bool
	// Syncing: a clone, heal or push is running.
	Syncing bool
	// Pending counts local changes the gateway has not acknowledged:
	// edits still gathering into a commit, and commits not yet pushed.
	Pending int
	// LastError is the most recent failure that still stands (a stream
	// that cannot connect, a repository that fails to sync, a commit the
	// gateway rejected); nil once the failing part succeeds again. It
	// matches the core sentinels (errors.Is(err, core.ErrForbidden)), and
	// ErrOffline when the gateway is unreachable.
	LastError error
}

// Client is a local replica of some of a gateway's repositories with
// background sync. Its methods are safe for concurrent use.
type Client struct {
	cfg    Config
	log    *slog.Logger
	api    *client.Client
	token  func(context.Context) (string, error)
	driver *gsync.Driver
	reg    *core.Registry
	// versions caps namespaces (Config.Versions, or derived from Schemas).
	versions map[string]int
	store    *storage.Store
	dir      string // "" for memory only

	ownTransport *http.Transport // nil when Config.HTTPClient is the caller's

	ctx    context.Context
	cancel context.CancelFunc
	wg     stdsync.WaitGroup

	mu     stdsync.Mutex
	repos  map[string]*Repo
	closed bool

	byName stdsync.Map // repo name -> *Repo, read by storage's append hook
	// localMerges holds the ids of merge commits this replica made, until
	// the append hook sees them stored.
	localMerges stdsync.Map

	// regMu serializes session registration and schema exchange, which
	// talk to the gateway; sessMu guards the fields below and is never
	// held across a request, so signing never waits on the network.
	regMu      stdsync.Mutex
	sessMu     stdsync.Mutex
	key        sessionKey
	registered bool // with the gateway, since the last connection loss
	schemasOK  bool

	stateMu    stdsync.Mutex
	state      *clientState
	stateTimer *time.Timer // a pending write of state.json
	stateDone  bool        // Close wrote it for the last time

	statMu     stdsync.Mutex
	online     bool
	polling    bool
	streamErr  error
	streamErrT time.Time
	statSignal chan struct{}

	streamMu      stdsync.Mutex
	streamCancel  context.CancelFunc
	streamRestart bool
	streamWake    chan struct{}
	poll          *poller // while the stream is buffered: long polls
}

// Open opens a client. It never waits on the network: a client opened on
// a local directory works with the gateway down, and sync starts in the
// background once it is reachable.
func Open(cfg Config) (*Client, error) {
	cfg.setDefaults()
	if cfg.URL == "" {
		return nil, fmt.Errorf("%w: Config.URL is required", core.ErrInvalid)
	}
	if u, err := url.Parse(cfg.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: Config.URL %q is not an http(s) URL", core.ErrInvalid, cfg.URL)
	}
	if cfg.Token == "" && cfg.TokenSource == nil {
		return nil, fmt.Errorf("%w: Config.Token or Config.TokenSource is required", core.ErrInvalid)
	}
	token := cfg.TokenSource
	if token == nil {
		tok := cfg.Token
		token = func(context.Context) (string, error) { return tok, nil }
	}
	c := &Client{
		cfg: cfg, log: cfg.Logger, reg: core.NewRegistry(), dir: cfg.Dir, versions: buildVersions(cfg),
		repos: map[string]*Repo{}, statSignal: make(chan struct{}, 1), streamWake: make(chan struct{}, 1),
		state: &clientState{Repos: map[string]*repoState{}},
	}
	hc := cfg.HTTPClient
	if hc == nil {
		// A transport of its own, so that Close can drop its connections.
		c.ownTransport = http.DefaultTransport.(*http.Transport).Clone()
		hc = &http.Client{Transport: c.ownTransport}
	}
	var err error
	c.token = token
	if c.api, err = client.New(cfg.URL, client.Options{HTTPClient: hc, Token: token, Timeout: cfg.RequestTimeout}); err != nil {
		return nil, err
	}
	// MaxRounds is lower than the driver's default: a heal that keeps
	// failing (a commit the gateway rejects) is retried with backoff
	// rather than spending a hundred whole-set filters each time.
	// Commits the gateway rejects inside a sync round are reported to
	// onRejected (they would otherwise only show as a heal that never
	// converges).
	c.driver = &gsync.Driver{Transport: c.api, MaxRounds: 32, OnRejected: c.onRejected}

	for _, sc := range cfg.Schemas {
		if err := c.reg.Add(sc); err != nil {
			return nil, fmt.Errorf("schema %s: %w", sc.Ref(), err)
		}
	}
	scfg := storage.Config{
		NoSync:      cfg.NoSync,
		IdleTimeout: -1,
		Verify:      c.verifyLocal,
		Merger:      localMerger{c},
		OnAppend:    c.onAppend,
		Logger:      slog.New(warnOnly{c.log.Handler()}).With("component", "replica"),
	}
	if cfg.Dir == "" {
		scfg.Dir, scfg.FS, scfg.NoSync = "/goat", storage.NewMemFS(), true
		if c.key, err = newSessionKey(cfg.Now(), cfg.SessionTTL); err != nil {
			return nil, err
		}
	} else {
		if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
			return nil, err
		}
		if err := c.loadDir(); err != nil {
			return nil, err
		}
		scfg.Dir = filepath.Join(cfg.Dir, replicaDir)
	}
	if c.store, err = storage.Open(scfg); err != nil {
		return nil, fmt.Errorf("open local replica: %w", err)
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.wg.Add(2)
	go func() { defer c.wg.Done(); c.streamLoop(c.ctx) }()
	go func() { defer c.wg.Done(); c.statusLoop(c.ctx) }()
	return c, nil
}

// loadDir reads (or creates) the session key, sync state and cached
// schemas of the local directory.
func (c *Client) loadDir() error {
	now := c.cfg.Now()
	k, err := loadSessionKey(c.dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	}
	if err != nil || k.expires.Sub(now) < c.cfg.SessionTTL/4 {
		// No key yet, or one about to expire: commits it signed and has
		// not pushed yet still go until it does expire.
		if k, err = newSessionKey(now, c.cfg.SessionTTL); err != nil {
			return err
		}
		if err := saveSessionKey(c.dir, k, !c.cfg.NoSync); err != nil {
			return fmt.Errorf("save session key: %w", err)
		}
	}
	c.key = k
	if c.state, err = loadState(c.dir); err != nil {
		return err
	}
	cached, err := loadSchemas(c.dir)
	if err != nil {
		return err
	}
	for _, sc := range cached {
		if err := c.reg.Add(sc); err != nil {
			c.log.Warn("cached schema differs from the configured one", logKeySchema, sc.Ref(), logKeyErr, err)
		}
	}
	return nil
}

// SessionID returns the id of the client's session (the author of its
// commits).
func (c *Client) SessionID() string {
	c.sessMu.Lock()
	defer c.sessMu.Unlock()
	return sessionIDOf(c.key)
}

// Registry returns the client's schema registry: the configured schemas
// and those learned from the gateway.
func (c *Client) Registry() *core.Registry { return c.reg }

// Repo opens a repository of the replica, creating it locally if needed,
// and starts syncing it in the background: a clone from the gateway's log
// the first time, then live events and heals. It returns at once; the
// same *Repo is returned for the same name until Close.
func (c *Client) Repo(name string) (*Repo, error) {
	if err := core.ValidateRepoName(name); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, core.ErrClosed
	}
	if r := c.repos[name]; r != nil {
		return r, nil
	}
	st, release, err := c.store.Ensure(name)
	if err != nil {
		return nil, fmt.Errorf("open repository %q: %w", name, err)
	}
	r := newRepo(c, name, st, release)
	c.stateMu.Lock()
	if rs := c.state.Repos[name]; rs != nil {
		r.cursor = rs.Cursor
		r.outbox = slices.Clone(rs.Outbox)
	}
	c.stateMu.Unlock()
	c.repos[name] = r
	c.byName.Store(name, r)
	r.start(c.ctx)
	c.restartStream()
	return r, nil
}

func (c *Client) openRepos() []*Repo {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*Repo, 0, len(c.repos))
	for _, r := range c.repos {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *Repo) int { return strings.Compare(a.name, b.name) })
	return out
}

// Close flushes pending edits into the local replica, stops syncing and
// closes the replica. It does not wait for the gateway: with a local
// directory, unpushed commits are pushed after the next Open; a memory
// client loses them (call Repo.Sync first).
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	repos := make([]*Repo, 0, len(c.repos))
	for _, r := range c.repos {
		repos = append(repos, r)
	}
	c.mu.Unlock()
	var errs []error
	for _, r := range repos {
		r.refuseWrites()
		if err := r.flush(context.Background()); err != nil {
			errs = append(errs, err)
		}
		r.closeLocal()
	}
	c.cancel()
	c.wg.Wait()
	for _, r := range repos {
		r.wait()
	}
	if err := c.saveState(); err != nil {
		errs = append(errs, err)
	}
	c.stateMu.Lock()
	c.stateDone = true
	c.stateMu.Unlock()
	for _, r := range repos {
		r.release()
	}
	if err := c.store.Close(); err != nil {
		errs = append(errs, err)
	}
	if c.ownTransport != nil {
		c.ownTransport.CloseIdleConnections()
	}
	return errors.Join(errs...)
}

// Status returns the client's sync state.
func (c *Client) Status() Status {
	c.statMu.Lock()
	s := Status{Online: c.online, Polling: c.polling}
	var errAt time.Time
	if c.streamErr != nil {
		s.LastError, errAt = c.streamErr, c.streamErrT
	}
	c.statMu.Unlock()
	for _, r := range c.openRepos() {
		r.mu.Lock()
		s.Pending += len(r.overlay) + len(r.outbox)
		s.Syncing = s.Syncing || r.syncing
		if r.err != nil && r.errAt.After(errAt) {
			s.LastError, errAt = r.err, r.errAt
		}
		r.mu.Unlock()
	}
	return s
}

// statusChanged wakes the OnStatus notifier.
func (c *Client) statusChanged() {
	if c.cfg.OnStatus == nil {
		return
	}
	select {
	case c.statSignal <- struct{}{}:
	default:
	}
}

func (c *Client) statusLoop(ctx context.Context) {
	if c.cfg.OnStatus == nil {
		return
	}
	var last Status
	first := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.statSignal:
		}
		s := c.Status()
		if first || s.Online != last.Online || s.Polling != last.Polling || s.Syncing != last.Syncing || s.Pending != last.Pending || s.LastError != last.LastError {
			first = false
			last = s
			c.cfg.OnStatus(s)
		}
	}
}

func (c *Client) setOnline(online bool, err error) {
	c.statMu.Lock()
	c.online = online
	if err != nil {
		c.streamErr, c.streamErrT = err, time.Now()
	} else if online {
		c.streamErr = nil
	}
	c.statMu.Unlock()
	c.statusChanged()
}

// stateDelay gathers changes of the sync state into one write: an
// outbox of many commits is rewritten at most this often. What a crash
// loses of it, the heal after the next Open recomputes.
const stateDelay = time.Second

// saveState writes DIR/state.json (a no-op for memory clients).
func (c *Client) saveState() error {
	if c.dir == "" {
		return nil
	}
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	if c.stateTimer != nil {
		c.stateTimer.Stop()
		c.stateTimer = nil
	}
	if c.stateDone {
		return nil // closed: the last write has been made
	}
	b, err := json.Marshal(c.state)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(c.dir, stateFile), b, 0o600, !c.cfg.NoSync); err != nil {
		c.log.Warn("save sync state", logKeyErr, err)
		return err
	}
	return nil
}

// updateState records a repository's cursor and outbox; they are
// written within stateDelay, and at Close.
func (c *Client) updateState(name, cursor string, outbox []core.CommitID) {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	c.state.Repos[name] = &repoState{Cursor: cursor, Outbox: slices.Clone(outbox)}
	if c.dir != "" && c.stateTimer == nil && !c.stateDone {
		c.stateTimer = time.AfterFunc(stateDelay, func() { _ = c.saveState() })
	}
}

// ensureSession registers the session key with the gateway once per
// connection (the gateway answers 200 for a key it knows, so this also
// re-registers it with a gateway that lost its sessions).
func (c *Client) ensureSession(ctx context.Context) error {
	c.regMu.Lock()
	defer c.regMu.Unlock()
	c.sessMu.Lock()
	done := c.registered
	if !done && c.key.expires.Sub(c.cfg.Now()) < c.cfg.SessionTTL/4 {
		// A long-running client whose key nears its end: commits the old
		// key signed and has not pushed still go until it expires.
		k, err := newSessionKey(c.cfg.Now(), c.cfg.SessionTTL)
		if err == nil && c.dir != "" {
			err = saveSessionKey(c.dir, k, !c.cfg.NoSync)
		}
		if err != nil {
			c.sessMu.Unlock()
			return err
		}
		c.key = k
	}
	key := c.key
	c.sessMu.Unlock()
	if done {
		return nil
	}
	info, err := c.api.Info(ctx)
	if err != nil {
		return err
	}
	tok, err := c.token(ctx)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	sub, err := tokenSubject(tok)
	if err != nil {
		return err
	}
	body, err := client.SessionBody(key.priv, info.Audience, sub, key.expires)
	if err != nil {
		return err
	}
	if _, _, err := c.api.CreateSession(ctx, body); err != nil {
		return err
	}
	c.sessMu.Lock()
	// Unless sign replaced the key meanwhile: then that one registers
	// next time.
	c.registered = c.key.priv.Equal(key.priv)
	c.sessMu.Unlock()
	return nil
}

// tokenSubject reads the sub claim of a JWT without verifying it: the
// session proof must name the owner the gateway will see in the token,
// and the gateway verifies the token itself.
func tokenSubject(tok string) (string, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "", fmt.Errorf("%w: the token is not a JWT", core.ErrUnauthenticated)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", fmt.Errorf("%w: token payload: %v", core.ErrUnauthenticated, err)
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(b, &claims); err != nil || claims.Sub == "" {
		return "", fmt.Errorf("%w: the token has no sub", core.ErrUnauthenticated)
	}
	return claims.Sub, nil
}

// ensureSchemas learns the gateway's schemas (merges need every schema
// of the items they merge) and publishes configured ones it lacks, once
// per connection.
func (c *Client) ensureSchemas(ctx context.Context) error {
	c.regMu.Lock()
	defer c.regMu.Unlock()
	c.sessMu.Lock()
	done := c.schemasOK
	c.sessMu.Unlock()
	if done {
		return nil
	}
	remote, retired, err := c.api.ListSchemasRetired(ctx)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, sc := range remote {
		have[sc.Ref()] = true
		if err := c.reg.Add(sc); err != nil {
			c.log.Warn("gateway schema differs from the local one", logKeySchema, sc.Ref(), logKeyErr, err)
			continue
		}
		// Rollback and its undoing: the gateway's word on retirement.
		_ = c.reg.Retire(sc.Ref(), retired[sc.Ref()])
	}
	for _, sc := range c.cfg.Schemas {
		if have[sc.Ref()] {
			continue
		}
		if err := c.api.PutSchema(ctx, sc); err != nil {
			if isOffline(err) || isCanceled(err) {
				return err
			}
			c.log.Warn("schema not published", logKeySchema, sc.Ref(), logKeyErr, err)
		}
	}
	if c.dir != "" {
		if err := saveSchemas(c.dir, c.reg.List(), !c.cfg.NoSync); err != nil {
			c.log.Warn("cache schemas", logKeyErr, err)
		}
	}
	c.sessMu.Lock()
	c.schemasOK = true
	c.sessMu.Unlock()
	return nil
}

// resetRemote forgets what this process set up on the gateway: after a
// lost connection the gateway may be another one, or may have lost its
// data, so sessions, schemas and repositories are set up again.
func (c *Client) resetRemote() {
	c.sessMu.Lock()
	c.registered, c.schemasOK = false, false
	c.sessMu.Unlock()
	for _, r := range c.openRepos() {
		r.mu.Lock()
		r.created = false
		r.mu.Unlock()
	}
}

// onRejected records a commit the gateway refused in a sync round.
func (c *Client) onRejected(repo string, res gsync.PushResult) {
	err := client.RejectedError(repo, res)
	if errors.Is(err, core.ErrUnauthenticated) {
		// Possibly our session, on a gateway that lost it: register again.
		c.sessMu.Lock()
		c.registered = false
		c.sessMu.Unlock()
	}
	if v, ok := c.byName.Load(repo); ok {
		v.(*Repo).setErr(err)
	}
}

// onAppend is storage's hook: every durable append of the replica (local
// writes, ingested commits, local merges). It only queues the changed
// keys for the repository's live queries: it must not block.
func (c *Client) onAppend(repo string, recs []storage.Record) {
	v, ok := c.byName.Load(repo)
	if !ok {
		return
	}
	r := v.(*Repo)
	keys := make([]string, 0, len(recs))
	var merges []core.CommitID
	for _, rec := range recs {
		keys = append(keys, rec.Key)
		if _, ok := c.localMerges.LoadAndDelete(rec.ID); ok {
			merges = append(merges, rec.ID)
		}
	}
	if len(merges) > 0 {
		r.chMu.Lock()
		r.newMerges = append(r.newMerges, merges...)
		r.chMu.Unlock()
		r.kickSync()
	}
	r.changedKeys(keys...)
}

// verifyLocal is the replica's check of a commit before it is stored.
// Storage itself recomputes every id. Merge commits are recomputed here
// (merge.Verify), so a wrong merge never enters the replica. Signatures
// are not checked: that needs the session records, which only the
// gateway holds (sys.sessions is not readable by clients), and every
// commit arriving here was verified and authorized by the gateway or was
// made by this client.
func (c *Client) verifyLocal(v storage.View, cm *core.Commit, _ map[string]any) error {
	if !cm.IsMerge() {
		return nil
	}
	err := merge.Verify(v, c.reg, cm)
	if errors.Is(err, core.ErrSchema) {
		// A schema this client has not learned yet: the gateway
		// recomputed the merge when it accepted it.
		return nil
	}
	return err
}

// localMerger makes the replica's merge commits: byte-identical to the
// gateway's, since both run merge.Merge on the same commit graph. The
// gateway does not always merge the same heads (it may see a head this
// replica merged already, or not yet), so merges made here are pushed
// like local edits; usually they are duplicates.
type localMerger struct{ c *Client }

func (m localMerger) Merge(v storage.View, key string, heads []core.CommitID) (*core.Commit, error) {
	if len(heads) > merge.GroupSize {
		return nil, nil // more than one merge commit takes: Repo.collapse merges them in groups
	}
	cm, err := merge.Merge(v, m.c.reg, v.Name(), key, heads)
	if errors.Is(err, core.ErrSchema) {
		return nil, nil // leave the heads; the gateway's merge will come
	}
	if err == nil {
		m.c.localMerges.Store(cm.ID, struct{}{})
	}
	return cm, err
}

// buildVersions is Config.Versions, or the newest version of each
// namespace in Config.Schemas.
func buildVersions(cfg Config) map[string]int {
	if cfg.Versions != nil {
		return maps.Clone(cfg.Versions)
	}
	v := map[string]int{}
	for _, sc := range cfg.Schemas {
		v[sc.NS] = max(v[sc.NS], sc.Version)
	}
	return v
}

// view is how this client reads items: through the branch of its
// versions (and below retired versions).
func (c *Client) view() merge.View { return merge.View{Versions: c.versions} }

// RefreshSchemas learns the gateway's schemas again now, retirements
// included, instead of at the next connection.
func (c *Client) RefreshSchemas(ctx context.Context) error {
	c.sessMu.Lock()
	c.schemasOK = false
	c.sessMu.Unlock()
	return c.ensureSchemas(ctx)
}

func sessionIDOf(k sessionKey) string { return core.SessionID(k.public()) }
