package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/goat-gateway/goat-gateway/client"
	"github.com/goat-gateway/goat-gateway/core"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

// replica is a client's in-memory copy of one repository: what the Go SDK
// keeps, minus persistence. It implements gsync.Local.
type replica struct {
	mu     sync.RWMutex
	byID   map[core.CommitID]*core.Commit
	order  []core.CommitID // topological (arrival) order
	digest gsync.Digest
}

var _ gsync.Local = (*replica)(nil)

func newReplica() *replica { return &replica{byID: map[core.CommitID]*core.Commit{}} }

// clone returns an independent copy of r without its last drop commits
// (in arrival order, so what remains is still closed under parents).
func (r *replica) clone(drop int) *replica {
	r.mu.RLock()
	defer r.mu.RUnlock()
	keep := max(0, len(r.order)-drop)
	out := &replica{byID: make(map[core.CommitID]*core.Commit, keep), order: make([]core.CommitID, keep)}
	copy(out.order, r.order[:keep])
	for _, id := range out.order {
		out.byID[id] = r.byID[id]
		out.digest.Add(id)
	}
	return out
}

func (r *replica) Digest() gsync.Digest {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.digest
}

func (r *replica) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.order)
}

func (r *replica) Walk(fn func(core.CommitID) bool) {
	r.mu.RLock()
	order := r.order
	r.mu.RUnlock()
	for _, id := range order {
		if !fn(id) {
			return
		}
	}
}

func (r *replica) Get(id core.CommitID) (*core.Commit, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c, ok := r.byID[id]
	return c, ok
}

// Ingest stores commits whose parents (and delta base) are present,
// skipping those it has, and reports the rest with core.ErrMissingParents.
func (r *replica) Ingest(_ context.Context, commits []*core.Commit) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	missing := 0
	for _, c := range commits {
		if _, ok := r.byID[c.ID]; ok {
			continue
		}
		ok := true
		for _, p := range c.Parents {
			if _, have := r.byID[p]; !have {
				ok = false
			}
		}
		if c.Delta != nil {
			if _, have := r.byID[c.Delta.Base]; !have {
				ok = false
			}
		}
		if !ok {
			missing++
			continue
		}
		r.byID[c.ID] = c
		r.order = append(r.order, c.ID)
		r.digest.Add(c.ID)
	}
	if missing > 0 {
		return fmt.Errorf("%w: %d commits", core.ErrMissingParents, missing)
	}
	return nil
}

// codingTransport asks the gateway for a content coding and decodes the
// response itself, so that the coding and the bytes received are known:
// it counts requests, response bodies as received and as decoded, and
// responses per coding. The client above it sees identity bodies.
type codingTransport struct {
	next   http.RoundTripper
	accept string // Accept-Encoding; "" sends none (identity)

	requests  atomic.Int64
	bodyIn    atomic.Int64 // response body bytes as received (coded)
	decodedIn atomic.Int64 // response body bytes after decoding
	codings   sync.Map     // coding -> *atomic.Int64 responses
}

// newCodingClient returns a client of the gateway at base acting with
// token, whose responses come through a codingTransport asking for
// accept, on a connection that counts its bytes in w (if not nil). The
// client is the gsync.Transport of the benchmark's replicas.
func newCodingClient(base, token, accept string, w *wire) (*client.Client, *codingTransport, error) {
	hc := newHTTPClient(2, w)
	t := &codingTransport{next: hc.Transport, accept: accept}
	hc.Transport = t
	api, err := newAPI(hc, base, token)
	return api, t, err
}

// commitCounter is a gsync.Transport that counts the commits' own JSON
// bytes in sync rounds (both ways), so a heal's protocol overhead is its
// payload minus these.
type commitCounter struct {
	gsync.Transport
	bytes atomic.Int64
}

func (c *commitCounter) Sync(ctx context.Context, repo string, req *gsync.Request) (*gsync.Response, error) {
	for _, x := range req.Commits {
		c.bytes.Add(int64(len(x)))
	}
	resp, err := c.Transport.Sync(ctx, repo, req)
	if err == nil {
		for _, x := range resp.Commits {
			c.bytes.Add(int64(len(x)))
		}
	}
	return resp, err
}

var zstdDecoders = sync.Pool{New: func() any {
	d, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	return d
}}

func (t *codingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.accept != "" {
		req = req.Clone(req.Context())
		req.Header.Set("Accept-Encoding", t.accept)
	}
	t.requests.Add(1)
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	t.bodyIn.Add(int64(len(raw)))
	coding := resp.Header.Get("Content-Encoding")
	if coding == "" {
		coding = "identity"
	}
	v, _ := t.codings.LoadOrStore(coding, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
	out, err := decodeBody(coding, raw)
	if err != nil {
		return nil, err
	}
	t.decodedIn.Add(int64(len(out)))
	resp.Header.Del("Content-Encoding")
	resp.Header.Del("Content-Length")
	resp.ContentLength = int64(len(out))
	resp.Body = io.NopCloser(bytes.NewReader(out))
	return resp, nil
}

func decodeBody(coding string, raw []byte) ([]byte, error) {
	switch coding {
	case "identity":
		return raw, nil
	case "zstd":
		d := zstdDecoders.Get().(*zstd.Decoder)
		defer zstdDecoders.Put(d)
		return d.DecodeAll(raw, nil)
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, err
		}
		return io.ReadAll(zr)
	case "br":
		return io.ReadAll(brotli.NewReader(bytes.NewReader(raw)))
	}
	return nil, fmt.Errorf("unknown Content-Encoding %q", coding)
}

// Codings returns how many responses came in each content coding.
func (t *codingTransport) Codings() map[string]int64 {
	out := map[string]int64{}
	t.codings.Range(func(k, v any) bool { out[k.(string)] = v.(*atomic.Int64).Load(); return true })
	return out
}

// serverDigest reads the repository's count and digest.
func serverDigest(ctx context.Context, c *http.Client, base, repo, token string) (int64, string, error) {
	api, err := newAPI(c, base, token)
	if err != nil {
		return 0, "", err
	}
	info, err := api.GetRepo(ctx, repo)
	if err != nil {
		return 0, "", err
	}
	if info.Digest == "" {
		return 0, "", errors.New("repository info has no digest")
	}
	return info.Count, info.Digest, nil
}

// inSyncRound runs the one sync round of a client that holds exactly the
// count commits of repo whose digest is digest (the in-sync check), and
// returns its response and request.
func inSyncRound(ctx context.Context, c *http.Client, base, token, repo string, count int64, digest string) (*gsync.Response, *gsync.Request, error) {
	sum, err := gsync.ParseSum(digest)
	if err != nil {
		return nil, nil, err
	}
	api, err := newAPI(c, base, token)
	if err != nil {
		return nil, nil, err
	}
	req := &gsync.Request{Count: count, Digest: sum}
	resp, err := api.Sync(ctx, repo, req)
	if err != nil {
		return nil, nil, err
	}
	if !resp.InSync {
		return nil, nil, fmt.Errorf("in-sync check of %q: the gateway is not in sync with its own digest", repo)
	}
	return resp, req, nil
}
