package goattest

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"testing"
)

// Proxy is a reverse proxy on a loopback port in front of a gateway,
// which a test can make buffer responses: while buffering, it reads each
// response whole before it sends any of it (headers included), ignoring
// X-Accel-Buffering, as a proxy or corporate middlebox configured for
// ordinary pages does. Requests that end (log pages, sync rounds, pushes)
// pass unharmed, only later; an event stream never gets through, since it
// does not end. Whether a response is buffered is decided when it starts.
//
// It counts what a test asserts on: event streams it forwards live, the
// names of the events they carry, and long polls of the log in flight.
type Proxy struct {
	addr      string
	srv       *http.Server
	buffering atomic.Bool

	streams atomic.Int64 // event streams forwarded live, open now
	polls   atomic.Int64 // GET .../log?wait= in flight
	events  chan string
}

// StartProxy starts a proxy in front of upstream (a gateway's base URL);
// it stops at the end of the test. It starts not buffering.
func StartProxy(tb testing.TB, upstream string) *Proxy {
	tb.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{addr: ln.Addr().String(), events: make(chan string, 1024)}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = p.modify
	rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		if r.Context().Err() == nil {
			w.WriteHeader(http.StatusBadGateway)
		}
	}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/log") && r.URL.Query().Has("wait") {
			p.polls.Add(1)
			defer p.polls.Add(-1)
		}
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = p.srv.Serve(ln) }()
	tb.Cleanup(func() { p.srv.Close() })
	return p
}

// URL is the proxy's base URL, to give clients instead of the gateway's.
func (p *Proxy) URL() string { return "http://" + p.addr }

// SetBuffering turns buffering on or off for responses that start from
// now on.
func (p *Proxy) SetBuffering(on bool) { p.buffering.Store(on) }

// LiveStreams is the number of event streams the proxy is forwarding
// unbuffered right now.
func (p *Proxy) LiveStreams() int { return int(p.streams.Load()) }

// LongPolls is the number of long polls of a log (wait=) in flight.
func (p *Proxy) LongPolls() int { return int(p.polls.Load()) }

// Events carries the name of every event the proxy forwards on a live
// event stream, as it forwards it ("ready", "commit", ...). Names beyond
// its buffer of 1024 unread ones are dropped.
func (p *Proxy) Events() <-chan string { return p.events }

func (p *Proxy) modify(resp *http.Response) error {
	if p.buffering.Load() {
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
		resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
		resp.TransferEncoding = nil
		return nil
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		p.streams.Add(1)
		resp.Body = &eventTap{rc: resp.Body, p: p}
	}
	return nil
}

// eventTap passes an event stream through, reporting each event name.
type eventTap struct {
	rc     io.ReadCloser
	p      *Proxy
	line   []byte
	closed stdsync.Once
}

func (t *eventTap) Read(b []byte) (int, error) {
	n, err := t.rc.Read(b)
	for _, c := range b[:n] {
		if c != '\n' && c != '\r' {
			t.line = append(t.line, c)
			continue
		}
		if name, ok := strings.CutPrefix(string(t.line), "event:"); ok {
			select {
			case t.p.events <- strings.TrimSpace(name):
			default:
			}
		}
		t.line = t.line[:0]
	}
	return n, err
}

func (t *eventTap) Close() error {
	t.closed.Do(func() { t.p.streams.Add(-1) })
	return t.rc.Close()
}
