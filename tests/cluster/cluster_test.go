//go:build cluster

package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/client"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

var (
	raceBuild     = flag.Bool("cluster.race", false, "build the gateway with -race and fail on any race it reports")
	latencyWrites = flag.Int("cluster.writes", 200, "writes timed for the cross-node delivery latency")
)

// TestCluster runs the docker-compose topology on loopback: nats-server,
// three gateways with their own data directories and one shared keys
// directory, and nginx with deploy/nginx.conf in front.
func TestCluster(t *testing.T) {
	h := newHarness(t)

	t.Run("SSEOnCReceivesWriteOnA", h.testFanOut)
	t.Run("RoamingClientKeepsCorrectReplica", h.testRoamingClient)
	t.Run("KillWipeRestartB", h.testKillWipeRestart)
	t.Run("NATSStopRestart", h.testNATSRestart)
	// Last: it wipes every node.
	t.Run("ClientRestoresWipedCluster", h.testClientRestoresWipedCluster)
}

// ---------------------------------------------------------------- scenarios

// An SSE client on C receives every commit written through A, in order;
// the time from sending the write to A to the event on C is the
// cross-node delivery latency (A's own subscribers, for comparison).
func (h *harness) testFanOut(t *testing.T) {
	a, c := h.nodes[0], h.nodes[2]
	w := h.newAuthor(t, "latency", a.url)
	h.createRepo(t, a.url, "live")
	h.waitRepoEverywhere(t, "live")
	subC := h.subscribe(t, c.url, "live")
	subA := h.subscribe(t, a.url, "live")

	n := *latencyWrites
	cross := make([]time.Duration, 0, n)
	local := make([]time.Duration, 0, n)
	var prev []core.CommitID
	for i := range n {
		cm := w.Commit("live", "ticker", map[string]any{"i": float64(i)}, prev...)
		start := time.Now()
		if _, err := h.push(a.url, w.Token, cm); err != nil {
			t.Fatalf("write %d on A: %v", i, err)
		}
		evC := subC.next(t)
		evA := subA.next(t)
		if evC.id != cm.ID.String() || evA.id != cm.ID.String() {
			t.Fatalf("write %d: events %s on C and %s on A, want %s", i, evC.id, evA.id, cm.ID)
		}
		cross = append(cross, evC.at.Sub(start))
		local = append(local, evA.at.Sub(start))
		prev = []core.CommitID{cm.ID}
	}
	t.Logf("write on A -> SSE event on C over %d writes: median %v, p90 %v, max %v",
		n, quantile(cross, 0.5), quantile(cross, 0.9), quantile(cross, 1))
	t.Logf("write on A -> SSE event on A (same node), for comparison: median %v, p90 %v",
		quantile(local, 0.5), quantile(local, 0.9))
}

// A client whose every request may land on another node (nginx round
// robin) keeps a correct replica: it writes locally and heals through the
// load balancer, resumes log catch-up with cursors that other nodes refuse
// (409, then a heal), and ends with exactly the cluster's commits.
func (h *harness) testRoamingClient(t *testing.T) {
	const repo = "roam"
	roamer := h.newAuthor(t, "roamer", h.lb)
	other := h.newAuthor(t, "other", h.nodes[0].url)
	h.createRepo(t, h.lb, repo)
	h.waitRepoEverywhere(t, repo)

	replica := newReplica()
	tr, counter := h.lbClient(t, roamer.Token)
	d := gsync.Driver{Transport: tr, MaxRounds: 10}
	heal := func() {
		t.Helper()
		var err error
		// A node that has not yet received the client's session rejects
		// its commits; the next heal (often on another node) delivers
		// them.
		if !goattest.Eventually(goattest.Patience, func() bool {
			_, err = d.Heal(context.Background(), replica, repo)
			return err == nil
		}) {
			t.Fatalf("heal through the load balancer: %v", err)
		}
	}

	var mine, theirs []core.CommitID
	var otherPrev []core.CommitID
	fallbacks := 0
	for round := range 8 {
		for j := range 4 {
			key := fmt.Sprintf("client-%d", j%2)
			if j == 3 {
				key = "shared"
			}
			cm := roamer.Commit(repo, key, map[string]any{"round": float64(round), "j": float64(j)}, replica.parent(key)...)
			if err := replica.Ingest(context.Background(), []*core.Commit{cm}); err != nil {
				t.Fatal(err)
			}
			mine = append(mine, cm.ID)
		}
		// Another writer edits the shared item directly on A and C:
		// concurrent edits that the nodes merge.
		node := h.nodes[2*(round%2)]
		cm := other.Commit(repo, "shared", map[string]any{"other": float64(round)}, otherPrev...)
		h.pushEventually(t, node.url, other.Token, cm)
		otherPrev = []core.CommitID{cm.ID}
		theirs = append(theirs, cm.ID)

		heal()
		// Catch up from the log, then resume with the cursor at once: the
		// load balancer sends the resumption to the next node, which
		// refuses another node's cursor (409); the driver heals instead.
		var st gsync.Stats
		var err error
		if !goattest.Eventually(goattest.Patience, func() bool {
			if st, err = d.Clone(context.Background(), replica, repo, ""); err == nil {
				st, err = d.Clone(context.Background(), replica, repo, st.Cursor)
			}
			return err == nil
		}) {
			t.Fatalf("log catch-up: %v", err)
		}
		if st.Healed {
			fallbacks++
		}
	}
	h.waitInSync(t, repo)
	// The nodes merge the shared item's concurrent heads themselves: a
	// node appends a commit that leaves two heads, then the merge commit
	// in a group of its own (storage Repo.merge), and a read between the
	// two sees the commit without its merge: a heal that lands in that
	// window can end one commit short of the cluster, which healing again
	// mends. (The likely cause of the one failure seen, CI 2026-12-05
	// 23:58: replica 77 commits, cluster 78 after one heal; not
	// reproduced in 34 runs since.) A replica that never converges still
	// fails here, after Patience.
	var want repoState
	converged := goattest.Eventually(goattest.Patience, func() bool {
		heal()
		want = h.state(t, h.nodes[0].url, repo)
		for _, n := range h.nodes[1:] {
			if h.state(t, n.url, repo) != want {
				return false
			}
		}
		got := replica.Digest()
		return got.Count == want.Count && got.XOR.String() == want.Digest
	})
	if got := replica.Digest(); !converged {
		// Say what differs, and where.
		for _, n := range h.nodes {
			s, err := h.stateErr(n.url, repo)
			t.Logf("%s now: %+v %v", n.url, s, err)
			for id := range h.logIDs(t, n.url, repo) {
				if _, ok := replica.Get(id); !ok {
					t.Logf("the replica lacks %s, which %s has", id, n.url)
				}
			}
		}
		t.Fatalf("replica %d commits %s, cluster %d commits %s; requests by node %v", got.Count, got.XOR, want.Count, want.Digest, counter.upstreams)
	}
	for _, id := range append(mine, theirs...) {
		if _, ok := replica.Get(id); !ok {
			t.Fatalf("replica lacks %s", id)
		}
	}
	if err := replica.checkClosed(); err != nil {
		t.Fatal(err)
	}
	if len(counter.upstreams) < 2 {
		t.Fatalf("the client's requests reached %v; want several nodes", counter.upstreams)
	}
	if fallbacks == 0 {
		t.Fatal("no cursor was refused by another node: the roaming path was not exercised")
	}
	t.Logf("roaming client: %d commits in sync; requests by node %v; %d of 8 log catch-ups fell back to a heal (409)", want.Count, counter.upstreams, fallbacks)
}

// Node B is killed (SIGKILL) while writes flow through nginx, its data
// directory is wiped, and it is restarted: it refills from its peers, and
// no write that any node acknowledged is missing anywhere.
func (h *harness) testKillWipeRestart(t *testing.T) {
	const repo = "orders"
	b := h.nodes[1]
	h.createRepo(t, h.nodes[0].url, repo)
	h.waitRepoEverywhere(t, repo)

	var ackMu stdsync.Mutex
	var acked []core.CommitID
	var ackedByB atomic.Int64
	ackedCount := func() int { ackMu.Lock(); defer ackMu.Unlock(); return len(acked) }

	stop := make(chan struct{})
	var wg stdsync.WaitGroup
	for wi := range 3 {
		w := h.newAuthor(t, fmt.Sprintf("writer-%d", wi), h.nodes[0].url)
		h.waitSessionEverywhere(t, w)
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Paces the retries of a write while B is down or a parent is
			// still in flight.
			retry := time.NewTicker(20 * time.Millisecond)
			defer retry.Stop()
			var prev []core.CommitID
			for i := 0; ; i++ {
				cm := w.Commit(repo, fmt.Sprintf("w%d", wi), map[string]any{"i": float64(i)}, prev...)
				for {
					select {
					case <-stop:
						return
					default:
					}
					upstream, err := h.push(h.lb, w.Token, cm)
					if err == nil {
						ackMu.Lock()
						acked = append(acked, cm.ID)
						ackMu.Unlock()
						if upstream == b.addr {
							ackedByB.Add(1)
						}
						break
					}
					select {
					case <-stop:
						return
					case <-retry.C:
					}
				}
				prev = []core.CommitID{cm.ID}
			}
		}()
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	goattest.WaitFor(t, "B to acknowledge writes", func() bool { return ackedByB.Load() >= 30 && ackedCount() >= 100 })
	b.proc.kill(t)
	atKill, byBAtKill := ackedCount(), ackedByB.Load()
	if err := os.RemoveAll(b.dataDir); err != nil {
		t.Fatal(err)
	}
	goattest.WaitFor(t, "writes to go on without B", func() bool { return ackedCount() >= atKill+100 })
	h.startGateway(t, b)
	goattest.WaitFor(t, "B to acknowledge writes again", func() bool { return ackedByB.Load() > byBAtKill+10 })
	close(stop)
	wg.Wait()

	h.waitInSync(t, repo)
	h.waitInSync(t, auth.SessionsRepo)
	ackMu.Lock()
	all := slices.Clone(acked)
	ackMu.Unlock()
	for _, n := range h.nodes {
		have := h.logIDs(t, n.url, repo)
		missing := 0
		for _, id := range all {
			if !have[id] {
				missing++
			}
		}
		if missing > 0 {
			t.Errorf("node %s lacks %d of %d acknowledged writes", n.name, missing, len(all))
		}
	}
	if !strings.Contains(b.proc.logText(), "reconciled with peer") {
		t.Error("B's log shows no reconciliation with its peers")
	}
	t.Logf("kill/wipe/restart: %d writes acknowledged (%d by B before it was killed, %d in all by B), all present on A, B and C", len(all), byBAtKill, ackedByB.Load())
}

// NATS stops and comes back while nodes keep taking writes: everything
// written during the outage ends up on every node, and C's SSE
// subscribers see A's outage writes.
func (h *harness) testNATSRestart(t *testing.T) {
	const repo = "outage"
	a, c := h.nodes[0], h.nodes[2]
	w := h.newAuthor(t, "outage", a.url)
	h.createRepo(t, a.url, repo)
	h.waitRepoEverywhere(t, repo)
	h.waitSessionEverywhere(t, w)
	sub := h.subscribe(t, c.url, repo)

	h.nats.stop(t)
	var fromA, all []core.CommitID
	for i := range 10 {
		for _, n := range []*gnode{a, c} {
			cm := w.Commit(repo, fmt.Sprintf("%s-%d", n.name, i), map[string]any{"i": float64(i)})
			h.pushEventually(t, n.url, w.Token, cm)
			all = append(all, cm.ID)
			if n == a {
				fromA = append(fromA, cm.ID)
			}
		}
	}
	h.startNATS(t)
	h.waitInSync(t, repo)
	for _, n := range h.nodes {
		have := h.logIDs(t, n.url, repo)
		for _, id := range all {
			if !have[id] {
				t.Fatalf("node %s lacks outage write %s", n.name, id)
			}
		}
	}
	seen := map[string]bool{}
	for _, id := range fromA {
		for !seen[id.String()] {
			seen[sub.next(t).id] = true
		}
	}
	// C reconnects to NATS (the outage's writes above may have reached it
	// by a heal first, before its reconnection backoff ran out), and live
	// fan-out works again.
	goattest.WaitFor(t, "C's log to show its NATS reconnection", func() bool {
		return strings.Contains(c.proc.logText(), "nats reconnected")
	})
	cm := w.Commit(repo, "after", map[string]any{})
	h.pushEventually(t, a.url, w.Token, cm)
	for !seen[cm.ID.String()] {
		seen[sub.next(t).id] = true
	}
}

// ------------------------------------------------------------------ harness

type harness struct {
	t       *testing.T
	dir     string
	root    string // module root
	gateway string // binary
	natsBin string
	keysDir string
	token   string // a dev token for reads

	natsPort, natsHTTPPort int
	nats                   *proc
	nodes                  []*gnode
	runs                   []*proc // every gateway process ever started
	lb                     string
	nginx                  *proc
	client                 *http.Client
}

type gnode struct {
	name    string
	addr    string // 127.0.0.1:port
	url     string
	dataDir string
	proc    *proc
	starts  int
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, dir: t.TempDir(), client: &http.Client{Timeout: 15 * time.Second}}
	t.Cleanup(h.cleanup)
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || len(bytes.TrimSpace(out)) == 0 {
		t.Fatalf("go env GOMOD: %v", err)
	}
	h.root = filepath.Dir(string(bytes.TrimSpace(out)))
	h.gateway = filepath.Join(h.dir, "goat-gateway")
	args := []string{"build", "-o", h.gateway}
	if *raceBuild {
		args = append(args, "-race")
	}
	h.goTool(t, append(args, "./cmd/goat-gateway")...)
	if h.natsBin = os.Getenv("GOAT_NATS_SERVER"); h.natsBin == "" {
		h.natsBin = filepath.Join(h.dir, "nats-server")
		h.goTool(t, "build", "-o", h.natsBin, "github.com/nats-io/nats-server/v2")
	}
	h.keysDir = filepath.Join(h.dir, "keys")
	// Minting first creates the shared keys directory's dev issuer key;
	// the gateways then load it (and add the root and node issuer keys).
	h.token = h.mint(t, "tester")

	h.natsPort, h.natsHTTPPort = freePort(t), freePort(t)
	h.startNATS(t)
	var peers []string
	for _, name := range []string{"a", "b", "c"} {
		port := freePort(t)
		n := &gnode{name: name, addr: fmt.Sprintf("127.0.0.1:%d", port), dataDir: filepath.Join(h.dir, "data-"+name)}
		n.url = "http://" + n.addr
		peers = append(peers, n.url)
		h.nodes = append(h.nodes, n)
	}
	for _, n := range h.nodes {
		h.startGatewayWithPeers(t, n, strings.Join(peers, ","))
	}
	h.startNginx(t)
	return h
}

// cleanup stops every process, checks the race detector's verdict, and
// shows the logs of a failed test.
func (h *harness) cleanup() {
	t := h.t
	var procs []*proc
	for _, p := range []*proc{h.nginx, h.nats} {
		if p != nil {
			procs = append(procs, p)
		}
	}
	for _, n := range h.nodes {
		if n.proc != nil {
			procs = append(procs, n.proc)
		}
	}
	for _, p := range procs {
		p.stop(t)
	}
	if *raceBuild {
		for _, p := range h.runs {
			if strings.Contains(p.logText(), "WARNING: DATA RACE") {
				t.Errorf("data race in %s; see %s", p.name, p.logPath)
			}
		}
	}
	if t.Failed() {
		for _, p := range procs {
			t.Logf("---- %s (last lines of %s)\n%s", p.name, p.logPath, p.tail(40))
		}
	}
}

func (h *harness) goTool(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = h.root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startNATS runs nats-server with deploy/nats.conf, its ports moved to
// loopback.
func (h *harness) startNATS(t *testing.T) {
	t.Helper()
	conf := h.readDeploy(t, "nats.conf")
	conf = mustReplace(t, conf, "port: 4222", fmt.Sprintf("listen: \"127.0.0.1:%d\"", h.natsPort))
	conf = mustReplace(t, conf, "http_port: 8222", fmt.Sprintf("http: \"127.0.0.1:%d\"", h.natsHTTPPort))
	path := filepath.Join(h.dir, "nats.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	h.nats = startProc(t, h.dir, "nats", nil, h.natsBin, "-c", path)
	goattest.WaitFor(t, "nats-server", func() bool {
		resp, err := h.client.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", h.natsHTTPPort))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

func (h *harness) natsURL() string { return fmt.Sprintf("nats://127.0.0.1:%d", h.natsPort) }

// startGatewayWithPeers starts a gateway, configured the way
// docker-compose.yml configures them: NATS URL and peers from the
// environment, the shared keys directory, its own data directory.
func (h *harness) startGatewayWithPeers(t *testing.T, n *gnode, peers string) {
	t.Helper()
	env := []string{"GOAT_NATS_URL=" + h.natsURL(), "GOAT_PEERS=" + peers, "GOAT_TRUST_PROXY_HEADERS=true"}
	n.starts++
	n.proc = startProc(t, h.dir, fmt.Sprintf("gateway-%s-%d", n.name, n.starts), env, h.gateway,
		"serve", "--listen", n.addr, "--data-dir", n.dataDir, "--keys-dir", h.keysDir, "--dev", "--heal-interval", "10s")
	h.runs = append(h.runs, n.proc)
	goattest.WaitFor(t, "gateway "+n.name, func() bool {
		resp, err := h.client.Get(n.url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

func (h *harness) startGateway(t *testing.T, n *gnode) {
	t.Helper()
	var peers []string
	for _, o := range h.nodes {
		peers = append(peers, o.url)
	}
	h.startGatewayWithPeers(t, n, strings.Join(peers, ","))
}

// startNginx runs Debian's nginx with deploy/nginx.conf as its site, the
// upstreams and the listen address moved to loopback.
func (h *harness) startNginx(t *testing.T) {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		bin = "/usr/sbin/nginx"
		if _, err := os.Stat(bin); err != nil {
			t.Fatal("nginx is needed for this test (.ci/run installs Debian's nginx-light)")
		}
	}
	port := freePort(t)
	site := h.readDeploy(t, "nginx.conf")
	for _, n := range h.nodes {
		site = mustReplace(t, site, "gateway-"+n.name+":8080", n.addr)
	}
	site = mustReplace(t, site, "listen 8080;", fmt.Sprintf("listen 127.0.0.1:%d;", port))
	dir := filepath.Join(h.dir, "nginx")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "site.conf"), []byte(site), 0o644); err != nil {
		t.Fatal(err)
	}
	// The main configuration of Debian's and the official image's
	// nginx.conf, reduced to what a process without root needs.
	main := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
error_log %[1]s/error.log warn;
pid %[1]s/nginx.pid;
events { worker_connections 1024; }
http {
  sendfile on;
  tcp_nopush on;
  gzip on;
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  include %[1]s/site.conf;
}
`, dir)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	h.nginx = startProc(t, h.dir, "nginx", nil, bin, "-c", path, "-p", dir)
	h.lb = fmt.Sprintf("http://127.0.0.1:%d", port)
	goattest.WaitFor(t, "nginx", func() bool {
		resp, err := h.client.Get(h.lb + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

func (h *harness) readDeploy(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(h.root, "deploy", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustReplace(t *testing.T, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("deploy file no longer contains %q: update the cluster test with it", old)
	}
	return strings.ReplaceAll(s, old, new)
}

// ------------------------------------------------------------------ processes

type proc struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
}

func startProc(t *testing.T, dir, name string, env []string, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, logPath: filepath.Join(dir, name+".log"), exited: make(chan struct{})}
	f, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		f.Close()
		close(p.exited)
	}()
	return p
}

// kill ends the process at once (SIGKILL), as a crash or OOM kill would.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// stop asks the process to stop (SIGTERM) and kills it after 15 s.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		t.Errorf("%s did not stop on SIGTERM", p.name)
		p.kill(t)
	}
}

func (p *proc) logText() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

func (p *proc) tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.logText(), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// ------------------------------------------------------------------ HTTP

func (h *harness) do(method, url, token string, body []byte) (status int, respBody []byte, upstream string, err error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, nil, "", err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header.Get("X-Goat-Upstream"), err
}

func (h *harness) mustDo(t *testing.T, method, url string, body []byte, want ...int) []byte {
	t.Helper()
	st, b, _, err := h.do(method, url, h.token, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	if !slices.Contains(want, st) {
		t.Fatalf("%s %s: %d %s", method, url, st, b)
	}
	return b
}

func (h *harness) createRepo(t *testing.T, base, repo string) {
	t.Helper()
	h.mustDo(t, "PUT", base+"/v1/repos/"+repo, nil, 200, 201)
}

type repoState struct {
	Count  int64  `json:"count"`
	Digest string `json:"digest"`
}

func (h *harness) stateErr(base, repo string) (repoState, error) {
	st, b, _, err := h.do("GET", base+"/v1/repos/"+repo, h.token, nil)
	if err != nil {
		return repoState{}, err
	}
	if st != 200 {
		return repoState{}, fmt.Errorf("GET %s: %d", repo, st)
	}
	var s repoState
	err = json.Unmarshal(b, &s)
	return s, err
}

func (h *harness) state(t *testing.T, base, repo string) repoState {
	t.Helper()
	s, err := h.stateErr(base, repo)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (h *harness) waitRepoEverywhere(t *testing.T, repo string) {
	t.Helper()
	goattest.WaitFor(t, repo+" on every node", func() bool {
		for _, n := range h.nodes {
			if _, err := h.stateErr(n.url, repo); err != nil {
				return false
			}
		}
		return true
	})
}

// waitInSync waits until every node has the same count and digest.
func (h *harness) waitInSync(t *testing.T, repo string) {
	t.Helper()
	var last []repoState
	goattest.WaitFor(t, repo+" in sync on every node", func() bool {
		last = last[:0]
		for _, n := range h.nodes {
			s, err := h.stateErr(n.url, repo)
			if err != nil {
				return false
			}
			last = append(last, s)
		}
		for _, s := range last[1:] {
			if s != last[0] {
				return false
			}
		}
		return true
	})
}

// logIDs returns the ids of a node's log.
func (h *harness) logIDs(t *testing.T, base, repo string) map[core.CommitID]bool {
	t.Helper()
	ids := map[core.CommitID]bool{}
	after := ""
	for {
		url := base + "/v1/repos/" + repo + "/log?limit=1000"
		if after != "" {
			url += "&after=" + after
		}
		var page struct {
			Commits []struct {
				ID core.CommitID `json:"id"`
			} `json:"commits"`
			Next string `json:"next"`
			Tail bool   `json:"tail"`
		}
		if err := json.Unmarshal(h.mustDo(t, "GET", url, nil, 200), &page); err != nil {
			t.Fatal(err)
		}
		for _, c := range page.Commits {
			ids[c.ID] = true
		}
		if page.Tail || len(page.Commits) == 0 {
			return ids
		}
		after = page.Next
	}
}

// endpoint is a node, or the load balancer, as goattest's authors see it:
// tokens come from the built binary's token command.
type endpoint struct {
	h   *harness
	t   *testing.T
	url string
}

func (e endpoint) URL() string { return e.url }

func (e endpoint) Token(sub string, _ ...string) string { return e.h.mint(e.t, sub) }

// mint returns a dev token for sub from the shared keys directory.
func (h *harness) mint(t *testing.T, sub string) string {
	t.Helper()
	out, err := exec.Command(h.gateway, "token", "--keys-dir", h.keysDir, "--data-dir", h.dir, "--sub", sub, "--ttl", "1h").Output()
	if err != nil {
		t.Fatalf("goat-gateway token: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// newAuthor registers a session key for sub through base.
func (h *harness) newAuthor(t *testing.T, sub, base string) *goattest.Author {
	t.Helper()
	return goattest.NewAuthor(t, endpoint{h: h, t: t, url: base}, sub)
}

func (h *harness) waitSessionEverywhere(t *testing.T, a *goattest.Author) {
	t.Helper()
	goattest.WaitFor(t, "session "+a.ID+" on every node", func() bool {
		for _, n := range h.nodes {
			if st, _, _, err := h.do("GET", n.url+"/v1/sessions/"+a.ID, a.Token, nil); err != nil || st != 200 {
				return false
			}
		}
		return true
	})
}

// push sends commits to POST /v1/repos/{repo}/commits; nil error means
// every one was acknowledged (accepted or duplicate). It returns the node
// that answered (through nginx).
func (h *harness) push(base, token string, cs ...*core.Commit) (upstream string, err error) {
	st, body, upstream, err := h.do("POST", base+"/v1/repos/"+cs[0].Repo+"/commits", token, goattest.PushBody(cs...))
	if err != nil {
		return upstream, err
	}
	if st != 200 {
		return upstream, fmt.Errorf("push: %d %s", st, body)
	}
	var res struct {
		Results []struct{ Status, Reason string }
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return upstream, err
	}
	for _, r := range res.Results {
		if r.Status != "accepted" && r.Status != "duplicate" {
			return upstream, fmt.Errorf("push: %s: %s", r.Status, r.Reason)
		}
	}
	return upstream, nil
}

// pushEventually pushes until the node acknowledges: a node may not have
// received a parent or the session yet.
func (h *harness) pushEventually(t *testing.T, base, token string, cs ...*core.Commit) {
	t.Helper()
	var err error
	if !goattest.Eventually(goattest.Patience, func() bool { _, err = h.push(base, token, cs...); return err == nil }) {
		t.Fatal(err)
	}
}

// ------------------------------------------------------------------ SSE

type sseEvent struct {
	id string
	at time.Time
}

type subscription struct{ events chan sseEvent }

// subscribe opens an SSE stream for repo and returns once it is live.
func (h *harness) subscribe(t *testing.T, base, repo string) *subscription {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/events?repo="+repo, nil)
	req.Header.Set("Authorization", "Bearer "+h.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		cancel()
		t.Fatalf("events on %s: %d", base, resp.StatusCode)
	}
	s := &subscription{events: make(chan sseEvent, 100000)}
	ready := make(chan struct{})
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
				at := time.Now()
				switch name {
				case "ready":
					close(ready)
				case "commit":
					var ev struct {
						Commit struct {
							ID string `json:"id"`
						} `json:"commit"`
					}
					if json.Unmarshal([]byte(data), &ev) == nil {
						s.events <- sseEvent{id: ev.Commit.ID, at: at}
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
	t.Cleanup(func() { cancel(); resp.Body.Close(); <-done })
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("no ready event")
	}
	return s
}

func (s *subscription) next(t *testing.T) sseEvent {
	t.Helper()
	select {
	case ev := <-s.events:
		return ev
	case <-time.After(30 * time.Second):
		t.Fatal("no commit event within 30 s")
		return sseEvent{}
	}
}

func quantile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q * float64(len(s)-1))
	return s[i].Round(time.Microsecond)
}

// ------------------------------------------------------------------ client

// upstreamCounter counts, per node, the answers that came back through
// nginx (its X-Goat-Upstream header), under the Go client of the API.
type upstreamCounter struct {
	next      http.RoundTripper
	mu        stdsync.Mutex
	upstreams map[string]int
}

func (u *upstreamCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := u.next.RoundTrip(req)
	if err == nil {
		u.mu.Lock()
		u.upstreams[resp.Header.Get("X-Goat-Upstream")]++
		u.mu.Unlock()
	}
	return resp, err
}

// lbClient is the Go client of the API through nginx, for token, counting
// which node answered each request.
func (h *harness) lbClient(t *testing.T, token string) (*client.Client, *upstreamCounter) {
	t.Helper()
	u := &upstreamCounter{next: http.DefaultTransport, upstreams: map[string]int{}}
	c, err := client.New(h.lb, client.Options{
		HTTPClient: &http.Client{Transport: u, Timeout: h.client.Timeout},
		Token:      func(context.Context) (string, error) { return token, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, u
}

// parent returns the parents of a new edit of key: the key's latest head
// (an edit of one version; concurrent heads are the nodes' to merge).
func (r *replica) parent(key string) []core.CommitID {
	if hs := r.head[key]; len(hs) > 0 {
		return []core.CommitID{hs[len(hs)-1]}
	}
	return nil
}

// checkClosed verifies that every commit's parents precede it.
func (r *replica) checkClosed() error {
	pos := map[core.CommitID]int{}
	for i, id := range r.order {
		pos[id] = i
	}
	for i, id := range r.order {
		for _, p := range r.byID[id].Parents {
			if j, ok := pos[p]; !ok || j >= i {
				return errors.New("replica is not closed under parents in topological order")
			}
		}
	}
	return nil
}
