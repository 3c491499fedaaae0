package api_test

import (
	"bufio"
	"net/http"
	"strings"
	"testing"

	"github.com/goat-gateway/goat-gateway/internal/goattest"
)

func TestServer_CORS(t *testing.T) {
	const app = "http://app.example:3000"
	g := startGateway(t, goattest.Config{CORSOrigins: []string{app}})
	tok := g.Token("alice")

	t.Run("Preflight", func(t *testing.T) {
		resp, _ := get(t, "OPTIONS", g.URL()+"/v1/repos/r1/items/k",
			"Origin", app, "Access-Control-Request-Method", "PUT",
			"Access-Control-Request-Headers", "authorization,content-type,if-match")
		if got, want := resp.StatusCode, http.StatusNoContent; got != want {
			t.Fatalf("status=%d, want %d", got, want)
		}
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != app {
			t.Fatalf("Allow-Origin=%q, want %q", got, app)
		}
		allowed := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers"))
		for _, h := range []string{"authorization", "content-type", "if-match", "last-event-id"} {
			if !strings.Contains(allowed, h) {
				t.Fatalf("Allow-Headers=%q lacks %s", allowed, h)
			}
		}
		if got := resp.Header.Get("Access-Control-Allow-Methods"); !strings.Contains(got, "PUT") || !strings.Contains(got, "DELETE") {
			t.Fatalf("Allow-Methods=%q", got)
		}
	})
	t.Run("RequestExposesETag", func(t *testing.T) {
		wantStatus(t, g.call(t, "PUT", "/v1/repos/r1", tok, nil), http.StatusCreated)
		wantStatus(t, g.call(t, "PUT", "/v1/repos/r1/items/k", tok, map[string]any{"schema": "any/1", "data": map[string]any{"a": 1}}), http.StatusCreated)
		r := g.call(t, "GET", "/v1/repos/r1/items/k", tok, nil, "Origin", app)
		wantStatus(t, r, http.StatusOK)
		if got := r.Header.Get("Access-Control-Allow-Origin"); got != app {
			t.Fatalf("Allow-Origin=%q, want %q", got, app)
		}
		if got := r.Header.Get("Access-Control-Expose-Headers"); !strings.Contains(got, "ETag") {
			t.Fatalf("Expose-Headers=%q lacks ETag", got)
		}
		if vary := strings.Join(r.Header.Values("Vary"), ","); !strings.Contains(vary, "Origin") {
			t.Fatalf("Vary=%q lacks Origin", vary)
		}
	})
	t.Run("EventStream", func(t *testing.T) {
		req, _ := http.NewRequest("GET", g.URL()+"/v1/events?repo=r1", nil)
		req.Header.Set("Origin", app)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != app {
			t.Fatalf("Allow-Origin=%q, want %q", got, app)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
			t.Fatalf("Content-Type=%q", ct)
		}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if sc.Text() == "event: ready" {
				return
			}
		}
		t.Fatalf("stream ended before ready: %v", sc.Err())
	})
	t.Run("OtherOriginGetsNoHeaders", func(t *testing.T) {
		resp, _ := get(t, "OPTIONS", g.URL()+"/v1/repos", "Origin", "http://evil.example", "Access-Control-Request-Method", "GET")
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Fatalf("Allow-Origin=%q for an origin not configured", got)
		}
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Fatalf("preflight from another origin: status=%d, want a 4xx", resp.StatusCode)
		}
		r := g.call(t, "GET", "/v1/repos", tok, nil, "Origin", "http://evil.example")
		if got := r.Header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Fatalf("Allow-Origin=%q for an origin not configured", got)
		}
	})
	t.Run("Wildcard", func(t *testing.T) {
		g := startGateway(t, goattest.Config{CORSOrigins: []string{"*"}})
		r := g.call(t, "GET", "/v1/info", "", nil, "Origin", "http://anything.example")
		if got := r.Header.Get("Access-Control-Allow-Origin"); got != "*" {
			t.Fatalf("Allow-Origin=%q, want *", got)
		}
	})
	t.Run("NoneConfigured", func(t *testing.T) {
		g := startGateway(t, goattest.Config{})
		resp, _ := get(t, "OPTIONS", g.URL()+"/v1/repos", "Origin", app, "Access-Control-Request-Method", "GET")
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Fatalf("Allow-Origin=%q without --cors-origin", got)
		}
		for k := range resp.Header {
			if strings.HasPrefix(k, "Access-Control-") {
				t.Fatalf("header %s sent without --cors-origin", k)
			}
		}
	})
}
