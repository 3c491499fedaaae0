package goat_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/api"
	"github.com/goat-gateway/goat-gateway/core"
	goat "github.com/goat-gateway/goat-gateway/sdk/go"
)

// gatewayNode is a real gateway in this process, on a loopback address
// that stays the same across restarts (clients keep their URL).
type gatewayNode struct {
	dir    string
	addr   string
	srv    *api.Server
	cancel context.CancelFunc
	done   chan error
	ln     *trackingListener
}

// trackingListener remembers accepted connections, so that stop can cut
// them as a killed process would (a graceful shutdown waits up to 5 s for
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

func newGateway(dir string) (*gatewayNode, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	g := &gatewayNode{dir: dir, addr: ln.Addr().String()}
	if err := g.serve(ln); err != nil {
		ln.Close()
		return nil, err
	}
	return g, nil
}

func (g *gatewayNode) serve(ln net.Listener) error {
	srv, err := api.Open(api.Config{DataDir: g.dir, Dev: true, NoSync: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	tl := &trackingListener{Listener: ln, conns: map[net.Conn]struct{}{}}
	g.srv, g.cancel, g.done, g.ln = srv, cancel, make(chan error, 1), tl
	go func() { g.done <- srv.Serve(ctx, tl) }()
	return nil
}

// stop stops the gateway abruptly, cutting its connections; its data
// directory stays.
func (g *gatewayNode) stop() {
	if g.cancel == nil {
		return
	}
	g.cancel()
	g.ln.cut()
	<-g.done
	g.srv.Close()
	g.cancel = nil
}

// start serves the data directory again on the same address.
func (g *gatewayNode) start() error {
	var ln net.Listener
	var err error
	// The port was ours a moment ago; the kernel may need a moment to
	// let it go.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if ln, err = net.Listen("tcp", g.addr); err == nil || time.Now().After(deadline) {
			break
		}
		<-tick.C
	}
	if err != nil {
		return fmt.Errorf("listen again on %s: %w", g.addr, err)
	}
	return g.serve(ln)
}

func (g *gatewayNode) url() string { return "http://" + g.addr }

func (g *gatewayNode) mint(sub string) (string, error) {
	return g.srv.DevIssuer().Mint(sub, nil, time.Hour, time.Now())
}

// state returns the gateway's count and digest of a repository (0 and
// the empty digest if it does not exist).
func (g *gatewayNode) state(name string) (int64, string) {
	r, release, err := g.srv.Store().Repo(name)
	if err != nil {
		return 0, strings.Repeat("0", 64)
	}
	defer release()
	n, x := r.State()
	return int64(n), fmt.Sprintf("%x", x)
}

// items returns the gateway's current values of a repository.
func (g *gatewayNode) items(tb testing.TB, name string) map[string]map[string]any {
	tb.Helper()
	r, release, err := g.srv.Store().Repo(name)
	if errors.Is(err, core.ErrNotFound) {
		return map[string]map[string]any{}
	}
	if err != nil {
		tb.Fatal(err)
	}
	defer release()
	vals, err := r.Items("", 100000, false)
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, v := range vals {
		out[v.Key] = v.Data
	}
	return out
}

// mergeCommits counts the merge commits of a repository on the gateway.
func (g *gatewayNode) mergeCommits(tb testing.TB, name string) int {
	tb.Helper()
	r, release, err := g.srv.Store().Repo(name)
	if err != nil {
		tb.Fatal(err)
	}
	defer release()
	n := 0
	r.EachID(0, func(_ int64, id core.CommitID) bool {
		if m, ok := r.Meta(id); ok && m.Merge {
			n++
		}
		return true
	})
	return n
}

// wipeRepositories deletes every repository log of a stopped gateway
// (system repositories included), keeping its keys and node identity:
// the gateway lost its data, not who it is.
func (g *gatewayNode) wipeRepositories(tb testing.TB) []string {
	tb.Helper()
	logs, err := filepath.Glob(filepath.Join(g.dir, "*.log"))
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

func startGateway(tb testing.TB) *gatewayNode {
	tb.Helper()
	g, err := newGateway(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(g.stop)
	return g
}

func (g *gatewayNode) restart(tb testing.TB) {
	tb.Helper()
	g.stop()
	if err := g.start(); err != nil {
		tb.Fatal(err)
	}
}

func (g *gatewayNode) token(tb testing.TB, sub string) string {
	tb.Helper()
	tok, err := g.mint(sub)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// netSwitch is a client's network link that a test can cut: while down,
// dials fail and open connections (the event stream, requests in flight)
// are closed, as when a laptop loses its Wi-Fi.
type netSwitch struct {
	mu    stdsync.Mutex
	down  bool
	conns map[net.Conn]struct{}
}

func newNetSwitch() *netSwitch { return &netSwitch{conns: map[net.Conn]struct{}{}} }

func (s *netSwitch) client() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: s.dial}}
}

func (s *netSwitch) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	s.mu.Lock()
	down := s.down
	s.mu.Unlock()
	if down {
		return nil, errors.New("network is down")
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		c.Close()
		return nil, errors.New("network is down")
	}
	s.conns[c] = struct{}{}
	return &trackedConn{Conn: c, s: s}, nil
}

type trackedConn struct {
	net.Conn
	s *netSwitch
}

func (c *trackedConn) Close() error {
	c.s.mu.Lock()
	delete(c.s.conns, c.Conn)
	c.s.mu.Unlock()
	return c.Conn.Close()
}

func (s *netSwitch) set(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
	if down {
		for c := range s.conns {
			c.Close()
		}
		s.conns = map[net.Conn]struct{}{}
	}
}

// testConfig is a client configuration for tests: fast retries, no
// fsync, a quiet log.
func testConfig(url, token string) goat.Config {
	return goat.Config{
		URL: url, Token: token, NoSync: true,
		ReconnectMin: 10 * time.Millisecond, ReconnectMax: 200 * time.Millisecond,
		CoalesceWindow: 20 * time.Millisecond,
		Logger:         testLogger(),
		Schemas:        []*core.Schema{noteSchema()},
	}
}

// testLogger discards the client log unless GOAT_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("GOAT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func openClient(tb testing.TB, g *gatewayNode, sub string, mod func(*goat.Config)) *goat.Client {
	tb.Helper()
	cfg := testConfig(g.url(), g.token(tb, sub))
	if mod != nil {
		mod(&cfg)
	}
	c, err := goat.Open(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

func openRepo(tb testing.TB, c *goat.Client, name string) *goat.Repo {
	tb.Helper()
	r, err := c.Repo(name)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// noteSchema has one field of each merge kind the tests exercise.
func noteSchema() *core.Schema {
	return &core.Schema{NS: "note", Version: 1, Fields: map[string]core.Field{
		"title": {Type: core.TypeText},
		"tags":  {Type: core.TypeSet},
		"done":  {Type: core.TypeBoolean},
		"n":     {Type: core.TypeNumber},
		"meta":  {Type: core.TypeMap},
	}}
}

// waitFor retries cond until it holds, failing the test after a generous
// deadline; what names the condition in the failure.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// inSync reports whether every replica of a repository holds exactly the
// gateway's commits.
func inSync(g *gatewayNode, name string, repos ...*goat.Repo) bool {
	n, d := g.state(name)
	for _, r := range repos {
		if rn, rd := r.Digest(); rn != n || rd != d {
			return false
		}
	}
	return true
}

// waitInSync waits until the replicas and the gateway hold the same
// commits, then checks that they show the same values.
func waitInSync(tb testing.TB, g *gatewayNode, name string, repos ...*goat.Repo) {
	tb.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(30 * time.Second)
	for !inSync(g, name, repos...) {
		if time.Now().After(deadline) {
			n, d := g.state(name)
			msg := fmt.Sprintf("replicas of %s not in sync with the gateway (%d %.8s):", name, n, d)
			for i, r := range repos {
				rn, rd := r.Digest()
				msg += fmt.Sprintf("\n  replica %d: %d %.8s", i, rn, rd)
			}
			if os.Getenv("GOAT_TEST_LOG") != "" {
				pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
			}
			tb.Fatal(msg)
		}
		<-tick.C
	}
	want := g.items(tb, name)
	for i, r := range repos {
		// Merges are made on every replica as commits arrive; wait for
		// the last ones to land.
		deadline := time.Now().Add(30 * time.Second)
		for {
			got := values(tb, r)
			if core.EqualJSON(toAny(got), toAny(want)) {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("replica %d of %s shows\n%v\nthe gateway\n%v", i, name, got, want)
			}
			<-tick.C
			want = g.items(tb, name)
		}
	}
}

func values(tb testing.TB, r *goat.Repo) map[string]map[string]any {
	tb.Helper()
	its, err := r.Items()
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, it := range its {
		out[it.Key] = it.Data
	}
	return out
}

func toAny(m map[string]map[string]any) any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }
