package goattest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	stdsync "sync"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/api"
	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/node"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

// Config shapes a test gateway. The zero value is a dev-mode gateway on a
// fresh temporary directory, without fsync, with a silent log.
type Config struct {
	// DataDir holds the repository logs; default a new temporary
	// directory (removed when the test ends).
	DataDir string
	// KeysDir holds the root and dev issuer keys; default DataDir/keys.
	// Nodes of one deployment share it.
	KeysDir string
	// Rules authorizes callers. Nil means dev mode: every authenticated
	// caller reads and writes every non-system repository.
	Rules *auth.Rules
	// Issuers are token issuers trusted besides the dev issuer.
	Issuers []auth.IssuerConfig
	// Sync turns fsync on (off by default: tests need no durability
	// against power loss).
	Sync bool
	// Logger receives the gateway's log; default discard.
	Logger *slog.Logger
	// Listener, if set, is served instead of a new listener on
	// 127.0.0.1:0 (for callers that must know the address before the
	// gateway starts, like peers of a cluster).
	Listener net.Listener

	// Limits and timings; zero means the gateway's default.
	BodyLimit           int64
	BodyReadTimeout     time.Duration
	BodyBudget          int64
	BodyRate            int64
	Heartbeat           time.Duration
	SubscriberBuffer    int
	InlineLimit         int
	MaxStreamsPerCaller int
	WriteTimeout        time.Duration
	IdleTimeout         time.Duration
	Now                 func() time.Time

	// StaticDir, CORSOrigins and NoIOURing are passed through to the
	// HTTP face (serve --static, --cors-origin, --io-uring=false).
	StaticDir   string
	CORSOrigins []string
	NoIOURing   bool

	// Observer and Barrier are passed through to the node (scale-out's
	// hooks).
	Observer node.Observer
	Barrier  node.Barrier
}

// gatewayNode is what a test gateway runs: the node and its HTTP face,
// built in one place (open).
type gatewayNode struct {
	nd  *node.Node
	srv *api.Server
}

func (n *gatewayNode) handler() http.Handler                            { return n.srv.Handler() }
func (n *gatewayNode) devIssuer() *auth.DevIssuer                       { return n.nd.DevIssuer() }
func (n *gatewayNode) serve(ctx context.Context, ln net.Listener) error { return n.srv.Serve(ctx, ln) }
func (n *gatewayNode) close() error                                     { return n.nd.Close() }

// open builds a gateway from cfg, the way cmd/goat-gateway serve does,
// with the test defaults applied. It is the only constructor of a node
// in the tests of this module.
func open(cfg Config) (*gatewayNode, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	nd, err := node.Open(node.Config{
		DataDir:             cfg.DataDir,
		KeysDir:             cfg.KeysDir,
		Dev:                 cfg.Rules == nil,
		Rules:               cfg.Rules,
		NoSync:              !cfg.Sync,
		Logger:              logger,
		InlineLimit:         cfg.InlineLimit,
		MaxStreamsPerCaller: cfg.MaxStreamsPerCaller,
		IdleTimeout:         cfg.IdleTimeout,
		Now:                 cfg.Now,
		Observer:            cfg.Observer,
		Barrier:             cfg.Barrier,
	})
	if err != nil {
		return nil, err
	}
	srv, err := api.New(nd, api.Config{
		Issuers:          cfg.Issuers,
		TrustDevIssuer:   true, // tests mint their tokens with it, dev mode or not
		Logger:           logger,
		BodyLimit:        cfg.BodyLimit,
		BodyReadTimeout:  cfg.BodyReadTimeout,
		BodyBudget:       cfg.BodyBudget,
		BodyRate:         cfg.BodyRate,
		Heartbeat:        cfg.Heartbeat,
		SubscriberBuffer: cfg.SubscriberBuffer,
		WriteTimeout:     cfg.WriteTimeout,
		Now:              cfg.Now,
		StaticDir:        cfg.StaticDir,
		CORSOrigins:      cfg.CORSOrigins,
		NoIOURing:        cfg.NoIOURing,
	})
	if err != nil {
		nd.Close()
		return nil, err
	}
	return &gatewayNode{nd: nd, srv: srv}, nil
}

// Gateway is a gateway served in this process on a loopback address that
// stays the same across Stop and Start, so clients keep their URL.
type Gateway struct {
	cfg  Config
	addr string

	mu     stdsync.Mutex
	node   *gatewayNode
	ln     *trackingListener
	cancel context.CancelFunc
	done   chan error
}

// StartGateway starts a gateway for tb and stops it when tb ends.
func StartGateway(tb testing.TB, cfg Config) *Gateway {
	tb.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = tb.TempDir()
	}
	g, err := OpenGateway(cfg)
	if err != nil {
		tb.Fatalf("start gateway: %v", err)
	}
	tb.Cleanup(g.Stop)
	return g
}

// OpenGateway starts a gateway without a test to tie it to (examples);
// cfg.DataDir is required and the caller calls Stop.
func OpenGateway(cfg Config) (*Gateway, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("goattest: Config.DataDir is required")
	}
	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return nil, err
		}
	}
	g := &Gateway{cfg: cfg, addr: ln.Addr().String()}
	if err := g.serve(ln); err != nil {
		ln.Close()
		return nil, err
	}
	return g, nil
}

func (g *Gateway) serve(ln net.Listener) error {
	n, err := open(g.cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	tl := &trackingListener{Listener: ln, conns: map[net.Conn]struct{}{}}
	done := make(chan error, 1)
	g.mu.Lock()
	g.node, g.ln, g.cancel, g.done = n, tl, cancel, done
	g.mu.Unlock()
	go func() { done <- n.serve(ctx, tl) }()
	return nil
}

// Stop stops the gateway abruptly, as a killed process stops: open
// connections are cut, in-flight requests fail. The data directory stays.
// Stopping a stopped gateway does nothing.
func (g *Gateway) Stop() {
	g.mu.Lock()
	cancel, ln, done, n := g.cancel, g.ln, g.done, g.node
	g.cancel = nil
	g.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	ln.cut()
	<-done
	n.close()
}

// Start serves the data directory again on the same address.
func (g *Gateway) Start() error {
	g.mu.Lock()
	running := g.cancel != nil
	g.mu.Unlock()
	if running {
		return errors.New("goattest: gateway already running")
	}
	// The port was ours a moment ago; the kernel may take a moment to let
	// it go.
	var ln net.Listener
	var err error
	Eventually(Patience, func() bool {
		ln, err = net.Listen("tcp", g.addr)
		return err == nil
	})
	if err != nil {
		return fmt.Errorf("listen again on %s: %w", g.addr, err)
	}
	return g.serve(ln)
}

// Restart stops and starts the gateway on the same data directory and
// address.
func (g *Gateway) Restart(tb testing.TB) {
	tb.Helper()
	g.Stop()
	if err := g.Start(); err != nil {
		tb.Fatal(err)
	}
}

// URL is the gateway's base URL, http://127.0.0.1:port.
func (g *Gateway) URL() string { return "http://" + g.addr }

// Addr is the gateway's host:port.
func (g *Gateway) Addr() string { return g.addr }

// DataDir is the gateway's data directory.
func (g *Gateway) DataDir() string { return g.cfg.DataDir }

func (g *Gateway) current() *gatewayNode {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.node
}

// Handler is the gateway's HTTP handler, for tests that serve requests
// without a connection (fuzzing).
func (g *Gateway) Handler() http.Handler { return g.current().handler() }

// Node is the gateway's node, for tests that inspect what it holds
// (Peek, State, Repos).
func (g *Gateway) Node() *node.Node { return g.current().nd }

// Mint returns a dev token for sub with roles, valid for ttl from now.
func (g *Gateway) Mint(sub string, roles []string, ttl time.Duration, now time.Time) (string, error) {
	return g.current().devIssuer().Mint(sub, roles, ttl, now)
}

// Token returns a dev token for sub with roles, valid for an hour. The dev
// issuer signs in memory; it panics if that fails (a broken key store).
func (g *Gateway) Token(sub string, roles ...string) string {
	tok, err := g.Mint(sub, roles, time.Hour, time.Now())
	if err != nil {
		panic(fmt.Sprintf("goattest: mint a token for %q: %v", sub, err))
	}
	return tok
}

// Digest returns the gateway's count and digest of a repository; ok is
// false if the repository does not exist.
func (g *Gateway) Digest(repo string) (d gsync.Digest, ok bool) {
	ri, err := g.Node().State(repo)
	if err != nil {
		return gsync.Digest{}, false
	}
	return gsync.Digest{Count: int64(ri.Count), XOR: gsync.Sum(ri.Digest)}, true
}

// Has reports whether the gateway holds commit id in repo.
func (g *Gateway) Has(repo string, id core.CommitID) bool {
	return g.Node().Has(repo, id)
}

// Items returns the gateway's current values of a repository by key
// (none if the repository does not exist).
func (g *Gateway) Items(tb testing.TB, repo string) map[string]map[string]any {
	tb.Helper()
	out := map[string]map[string]any{}
	r, err := g.Node().Peek(repo)
	if errors.Is(err, core.ErrNotFound) {
		return out
	}
	if err != nil {
		tb.Fatal(err)
	}
	defer r.Release()
	vals, _, err := r.Items("", r.Info().Items+1, false, "")
	if err != nil {
		tb.Fatal(err)
	}
	for _, v := range vals {
		out[v.Key] = v.Data
	}
	return out
}

// MergeCommits counts the merge commits of a repository on the gateway.
func (g *Gateway) MergeCommits(tb testing.TB, repo string) int {
	tb.Helper()
	r, err := g.Node().Peek(repo)
	if err != nil {
		tb.Fatal(err)
	}
	defer r.Release()
	n := 0
	for off := int64(0); ; {
		recs, err := r.ReadLog(off, 1000)
		if err != nil {
			tb.Fatal(err)
		}
		for _, rec := range recs {
			c, err := rec.Commit()
			if err != nil {
				tb.Fatal(err)
			}
			if c.IsMerge() {
				n++
			}
		}
		if len(recs) < 1000 {
			return n
		}
		off += int64(len(recs))
	}
}

// WipeRepositories deletes every repository log of a stopped gateway
// (system repositories included) and returns their paths. Its keys and
// node identity stay: the gateway lost its data, not who it is.
func (g *Gateway) WipeRepositories(tb testing.TB) []string {
	tb.Helper()
	logs, err := filepath.Glob(filepath.Join(g.cfg.DataDir, "*.log"))
	if err != nil {
		tb.Fatal(err)
	}
	for _, f := range logs {
		if err := os.Remove(f); err != nil {
			tb.Fatal(err)
		}
	}
	return logs
}

// trackingListener remembers accepted connections, so that Stop can cut
// them as a killed process would (a graceful shutdown waits for
// connections a client dialed but never used).
type trackingListener struct {
	net.Listener
	mu    stdsync.Mutex
	conns map[net.Conn]struct{}
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns[c] = struct{}{}
		l.mu.Unlock()
	}
	return c, err
}

func (l *trackingListener) cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		c.Close()
	}
	l.conns = map[net.Conn]struct{}{}
}
