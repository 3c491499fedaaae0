package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

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

// httpTransport is gsync.Transport over the gateway's HTTP API, asking
// for a content coding and decoding it itself, so that the coding and the
// bytes on the wire are known.
type httpTransport struct {
	client *http.Client
	base   string
	token  string
	accept string // Accept-Encoding; "" sends none (identity)

	requests  atomic.Int64
	bodyIn    atomic.Int64 // response body bytes as received (coded)
	decodedIn atomic.Int64 // response body bytes after decoding
	codings   sync.Map     // coding -> *atomic.Int64 responses
	// commitBytes counts the commits' own JSON bytes in sync rounds (both
	// ways), so a heal's protocol overhead is its payload minus these.
	commitBytes atomic.Int64
}

var _ gsync.Transport = (*httpTransport)(nil)

var zstdDecoders = sync.Pool{New: func() any {
	d, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	return d
}}

func (t *httpTransport) do(ctx context.Context, method, u string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+t.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if t.accept != "" {
		req.Header.Set("Accept-Encoding", t.accept)
	}
	t.requests.Add(1)
	resp, err := t.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
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
		return 0, nil, err
	}
	t.decodedIn.Add(int64(len(out)))
	return resp.StatusCode, out, nil
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
func (t *httpTransport) Codings() map[string]int64 {
	out := map[string]int64{}
	t.codings.Range(func(k, v any) bool { out[k.(string)] = v.(*atomic.Int64).Load(); return true })
	return out
}

func (t *httpTransport) Log(ctx context.Context, repo, cursor string, limit int) (*gsync.LogPage, error) {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if cursor != "" {
		q.Set("after", cursor)
	}
	status, body, err := t.do(ctx, "GET", t.base+"/v1/repos/"+repo+"/log?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	if status == http.StatusConflict {
		return nil, fmt.Errorf("log: %w: %.200s", core.ErrMustReconcile, body)
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("log: status %d: %.300s", status, body)
	}
	var page struct {
		Commits []json.RawMessage `json:"commits"`
		Next    string            `json:"next"`
		Tail    bool              `json:"tail"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, fmt.Errorf("log page: %w", err)
	}
	return &gsync.LogPage{Commits: page.Commits, Next: page.Next, More: !page.Tail}, nil
}

func (t *httpTransport) Sync(ctx context.Context, repo string, req *gsync.Request) (*gsync.Response, error) {
	for _, c := range req.Commits {
		t.commitBytes.Add(int64(len(c)))
	}
	body, err := req.MarshalJSON()
	if err != nil {
		return nil, err
	}
	status, out, err := t.do(ctx, "POST", t.base+"/v1/repos/"+repo+"/sync", body)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("sync: status %d: %.300s", status, out)
	}
	resp, err := gsync.DecodeResponse(out)
	if err == nil {
		for _, c := range resp.Commits {
			t.commitBytes.Add(int64(len(c)))
		}
	}
	return resp, err
}

// serverDigest reads the repository's count and digest.
func serverDigest(ctx context.Context, c *http.Client, base, repo, token string) (int64, string, error) {
	_, b, err := call(ctx, c, "GET", base+"/v1/repos/"+repo, token, nil)
	if err != nil {
		return 0, "", err
	}
	var info struct {
		Count  int64  `json:"count"`
		Digest string `json:"digest"`
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return 0, "", err
	}
	if info.Digest == "" {
		return 0, "", errors.New("repository info has no digest")
	}
	return info.Count, info.Digest, nil
}
