package reliability

import (
	"context"
	"net/http"
	"testing"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
)

func startRulesNode(tb testing.TB, cfg goattest.Config) *node {
	tb.Helper()
	rules, err := auth.ParseRules([]byte(publicRules))
	if err != nil {
		tb.Fatal(err)
	}
	cfg.Rules = rules
	return startNode(tb, cfg)
}

// clientFrom is an HTTP client whose connections leave from the loopback
// address ip, so that one test can be several anonymous callers.
func clientFrom(tb testing.TB, ip string) *http.Client {
	tb.Helper()
	c := httpFrom(ip)
	tb.Cleanup(c.CloseIdleConnections)
	return c
}

// openStream opens GET /v1/events anonymously with c and returns the
// status; a stream that opened stays open until the test ends.
func openStream(tb testing.TB, c *http.Client, url string) int {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", url+"/v1/events?repo=public.feed", nil)
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		tb.Fatalf("GET /v1/events: %v", err)
	}
	tb.Cleanup(func() { resp.Body.Close() })
	return resp.StatusCode
}

// TestLimits_AnonymousStreamsPerAddress: anonymous callers are limited per
// remote address, so one anonymous client at its stream quota does not
// lock out another (issue 17, item 6).
func TestLimits_AnonymousStreamsPerAddress(t *testing.T) {
	n := startRulesNode(t, goattest.Config{MaxStreamsPerCaller: 2})
	n.must(t, "PUT", "/v1/repos/public.feed", n.Token("ed", "editor"), nil, http.StatusCreated)
	first, second := clientFrom(t, "127.0.0.1"), clientFrom(t, "127.0.0.2")
	for i := range 2 {
		if got, want := openStream(t, first, n.url), http.StatusOK; got != want {
			t.Fatalf("stream %d from 127.0.0.1: status %d, want %d", i, got, want)
		}
	}
	t.Run("SameAddressOverQuota", func(t *testing.T) {
		if got, want := openStream(t, first, n.url), http.StatusTooManyRequests; got != want {
			t.Fatalf("third stream from 127.0.0.1: status %d, want %d", got, want)
		}
	})
	t.Run("OtherAddress", func(t *testing.T) {
		if got, want := openStream(t, second, n.url), http.StatusOK; got != want {
			t.Fatalf("first stream from 127.0.0.2 while 127.0.0.1 is at its quota: status %d, want %d", got, want)
		}
	})
}
