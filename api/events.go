package api

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/gen/apiserver"
	"github.com/goat-gateway/goat-gateway/node"
)

// sseRetry is the reconnect delay the stream asks for, in milliseconds.
const sseRetry = 2000

func (h handlers) GetEvents(ctx context.Context, req apiserver.GetEventsRequestObject) (apiserver.GetEventsResponseObject, error) {
	p := principalFrom(ctx)
	repos := slices.Clone(req.Params.Repo)
	slices.Sort(repos)
	repos = slices.Compact(repos)
	last := ""
	if req.Params.LastEventIDQuery != nil {
		last = *req.Params.LastEventIDQuery
	}
	if req.Params.LastEventIDHeader != nil {
		last = *req.Params.LastEventIDHeader
	}
	sub, err := h.s.node.Subscribe(p, repos, h.s.cfg.SubscriberBuffer)
	if err != nil {
		return nil, err
	}
	if last != "" {
		if _, _, err := node.ParseEventID(last); err != nil {
			sub.Close()
			return nil, err
		}
	}
	release, err := h.s.node.AcquireStream(p, remoteFrom(ctx))
	if err != nil {
		sub.Close()
		return nil, err
	}
	return &eventStream{s: h.s, ctx: ctx, repos: repos, last: last, principal: p, sub: sub, release: release}, nil
}

// eventStream is the response of GET /v1/events: it writes the stream when
// visited, until the client goes, the node shuts down, the subscriber is
// dropped for being slow, or the token expires.
type eventStream struct {
	s         *Server
	ctx       context.Context
	repos     []string
	last      string // Last-Event-ID, if any
	principal auth.Principal
	sub       *node.Subscription
	release   func()
}

// connKey holds the request's connection in its context (Serve's
// ConnContext).
type connKey struct{}

// streamSendBuffer is the socket send buffer of an event stream (the
// kernel doubles it for its bookkeeping).
const streamSendBuffer = 256 << 10

func (e *eventStream) VisitGetEventsResponse(w http.ResponseWriter) error {
	s := e.s
	handedOff := false
	defer func() {
		if !handedOff {
			e.sub.Close()
			e.release()
		}
	}()

	// A subscriber that does not read costs what its socket buffers hold:
	// the kernel would grow the send buffer to tcp_wmem's maximum (4 MiB on
	// Linux), memory outside the heap and events encoded for nobody, per
	// stream. A fixed buffer bounds both; it holds a reader back only
	// past about 5 MB/s at a 100 ms round trip.
	if c, ok := e.ctx.Value(connKey{}).(*net.TCPConn); ok {
		_ = c.SetWriteBuffer(streamSendBuffer)
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	if e.mayTakeOver() {
		// A taken-over stream ends with its connection: a client must
		// not take the connection back for another request when the
		// response ends cleanly (token expiry, shutdown, a slow
		// subscriber dropped), since nobody on this side reads it.
		h.Set("Connection", "close")
	}
	w.WriteHeader(http.StatusOK)
	// Events are written straight to w: net/http already buffers a
	// response (and chunks it at each flush), so a buffer of our own would
	// cost every stream its size and a copy of every event.
	rc := http.NewResponseController(w)
	// The write deadline is moved forward at most every deadlineStep,
	// not at each flush: a stream then costs no timer update per event,
	// and a write still fails between WriteTimeout-deadlineStep and
	// WriteTimeout after the client stopped reading.
	deadlineStep := s.cfg.WriteTimeout / 8
	var deadlineSet time.Time
	extend := func() {
		if now := time.Now(); now.Sub(deadlineSet) >= deadlineStep {
			deadlineSet = now
			_ = rc.SetWriteDeadline(now.Add(s.cfg.WriteTimeout))
		}
	}
	flush := func() error {
		extend()
		return rc.Flush()
	}
	id := s.node.ID()
	watermark := e.sub.Watermark
	fmt.Fprintf(w, "retry: %d\n\n", sseRetry)

	lastSent := watermark
	if e.last != "" {
		// The replay streams from the log into w, whose writes reach the
		// client under the write deadline: a client that does not read
		// ends the replay at WriteTimeout, holding no more than a page of
		// the log meanwhile.
		var writeErr error
		err := s.node.Replay(e.sub, e.repos, e.last, func(ev node.Event) error {
			extend()
			_, writeErr = w.Write(ev.Encoded(sseFrame))
			return writeErr
		})
		if writeErr != nil {
			return nil // the client is gone or does not read
		}
		if err != nil {
			return err
		}
	}
	writeEvent(w, node.EventID(id, watermark), "ready", []byte("{}"))
	if err := flush(); err != nil {
		return nil
	}
	// From here on a stream only waits and writes: where it can, the
	// connection leaves net/http for the fan-out writers (takeOver), which
	// hold no goroutine and no buffers per idle stream. Otherwise (another
	// OS, HTTP/1.0, a ResponseWriter that cannot be hijacked) the stream
	// stays here.
	if e.takeOver(rc, lastSent) {
		handedOff = true
		return nil
	}

	heartbeat := time.NewTicker(s.cfg.Heartbeat)
	defer heartbeat.Stop()
	var expiry <-chan time.Time
	if !e.principal.Expires.IsZero() {
		t := time.NewTimer(time.Until(e.principal.Expires))
		defer t.Stop()
		expiry = t.C
	}
	ready := e.sub.Ready()
	for {
		select {
		case <-e.ctx.Done():
			return nil
		case <-e.sub.Gone():
			return nil
		case <-expiry:
			writeEvent(w, node.EventID(id, lastSent), "expired", expiredData)
			_ = flush()
			return nil
		case <-heartbeat.C:
			_, _ = io.WriteString(w, ": ping\n\n")
			if err := flush(); err != nil {
				return nil
			}
		case <-ready:
			// Write everything queued (one wake-up may stand for many
			// events), then flush once.
			wrote := false
			for ev, ok := e.sub.Next(); ok; ev, ok = e.sub.Next() {
				// Seq 0: an event outside the log (a deleted repository's
				// reset), never replayed, always written.
				if ev.Seq > lastSent || ev.Seq == 0 {
					extend()
					if _, err := w.Write(ev.Encoded(sseFrame)); err != nil {
						return nil
					}
					lastSent = max(lastSent, ev.Seq)
					wrote = true
				}
			}
			if wrote {
				if err := flush(); err != nil {
					return nil
				}
			}
		}
	}
}

// expiredData is the data of the event that ends a stream whose token
// expired.
var expiredData = []byte(`{"reason":"the token expired; reconnect with a fresh one"}`)

// sseFrame is an event's SSE encoding (see writeEvent), made once per live
// event for all its streams.
func sseFrame(ev *node.Event) []byte {
	b := make([]byte, 0, len("id: \nevent: \ndata: \n\n")+len(ev.ID)+len(ev.Name)+len(ev.Data))
	b = append(b, "id: "...)
	b = append(b, ev.ID...)
	b = append(b, "\nevent: "...)
	b = append(b, ev.Name...)
	b = append(b, "\ndata: "...)
	b = append(b, ev.Data...)
	return append(b, "\n\n"...)
}

// writeEvent writes one SSE event. data is one line of JSON (canonical
// JSON never contains a raw newline).
func writeEvent(w io.Writer, id, name string, data []byte) error {
	_, err := w.Write(sseFrame(&node.Event{ID: id, Name: name, Data: data}))
	return err
}
