package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/client"
	"github.com/goat-gateway/goat-gateway/core"
	gsync "github.com/goat-gateway/goat-gateway/sync"
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

// newAPI returns a client of the gateway at base acting with token, over c.
func newAPI(c *http.Client, base, token string) (*client.Client, error) {
	return client.New(base, client.Options{HTTPClient: c, Token: func(context.Context) (string, error) { return token, nil }})
}

// signer is a registered session: it signs commits the way a client SDK
// does.
type signer struct {
	sub   string
	token string
	priv  ed25519.PrivateKey
	id    string
	api   *client.Client // acting with token, over the HTTP client it was made with
}

// newSigner makes a session key for sub and registers it with the gateway.
func newSigner(ctx context.Context, c *http.Client, g *gateway, sub string) (*signer, error) {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	s := &signer{sub: sub, token: g.Token(sub), priv: priv, id: core.SessionID(priv.Public().(ed25519.PublicKey))}
	if s.api, err = newAPI(c, g.URL, s.token); err != nil {
		return nil, err
	}
	body, err := client.SessionBody(priv, auth.DevAudience, sub, time.Now().Add(24*time.Hour))
	if err != nil {
		return nil, err
	}
	if _, _, err := s.api.CreateSession(ctx, body); err != nil {
		return nil, err
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

// push sends commits in one request and fails unless every one was
// accepted (or was already there).
func push(ctx context.Context, api *client.Client, repo string, cs []signed) error {
	raws := make([][]byte, len(cs))
	for i, c := range cs {
		raws[i] = c.json
	}
	results, err := api.PushCommits(ctx, repo, raws)
	if err != nil {
		return err
	}
	for _, r := range results {
		if r.Status != gsync.StatusAccepted && r.Status != gsync.StatusDuplicate {
			return fmt.Errorf("push: commit %s %s: %s", r.ID, r.Status, r.Reason)
		}
	}
	return nil
}

// pushAll pushes cs in batches of batch commits from workers concurrent
// requests.
func pushAll(ctx context.Context, api *client.Client, repo string, cs []signed, batch, workers int) error {
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
				if err := push(ctx, api, repo, cs[i:min(i+batch, len(cs))]); err != nil {
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
func createRepo(ctx context.Context, api *client.Client, repo string) error {
	_, _, err := api.CreateRepo(ctx, repo)
	return err
}

func commitsOf(cs []signed) []*core.Commit {
	out := make([]*core.Commit, len(cs))
	for i, c := range cs {
		out[i] = c.c
	}
	return out
}
