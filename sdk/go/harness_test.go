package goat_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	stdsync "sync"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
	goat "github.com/goat-gateway/goat-gateway/sdk/go"
)

// gatewayState returns the gateway's count and digest of a repository,
// as Repo.Digest gives a replica's (0 and the empty digest if it does not
// exist).
func gatewayState(g *goattest.Gateway, name string) (int64, string) {
	d, _ := g.Digest(name)
	return d.Count, d.XOR.String()
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

func openClient(tb testing.TB, g *goattest.Gateway, sub string, mod func(*goat.Config)) *goat.Client {
	tb.Helper()
	cfg := testConfig(g.URL(), g.Token(sub))
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

// inSync reports whether every replica of a repository holds exactly the
// gateway's commits.
func inSync(g *goattest.Gateway, name string, repos ...*goat.Repo) bool {
	n, d := gatewayState(g, name)
	for _, r := range repos {
		if rn, rd := r.Digest(); rn != n || rd != d {
			return false
		}
	}
	return true
}

// waitInSync waits until the replicas and the gateway hold the same
// commits, then checks that they show the same values.
func waitInSync(tb testing.TB, g *goattest.Gateway, name string, repos ...*goat.Repo) {
	tb.Helper()
	if !goattest.Eventually(goattest.Patience, func() bool { return inSync(g, name, repos...) }) {
		n, d := gatewayState(g, name)
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
	for i, r := range repos {
		// Merges are made on every replica as commits arrive; wait for
		// the last ones to land.
		var got, want map[string]map[string]any
		if !goattest.Eventually(goattest.Patience, func() bool {
			got, want = values(tb, r), g.Items(tb, name)
			return core.EqualJSON(toAny(got), toAny(want))
		}) {
			tb.Fatalf("replica %d of %s shows\n%v\nthe gateway\n%v", i, name, got, want)
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
