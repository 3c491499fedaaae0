package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/internal/goattest"
	"github.com/goat-gateway/goat-gateway/internal/uring"
)

// sseConn is one response of an sseServer: what the test sends on writes
// is written and flushed as it is (one chunk each); closing writes ends
// the response.
type sseConn struct {
	writes chan string
	gone   chan struct{} // closed when the response is over
}

// sseServer is a real HTTP/1.1 server on loopback whose responses the
// test writes piece by piece.
type sseServer struct {
	addr  string
	conns chan *sseConn
}

func newSSEServer(tb testing.TB) *sseServer {
	tb.Helper()
	s := &sseServer{conns: make(chan *sseConn, 64)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		c := &sseConn{writes: make(chan string), gone: make(chan struct{})}
		defer close(c.gone)
		s.conns <- c
		for {
			select {
			case p, ok := <-c.writes:
				if !ok {
					return
				}
				_, _ = w.Write([]byte(p))
				w.(http.Flusher).Flush()
			case <-r.Context().Done():
				return
			}
		}
	}))
	tb.Cleanup(srv.Close)
	s.addr = srv.Listener.Addr().String()
	return s
}

// open dials a stream and returns it with its server side.
func (s *sseServer) open(tb testing.TB) (*sseStream, *sseConn) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+s.addr+"/events", nil)
	if err != nil {
		tb.Fatal(err)
	}
	st, err := dialSSE(tb.Context(), s.addr, net.IPv4(127, 0, 0, 1), req)
	if err != nil {
		tb.Fatal(err)
	}
	return st, goattest.Recv(tb, s.conns, "the server's side of a stream")
}

type polledEvent struct {
	stream int
	ev     sseEvent
	at     time.Time
	end    error // set: the stream's ended, not an event
}

// pollerImpls are the ssePoller implementations: every test of the
// poller's contract runs against each.
var pollerImpls = []struct {
	name string
	new  func() (ssePoller, error)
}{
	{"epoll", func() (ssePoller, error) { return newSSEPoller(pollerEpoll) }},
	{"uring", func() (ssePoller, error) { return newSSEPoller(pollerUring) }},
	// A submission queue of 2 entries fills at nearly every turn of the
	// ring: receives are submitted in several goes.
	{"uring-sq2", func() (ssePoller, error) {
		pl, err := newUringPoller(2, ringStreams)
		if err != nil {
			return nil, err
		}
		return pl, nil
	}},
}

// forEachPoller runs test against every implementation, as a subtest
// named after it. newPoller starts one that the test's end closes.
func forEachPoller(t *testing.T, test func(t *testing.T, newPoller func(tb testing.TB) ssePoller)) {
	for _, impl := range pollerImpls {
		t.Run(impl.name, func(t *testing.T) {
			test(t, func(tb testing.TB) ssePoller {
				tb.Helper()
				pl, err := impl.new()
				if errors.Is(err, uring.ErrUnavailable) {
					goattest.NoIOURing(tb, err)
				}
				if err != nil {
					tb.Fatal(err)
				}
				tb.Cleanup(pl.close)
				return pl
			})
		})
	}
}

func TestSSEPoller_Add(t *testing.T) { forEachPoller(t, testPollerAdd) }

func testPollerAdd(t *testing.T, newPoller func(testing.TB) ssePoller) {
	srv := newSSEServer(t)
	pl := newPoller(t)
	const streams, rounds = 40, 5
	evs := make(chan polledEvent, streams*(rounds+2))
	ends := make(chan int, streams)
	endErrs := make([]error, streams)
	conns := make([]*sseConn, streams)
	for i := range streams {
		st, c := srv.open(t)
		conns[i] = c
		// The ready event and the one after it arrive in one write: the
		// second is parsed before the stream is handed over, and must
		// not be lost in the handover.
		c.writes <- fmt.Sprintf("retry: 1\n\nevent: ready\ndata: {}\n\nid: %d.q\nevent: commit\ndata: queued\n\n", i)
		ev, err := st.Next()
		if err != nil || ev.Name != "ready" {
			t.Fatalf("stream %d: %+v, %v; want ready", i, ev, err)
		}
		if err := pl.add(st, func(ev sseEvent, at time.Time) {
			ev.Data = append([]byte(nil), ev.Data...)
			evs <- polledEvent{stream: i, ev: ev, at: at}
		}, func(err error) {
			endErrs[i] = err
			ends <- i
		}); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := pl.size(), streams; got != want {
		t.Fatalf("size=%d, want %d", got, want)
	}
	next := make([]int, streams) // per stream, the round of its next event; -1 the queued one
	for i := range next {
		next[i] = -1
	}
	check := func(what string) time.Time {
		t.Helper()
		pe := goattest.Recv(t, evs, what)
		i, k := pe.stream, next[pe.stream]
		want := sseEvent{ID: fmt.Sprintf("%d.%d", i, k), Name: "commit", Data: []byte(fmt.Sprintf("{\"round\":%d}\n2", k))}
		if k < 0 {
			want = sseEvent{ID: fmt.Sprintf("%d.q", i), Name: "commit", Data: []byte("queued")}
		}
		sameEvents(t, []sseEvent{pe.ev}, []sseEvent{want})
		next[i]++
		return pe.at
	}
	for range streams {
		check("the events queued at the handover")
	}
	for k := range rounds {
		sent := time.Now()
		for i, c := range conns {
			// One event in three writes (three chunks), cut inside lines.
			c.writes <- fmt.Sprintf("id: %d.%d\nevent: com", i, k)
			c.writes <- fmt.Sprintf("mit\r\ndata: {\"round\":%d}\ndat", k)
			c.writes <- "a: 2\n: comment\n\n"
		}
		for range streams {
			if at := check("an event split across writes"); at.Before(sent) {
				t.Fatalf("event read at %v, before it was sent at %v", at, sent)
			}
		}
	}
	// A stream that the server ends ends alone.
	close(conns[0].writes)
	if got := goattest.Recv(t, ends, "the end of the stream the server ended"); got != 0 {
		t.Fatalf("stream %d ended, want 0", got)
	}
	if !errors.Is(endErrs[0], errEOF) {
		t.Fatalf("end: %v, want %v", endErrs[0], errEOF)
	}
	for i, c := range conns[1:] {
		c.writes <- fmt.Sprintf("id: %d.%d\nevent: commit\ndata: {\"round\":%d}\ndata: 2\n\n", i+1, rounds, rounds)
	}
	for range streams - 1 {
		check("an event after another stream ended")
	}
	if got, want := pl.size(), streams-1; got != want {
		t.Fatalf("size=%d, want %d", got, want)
	}
	// Closing the poller ends every other stream, and closes its socket.
	pl.close()
	for range streams - 1 {
		i := goattest.Recv(t, ends, "the end of a stream of the closed poller")
		if !errors.Is(endErrs[i], errClosed) {
			t.Fatalf("stream %d: end %v, want %v", i, endErrs[i], errClosed)
		}
	}
	for _, c := range conns[1:] {
		goattest.Recv(t, c.gone, "the server to see a stream of the closed poller hang up")
	}
	select {
	case pe := <-evs:
		t.Fatalf("unexpected event %+v", pe)
	default:
	}
	if got, want := pl.size(), 0; got != want {
		t.Fatalf("size after close=%d, want %d", got, want)
	}
	if err := pl.add(srv.openLive(t), func(sseEvent, time.Time) {}, func(error) {}); !errors.Is(err, errClosed) {
		t.Fatalf("add to a closed poller: %v, want %v", err, errClosed)
	}
}

// openLive opens a stream and returns it once the server has it, without
// its server side (which lives until the test's end).
func (s *sseServer) openLive(tb testing.TB) *sseStream {
	tb.Helper()
	st, _ := s.open(tb)
	return st
}

// Adds come from other goroutines while the poller reads the streams
// added before; streams end (and their slots are taken again) meanwhile.
func TestSSEPoller_AddWhileReading(t *testing.T) { forEachPoller(t, testPollerAddWhileReading) }

func testPollerAddWhileReading(t *testing.T, newPoller func(testing.TB) ssePoller) {
	srv := newSSEServer(t)
	pl := newPoller(t)
	const streams, events, adders = 60, 20, 3
	sts := make([]*sseStream, streams)
	conns := make([]*sseConn, streams)
	for i := range sts {
		sts[i], conns[i] = srv.open(t)
	}
	got := make(chan polledEvent, streams*(events+1))
	added := make(chan int, streams)
	for a := range adders {
		go func() {
			for i := a; i < streams; i += adders {
				err := pl.add(sts[i], func(ev sseEvent, at time.Time) {
					ev.Data = bytes.Clone(ev.Data)
					got <- polledEvent{stream: i, ev: ev, at: at}
				}, func(err error) {
					got <- polledEvent{stream: i, end: err}
				})
				if err != nil {
					t.Errorf("add stream %d: %v", i, err)
				}
				added <- i
			}
		}()
	}
	// Each stream is written to as soon as it is added, then ended by
	// the server, while the others are still being added.
	var writers sync.WaitGroup
	for range streams {
		i := goattest.Recv(t, added, "a stream added")
		writers.Go(func() {
			for k := range events {
				conns[i].writes <- fmt.Sprintf("id: %d.%d\ndata: %s\n\n", i, k, strings.Repeat("x", 100+k))
			}
			close(conns[i].writes)
		})
	}
	next := make([]int, streams)
	for range streams * (events + 1) {
		pe := goattest.Recv(t, got, "the events and ends of the streams")
		i, k := pe.stream, next[pe.stream]
		if pe.end != nil {
			if k != events || !errors.Is(pe.end, errEOF) {
				t.Fatalf("stream %d ended with %v after %d events, want %v after %d", i, pe.end, k, errEOF, events)
			}
			next[i]++
			continue
		}
		want := sseEvent{ID: fmt.Sprintf("%d.%d", i, k), Name: "message", Data: []byte(strings.Repeat("x", 100+k))}
		sameEvents(t, []sseEvent{pe.ev}, []sseEvent{want})
		next[i]++
	}
	writers.Wait()
	if got, want := pl.size(), 0; got != want {
		t.Fatalf("size=%d after every stream ended, want %d", got, want)
	}
}

// A burst larger than any receive buffer: one event longer than it, then
// many events in one write, all in order and whole.
func TestSSEPoller_Burst(t *testing.T) { forEachPoller(t, testPollerBurst) }

func testPollerBurst(t *testing.T, newPoller func(testing.TB) ssePoller) {
	srv := newSSEServer(t)
	pl := newPoller(t)
	const streams, many = 4, 50
	evs := make(chan polledEvent, streams*(many+1))
	conns := make([]*sseConn, streams)
	for i := range conns {
		var st *sseStream
		st, conns[i] = srv.open(t)
		if err := pl.add(st, func(ev sseEvent, at time.Time) {
			ev.Data = bytes.Clone(ev.Data)
			evs <- polledEvent{stream: i, ev: ev, at: at}
		}, func(error) {}); err != nil {
			t.Fatal(err)
		}
	}
	long := strings.Repeat("0123456789", 5*ringBuffer/10)
	var want []sseEvent
	var burst strings.Builder
	for k := range many {
		ev := sseEvent{ID: fmt.Sprint(k), Name: "commit", Data: []byte(fmt.Sprintf("{\"k\":%d,\"pad\":%q}", k, strings.Repeat("p", 550)))}
		want = append(want, ev)
		fmt.Fprintf(&burst, "id: %s\nevent: %s\ndata: %s\n\n", ev.ID, ev.Name, ev.Data)
	}
	for _, c := range conns {
		c.writes <- "id: long\ndata: " + long + "\n\n"
		c.writes <- burst.String()
	}
	got := make([][]sseEvent, streams)
	for range streams * (many + 1) {
		pe := goattest.Recv(t, evs, "the events of a burst")
		got[pe.stream] = append(got[pe.stream], pe.ev)
	}
	for i := range got {
		sameEvents(t, got[i], append([]sseEvent{{ID: "long", Name: "message", Data: []byte(long)}}, want...))
	}
}

// A ring reads as many streams as its completion queue has room for a
// receive each: one more is refused, not left to the kernel to hold.
func TestUringPoller_Full(t *testing.T) {
	srv := newSSEServer(t) // closed after the poller: it waits for the streams to hang up
	pl, err := newUringPoller(2, 3)
	if errors.Is(err, uring.ErrUnavailable) {
		goattest.NoIOURing(t, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pl.close)
	for i := range 3 {
		if err := pl.add(srv.openLive(t), func(sseEvent, time.Time) {}, func(error) {}); err != nil {
			t.Fatalf("add %d of 3: %v", i, err)
		}
	}
	if err := pl.add(srv.openLive(t), func(sseEvent, time.Time) {}, func(error) {}); err == nil {
		t.Fatal("a ring for 3 streams took a fourth")
	}
	if got, want := pl.size(), 3; got != want {
		t.Fatalf("size=%d, want %d", got, want)
	}
}
