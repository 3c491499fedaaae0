package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/goat-gateway/goat-gateway/api"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
	"github.com/goat-gateway/goat-gateway/node"
)

// natsServer is an embedded NATS server on a loopback port that can be
// stopped and started again on the same port.
type natsServer struct {
	tb   testing.TB
	port int
	srv  *server.Server
}

func startNATS(tb testing.TB) *natsServer {
	tb.Helper()
	ns := &natsServer{tb: tb, port: -1}
	ns.start()
	tb.Cleanup(ns.stop)
	return ns
}

func (ns *natsServer) start() {
	ns.tb.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: ns.port, NoLog: true, NoSigs: true, MaxPayload: 8 << 20})
	if err != nil {
		ns.tb.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		ns.tb.Fatal("nats server not ready")
	}
	ns.srv = srv
	ns.port = srv.Addr().(*net.TCPAddr).Port
}

func (ns *natsServer) stop() {
	if ns.srv != nil {
		ns.srv.Shutdown()
		ns.srv.WaitForShutdown()
		ns.srv = nil
	}
}

func (ns *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", ns.port) }

// testNode is a gateway with a cluster node, on a loopback port.
type testNode struct {
	tb      testing.TB
	srv     *api.Server
	nd      *node.Node
	cl      *Cluster
	url     string
	keysDir string
	cancel  context.CancelFunc
	done    chan error
}

// clusterOpts shape startCluster's nodes.
type clusterOpts struct {
	nats   string // NATS URL; "" for none
	peers  bool   // give every node every node's URL (itself included)
	config func(i int, c *Config)
}

// startCluster starts n nodes that share one keys directory, as the nodes
// of a deployment must (root key, dev issuer, node issuer).
func startCluster(tb testing.TB, n int, o clusterOpts) []*testNode {
	tb.Helper()
	keys := tb.TempDir()
	lns := make([]net.Listener, n)
	var urls []string
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		lns[i] = ln
		urls = append(urls, "http://"+ln.Addr().String())
	}
	nodes := make([]*testNode, n)
	for i := range nodes {
		var peers []string
		if o.peers {
			peers = urls
		}
		nodes[i] = startNode(tb, keys, lns[i], o.nats, peers, func(c *Config) {
			if o.config != nil {
				o.config(i, c)
			}
		})
	}
	if o.peers {
		// Tests count what reconciliation moves: let the start-up passes
		// finish first.
		goattest.WaitFor(tb, "start-up reconciliation", func() bool {
			for _, n := range nodes {
				if n.cl.Stats().HealPasses == 0 {
					return false
				}
			}
			return true
		})
	}
	return nodes
}

// startNode starts one node serving on ln with its own data directory.
func startNode(tb testing.TB, keysDir string, ln net.Listener, natsURL string, peers []string, mod func(*Config)) *testNode {
	tb.Helper()
	key, err := LoadNodeKey(keysDir)
	if err != nil {
		tb.Fatal(err)
	}
	cc := Config{NATSURL: natsURL, Peers: peers, NodeKey: key, HealInterval: time.Hour, ReconnectWait: 50 * time.Millisecond, Logger: testLogger()}
	if mod != nil {
		mod(&cc)
	}
	cl, err := New(cc)
	if err != nil {
		tb.Fatal(err)
	}
	log := testLogger() // CLUSTER_TEST_LOG=1: the node's and the API's logs too
	nd, err := node.Open(node.Config{DataDir: tb.TempDir(), KeysDir: keysDir, Dev: true, NoSync: true, Logger: log, Observer: cl, Barrier: cl, SessionSource: cl})
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := api.New(nd, api.Config{Logger: log, Issuers: cl.Issuers(), TrustDevIssuer: true})
	if err != nil {
		tb.Fatal(err)
	}
	if err := cl.Start(nd); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tn := &testNode{tb: tb, srv: srv, nd: nd, cl: cl, url: "http://" + ln.Addr().String(), keysDir: keysDir, cancel: cancel, done: make(chan error, 1)}
	go func() { tn.done <- srv.Serve(ctx, ln) }()
	tb.Cleanup(tn.stop)
	return tn
}

func (n *testNode) stop() {
	if n.cancel == nil {
		return
	}
	n.cancel()
	<-n.done
	n.cl.Close()
	n.nd.Close()
	n.cancel = nil
}

// state returns a repository's count and digest on the node; count is -1
// if the repository does not exist.
func (n *testNode) state(repo string) (int, [32]byte) {
	ri, err := n.nd.State(repo)
	if err != nil {
		return -1, [32]byte{}
	}
	return ri.Count, ri.Digest
}

func (n *testNode) has(repo string, id core.CommitID) bool { return n.nd.Has(repo, id) }

// inSync reports whether every node has repo, with the same commits.
func inSync(nodes []*testNode, repo string) bool {
	c0, d0 := nodes[0].state(repo)
	if c0 < 0 {
		return false
	}
	for _, n := range nodes[1:] {
		if c, d := n.state(repo); c != c0 || d != d0 {
			return false
		}
	}
	return true
}

// URL and Token make a node an endpoint for goattest's authors.
func (n *testNode) URL() string { return n.url }

func (n *testNode) Token(sub string, roles ...string) string {
	tok, err := n.nd.DevIssuer().Mint(sub, roles, time.Hour, time.Now())
	if err != nil {
		panic(fmt.Sprintf("mint a token for %q: %v", sub, err))
	}
	return tok
}

// subscription reads the commit ids of an SSE stream ("reset" for a
// reset event).
type subscription struct {
	ids   chan string
	ready chan struct{}
}

func subscribe(tb testing.TB, n *testNode, token, repo string) *subscription {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", n.url+"/v1/events?repo="+repo, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	if resp.StatusCode != 200 {
		cancel()
		tb.Fatalf("events: %d", resp.StatusCode)
	}
	s := &subscription{ids: make(chan string, 10000), ready: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var name, data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				switch name {
				case "ready":
					close(s.ready)
				case "reset":
					s.ids <- "reset" // in place of an id: the stream must reconcile
				case "commit":
					var ev struct {
						Commit struct{ ID string }
					}
					if json.Unmarshal([]byte(data), &ev) == nil {
						s.ids <- ev.Commit.ID
					}
				}
				name, data = "", ""
			case strings.HasPrefix(line, "event:"):
				name = strings.TrimSpace(line[len("event:"):])
			case strings.HasPrefix(line, "data:"):
				data = strings.TrimSpace(line[len("data:"):])
			}
		}
	}()
	tb.Cleanup(func() { cancel(); resp.Body.Close(); <-done })
	select {
	case <-s.ready:
	case <-time.After(10 * time.Second):
		tb.Fatal("no ready event")
	}
	return s
}

// next returns the next commit id, failing after 10 s.
func (s *subscription) next(tb testing.TB) string {
	tb.Helper()
	select {
	case id := <-s.ids:
		return id
	case <-time.After(10 * time.Second):
		tb.Fatal("no commit event")
		return ""
	}
}

func testLogger() *slog.Logger {
	if os.Getenv("CLUSTER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}
