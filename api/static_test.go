package api_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goat-gateway/goat-gateway/internal/goattest"
)

// get fetches url with the headers given as name, value pairs and returns
// the response with its body read.
func get(tb testing.TB, method, url string, headers ...string) (*http.Response, string) {
	tb.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp, string(b)
}

func writeFiles(tb testing.TB, dir string, files map[string]string) {
	tb.Helper()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

func TestServer_Static(t *testing.T) {
	dir := t.TempDir()
	appJS := strings.Repeat("console.log('app');\n", 200) // over the compression threshold
	writeFiles(t, dir, map[string]string{
		"index.html":             "<!doctype html><title>app</title>",
		"app-3F2A9C1B.js":        appJS,
		"app.js":                 "plain",
		"docs/index.html":        "<p>docs</p>",
		".env":                   "SECRET=1",
		"v1/info":                "shadow",
		"healthz":                "shadow",
		"assets/app-settings.js": "x",
	})
	outside := filepath.Join(t.TempDir(), "secret.txt")
	writeFiles(t, filepath.Dir(outside), map[string]string{"secret.txt": "outside"})
	if err := os.Symlink(outside, filepath.Join(dir, "link.txt")); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, goattest.Config{StaticDir: dir})

	t.Run("IndexAndCaching", func(t *testing.T) {
		for _, tc := range []struct {
			path, body, cache, ctype string
		}{
			{"/", "<!doctype html><title>app</title>", "no-cache", "text/html"},
			{"/index.html", "<!doctype html><title>app</title>", "no-cache", "text/html"},
			{"/app-3F2A9C1B.js", appJS, "public, max-age=31536000, immutable", "text/javascript"},
			{"/app.js", "plain", "no-cache", "text/javascript"},
			{"/assets/app-settings.js", "x", "no-cache", "text/javascript"},
			{"/docs/", "<p>docs</p>", "no-cache", "text/html"},
			{"/docs", "<p>docs</p>", "no-cache", "text/html"},
		} {
			resp, body := get(t, "GET", g.URL()+tc.path)
			if got, want := resp.StatusCode, http.StatusOK; got != want {
				t.Fatalf("GET %s: status=%d, want %d (%s)", tc.path, got, want, body)
			}
			if body != tc.body {
				t.Fatalf("GET %s: body=%q, want %q", tc.path, body, tc.body)
			}
			if got := resp.Header.Get("Cache-Control"); got != tc.cache {
				t.Fatalf("GET %s: Cache-Control=%q, want %q", tc.path, got, tc.cache)
			}
			if got := resp.Header.Get("Content-Type"); !strings.HasPrefix(got, tc.ctype) {
				t.Fatalf("GET %s: Content-Type=%q, want %s", tc.path, got, tc.ctype)
			}
		}
	})
	t.Run("Compressed", func(t *testing.T) {
		req, _ := http.NewRequest("GET", g.URL()+"/app-3F2A9C1B.js", nil)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got, want := resp.Header.Get("Content-Encoding"), "gzip"; got != want {
			t.Fatalf("Content-Encoding=%q, want %q", got, want)
		}
	})
	t.Run("Revalidates", func(t *testing.T) {
		resp, _ := get(t, "GET", g.URL()+"/app.js")
		lm := resp.Header.Get("Last-Modified")
		if lm == "" {
			t.Fatal("no Last-Modified")
		}
		resp, _ = get(t, "GET", g.URL()+"/app.js", "If-Modified-Since", lm)
		if got, want := resp.StatusCode, http.StatusNotModified; got != want {
			t.Fatalf("status=%d, want %d", got, want)
		}
	})
	t.Run("FallbackToIndex", func(t *testing.T) {
		for _, p := range []string{"/lists/groceries", "/a/b/c"} {
			resp, body := get(t, "GET", g.URL()+p)
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, "<title>app</title>") {
				t.Fatalf("GET %s: %d %q, want index.html", p, resp.StatusCode, body)
			}
			if got := resp.Header.Get("Cache-Control"); got != "no-cache" {
				t.Fatalf("GET %s: Cache-Control=%q, want no-cache", p, got)
			}
		}
		resp, _ := get(t, "GET", g.URL()+"/missing.png", "Accept", "text/html,*/*")
		if got, want := resp.StatusCode, http.StatusOK; got != want {
			t.Fatalf("a page load of a missing name: status=%d, want %d", got, want)
		}
	})
	t.Run("MissingAssetIs404", func(t *testing.T) {
		resp, body := get(t, "GET", g.URL()+"/missing.js")
		if got, want := resp.StatusCode, http.StatusNotFound; got != want {
			t.Fatalf("status=%d, want %d", got, want)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
			t.Fatalf("Content-Type=%q, want a problem (%s)", ct, body)
		}
	})
	t.Run("NothingOutsideDir", func(t *testing.T) {
		for _, p := range []string{"/.env", "/link.txt", "/../secret.txt", "/%2e%2e/secret.txt", "/docs/..%2f..%2fsecret.txt"} {
			resp, body := get(t, "GET", g.URL()+p)
			if strings.Contains(body, "SECRET") || strings.Contains(body, "outside") {
				t.Fatalf("GET %s served %q", p, body)
			}
			if resp.StatusCode == http.StatusOK && !strings.Contains(body, "<title>app</title>") {
				t.Fatalf("GET %s: %d %q", p, resp.StatusCode, body)
			}
		}
	})
	t.Run("APIPathsWin", func(t *testing.T) {
		resp, body := get(t, "GET", g.URL()+"/v1/info")
		if resp.StatusCode != http.StatusOK || strings.Contains(body, "shadow") {
			t.Fatalf("/v1/info: %d %q, want the API's answer", resp.StatusCode, body)
		}
		resp, body = get(t, "GET", g.URL()+"/healthz")
		if resp.StatusCode != http.StatusOK || strings.Contains(body, "shadow") {
			t.Fatalf("/healthz: %d %q, want the API's answer", resp.StatusCode, body)
		}
		// An unknown API route is the API's 404 problem, not index.html.
		resp, body = get(t, "GET", g.URL()+"/v1/nope", "Accept", "text/html")
		if resp.StatusCode != http.StatusNotFound || strings.Contains(body, "<title>") {
			t.Fatalf("/v1/nope: %d %q, want a 404 problem", resp.StatusCode, body)
		}
	})
	t.Run("OtherMethodsAreNotServed", func(t *testing.T) {
		resp, body := get(t, "POST", g.URL()+"/index.html")
		if resp.StatusCode < 400 || resp.StatusCode >= 500 || strings.Contains(body, "<title>") {
			t.Fatalf("POST /index.html: %d %q, want a 4xx problem", resp.StatusCode, body)
		}
	})
	t.Run("HeadHasNoBody", func(t *testing.T) {
		resp, body := get(t, "HEAD", g.URL()+"/")
		if resp.StatusCode != http.StatusOK || body != "" {
			t.Fatalf("HEAD /: %d %q", resp.StatusCode, body)
		}
	})
}

func TestServer_NoStatic(t *testing.T) {
	g := startGateway(t, goattest.Config{})
	resp, _ := get(t, "GET", g.URL()+"/")
	if got, want := resp.StatusCode, http.StatusNotFound; got != want {
		t.Fatalf("GET / without --static: status=%d, want %d", got, want)
	}
}
