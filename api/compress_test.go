package api

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/goat-gateway/goat-gateway/core"
)

func decodeBody(tb testing.TB, coding string, b []byte) []byte {
	tb.Helper()
	var r io.Reader
	switch coding {
	case "":
		return b
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			tb.Fatal(err)
		}
		r = zr
	case "br":
		r = brotli.NewReader(bytes.NewReader(b))
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(b))
		if err != nil {
			tb.Fatal(err)
		}
		defer zr.Close()
		r = zr
	default:
		tb.Fatalf("unknown coding %q", coding)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func TestCompressMiddleware(t *testing.T) {
	big := strings.Repeat(`{"id":"9f2c","data":{"title":"Buy milk"}},`, 200)
	cases := []struct {
		name, accept, contentType, cacheControl, body string
		wantCoding                                    string
	}{
		{"none asked", "", "application/json", "", big, ""},
		{"gzip", "gzip", "application/json", "", big, "gzip"},
		{"zstd preferred for dynamic", "gzip, br, zstd", "application/json", "", big, "zstd"},
		{"br without zstd", "gzip, br", "application/json", "public, max-age=31536000, immutable", big, "br"},
		{"q-values win", "zstd;q=0.1, gzip;q=0.9", "application/json", "", big, "gzip"},
		{"q=0 refuses", "zstd;q=0, gzip", "application/json", "", big, "gzip"},
		{"wildcard", "*", "application/json", "", big, "zstd"},
		{"unknown only", "compress", "application/json", "", big, ""},
		{"small body stays plain", "gzip", "application/json", "", `{"ok":true}`, ""},
		{"event stream never", "gzip", "text/event-stream", "", big, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := compressMiddleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", c.contentType)
				w.Header().Set("ETag", `"abc"`)
				if c.cacheControl != "" {
					w.Header().Set("Cache-Control", c.cacheControl)
				}
				// Write in pieces, as handlers that stream do.
				for i := 0; i < len(c.body); i += 100 {
					_, _ = io.WriteString(w, c.body[i:min(i+100, len(c.body))])
				}
			}))
			req := httptest.NewRequest("GET", "/", nil)
			if c.accept != "" {
				req.Header.Set("Accept-Encoding", c.accept)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if got := rec.Header().Get("Content-Encoding"); got != c.wantCoding {
				t.Fatalf("Content-Encoding=%q, want %q", got, c.wantCoding)
			}
			if got := string(decodeBody(t, c.wantCoding, rec.Body.Bytes())); got != c.body {
				t.Fatalf("body round trip lost data: %d bytes, want %d", len(got), len(c.body))
			}
			wantETag := `"abc"`
			if c.wantCoding != "" {
				wantETag = `"abc-` + c.wantCoding + `"`
			}
			if got := rec.Header().Get("ETag"); got != wantETag {
				t.Fatalf("ETag=%s, want %s", got, wantETag)
			}
		})
	}
}

func TestCompressMiddleware_IfNoneMatchSeesPlainETag(t *testing.T) {
	var seen string
	h := compressMiddleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Get("If-None-Match")
		w.WriteHeader(http.StatusNotModified)
	}))
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Accept-Encoding", "zstd")
	req.Header.Set("If-None-Match", `"abc-zstd", "def-br"`)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if want := `"abc", "def"`; seen != want {
		t.Fatalf("handler saw If-None-Match %s, want %s", seen, want)
	}
	if rec.Code != http.StatusNotModified || rec.Body.Len() != 0 || rec.Header().Get("Content-Encoding") != "" {
		t.Fatalf("304 was altered: %d %q %q", rec.Code, rec.Body.String(), rec.Header().Get("Content-Encoding"))
	}
}

// BenchmarkCompress measures each coding and level on a page of commits,
// our most common large body; the chosen levels are in compressionLevels.
func BenchmarkCompress(b *testing.B) {
	// A page of 500 real signed commits: ids and signatures are random
	// bytes, as on the wire, so ratios are not flattered.
	_, priv, _ := ed25519.GenerateKey(nil)
	var page bytes.Buffer
	page.WriteString(`{"commits":[`)
	var parent core.CommitID
	for i := 0; i < 500; i++ {
		c := &core.Commit{Repo: "user.alice.notes", Key: fmt.Sprintf("task-%d", i%97), Author: "s_6nKoWz9jY_-yd_WQWiUhZJNE",
			TS: 1763800000000 + int64(i)*1000, Schema: "task/2",
			Data: map[string]any{"title": fmt.Sprintf("Buy milk and %d eggs", i), "done": i%2 == 0, "tags": []any{"errand", "home"}}}
		if i > 0 {
			c.Parents = []core.CommitID{parent}
		}
		if err := c.Sign(priv); err != nil {
			b.Fatal(err)
		}
		parent = c.ID
		j, _ := c.MarshalJSON()
		if i > 0 {
			page.WriteByte(',')
		}
		page.Write(j)
	}
	page.WriteString(`],"next":"AaEnDkJ41e6fYW8-q1X-IskAAAAAAAAAAG4maPs","tail":false}`)
	in := page.Bytes()
	run := func(name string, mk func(io.Writer) io.WriteCloser) {
		b.Run(name, func(b *testing.B) {
			var out bytes.Buffer
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				out.Reset()
				w := mk(&out)
				_, _ = w.Write(in)
				_ = w.Close()
			}
			b.ReportMetric(float64(len(in))/float64(out.Len()), "ratio")
		})
	}
	for _, l := range []int{1, 5, 9} {
		run(fmt.Sprintf("gzip-%d", l), func(w io.Writer) io.WriteCloser { z, _ := gzip.NewWriterLevel(w, l); return z })
	}
	for _, l := range []int{1, 4, 5, 6} {
		run(fmt.Sprintf("br-%d", l), func(w io.Writer) io.WriteCloser { return brotli.NewWriterLevel(w, l) })
	}
	for _, l := range []zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedDefault, zstd.SpeedBetterCompression} {
		run("zstd-"+l.String(), func(w io.Writer) io.WriteCloser {
			z, _ := zstd.NewWriter(w, zstd.WithEncoderLevel(l), zstd.WithEncoderConcurrency(1))
			return z
		})
	}
}
