package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/api"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
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

func (g *gateway) subscribe(tb testing.TB, token, query string, headers ...string) *sseConn {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", g.base+"/v1/events?"+query, nil)
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
		if h == "X-Accel-Buffering" && g.proxied {
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
	timer := time.NewTimer(goattest.Patience)
	defer timer.Stop()
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
	case <-timer.C:
		tb.Fatalf("no event within %v", goattest.Patience)
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

// setupRepo registers alice and creates her repositories r and other.
func setupRepo(t *testing.T, g *gateway) *goattest.Author {
	t.Helper()
	alice := g.newAuthor(t, "alice")
	wantStatus(t, g.call(t, "PUT", "/v1/repos/r", alice.Token, nil), 201)
	wantStatus(t, g.call(t, "PUT", "/v1/repos/other", alice.Token, nil), 201)
	return alice
}

func TestEvents_LiveAndReplay(t *testing.T) {
	g := startGateway(t, goattest.Config{})
	alice := setupRepo(t, g)
	bob := g.newAuthor(t, "bob")
	sub := g.subscribe(t, bob.Token, "repo=r&repo=other")
	sub.waitReady(t)

	c1 := alice.CommitAt(1, "r", "a", map[string]any{"v": 1.0})
	alice.Push(t, c1)
	ev, id := sub.nextCommit(t)
	if id != c1.ID.String() {
		t.Fatalf("got commit %s, want %s", id, c1.ID)
	}
	sub.close()

	// Written while bob is away: three in r, one in other, interleaved.
	var missed []*core.Commit
	for i := 0; i < 3; i++ {
		c := alice.CommitAt(int64(10+i), "r", fmt.Sprintf("gap%d", i), map[string]any{})
		o := alice.CommitAt(int64(10+i), "other", fmt.Sprintf("gap%d", i), map[string]any{})
		alice.Push(t, c)
		missed = append(missed, c)
		if i == 1 {
			alice.Push(t, o)
			missed = append(missed, o)
		}
	}
	re := g.subscribe(t, bob.Token, "repo=r&repo=other", "Last-Event-ID", ev.ID)
	for _, want := range missed {
		if _, id := re.nextCommit(t); id != want.ID.String() {
			t.Fatalf("replay: got %s, want %s", id, want.ID)
		}
	}
	ready := re.next(t)
	if ready.Name != "ready" {
		t.Fatalf("after the replay: %s event, want ready (a duplicate or extra commit?)", ready.Name)
	}
	live := alice.CommitAt(100, "r", "after", map[string]any{})
	alice.Push(t, live)
	if _, id := re.nextCommit(t); id != live.ID.String() {
		t.Fatalf("live after replay: %s", id)
	}

	t.Run("QueryLastEventID", func(t *testing.T) {
		q := g.subscribe(t, bob.Token, "repo=r&lastEventId="+ev.ID)
		if _, id := q.nextCommit(t); id != missed[0].ID.String() {
			t.Fatalf("lastEventId replay starts at %s", id)
		}
	})
	t.Run("UnknownEventLogResets", func(t *testing.T) {
		u := g.subscribe(t, bob.Token, "repo=r&repo=other", "Last-Event-ID", "0123456789abcdef0123456789abcdef.5")
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
		r := g.call(t, "GET", "/v1/events?repo=r", bob.Token, nil, "Last-Event-ID", "garbage")
		wantStatus(t, r, 400)
	})
	t.Run("UnreadableRepository", func(t *testing.T) {
		wantStatus(t, g.call(t, "GET", "/v1/events?repo=nope", bob.Token, nil), 404)
	})
	t.Run("AccessTokenInQuery", func(t *testing.T) {
		q := g.subscribe(t, "", "repo=r&access_token="+bob.Token)
		q.waitReady(t)
		r := g.call(t, "GET", "/v1/repos/r?access_token="+bob.Token, "", nil)
		wantStatus(t, r, 400)
	})
	t.Run("SameTokenInHeaderAndQuery", func(t *testing.T) {
		// What a generated client applying both security schemes sends.
		q := g.subscribe(t, bob.Token, "repo=r&access_token="+bob.Token)
		q.waitReady(t)
	})
	t.Run("DifferentTokensInHeaderAndQuery", func(t *testing.T) {
		other := g.Token("bob", "editor")
		r := g.call(t, "GET", "/v1/events?repo=r&access_token="+other, bob.Token, nil)
		wantStatus(t, r, 400)
		if !strings.Contains(string(r.body), "different tokens") {
			t.Fatalf("detail: %s", r.body)
		}
	})
}

func TestEvents_HeartbeatAndShutdown(t *testing.T) {
	g := startGateway(t, goattest.Config{})
	alice := setupRepo(t, g)
	// The stream is read from a second HTTP face of the gateway's node,
	// stopped by its context alone: the gateway's Stop also cuts every
	// connection, as a killed process would, and that would end the
	// stream whatever Serve's shutdown did.
	srv, err := api.New(g.Node(), api.Config{TrustDevIssuer: true, Heartbeat: 20 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	face := &gateway{Gateway: g.Gateway, base: "http://" + ln.Addr().String()}
	sub := face.subscribe(t, alice.Token, "repo=r")
	sub.waitReady(t)
	goattest.Recv(t, sub.pings, "a heartbeat")
	cancel()
	goattest.Recv(t, sub.closed, "shutdown to end the stream")
	if err := goattest.Recv(t, served, "Serve to return after its shutdown"); err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// Stalled subscribers are dropped and never hold back a healthy one.
func TestEvents_StalledSubscribersDoNotDelayOthers(t *testing.T) {
	// A buffer the healthy reader keeps up with even on a loaded machine;
	// the stalled ones still go: their writes hit the 1 s deadline.
	g := startGateway(t, goattest.Config{SubscriberBuffer: 256, WriteTimeout: time.Second})
	alice := setupRepo(t, g)
	// Stalled clients: tiny receive buffers, and they never read.
	stalledClient := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{
		Control: func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		},
	}).DialContext}}
	for i := 0; i < 10; i++ {
		req, _ := http.NewRequest("GET", g.URL()+"/v1/events?repo=r", nil)
		req.Header.Set("Authorization", "Bearer "+alice.Token)
		resp, err := stalledClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close() // never read
	}
	healthy := g.subscribe(t, alice.Token, "repo=r")
	healthy.waitReady(t)
	big := strings.Repeat("x", 60<<10)
	const total = 200
	for i := 0; i < total; i++ {
		alice.Push(t, alice.CommitAt(int64(i), "r", fmt.Sprintf("k%d", i), map[string]any{"pad": big}))
	}
	for i := 0; i < total; i++ {
		healthy.nextCommit(t)
	}
	goattest.WaitFor(t, "stalled subscribers to be dropped", func() bool { return g.Node().Subscribers() == 1 })
}

func TestEvents_LargeCommitsAnnouncedByID(t *testing.T) {
	g := startGateway(t, goattest.Config{InlineLimit: 1024})
	alice := setupRepo(t, g)
	sub := g.subscribe(t, alice.Token, "repo=r")
	sub.waitReady(t)
	small := alice.CommitAt(1, "r", "small", map[string]any{"v": "x"})
	large := alice.CommitAt(2, "r", "large", map[string]any{"v": strings.Repeat("x", 2048)})
	alice.Push(t, small, large)
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
	wantStatus(t, g.call(t, "GET", "/v1/repos/r/commits/"+d.IDs[0], alice.Token, nil), 200)
}

func TestEvents_StreamsPerCallerAreLimited(t *testing.T) {
	g := startGateway(t, goattest.Config{MaxStreamsPerCaller: 2})
	alice := setupRepo(t, g)
	a := g.subscribe(t, alice.Token, "repo=r")
	b := g.subscribe(t, alice.Token, "repo=r")
	a.waitReady(t)
	b.waitReady(t)
	wantStatus(t, g.call(t, "GET", "/v1/events?repo=r", alice.Token, nil), 429)
	a.close()
	goattest.WaitFor(t, "a stream slot to free", func() bool { return g.Node().Subscribers() == 1 })
	g.subscribe(t, alice.Token, "repo=r").waitReady(t)
}
