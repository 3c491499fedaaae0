package api

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/gen"
	"github.com/goat-gateway/goat-gateway/node"
)

// testNode is a real gateway on a loopback port.
type testNode struct {
	t      testing.TB
	node   *node.Node
	srv    *Server
	dir    string
	url    string
	cancel context.CancelFunc
	done   chan error
	// proxied is set for a node reached through nginx.
	proxied bool
}

// testConfig configures both halves of a test node: the node, and its
// HTTP face (API).
type testConfig struct {
	node.Config
	API Config
}

func startNode(tb testing.TB, mod func(*testConfig)) *testNode {
	tb.Helper()
	log := slog.New(slog.DiscardHandler)
	cfg := testConfig{Config: node.Config{DataDir: tb.TempDir(), Dev: true, NoSync: true, Logger: log}, API: Config{Logger: log}}
	if mod != nil {
		mod(&cfg)
	}
	nd, err := node.Open(cfg.Config)
	if err != nil {
		tb.Fatalf("node.Open: %v", err)
	}
	srv, err := New(nd, cfg.API)
	if err != nil {
		nd.Close()
		tb.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &testNode{t: tb, node: nd, srv: srv, dir: cfg.DataDir, url: "http://" + ln.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { n.done <- srv.Serve(ctx, ln) }()
	tb.Cleanup(n.stop)
	return n
}

func (n *testNode) stop() {
	if n.cancel == nil {
		return
	}
	n.cancel()
	<-n.done
	n.node.Close()
	n.cancel = nil
}

func (n *testNode) token(sub string, roles ...string) string {
	n.t.Helper()
	tok, err := n.node.DevIssuer().Mint(sub, roles, time.Hour, time.Now())
	if err != nil {
		n.t.Fatal(err)
	}
	return tok
}

// specRouter routes requests to operations of openapi.yaml, for checking
// every response the tests see against the spec.
var specRouter = func() routers.Router {
	doc, err := openapi3.NewLoader().LoadFromData(gen.Spec)
	if err != nil {
		panic(err)
	}
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		panic(err)
	}
	return r
}()

// response is a finished HTTP exchange.
type response struct {
	*http.Response
	body []byte
}

func (r response) json(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		tb.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r response) problemType() string {
	var p Problem
	_ = json.Unmarshal(r.body, &p)
	return strings.TrimPrefix(p.Type, ProblemBase)
}

// call sends a request and checks the response against openapi.yaml
// (status declared, headers and body valid), failing the test otherwise.
func (n *testNode) call(method, path, token string, body any, headers ...string) response {
	n.t.Helper()
	var rd io.Reader
	var raw []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		raw = b
	case string:
		raw = []byte(b)
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			n.t.Fatal(err)
		}
	}
	if raw != nil {
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, n.url+path, rd)
	if err != nil {
		n.t.Fatal(err)
	}
	if raw != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		n.t.Fatal(err)
	}
	checkSpec(n.t, req, raw, resp, out)
	return response{resp, out}
}

func checkSpec(tb testing.TB, req *http.Request, reqBody []byte, resp *http.Response, body []byte) {
	tb.Helper()
	if resp.StatusCode >= 500 {
		tb.Fatalf("%s %s: %d %s", req.Method, req.URL, resp.StatusCode, body)
	}
	if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
		tb.Fatalf("%s %s: %d with Content-Type %q, want application/problem+json", req.Method, req.URL, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	route, params, err := specRouter.FindRoute(req)
	if err != nil {
		return // not a route of the spec (404 tests)
	}
	if reqBody != nil {
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
		Status:  resp.StatusCode,
		Header:  resp.Header,
		Body:    io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		msg := err.Error()
		if len(msg) > 1500 {
			msg = msg[:1500]
		}
		tb.Fatalf("%s %s: response %d does not match openapi.yaml: %s\nbody: %.500s", req.Method, req.URL, resp.StatusCode, msg, body)
	}
}

func wantStatus(tb testing.TB, r response, want int) {
	tb.Helper()
	if r.StatusCode != want {
		tb.Fatalf("%s %s: status %d, want %d: %s", r.Request.Method, r.Request.URL.Path, r.StatusCode, want, r.body)
	}
}

// client is a session key registered for a subject.
type client struct {
	sub   string
	token string
	priv  ed25519.PrivateKey
	id    string
}

func (n *testNode) newClient(sub string, roles ...string) client {
	n.t.Helper()
	_, priv, _ := ed25519.GenerateKey(nil)
	c := client{sub: sub, token: n.token(sub, roles...), priv: priv, id: auth.SessionID(priv.Public().(ed25519.PublicKey))}
	expires := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	sr, err := auth.NewSessionRequest(priv, auth.DevAudience, sub, expires)
	if err != nil {
		n.t.Fatal(err)
	}
	r := n.call("POST", "/v1/sessions", c.token, map[string]any{"publicKey": sr.PublicKey, "proof": sr.Proof, "expires": expires.UnixMilli()})
	wantStatus(n.t, r, http.StatusCreated)
	return c
}

// commit builds and signs a commit by c.
func (c client) commit(tb testing.TB, repo, key string, ts int64, data map[string]any, parents ...core.CommitID) *core.Commit {
	tb.Helper()
	cm := &core.Commit{Repo: repo, Key: key, Parents: parents, Author: c.id, TS: ts, Schema: core.AnySchema, Data: data}
	if err := cm.Sign(c.priv); err != nil {
		tb.Fatal(err)
	}
	return cm
}

func commitsBody(cs ...*core.Commit) []byte {
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

// waitFor retries cond until it holds or the deadline passes.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}
