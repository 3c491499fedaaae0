package api

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	stdsync "sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Response compression, negotiated from Accept-Encoding.
//
// Which coding: the client's q-values decide; among equally acceptable
// codings the server prefers zstd, then br, then gzip. Levels are in
// compressionLevels, chosen from BenchmarkCompress on a page of real signed
// commits (docs/decisions.md): random ids and signatures cap every coder
// near a 3.5x ratio, so the fastest level of each wins; zstd's fastest
// level also has the best ratio.
//
// What is not compressed: the SSE stream (every event must reach the client
// at once; a compressor would hold it back), bodies already encoded, HEAD
// and bodiless statuses, and bodies under minCompressSize, which are sent
// as they are once the handler finishes.
//
// A compressed variant is a different representation, so a strong ETag gets
// the coding appended ("abc" becomes "abc-zstd"); the suffix is removed from
// If-None-Match before the handler sees it, so handlers compare plain ids.

const minCompressSize = 1024

var compressionLevels = struct {
	gzip, brotli int
	zstd         zstd.EncoderLevel
}{gzip: 1, brotli: 1, zstd: zstd.SpeedFastest}

type coder struct {
	name string
	pool stdsync.Pool
}

type resetWriter interface {
	io.WriteCloser
	Reset(io.Writer)
}

var (
	gzipCoder = &coder{name: "gzip", pool: stdsync.Pool{New: func() any {
		w, _ := gzip.NewWriterLevel(io.Discard, compressionLevels.gzip)
		return w
	}}}
	brotliCoder = &coder{name: "br", pool: stdsync.Pool{New: func() any {
		return brotli.NewWriterLevel(io.Discard, compressionLevels.brotli)
	}}}
	zstdCoder = &coder{name: "zstd", pool: stdsync.Pool{New: func() any {
		w, _ := zstd.NewWriter(io.Discard, zstd.WithEncoderLevel(compressionLevels.zstd), zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true))
		return w
	}}}
	preference = []*coder{zstdCoder, brotliCoder, gzipCoder}
)

// acceptedCodings parses Accept-Encoding into coding -> q.
func acceptedCodings(h string) map[string]float64 {
	out := map[string]float64{}
	for _, part := range strings.Split(h, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" {
			continue
		}
		q := 1.0
		if k, v, ok := strings.Cut(strings.TrimSpace(params), "="); ok && strings.TrimSpace(k) == "q" {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && f >= 0 && f <= 1 {
				q = f
			}
		}
		out[name] = q
	}
	return out
}

func negotiate(accepted map[string]float64, order []*coder) *coder {
	var best *coder
	bestQ := 0.0
	for _, c := range order {
		q, ok := accepted[c.name]
		if !ok {
			q, ok = accepted["*"]
		}
		if ok && q > bestQ {
			best, bestQ = c, q
		}
	}
	return best
}

// compressMiddleware wraps next with response compression.
func compressMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, h := range []string{"If-None-Match", "If-Match"} {
			if v := r.Header.Get(h); v != "" {
				r.Header.Set(h, stripCodingSuffixes(v))
			}
		}
		ae := r.Header.Get("Accept-Encoding")
		if ae == "" || r.Method == http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		cw := &compressWriter{ResponseWriter: w, accepted: acceptedCodings(ae)}
		defer cw.finish()
		next.ServeHTTP(cw, r)
	})
}

func stripCodingSuffixes(inm string) string {
	for _, c := range preference {
		inm = strings.ReplaceAll(inm, "-"+c.name+`"`, `"`)
	}
	return inm
}

// compressWriter decides at the first write whether to compress: it holds
// up to minCompressSize bytes, then commits to compressing or not.
type compressWriter struct {
	http.ResponseWriter
	accepted    map[string]float64
	status      int
	wroteHeader bool // the status was passed on
	decided     bool
	coder       *coder
	enc         resetWriter
	buf         []byte
}

func (w *compressWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	if status < 200 || status == http.StatusNoContent || status == http.StatusNotModified || !w.eligible() {
		w.decide(false)
	}
}

func (w *compressWriter) eligible() bool {
	h := w.Header()
	ct := h.Get("Content-Type")
	return h.Get("Content-Encoding") == "" && !strings.HasPrefix(ct, "text/event-stream") &&
		w.status != http.StatusNoContent && w.status != http.StatusNotModified
}

func (w *compressWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.decided {
		if len(w.buf)+len(p) < minCompressSize {
			w.buf = append(w.buf, p...)
			return len(p), nil
		}
		w.decide(true)
	}
	if w.enc != nil {
		return w.enc.Write(p)
	}
	return w.ResponseWriter.Write(p)
}

// decide commits to compressing (if want and the client accepts a coding)
// or not, writes the header and flushes what was held back.
func (w *compressWriter) decide(want bool) {
	if w.decided {
		return
	}
	w.decided = true
	if w.status == 0 {
		w.status = http.StatusOK
	}
	h := w.Header()
	h.Add("Vary", "Accept-Encoding")
	if want && w.eligible() {
		if c := negotiate(w.accepted, preference); c != nil {
			w.coder = c
			w.enc = c.pool.Get().(resetWriter)
			w.enc.Reset(w.ResponseWriter)
			h.Set("Content-Encoding", c.name)
			h.Del("Content-Length")
			if et := h.Get("ETag"); strings.HasPrefix(et, `"`) && strings.HasSuffix(et, `"`) && len(et) >= 2 {
				h.Set("ETag", et[:len(et)-1]+"-"+c.name+`"`)
			}
		}
	}
	w.ResponseWriter.WriteHeader(w.status)
	w.wroteHeader = true
	if len(w.buf) > 0 {
		b := w.buf
		w.buf = nil
		if w.enc != nil {
			_, _ = w.enc.Write(b)
		} else {
			_, _ = w.ResponseWriter.Write(b)
		}
	}
}

func (w *compressWriter) finish() {
	if w.status == 0 && len(w.buf) == 0 {
		return // the handler wrote nothing (hijacked, or net/http will send 200)
	}
	w.decide(false)
	if w.enc != nil {
		_ = w.enc.Close()
		w.enc.Reset(io.Discard)
		w.coder.pool.Put(w.enc)
		w.enc = nil
	}
}

// Flush sends what is buffered; a flushed response is committed to its
// coding, and the compressor's pending output goes out with it.
func (w *compressWriter) Flush() {
	w.decide(true)
	if f, ok := w.enc.(interface{ Flush() error }); ok {
		_ = f.Flush()
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *compressWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack is passed through for completeness; nothing of ours hijacks.
func (w *compressWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if h, ok := w.ResponseWriter.(http.Hijacker); ok {
		return h.Hijack()
	}
	return nil, nil, http.ErrNotSupported
}
