package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/internal/goattest"
)

// sseConn is one response of an sseServer: what the test sends on writes
// is written and flushed as it is (one chunk each); closing writes ends
// the response.
type sseConn struct {
	writes chan string
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
		c := &sseConn{writes: make(chan string)}
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
}

func TestSSEPoller_Add(t *testing.T) {
	srv := newSSEServer(t)
	pl, err := newSSEPoller()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pl.close)
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
			evs <- polledEvent{i, ev, at}
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
	// Closing the poller ends every other stream.
	pl.close()
	for range streams - 1 {
		i := goattest.Recv(t, ends, "the end of a stream of the closed poller")
		if !errors.Is(endErrs[i], errClosed) {
			t.Fatalf("stream %d: end %v, want %v", i, endErrs[i], errClosed)
		}
	}
	select {
	case pe := <-evs:
		t.Fatalf("unexpected event %+v", pe)
	default:
	}
}
