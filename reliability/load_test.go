package reliability

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
)

var (
	loadSubs    = flag.Int("load.subs", 200, "SSE subscribers of TestLoad_SubscriberFaults")
	loadCommits = flag.Int("load.commits", 300, "small commits pushed by TestLoad_SubscriberFaults (besides the large ones to the hot repository)")
	loadStorms  = flag.Int("load.storms", 3, "reconnect storms of TestLoad_SubscriberFaults")
)

// Load settings: a small subscriber buffer so that stalled subscribers are
// dropped early, and a short write timeout so that their streams end.
const (
	loadBuffer       = 16
	loadWriteTimeout = 2 * time.Second
	hotRepo          = "load.hot"
	// The hot repository gets hotCommits commits of hotPad bytes (inlined
	// in events) and hugeCommits too large to inline (announced by id):
	// about 6 MB, more than the kernel buffers a stalled subscriber's
	// socket (4 MB), so that the gateway's writes to it block.
	hotPad      = 56 << 10
	hotCommits  = 100
	hugeCommits = 10
	hugePad     = 70 << 10
)

var smallRepos = []string{"load.a", "load.b", "load.c"}

// Many SSE subscribers while writers write: steady ones, flaky ones that
// cut their connection mid-event and resume with Last-Event-ID, reconnect
// storms in which every flaky one reconnects at once, and stalled ones
// with tiny receive buffers that never read. The gateway drops the stalled
// ones without holding anyone up, its heap stays within what its buffers
// allow, every acknowledged commit is in the log, every steady and flaky
// subscriber sees every commit exactly once (replays included), and
// nothing is left behind when they all go.
func TestLoad_SubscriberFaults(t *testing.T) {
	n := startNode(t, goattest.Config{SubscriberBuffer: loadBuffer, WriteTimeout: loadWriteTimeout, MaxStreamsPerCaller: 100000})
	alice := goattest.NewAuthor(t, n, "alice")
	for _, r := range append([]string{hotRepo}, smallRepos...) {
		n.must(t, "PUT", "/v1/repos/"+r, alice.Token, nil, 201)
	}
	started := time.Now()
	phase := func(what string) { t.Logf("%6.2fs %s", time.Since(started).Seconds(), what) }
	baseGoroutines := runtime.NumGoroutine()
	baseHeap := heapAfterGC()

	// Heap sampling for the whole run.
	var peak atomic.Uint64
	sampleCtx, stopSampling := context.WithCancel(context.Background())
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-sampleCtx.Done():
				return
			case <-tick.C:
			}
		}
	}()

	rng := rand.New(rand.NewPCG(7, 7))
	nStalled := *loadSubs / 5
	nFlaky := *loadSubs * 3 / 10
	nSteady := *loadSubs - nStalled - nFlaky
	var readers []*sseReader
	for i := range nSteady + nFlaky {
		repos := []string{smallRepos[rng.IntN(len(smallRepos))]}
		if rng.IntN(2) == 0 {
			repos = append(repos, smallRepos[rng.IntN(len(smallRepos))])
		}
		if i%40 == 0 {
			repos = append(repos, hotRepo)
		}
		readers = append(readers, newSSEReader(n, alice.Token, dedupe(repos), i >= nSteady, uint64(i)))
	}
	var stalled []*stalledConn
	for range nStalled {
		stalled = append(stalled, dialStalled(t, n, alice.Token, []string{hotRepo, smallRepos[0]}))
	}
	var wg sync.WaitGroup
	for _, r := range readers {
		wg.Add(1)
		go func() { defer wg.Done(); r.run() }()
	}
	goattest.WaitFor(t, "every reader to be live", func() bool {
		for _, r := range readers {
			if !r.isReady() {
				return false
			}
		}
		return true
	})

	phase("readers live")
	// Writers, with reconnect storms while they write.
	acked := newAckSet()
	writersDone := make(chan struct{})
	var writeErr atomic.Value
	go func() {
		defer close(writersDone)
		if err := pushLoad(n, alice, *loadCommits, acked); err != nil {
			writeErr.Store(err)
		}
	}()
	storms := 0
	for storms < *loadStorms {
		total := acked.count()
		if total >= (storms+1)*(*loadCommits+hotCommits+hugeCommits)/(*loadStorms+1) {
			for _, r := range readers {
				if r.flaky {
					r.disconnect()
				}
			}
			storms++
			continue
		}
		select {
		case <-writersDone:
			storms = *loadStorms
		case <-time.After(5 * time.Millisecond):
		}
	}
	<-writersDone
	if err, _ := writeErr.Load().(error); err != nil {
		t.Fatal(err)
	}

	phase("writes done")
	// Every acknowledged commit is in the log.
	for repo, ids := range acked.byRepo() {
		log, err := readLogInProcess(n, alice.Token, repo)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			if _, ok := log[id]; !ok {
				t.Fatalf("acknowledged commit %s not in the log of %s", id, repo)
			}
		}
	}

	phase("log checked")
	// The stalled subscribers were cut off: only the readers remain.
	goattest.WaitFor(t, "the stalled subscribers to be dropped", func() bool {
		return subscriberGauge(t, n) <= len(readers)
	})

	phase("stalled dropped")
	// Every reader sees every commit of its repositories exactly once.
	want := acked.byRepo()
	for _, r := range readers {
		if !goattest.Eventually(120*time.Second, func() bool { return r.hasAll(want) }) {
			t.Fatalf("reader %d (repos %v, flaky %v) has not seen every commit: %s", r.seed, r.repos, r.flaky, r.status(want))
		}
	}
	for _, r := range readers {
		r.stop()
	}
	wg.Wait()
	for _, s := range stalled {
		s.close()
	}
	stopSampling()
	<-sampled

	phase("readers complete")
	reconnects, cuts, drops := 0, 0, 0
	for _, r := range readers {
		if err := r.check(want); err != nil {
			t.Fatalf("reader %d (repos %v, flaky %v): %v", r.seed, r.repos, r.flaky, err)
		}
		reconnects += r.reconnects
		cuts += r.cuts
		drops += r.drops
	}

	// Nothing left behind: streams, goroutines and memory go back.
	goattest.WaitFor(t, "every stream to end", func() bool { return subscriberGauge(t, n) == 0 })
	n.client.CloseIdleConnections()
	goattest.WaitFor(t, "the goroutines to end", func() bool { return runtime.NumGoroutine() <= baseGoroutines+5 })
	endHeap := heapAfterGC()

	phase("cleaned up")
	// What the gateway may hold for its subscribers: each one's event
	// buffer and stream writer. Everything else (the test's own readers,
	// the commits) is covered by the fixed allowance.
	bound := baseHeap + uint64(*loadSubs)*(loadBuffer*(hotPad+4096)+64<<10) + 128<<20
	if p := peak.Load(); p > bound {
		t.Fatalf("peak heap %d MB, bound %d MB (base %d MB)", p>>20, bound>>20, baseHeap>>20)
	}
	if endHeap > baseHeap+32<<20 {
		t.Fatalf("heap after the run %d MB, base %d MB: something is held", endHeap>>20, baseHeap>>20)
	}
	total := 0
	for _, ids := range want {
		total += len(ids)
	}
	t.Logf("load: %d subscribers (%d steady, %d flaky, %d stalled), %d acknowledged commits, %d storms, %d reconnects (%d cut mid-stream, %d dropped by the gateway); heap base %d MB, peak %d MB (bound %d MB), after %d MB",
		*loadSubs, nSteady, nFlaky, nStalled, total, *loadStorms, reconnects, cuts, drops, baseHeap>>20, peak.Load()>>20, bound>>20, endHeap>>20)
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

var gaugeRE = regexp.MustCompile(`(?m)^goat_sse_subscribers (\d+)`)

func subscriberGauge(tb testing.TB, n *node) int {
	tb.Helper()
	_, b := n.do(tb, "GET", "/metrics", "", nil)
	m := gaugeRE.FindSubmatch(b)
	if m == nil {
		tb.Fatalf("no goat_sse_subscribers in /metrics")
	}
	v, _ := strconv.Atoi(string(m[1]))
	return v
}

// ackSet records acknowledged commit ids by repository.
type ackSet struct {
	mu  sync.Mutex
	ids map[string][]string
	n   int
}

func newAckSet() *ackSet { return &ackSet{ids: map[string][]string{}} }

func (a *ackSet) add(repo, id string) {
	a.mu.Lock()
	a.ids[repo] = append(a.ids[repo], id)
	a.n++
	a.mu.Unlock()
}

func (a *ackSet) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n
}

func (a *ackSet) byRepo() map[string][]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string][]string{}
	for k, v := range a.ids {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// pushLoad pushes small commits to the small repositories and the large
// ones to the hot one, from four writers.
func pushLoad(n *node, c *goattest.Author, small int, acked *ackSet) error {
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 99))
			heads := map[string]core.CommitID{}
			for i := w; i < small+hotCommits+hugeCommits; i += 4 {
				repo, pad := smallRepos[rng.IntN(len(smallRepos))], 100
				switch {
				case i >= small+hotCommits:
					repo, pad = hotRepo, hugePad
				case i >= small:
					repo, pad = hotRepo, hotPad
				}
				key := fmt.Sprintf("w%d-%d", w, rng.IntN(5))
				cm := &core.Commit{Repo: repo, Key: key, Author: c.ID, TS: time.Now().UnixMilli(), Schema: core.AnySchema,
					Data: map[string]any{"i": float64(i), "pad": strings.Repeat("p", pad)}}
				if p, ok := heads[repo+"/"+key]; ok {
					cm.Parents = []core.CommitID{p}
				}
				if err := cm.Sign(c.Key); err != nil {
					errc <- err
					return
				}
				st, body, err := doRaw(n, "POST", "/v1/repos/"+repo+"/commits", c.Token, goattest.PushBody(cm))
				if err != nil || st != 200 {
					errc <- fmt.Errorf("push: %d %s %v", st, body, err)
					return
				}
				var pr struct{ Results []struct{ ID, Status string } }
				if err := json.Unmarshal(body, &pr); err != nil || len(pr.Results) != 1 || pr.Results[0].Status != "accepted" {
					errc <- fmt.Errorf("push result %s: %v", body, err)
					return
				}
				heads[repo+"/"+key] = cm.ID
				acked.add(repo, cm.ID.String())
			}
		}()
	}
	wg.Wait()
	close(errc)
	return <-errc
}

// doRaw is node.do without a testing.TB, for goroutines.
func doRaw(n *node, method, path, token string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(method, n.url+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := n.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func readLogInProcess(n *node, token, repo string) (map[string][]byte, error) {
	out := map[string][]byte{}
	path := "/v1/repos/" + repo + "/log?limit=1000"
	for {
		st, body, err := doRaw(n, "GET", path, token, nil)
		if err != nil || st != 200 {
			return nil, fmt.Errorf("log of %s: %d %s %v", repo, st, body, err)
		}
		var page struct {
			Commits []struct {
				ID string `json:"id"`
			} `json:"commits"`
			Next string `json:"next"`
			Tail bool   `json:"tail"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return nil, err
		}
		for _, c := range page.Commits {
			out[c.ID] = nil
		}
		if page.Tail {
			return out, nil
		}
		path = "/v1/repos/" + repo + "/log?limit=1000&after=" + url.QueryEscape(page.Next)
	}
}

// sseReader follows a set of repositories for the whole test, reconnecting
// with Last-Event-ID whenever its stream ends. A flaky one also cuts its
// own connection after a random number of bytes, mid-event as often as
// not.
type sseReader struct {
	n      *node
	token  string
	repos  []string
	flaky  bool
	seed   uint64
	rng    *rand.Rand
	ctx    context.Context
	cancel context.CancelFunc

	mu         sync.Mutex
	seen       map[string]int // commit id -> times seen
	lastID     string
	ready      bool
	resets     []string
	errs       []string
	connCancel context.CancelFunc
	reconnects int
	cuts       int
	drops      int
}

func newSSEReader(n *node, token string, repos []string, flaky bool, seed uint64) *sseReader {
	ctx, cancel := context.WithCancel(context.Background())
	return &sseReader{n: n, token: token, repos: repos, flaky: flaky, seed: seed, rng: rand.New(rand.NewPCG(seed, 1)),
		ctx: ctx, cancel: cancel, seen: map[string]int{}}
}

func (r *sseReader) isReady() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ready
}

func (r *sseReader) stop() { r.cancel() }

// disconnect cuts the current connection (a reconnect storm).
func (r *sseReader) disconnect() {
	r.mu.Lock()
	cancel := r.connCancel
	r.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

func (r *sseReader) run() {
	for r.ctx.Err() == nil {
		err := r.stream()
		if r.ctx.Err() != nil {
			return
		}
		r.mu.Lock()
		r.reconnects++
		switch {
		case errors.Is(err, errCut):
			r.cuts++
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			r.drops++
		}
		r.mu.Unlock()
	}
}

var errCut = errors.New("cut by the reader")

// stream reads one connection until it ends.
func (r *sseReader) stream() error {
	ctx, cancel := context.WithCancel(r.ctx)
	defer cancel()
	r.mu.Lock()
	r.connCancel = cancel
	last := r.lastID
	r.mu.Unlock()
	q := url.Values{"repo": r.repos}
	req, _ := http.NewRequestWithContext(ctx, "GET", r.n.url+"/v1/events?"+q.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+r.token)
	if last != "" {
		req.Header.Set("Last-Event-ID", last)
	}
	resp, err := r.n.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		r.fail(fmt.Sprintf("events: %d %s", resp.StatusCode, b))
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	var body io.Reader = resp.Body
	cut := false
	if r.flaky {
		// Up to three hot events' worth, so that a cut lands anywhere,
		// in the middle of an event as often as between two.
		body = io.LimitReader(resp.Body, 200+r.rng.Int64N(3*hotPad))
		cut = true
	}
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var id, name, data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if name != "" {
				r.event(id, name, data)
			}
			id, name, data = "", "", ""
		case strings.HasPrefix(line, "id: "):
			id = line[4:]
		case strings.HasPrefix(line, "event: "):
			name = line[7:]
		case strings.HasPrefix(line, "data: "):
			data = line[6:]
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if cut {
		return errCut
	}
	return io.EOF
}

// event takes one complete event: only complete events move the resume
// point, so a cut in the middle of one replays it.
func (r *sseReader) event(id, name, data string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch name {
	case "commit":
		var d struct {
			Repo   string
			Commit struct{ ID string }
		}
		if err := json.Unmarshal([]byte(data), &d); err != nil {
			r.errs = append(r.errs, fmt.Sprintf("commit event %q: %v", data, err))
			return
		}
		r.seen[d.Commit.ID]++
	case "commits":
		var d struct {
			Repo string
			IDs  []string
		}
		json.Unmarshal([]byte(data), &d)
		for _, id := range d.IDs {
			r.seen[id]++
		}
	case "ready":
		r.ready = true
	case "reset":
		r.resets = append(r.resets, data)
	}
	if id != "" {
		r.lastID = id
	}
}

func (r *sseReader) fail(msg string) {
	r.mu.Lock()
	r.errs = append(r.errs, msg)
	r.mu.Unlock()
}

func (r *sseReader) hasAll(want map[string][]string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, repo := range r.repos {
		for _, id := range want[repo] {
			if r.seen[id] == 0 {
				return false
			}
		}
	}
	return true
}

func (r *sseReader) status(want map[string][]string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	missing := 0
	for _, repo := range r.repos {
		for _, id := range want[repo] {
			if r.seen[id] == 0 {
				missing++
			}
		}
	}
	return fmt.Sprintf("%d missing, %d seen, last id %s, %d reconnects (%d cuts, %d drops), resets %v, errors %v",
		missing, len(r.seen), r.lastID, r.reconnects, r.cuts, r.drops, r.resets, r.errs)
}

// check: every commit of the reader's repositories exactly once, nothing
// else, no reset, no error.
func (r *sseReader) check(want map[string][]string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errs) > 0 {
		return errors.New(r.errs[0])
	}
	if len(r.resets) > 0 {
		return fmt.Errorf("reset: %s", r.resets[0])
	}
	expected := map[string]bool{}
	for _, repo := range r.repos {
		for _, id := range want[repo] {
			expected[id] = true
		}
	}
	for id, times := range r.seen {
		if !expected[id] {
			return fmt.Errorf("commit %s of a repository it does not follow", id)
		}
		if times != 1 {
			return fmt.Errorf("commit %s seen %d times", id, times)
		}
	}
	if len(r.seen) != len(expected) {
		return fmt.Errorf("saw %d commits, want %d", len(r.seen), len(expected))
	}
	return nil
}

// stalledConn is a subscriber that never reads, on a socket with a tiny
// receive buffer: the gateway's writes to it block.
type stalledConn struct {
	conn net.Conn
}

func dialStalled(tb testing.TB, n *node, token string, repos []string) *stalledConn {
	tb.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1024)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", strings.TrimPrefix(n.url, "http://"))
	if err != nil {
		tb.Fatal(err)
	}
	q := url.Values{"repo": repos}
	fmt.Fprintf(conn, "GET /v1/events?%s HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer %s\r\n\r\n", q.Encode(), token)
	// Read the status line only, then never read again.
	line, err := bufio.NewReaderSize(conn, 16).ReadString('\n')
	if err != nil || !strings.Contains(line, " 200 ") {
		tb.Fatalf("stalled subscriber: %q %v", line, err)
	}
	return &stalledConn{conn: conn}
}

func (s *stalledConn) close() { s.conn.Close() }
