package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
)

// wire counts the bytes that cross the TCP connections of one HTTP client,
// headers included: the bytes on the wire, as far as an application can
// see them (TCP/IP framing aside).
type wire struct {
	sent, received atomic.Int64
}

type countingConn struct {
	net.Conn
	w *wire
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.w.received.Add(int64(n))
	return n, err
}

func (c countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.w.sent.Add(int64(n))
	return n, err
}

// newHTTPClient returns a client that keeps up to conns idle connections
// to one host and counts its bytes in w (if not nil). It never asks for or
// decodes compression by itself: callers set Accept-Encoding and decode.
func newHTTPClient(conns int, w *wire) *http.Client {
	d := &net.Dialer{Timeout: 30 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil || w == nil {
				return c, err
			}
			return countingConn{c, w}, nil
		},
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr, Timeout: 5 * time.Minute}
}

// call sends one request and returns the status and body. A status of
// 400 and above is returned as an error with the problem text.
func call(ctx context.Context, c *http.Client, method, url, token string, body []byte, hdr ...string) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, err
	}
	if resp.StatusCode >= 400 {
		return resp.StatusCode, b, fmt.Errorf("%s %s: %d: %.300s", method, url, resp.StatusCode, b)
	}
	return resp.StatusCode, b, nil
}

// signer is a registered session: it signs commits the way a client SDK
// does.
type signer struct {
	sub   string
	token string
	priv  ed25519.PrivateKey
	id    string
}

// newSigner makes a session key for sub and registers it with the gateway.
func newSigner(ctx context.Context, c *http.Client, g *gateway, sub string) (*signer, error) {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	s := &signer{sub: sub, token: g.Token(sub), priv: priv, id: auth.SessionID(priv.Public().(ed25519.PublicKey))}
	expires := time.Now().Add(24 * time.Hour).Truncate(time.Millisecond)
	sr, err := auth.NewSessionRequest(priv, auth.DevAudience, sub, expires)
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(map[string]any{"publicKey": sr.PublicKey, "proof": sr.Proof, "expires": expires.UnixMilli()})
	if _, _, err := call(ctx, c, "POST", g.URL+"/v1/sessions", s.token, body); err != nil {
		return nil, fmt.Errorf("register session: %w", err)
	}
	return s, nil
}

// doc is the value of benchmark item i: a small, realistic task record
// (the canonical JSON of its commit is about 600 bytes). The PouchDB side
// stores exactly these values as documents.
func doc(i int) map[string]any {
	return map[string]any{
		"title": fmt.Sprintf("Task %d: call the plumber about the kitchen sink", i),
		"done":  i%3 == 0,
		"prio":  float64(i % 5),
		"due":   fmt.Sprintf("2026-%02d-%02dT09:30:00.000Z", 1+i%12, 1+i%28),
		"tags":  []any{"home", fmt.Sprintf("room-%d", i%7)},
		"notes": fmt.Sprintf("Ask for a quote first; the last visit (#%d) took two hours and the part was not in stock.", i%1000),
	}
}

// itemKey is the key of benchmark item i.
func itemKey(prefix string, i int) string { return fmt.Sprintf("%s%07d", prefix, i) }

// signed is a commit with its canonical JSON.
type signed struct {
	c    *core.Commit
	json []byte
}

// commits signs count new-item commits for repo, keys prefix+i for i in
// [from, from+count), on all cores (signing is the client's cost, kept out
// of every timed section).
func (s *signer) commits(repo, prefix string, from, count int) ([]signed, error) {
	out := make([]signed, count)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	workers := runtime.NumCPU()
	// The batch's ts end now (one millisecond apart), as commits written
	// over the past moments would: a clone fixture of 100k commits no
	// longer reaches 100 s into the future, so the heal scenario's new
	// commits are newer than the repository's, as the issue describes
	// them.
	ts := time.Now().UnixMilli() - int64(count)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := w; j < count; j += workers {
				i := from + j
				c := &core.Commit{Repo: repo, Key: itemKey(prefix, i), Author: s.id, TS: ts + int64(j), Schema: core.AnySchema, Data: doc(i)}
				if err := c.Sign(s.priv); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				b, err := c.MarshalJSON()
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				out[j] = signed{c, b}
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return nil, err
	}
	return out, nil
}

// commitsBody is the body of POST /v1/repos/{repo}/commits.
func commitsBody(cs []signed) []byte {
	n := 16
	for _, c := range cs {
		n += len(c.json) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, `{"commits":[`...)
	for i, c := range cs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, c.json...)
	}
	return append(b, "]}"...)
}

// push sends commits in one request and fails unless every one was
// accepted (or was already there).
func push(ctx context.Context, c *http.Client, base, repo, token string, cs []signed) error {
	_, b, err := call(ctx, c, "POST", base+"/v1/repos/"+repo+"/commits", token, commitsBody(cs))
	if err != nil {
		return err
	}
	var out struct {
		Results []struct {
			ID, Status, Reason string
		}
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return fmt.Errorf("push: %w", err)
	}
	if len(out.Results) != len(cs) {
		return fmt.Errorf("push: %d results for %d commits", len(out.Results), len(cs))
	}
	for _, r := range out.Results {
		if r.Status != "accepted" && r.Status != "duplicate" {
			return fmt.Errorf("push: commit %s %s: %s", r.ID, r.Status, r.Reason)
		}
	}
	return nil
}

// pushAll pushes cs in batches of batch commits from workers concurrent
// clients.
func pushAll(ctx context.Context, c *http.Client, base, repo, token string, cs []signed, batch, workers int) error {
	var next atomic.Int64
	errc := make(chan error, workers)
	for range workers {
		go func() {
			for {
				i := int(next.Add(1)-1) * batch
				if i >= len(cs) {
					errc <- nil
					return
				}
				if err := push(ctx, c, base, repo, token, cs[i:min(i+batch, len(cs))]); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	var first error
	for range workers {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// createRepo creates repo (idempotent).
func createRepo(ctx context.Context, c *http.Client, base, repo, token string) error {
	_, _, err := call(ctx, c, "PUT", base+"/v1/repos/"+repo, token, nil)
	return err
}

func commitsOf(cs []signed) []*core.Commit {
	out := make([]*core.Commit, len(cs))
	for i, c := range cs {
		out[i] = c.c
	}
	return out
}
