package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/getkin/kin-openapi/routers"
	"github.com/labstack/echo/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/node"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

// Config configures the HTTP face of a node. The zero value of every field
// is a usable default.
type Config struct {
	// Issuers are the trusted token issuers besides the node's dev issuer.
	Issuers []auth.IssuerConfig
	// TrustDevIssuer trusts tokens minted by `goat-gateway token` (the
	// node's dev issuer). Its key sits in the keys directory and travels
	// with every backup of it, so serve sets this only with --dev; the
	// test harness sets it too.
	TrustDevIssuer bool
	// TrustProxyHeaders counts anonymous callers under the last hop of
	// X-Forwarded-For instead of the connection's address: set it only
	// when a proxy that appends to that header fronts every connection.
	TrustProxyHeaders bool
	// Collectors are registered on /metrics beside the node's own, such as
	// the cluster's counters (cluster.Cluster.Collector).
	Collectors []prometheus.Collector
	// BodyLimit bounds request bodies; default 16 MiB (sync.MaxRequestBytes:
	// a sync round with the largest filter and a full push fits).
	BodyLimit int64
	// BodyReadTimeout bounds the time a request body may take to arrive,
	// so a body sent a byte at a time cannot hold a connection; default
	// 30 s.
	BodyReadTimeout time.Duration
	// BodyBudget bounds the bytes of all request bodies held at once;
	// a body that does not fit is a 429 with Retry-After; default 256 MiB.
	BodyBudget int64
	// BodyRate bounds the bytes of request bodies one caller (a token's
	// subject, or an anonymous caller's address) sends a second, with a
	// burst of BodyLimit; a body over it is a 429 with Retry-After before
	// it is read. Default 32 MiB/s; negative: no limit.
	BodyRate int64
	// Version is reported by /v1/info.
	Version string
	// Heartbeat is the SSE comment interval; default 15 s.
	Heartbeat time.Duration
	// NoIOURing makes the fan-out writers send this server's streams with
	// one write(2) each instead of on io_uring (which they use where the
	// kernel offers it): for a security policy that forbids io_uring. A
	// process whose servers all set it never sets a ring up.
	NoIOURing bool
	// TokenCache is how many verified bearer tokens are remembered so that
	// a token sent again is not verified again (auth.VerifierConfig
	// CacheSize); default auth.DefaultTokenCacheSize, negative: none.
	TokenCache int
	// SubscriberBuffer is how many events a subscriber may fall behind
	// before it is dropped; default 1024.
	SubscriberBuffer int
	// WriteTimeout bounds one SSE write, so half-open connections go away;
	// default 30 s.
	WriteTimeout time.Duration
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Now is the clock of token checks; default time.Now.
	Now func() time.Time
	// StaticDir, when set, is served for every path outside /v1 and the
	// operational paths (static.go): the application's own files.
	StaticDir string
	// CORSOrigins are the origins whose pages may call the API ("*" for
	// any); empty sends no CORS headers (cors.go).
	CORSOrigins []string
}

func (c *Config) setDefaults() {
	if c.BodyLimit == 0 {
		c.BodyLimit = gsync.MaxRequestBytes
	}
	if c.BodyReadTimeout == 0 {
		c.BodyReadTimeout = 30 * time.Second
	}
	if c.BodyBudget == 0 {
		c.BodyBudget = 256 << 20
	}
	if c.BodyRate == 0 {
		c.BodyRate = defaultBodyRate
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
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 30 * time.Second
	}
	if c.Version == "" {
		c.Version = "dev"
	}
}

// Server is the HTTP face of one node.
type Server struct {
	cfg      Config
	log      *slog.Logger
	node     *node.Node
	verifier *auth.Verifier
	metrics  *metrics
	router   routers.Router
	budget   *byteBudget
	rate     *bodyRate // nil: no per-caller rate
	echo     *echo.Echo
	handler  http.Handler
}

// New builds the HTTP face of n. Serve it with Handler() or Serve; the
// node's lifecycle stays the caller's.
func New(n *node.Node, cfg Config) (*Server, error) {
	cfg.setDefaults()
	s := &Server{cfg: cfg, log: cfg.Logger, node: n}
	issuers := append([]auth.IssuerConfig(nil), cfg.Issuers...)
	if cfg.TrustDevIssuer {
		issuers = append(issuers, n.DevIssuer().IssuerConfig())
	}
	var err error
	if s.verifier, err = auth.NewVerifier(auth.VerifierConfig{Issuers: issuers, CacheSize: cfg.TokenCache, Logger: s.log}); err != nil {
		return nil, err
	}
	if s.metrics, err = newMetrics(n, cfg.Collectors); err != nil {
		return nil, err
	}
	s.router = newRouter()
	s.budget = &byteBudget{max: cfg.BodyBudget}
	if cfg.BodyRate > 0 {
		s.rate = newBodyRate(cfg.BodyRate, cfg.BodyLimit, defaultRateBuckets)
	}
	s.echo = s.newEcho()
	var h http.Handler = s.echo
	if cfg.StaticDir != "" {
		root, err := os.OpenRoot(cfg.StaticDir)
		if err != nil {
			return nil, fmt.Errorf("static files: %w", err)
		}
		h = staticHandler(root, h)
	}
	h = compressMiddleware(withRemote(h, cfg.TrustProxyHeaders))
	if len(cfg.CORSOrigins) > 0 {
		h = corsHandler(cfg.CORSOrigins, h)
	}
	s.handler = h
	return s, nil
}

// Handler returns the HTTP handler of the node.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve serves HTTP on ln until ctx is done, then shuts down gracefully:
// the node's live streams end, in-flight requests get shutdownGrace to
// finish.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srvCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return srvCtx },
		ConnContext:       func(ctx context.Context, c net.Conn) context.Context { return context.WithValue(ctx, connKey{}, c) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// End the live streams first: Shutdown waits for active requests.
	s.node.Shutdown()
	cancel()
	shutdownCtx, cancelShutdown := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancelShutdown()
	err := srv.Shutdown(shutdownCtx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}

// shutdownGrace is how long requests in flight may take to finish.
const shutdownGrace = 10 * time.Second
