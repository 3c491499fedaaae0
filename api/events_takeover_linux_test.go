//go:build linux

package api_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/api"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
	"github.com/goat-gateway/goat-gateway/internal/uring"
	"github.com/goat-gateway/goat-gateway/node"
)

// rawStream is an event stream read without a goroutine of its own: the
// test reads it when it wants to, through net/http's chunked reader.
type rawStream struct {
	conn net.Conn
	body *bufio.Reader
}

// openRawStream opens a stream; rcvbuf, if not 0, is the client's socket
// receive buffer.
func openRawStream(tb testing.TB, g *gateway, token, query string, rcvbuf int) *rawStream {
	tb.Helper()
	d := net.Dialer{}
	if rcvbuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf) })
		}
	}
	conn, err := d.Dial("tcp", g.Addr())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, "GET /v1/events?"+query+" HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer "+token+"\r\n\r\n"); err != nil {
		tb.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(goattest.Patience))
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 512), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET /v1/events: %v %v", resp, err)
	}
	if te := resp.TransferEncoding; len(te) != 1 || te[0] != "chunked" {
		tb.Fatalf("Transfer-Encoding %v, want chunked", te)
	}
	return &rawStream{conn: conn, body: bufio.NewReaderSize(resp.Body, 512)}
}

// openReadyStreams opens n event streams of repository r with token, each
// past its ready event.
func openReadyStreams(tb testing.TB, g *gateway, token string, n int) []*rawStream {
	tb.Helper()
	streams := make([]*rawStream, n)
	for i := range streams {
		streams[i] = openRawStream(tb, g, token, "repo=r", 0)
		streams[i].next(tb, "ready")
	}
	return streams
}

// next reads up to the next event named name, returning its id; comments
// (heartbeats) and other events are skipped.
func (s *rawStream) next(tb testing.TB, name string) string {
	tb.Helper()
	id, err := s.nextOrEnd(tb, name)
	if err != nil {
		tb.Fatalf("reading the stream for %q: %v", name, err)
	}
	return id
}

// Idle streams hold no goroutine: once ready, a stream leaves net/http for
// the fan-out writers (one per core, running only while they have work),
// so 1,000 streams add a handful of goroutines where each used to hold
// two. Every one of them still gets the next commit.
func TestEvents_IdleStreamsHoldNoGoroutines(t *testing.T) {
	const streams = 1000
	g := startGateway(t, goattest.Config{MaxStreamsPerCaller: streams + 10})
	alice := setupRepo(t, g)
	// A first stream starts the epoll watcher, which runs while there are
	// streams: it is not what is counted.
	openRawStream(t, g, alice.Token, "repo=r", 0).next(t, "ready")
	before := runtime.NumGoroutine()
	subs := make([]*rawStream, streams)
	for i := range subs {
		subs[i] = openRawStream(t, g, alice.Token, "repo=r", 0)
		subs[i].next(t, "ready")
	}
	goattest.WaitFor(t, "1,000 idle streams to hold fewer than 100 goroutines", func() bool {
		return runtime.NumGoroutine()-before < 100
	})
	c := alice.CommitAt(1, "r", "k", map[string]any{"v": "x"})
	alice.Push(t, c)
	for i, s := range subs {
		if id := s.next(t, "commit"); id == "" {
			t.Fatalf("stream %d: commit event without an id", i)
		}
	}
	// A small event into an empty socket is written by the writer's own
	// non-blocking write, never by a goroutine of the stream's.
	if got := metricValue(t, g.URL(), "goat_sse_slow_writes_total"); got != 0 {
		t.Fatalf("goat_sse_slow_writes_total=%v after one small commit to idle streams, want 0", got)
	}
	// Clients that hang up are seen (no write needed), and nothing stays.
	for _, s := range subs {
		s.conn.Close()
	}
	goattest.WaitFor(t, "the hung-up streams to end", func() bool { return g.Node().Subscribers() == 1 })
	goattest.WaitFor(t, "the goroutines to go back", func() bool { return runtime.NumGoroutine() <= before+5 })
}

// A stream taken over by the fan-out writers delivers every event once, in
// order, with increasing ids, heartbeats in between, and a subscriber that
// does not read holds none of it back.
func TestEvents_TakenOverStreamsKeepOrder(t *testing.T) {
	// A write deadline past the test's patience: a writer that waited on
	// a stalled socket would hold the healthy stream past it.
	g := startGateway(t, goattest.Config{Heartbeat: 50 * time.Millisecond, WriteTimeout: 2 * goattest.Patience})
	alice := setupRepo(t, g)
	sub := g.subscribe(t, alice.Token, "repo=r")
	sub.waitReady(t)
	// Never read: their sockets fill, and their writes go to goroutines
	// of their own while the others go on. One more than there are
	// writers, so one shares the healthy stream's writer.
	stalled := runtime.GOMAXPROCS(0) + 1
	for range stalled {
		openRawStream(t, g, alice.Token, "repo=r", 4096).next(t, "ready")
	}
	goattest.Recv(t, sub.pings, "a heartbeat from the fan-out writers")

	// A commit of 20 KiB is more than a writer gives a stream per turn
	// (16 KiB): a push of several goes out over several turns.
	big := strings.Repeat("x", 20<<10)
	var want []string
	for i := 0; i < 30; i++ {
		// Pushes of 1 to 5 commits: one publish may queue many events.
		var batch []*core.Commit
		for j := 0; j < i%5+1; j++ {
			c := alice.CommitAt(int64(i*10+j), "r", fmt.Sprintf("k%d-%d", i, j), map[string]any{"pad": big})
			batch = append(batch, c)
			want = append(want, c.ID.String())
		}
		alice.Push(t, batch...)
	}
	last := ""
	for i, id := range want {
		ev, got := sub.nextCommit(t)
		if got != id {
			t.Fatalf("commit %d: got %s, want %s", i, got, id)
		}
		if last != "" && seqOf(t, ev.ID) <= seqOf(t, last) {
			t.Fatalf("event id %s after %s", ev.ID, last)
		}
		last = ev.ID
	}
	goattest.Recv(t, sub.pings, "a heartbeat after the events")
	if n := g.Node().Subscribers(); n != stalled+1 {
		t.Fatalf("%d subscribers, want %d (the stalled ones wait on their write deadline)", n, stalled+1)
	}

	// Reconnecting with the last id replays nothing and goes live.
	again := g.subscribe(t, alice.Token, "repo=r", "Last-Event-ID", last)
	again.waitReady(t)
	c := alice.CommitAt(1000, "r", "after", map[string]any{"v": "y"})
	alice.Push(t, c)
	if _, id := again.nextCommit(t); id != c.ID.String() {
		t.Fatalf("after reconnecting: %s, want %s", id, c.ID)
	}
}

// seqOf is the sequence number of an event id.
func seqOf(tb testing.TB, id string) uint64 {
	tb.Helper()
	_, seq, err := node.ParseEventID(id)
	if err != nil {
		tb.Fatal(err)
	}
	return seq
}

// A taken-over stream that ends cleanly (here: its token expired) ends its
// connection too, and says so: a client that pools connections must not
// send its next request on it, where nobody reads any more.
func TestEvents_EndedStreamIsNotReused(t *testing.T) {
	g := startGateway(t, goattest.Config{})
	setupRepo(t, g)
	tok, err := g.Mint("alice", nil, 2*time.Second, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr}
	req, _ := http.NewRequest("GET", g.URL()+"/v1/events?repo=r", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Close {
		t.Fatal("the stream's response does not say Connection: close")
	}
	body, err := io.ReadAll(resp.Body) // to the stream's end, after `expired`
	resp.Body.Close()
	if err != nil || !strings.Contains(string(body), "event: expired\n") {
		t.Fatalf("stream: %v\n%s", err, body)
	}
	req, _ = http.NewRequest("GET", g.URL()+"/v1/repos/r", nil)
	req.Header.Set("Authorization", "Bearer "+g.Token("alice"))
	resp, err = cl.Do(req)
	if err != nil {
		t.Fatalf("the request after the stream: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the request after the stream: status %d", resp.StatusCode)
	}
}

// metricValue returns the value of an unlabelled series of base's
// /metrics.
func metricValue(tb testing.TB, base, name string) float64 {
	tb.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				tb.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	tb.Fatalf("no %s in /metrics", name)
	return 0
}

// The fan-out writers send on an io_uring where the kernel offers one, and
// with one write(2) per stream where it does not: the same tests hold for
// both.
func TestEvents_FanOutWithoutRing(t *testing.T) {
	restore := api.SetFanOutRing(false)
	defer restore()
	for _, c := range []struct {
		name string
		test func(*testing.T)
	}{
		{"LiveAndReplay", TestEvents_LiveAndReplay},
		{"HeartbeatAndShutdown", TestEvents_HeartbeatAndShutdown},
		{"StalledSubscribersDoNotDelayOthers", TestEvents_StalledSubscribersDoNotDelayOthers},
		{"TakenOverStreamsKeepOrder", TestEvents_TakenOverStreamsKeepOrder},
		{"EndedStreamIsNotReused", TestEvents_EndedStreamIsNotReused},
		{"IdleStreamsHoldNoGoroutines", TestEvents_IdleStreamsHoldNoGoroutines},
	} {
		t.Run(c.name, c.test)
	}
}

// Where the kernel offers io_uring, every fan-out writer sends on one, and
// delivering events leaves them all working.
func TestEvents_FanOutUsesTheRing(t *testing.T) {
	goattest.NeedIOURing(t)
	g := startGateway(t, goattest.Config{})
	alice := setupRepo(t, g)
	streams := openReadyStreams(t, g, alice.Token, 2*runtime.GOMAXPROCS(0))
	c := alice.CommitAt(1, "r", "k", map[string]any{"v": "x"})
	alice.Push(t, c)
	for i, s := range streams {
		if id := s.next(t, "commit"); seqOf(t, id) == 0 {
			t.Fatalf("stream %d: event id %s", i, id)
		}
	}
	if got, want := api.FanOutRings(), runtime.GOMAXPROCS(0); got != want {
		t.Fatalf("%d fan-out writers send on io_uring, want %d", got, want)
	}
	// The writers count a batch's sends once it is written.
	goattest.WaitFor(t, "the sends on io_uring to be counted", func() bool {
		return metricValue(t, g.URL(), `goat_sse_sends_total{via="io_uring"}`) >= float64(len(streams))
	})
	if got := metricValue(t, g.URL(), `goat_sse_sends_total{via="write"}`); got != 0 {
		t.Fatalf("%v sends with write(2) where io_uring works", got)
	}
}

// A gateway told not to use io_uring (serve --io-uring=false) writes its
// streams with write(2), even in a process where another gateway's
// streams go on the rings.
func TestEvents_NoIOURing(t *testing.T) {
	ringed := startGateway(t, goattest.Config{})
	plain := startGateway(t, goattest.Config{NoIOURing: true})
	var streams []*rawStream
	var authors []*goattest.Author
	for _, g := range []*gateway{ringed, plain} {
		a := setupRepo(t, g)
		authors = append(authors, a)
		streams = append(streams, openReadyStreams(t, g, a.Token, 2*runtime.GOMAXPROCS(0))...)
	}
	for i, a := range authors {
		a.Push(t, a.CommitAt(1, "r", "k", map[string]any{"v": i}))
	}
	for i, s := range streams {
		if id := s.next(t, "commit"); seqOf(t, id) == 0 {
			t.Fatalf("stream %d: event id %s", i, id)
		}
	}
	// The writers count a batch's sends once it is written.
	n := float64(2 * runtime.GOMAXPROCS(0))
	goattest.WaitFor(t, "the sends with write(2) to be counted", func() bool {
		return metricValue(t, plain.URL(), `goat_sse_sends_total{via="write"}`) >= n
	})
	if got := metricValue(t, plain.URL(), `goat_sse_sends_total{via="io_uring"}`); got != 0 {
		t.Errorf("--io-uring=false: %v sends on io_uring", got)
	}
	// Beside it, where the kernel has io_uring (or it is required), the
	// other gateway's streams went on the rings.
	r, err := uring.New(8, 0, 0)
	if err != nil {
		if uring.Required() {
			goattest.NoIOURing(t, err)
		}
		return
	}
	r.Close()
	goattest.WaitFor(t, "the other gateway's sends on io_uring to be counted", func() bool {
		return metricValue(t, ringed.URL(), `goat_sse_sends_total{via="io_uring"}`) >= n
	})
}

// nextOrEnd reads up to the next event named name and returns its id, or
// the error that ended the stream first (never a timeout: that fails tb).
func (s *rawStream) nextOrEnd(tb testing.TB, name string) (id string, err error) {
	tb.Helper()
	_ = s.conn.SetReadDeadline(time.Now().Add(goattest.Patience))
	var ev string
	for {
		line, err := s.body.ReadString('\n')
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				tb.Fatalf("the stream neither ended nor had %q", name)
			}
			return "", err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if ev == name {
				return id, nil
			}
			id, ev = "", ""
		case strings.HasPrefix(line, "id: "):
			id = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev = line[7:]
		}
	}
}

// When the kernel stops serving a writer's ring, the streams whose sends
// it left without a result end (never a send twice, never a gap: their
// clients resume from their last event id), and the writers go on with
// write(2).
func TestEvents_RingFailureEndsItsStreams(t *testing.T) {
	goattest.NeedIOURing(t)
	g := startGateway(t, goattest.Config{})
	alice := setupRepo(t, g)
	streams := openReadyStreams(t, g, alice.Token, 2*runtime.GOMAXPROCS(0))
	alice.Push(t, alice.CommitAt(1, "r", "k1", map[string]any{"v": 1}))
	var last string
	for _, s := range streams {
		last = s.next(t, "commit")
	}

	if err := api.BreakFanOutRings(); err != nil {
		t.Fatal(err)
	}
	defer api.RestoreFanOutRings()
	second := alice.CommitAt(2, "r", "k2", map[string]any{"v": 2})
	alice.Push(t, second)
	// The streams written on the failed ring end; those a writer took up
	// after it (on the same publish, in a later batch) get the commit
	// with write(2).
	ended := 0
	for i, s := range streams {
		id, err := s.nextOrEnd(t, "commit")
		switch {
		case err != nil:
			ended++
		case seqOf(t, id) != seqOf(t, last)+1:
			t.Fatalf("stream %d had %s after %s", i, id, last)
		}
	}
	if ended == 0 {
		t.Fatal("no stream ended when its writer's ring failed")
	}
	if got := api.FanOutRings(); got != 0 {
		t.Fatalf("%d writers still on a ring after it failed", got)
	}

	// Resuming from its last event id, a client gets the commit it
	// missed, then the next one live, now with write(2).
	again := openRawStream(t, g, alice.Token, "repo=r&lastEventId="+last, 0)
	if id := again.next(t, "commit"); seqOf(t, id) != seqOf(t, last)+1 {
		t.Fatalf("resumed after %s with %s; want the commit after it", last, id)
	}
	before := metricValue(t, g.URL(), `goat_sse_sends_total{via="write"}`)
	third := alice.CommitAt(3, "r", "k3", map[string]any{"v": 3})
	alice.Push(t, third)
	again.next(t, "commit")
	goattest.WaitFor(t, "the send with write(2) to be counted", func() bool {
		return metricValue(t, g.URL(), `goat_sse_sends_total{via="write"}`) > before
	})
}
