package reliability

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/api"
	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
)

// node is a gateway served in this process on a loopback port.
type node struct {
	tb     testing.TB
	srv    *api.Server
	url    string
	dir    string
	client *http.Client
	cancel context.CancelFunc
	done   chan error
}

func startNode(tb testing.TB, mod func(*api.Config)) *node {
	tb.Helper()
	dir := tb.TempDir()
	cfg := api.Config{DataDir: dir, Dev: true, NoSync: true, Logger: slog.New(slog.DiscardHandler)}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := api.Open(cfg)
	if err != nil {
		tb.Fatalf("api.Open: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{tb: tb, srv: srv, url: "http://" + ln.Addr().String(), dir: dir, cancel: cancel, done: make(chan error, 1),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}}
	go func() { n.done <- srv.Serve(ctx, ln) }()
	tb.Cleanup(func() {
		cancel()
		<-n.done
		srv.Close()
		n.client.CloseIdleConnections()
	})
	return n
}

func (n *node) token(sub string, roles ...string) string {
	n.tb.Helper()
	tok, err := n.srv.DevIssuer().Mint(sub, roles, time.Hour, time.Now())
	if err != nil {
		n.tb.Fatal(err)
	}
	return tok
}

// do sends a request and returns status and body; it fails the test only
// if no answer comes.
func (n *node) do(tb testing.TB, method, path, token string, body []byte, headers ...string) (int, []byte) {
	tb.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, n.url+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := n.client.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return resp.StatusCode, b
}

// must is do that expects one of the statuses.
func (n *node) must(tb testing.TB, method, path, token string, body []byte, want ...int) []byte {
	tb.Helper()
	st, b := n.do(tb, method, path, token, body)
	if !slices.Contains(want, st) {
		tb.Fatalf("%s %s: status %d, want %v: %s", method, path, st, want, b)
	}
	return b
}

// client is a session key registered for a subject.
type client struct {
	sub, token, id string
	priv           ed25519.PrivateKey
}

func (n *node) newClient(tb testing.TB, sub string) client {
	tb.Helper()
	_, priv, _ := ed25519.GenerateKey(nil)
	c := client{sub: sub, token: n.token(sub), priv: priv, id: auth.SessionID(priv.Public().(ed25519.PublicKey))}
	n.must(tb, "POST", "/v1/sessions", c.token, sessionBody(tb, priv, sub), 201)
	return c
}

func sessionBody(tb testing.TB, priv ed25519.PrivateKey, sub string) []byte {
	tb.Helper()
	expires := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	sr, err := auth.NewSessionRequest(priv, auth.DevAudience, sub, expires)
	if err != nil {
		tb.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{"publicKey": sr.PublicKey, "proof": sr.Proof, "expires": expires.UnixMilli()})
	return b
}

// commit builds and signs a commit by c.
func (c client) commit(tb testing.TB, repo, key string, data map[string]any, parents ...core.CommitID) *core.Commit {
	tb.Helper()
	cm := &core.Commit{Repo: repo, Key: key, Parents: parents, Author: c.id, TS: time.Now().UnixMilli(), Schema: core.AnySchema, Data: data}
	if err := cm.Sign(c.priv); err != nil {
		tb.Fatal(err)
	}
	return cm
}

func pushBody(cs ...*core.Commit) []byte {
	var b bytes.Buffer
	b.WriteString(`{"commits":[`)
	for i, c := range cs {
		if i > 0 {
			b.WriteByte(',')
		}
		j, _ := c.MarshalJSON()
		b.Write(j)
	}
	b.WriteString("]}")
	return b.Bytes()
}

// stateDigest summarizes everything the node holds: every repository's
// name, commit count, id digest and log length, and the data directory's
// file names. Equal digests mean nothing was written.
func (n *node) stateDigest(tb testing.TB) string {
	tb.Helper()
	st := n.srv.Store()
	names, err := st.List()
	if err != nil {
		tb.Fatal(err)
	}
	var b strings.Builder
	for _, name := range names {
		r, release, err := st.Repo(name)
		if err != nil {
			tb.Fatalf("repo %s: %v", name, err)
		}
		count, xor := r.State()
		fmt.Fprintf(&b, "%s count=%d digest=%s len=%d\n", name, count, hex.EncodeToString(xor[:]), r.LogLen())
		release()
	}
	entries, err := os.ReadDir(n.dir)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "NODE" { // the sequence lease may advance on its own
			fmt.Fprintf(&b, "file %s\n", e.Name())
		}
	}
	return b.String()
}

// waitFor retries cond until it holds or the deadline passes.
func waitFor(tb testing.TB, what string, timeout time.Duration, cond func() bool) {
	tb.Helper()
	if !retryUntil(timeout, cond) {
		tb.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// retryUntil retries cond every few milliseconds until it holds (true) or
// the timeout passes (false).
func retryUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
	return true
}
