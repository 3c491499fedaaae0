package api

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	stdsync "sync"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/storage"
)

// Config configures a Server. The zero value of every field but DataDir is
// a usable default.
type Config struct {
	// DataDir holds the repository logs (and keys/, unless KeysDir is set).
	DataDir string
	// KeysDir holds the root key and the dev issuer key; default
	// DataDir/keys. Keep it apart from DataDir to wipe repositories without
	// losing identities.
	KeysDir string
	// Dev lets every authenticated caller read and write every
	// non-system repository and publish schemas. Never in production.
	Dev bool
	// Rules authorizes callers; nil means default deny (or DevRules with
	// Dev).
	Rules *auth.Rules
	// Issuers are the trusted token issuers besides the dev issuer.
	Issuers []auth.IssuerConfig
	// NoDevIssuer stops trusting tokens minted by `goat-gateway token`.
	NoDevIssuer bool
	// Audience is the aud sessions are registered for; default the dev
	// issuer's audience, "goat-gateway".
	Audience string
	// NoSync turns fsync off: tests and benchmarks only.
	NoSync bool
	// BodyLimit bounds request bodies; default 8 MiB.
	BodyLimit int64
	// Version is reported by /v1/info.
	Version string
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time

	// Heartbeat is the SSE comment interval; default 15 s.
	Heartbeat time.Duration
	// SubscriberBuffer is how many events a subscriber may fall behind
	// before it is dropped; default 1024.
	SubscriberBuffer int
	// InlineLimit is the largest commit pushed inline in an SSE event;
	// larger ones are announced by id; default 64 KiB.
	InlineLimit int
	// MaxStreamsPerCaller bounds concurrent SSE streams per subject (or per
	// remote address for anonymous callers); default 64.
	MaxStreamsPerCaller int
	// WriteTimeout bounds one SSE write, so half-open connections go away;
	// default 30 s.
	WriteTimeout time.Duration
	// IdleTimeout closes idle repositories; default 5 min.
	IdleTimeout time.Duration
	// OnAppend, if set, sees every durable append of this node, in node
	// sequence order (scale-out publishes them). It must not block.
	OnAppend func(repo string, recs []storage.Record)
	// Middleware, if set, wraps the node's HTTP handler (scale-out holds a
	// write's acknowledgement until the write has left the node).
	Middleware func(http.Handler) http.Handler
}

func (c *Config) setDefaults() {
	if c.KeysDir == "" {
		c.KeysDir = filepath.Join(c.DataDir, "keys")
	}
	if c.BodyLimit == 0 {
		c.BodyLimit = 8 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = 15 * time.Second
	}
	if c.SubscriberBuffer == 0 {
		c.SubscriberBuffer = 1024
	}
	if c.InlineLimit == 0 {
		c.InlineLimit = 64 << 10
	}
	if c.MaxStreamsPerCaller == 0 {
		c.MaxStreamsPerCaller = 64
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 30 * time.Second
	}
	if c.Version == "" {
		c.Version = "dev"
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

// Server is one gateway node.
type Server struct {
	cfg      Config
	log      *slog.Logger
	store    *storage.Store
	reg      *core.Registry
	sessions *auth.Sessions
	verifier *auth.Verifier
	dev      *auth.DevIssuer
	root     ed25519.PrivateKey
	rootID   string
	hub      *hub
	metrics  *metrics
	echo     *echo.Echo
	handler  http.Handler
	custody  *custody
	streams  *streamLimiter
	sysq     *sysQueue

	ctx    context.Context
	cancel context.CancelFunc
	wg     stdsync.WaitGroup

	closeOnce stdsync.Once
	closeErr  error
}

// Open starts a node on cfg.DataDir: it opens the storage, loads keys,
// sessions and schemas, and builds the HTTP handler. Serve it with
// Handler() or ListenAndServe; Close stops it.
func Open(cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("api: Config.DataDir is required")
	}
	cfg.setDefaults()
	s := &Server{cfg: cfg, log: cfg.Logger, reg: core.NewRegistry(), hub: newHub(), sysq: newSysQueue(), streams: newStreamLimiter(cfg.MaxStreamsPerCaller)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.reg.Add(auth.SessionSchema()); err != nil {
		return nil, err
	}
	var err error
	if s.root, err = auth.LoadOrCreateKey(filepath.Join(cfg.KeysDir, auth.RootKeyFile)); err != nil {
		return nil, fmt.Errorf("root key: %w", err)
	}
	rootPub := s.root.Public().(ed25519.PublicKey)
	s.rootID = auth.NodeSessionID(rootPub)
	s.sessions = auth.NewSessions(rootPub)
	s.custody = newCustody(s)

	issuers := append([]auth.IssuerConfig(nil), cfg.Issuers...)
	if s.dev, err = auth.OpenDevIssuer(cfg.KeysDir); err != nil {
		return nil, fmt.Errorf("dev issuer: %w", err)
	}
	if !cfg.NoDevIssuer {
		issuers = append(issuers, s.dev.IssuerConfig())
	}
	if s.verifier, err = auth.NewVerifier(auth.VerifierConfig{Issuers: issuers, Logger: s.log}); err != nil {
		return nil, err
	}
	s.metrics = newMetrics(s)

	s.store, err = storage.Open(storage.Config{
		Dir:         cfg.DataDir,
		NoSync:      cfg.NoSync,
		IdleTimeout: cfg.IdleTimeout,
		Verify:      s.verifyFromClient,
		Merger:      merger{s.reg},
		OnAppend:    s.onAppend,
		Logger:      s.log,
	})
	if err != nil {
		return nil, err
	}
	if err := s.loadSystemRepos(); err != nil {
		s.store.Close()
		return nil, err
	}
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.sysLoop(s.ctx) }()
	s.echo = s.newEcho()
	s.handler = compressMiddleware(s.echo)
	if cfg.Middleware != nil {
		s.handler = cfg.Middleware(s.handler)
	}
	if cfg.Dev {
		s.log.Warn("DEV MODE: every authenticated caller may read and write every repository; never run this in production")
	}
	return s, nil
}

// Handler returns the HTTP handler of the node.
func (s *Server) Handler() http.Handler { return s.handler }

// DevIssuer returns the node's dev token issuer.
func (s *Server) DevIssuer() *auth.DevIssuer { return s.dev }

// Store returns the node's storage (for tools and tests in this module).
func (s *Server) Store() *storage.Store { return s.store }

// Serve serves HTTP on ln until ctx is done, then shuts down gracefully:
// streams end, in-flight requests get shutdownGrace to finish.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return s.ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// End the SSE streams first: Shutdown waits for active requests.
	s.hub.close()
	s.cancel()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}

// Close stops background work and closes the storage. Requests still in
// flight get ErrClosed.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.hub.close()
		s.cancel()
		s.wg.Wait()
		s.closeErr = s.store.Close()
	})
	return s.closeErr
}

func (s *Server) now() time.Time { return s.cfg.Now() }
