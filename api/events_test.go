package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
)

type sseEvent struct {
	ID, Name, Data string
}

// sseConn is a test subscriber reading a real stream.
type sseConn struct {
	resp   *http.Response
	events chan sseEvent
	pings  chan struct{}
	closed chan struct{}
	cancel context.CancelFunc
}

func (n *testNode) subscribe(tb testing.TB, token, query string, headers ...string) *sseConn {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", n.url+"/v1/events?"+query, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	if resp.StatusCode != 200 {
		cancel()
		tb.Fatalf("events: status %d", resp.StatusCode)
	}
	for h, want := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"} {
		if h == "X-Accel-Buffering" && n.proxied {
			continue // nginx consumes it
		}
		if got := resp.Header.Get(h); got != want {
			tb.Fatalf("%s: %q, want %q", h, got, want)
		}
	}
	c := &sseConn{resp: resp, events: make(chan sseEvent, 10000), pings: make(chan struct{}, 100), closed: make(chan struct{}), cancel: cancel}
	go c.read()
	tb.Cleanup(c.close)
	return c
}

func (c *sseConn) read() {
	defer close(c.closed)
	sc := bufio.NewScanner(c.resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var ev sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.Name != "" {
				c.events <- ev
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, ":"):
			select {
			case c.pings <- struct{}{}:
			default:
			}
		case strings.HasPrefix(line, "id: "):
			ev.ID = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.Name = line[7:]
		case strings.HasPrefix(line, "data: "):
			ev.Data = line[6:]
		}
	}
}

func (c *sseConn) close() {
	c.cancel()
	c.resp.Body.Close()
	<-c.closed
}

func (c *sseConn) next(tb testing.TB) sseEvent {
	tb.Helper()
	select {
	case ev := <-c.events:
		return ev
	case <-c.closed:
		select {
		case ev := <-c.events:
			return ev
		default:
		}
		tb.Fatal("stream ended")
	case <-time.After(10 * time.Second):
		tb.Fatal("no event within 10 s")
	}
	return sseEvent{}
}

// nextCommit skips to the next commit event and returns its commit id.
func (c *sseConn) nextCommit(tb testing.TB) (sseEvent, string) {
	tb.Helper()
	for {
		ev := c.next(tb)
		if ev.Name != "commit" {
			continue
		}
		var d struct {
			Repo   string
			Commit struct{ ID string }
		}
		if err := json.Unmarshal([]byte(ev.Data), &d); err != nil {
			tb.Fatalf("commit event data %q: %v", ev.Data, err)
		}
		return ev, d.Commit.ID
	}
}

func (c *sseConn) waitReady(tb testing.TB) sseEvent {
	tb.Helper()
	for {
		if ev := c.next(tb); ev.Name == "ready" {
			return ev
		}
	}
}

func setupRepo(t *testing.T, n *testNode) client {
	alice := n.newClient("alice")
	wantStatus(t, n.call("PUT", "/v1/repos/r", alice.token, nil), 201)
	wantStatus(t, n.call("PUT", "/v1/repos/other", alice.token, nil), 201)
	return alice
}

func push(t *testing.T, n *testNode, c client, repo string, cs ...*core.Commit) {
	t.Helper()
	wantStatus(t, n.call("POST", "/v1/repos/"+repo+"/commits", c.token, commitsBody(cs...)), 200)
}

func TestEvents_LiveAndReplay(t *testing.T) {
	n := startNode(t, nil)
	alice := setupRepo(t, n)
	bob := n.newClient("bob")
	sub := n.subscribe(t, bob.token, "repo=r&repo=other")
	sub.waitReady(t)

	c1 := alice.commit(t, "r", "a", 1, map[string]any{"v": 1.0})
	push(t, n, alice, "r", c1)
	ev, id := sub.nextCommit(t)
	if id != c1.ID.String() {
		t.Fatalf("got commit %s, want %s", id, c1.ID)
	}
	sub.close()

	// Written while bob is away: three in r, one in other, interleaved.
	var missed []*core.Commit
	for i := 0; i < 3; i++ {
		c := alice.commit(t, "r", fmt.Sprintf("gap%d", i), int64(10+i), map[string]any{})
		o := alice.commit(t, "other", fmt.Sprintf("gap%d", i), int64(10+i), map[string]any{})
		push(t, n, alice, "r", c)
		missed = append(missed, c)
		if i == 1 {
			push(t, n, alice, "other", o)
			missed = append(missed, o)
		}
	}
	re := n.subscribe(t, bob.token, "repo=r&repo=other", "Last-Event-ID", ev.ID)
	for _, want := range missed {
		if _, id := re.nextCommit(t); id != want.ID.String() {
			t.Fatalf("replay: got %s, want %s", id, want.ID)
		}
	}
	ready := re.next(t)
	if ready.Name != "ready" {
		t.Fatalf("after the replay: %s event, want ready (a duplicate or extra commit?)", ready.Name)
	}
	live := alice.commit(t, "r", "after", 100, map[string]any{})
	push(t, n, alice, "r", live)
	if _, id := re.nextCommit(t); id != live.ID.String() {
		t.Fatalf("live after replay: %s", id)
	}

	t.Run("QueryLastEventID", func(t *testing.T) {
		q := n.subscribe(t, bob.token, "repo=r&lastEventId="+ev.ID)
		if _, id := q.nextCommit(t); id != missed[0].ID.String() {
			t.Fatalf("lastEventId replay starts at %s", id)
		}
	})
	t.Run("UnknownEventLogResets", func(t *testing.T) {
		u := n.subscribe(t, bob.token, "repo=r&repo=other", "Last-Event-ID", "0123456789abcdef0123456789abcdef.5")
		resets := 0
		for {
			ev := u.next(t)
			if ev.Name == "reset" {
				resets++
				continue
			}
			if ev.Name != "ready" {
				t.Fatalf("unexpected %s before ready", ev.Name)
			}
			break
		}
		if resets != 2 {
			t.Fatalf("%d resets, want one per repository", resets)
		}
	})
	t.Run("MalformedEventID", func(t *testing.T) {
		r := n.call("GET", "/v1/events?repo=r", bob.token, nil, "Last-Event-ID", "garbage")
		wantStatus(t, r, 400)
	})
	t.Run("UnreadableRepository", func(t *testing.T) {
		wantStatus(t, n.call("GET", "/v1/events?repo=nope", bob.token, nil), 404)
	})
	t.Run("AccessTokenInQuery", func(t *testing.T) {
		q := n.subscribe(t, "", "repo=r&access_token="+bob.token)
		q.waitReady(t)
		r := n.call("GET", "/v1/repos/r?access_token="+bob.token, "", nil)
		wantStatus(t, r, 400)
	})
}

func TestEvents_HeartbeatAndShutdown(t *testing.T) {
	n := startNode(t, func(c *testConfig) { c.API.Heartbeat = 20 * time.Millisecond })
	alice := setupRepo(t, n)
	sub := n.subscribe(t, alice.token, "repo=r")
	sub.waitReady(t)
	select {
	case <-sub.pings:
	case <-time.After(10 * time.Second):
		t.Fatal("no heartbeat")
	}
	n.stop()
	select {
	case <-sub.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown did not end the stream")
	}
}

// Stalled subscribers are dropped and never hold back a healthy one.
func TestEvents_StalledSubscribersDoNotDelayOthers(t *testing.T) {
	// A buffer the healthy reader keeps up with even on a loaded machine;
	// the stalled ones still go: their writes hit the 1 s deadline.
	n := startNode(t, func(c *testConfig) { c.API.SubscriberBuffer = 256; c.API.WriteTimeout = time.Second })
	alice := setupRepo(t, n)
	// Stalled clients: tiny receive buffers, and they never read.
	stalledClient := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{
		Control: func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		},
	}).DialContext}}
	for i := 0; i < 10; i++ {
		req, _ := http.NewRequest("GET", n.url+"/v1/events?repo=r", nil)
		req.Header.Set("Authorization", "Bearer "+alice.token)
		resp, err := stalledClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close() // never read
	}
	healthy := n.subscribe(t, alice.token, "repo=r")
	healthy.waitReady(t)
	big := strings.Repeat("x", 60<<10)
	const total = 200
	for i := 0; i < total; i++ {
		push(t, n, alice, "r", alice.commit(t, "r", fmt.Sprintf("k%d", i), int64(i), map[string]any{"pad": big}))
	}
	for i := 0; i < total; i++ {
		healthy.nextCommit(t)
	}
	waitFor(t, "stalled subscribers to be dropped", func() bool { return n.node.Subscribers() == 1 })
}

func TestEvents_LargeCommitsAnnouncedByID(t *testing.T) {
	n := startNode(t, func(c *testConfig) { c.InlineLimit = 1024 })
	alice := setupRepo(t, n)
	sub := n.subscribe(t, alice.token, "repo=r")
	sub.waitReady(t)
	small := alice.commit(t, "r", "small", 1, map[string]any{"v": "x"})
	large := alice.commit(t, "r", "large", 2, map[string]any{"v": strings.Repeat("x", 2048)})
	push(t, n, alice, "r", small, large)
	if _, id := sub.nextCommit(t); id != small.ID.String() {
		t.Fatalf("inline commit %s", id)
	}
	ev := sub.next(t)
	var d struct {
		Repo string
		IDs  []string
	}
	if err := json.Unmarshal([]byte(ev.Data), &d); err != nil || ev.Name != "commits" || len(d.IDs) != 1 || d.IDs[0] != large.ID.String() || d.Repo != "r" {
		t.Fatalf("large commit event: %s %s", ev.Name, ev.Data)
	}
	wantStatus(t, n.call("GET", "/v1/repos/r/commits/"+d.IDs[0], alice.token, nil), 200)
}

func TestEvents_StreamsPerCallerAreLimited(t *testing.T) {
	n := startNode(t, func(c *testConfig) { c.MaxStreamsPerCaller = 2 })
	alice := setupRepo(t, n)
	a := n.subscribe(t, alice.token, "repo=r")
	b := n.subscribe(t, alice.token, "repo=r")
	a.waitReady(t)
	b.waitReady(t)
	wantStatus(t, n.call("GET", "/v1/events?repo=r", alice.token, nil), 429)
	a.close()
	waitFor(t, "a stream slot to free", func() bool { return n.node.Subscribers() == 1 })
	n.subscribe(t, alice.token, "repo=r").waitReady(t)
}
