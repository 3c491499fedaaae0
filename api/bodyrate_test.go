package api_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
)

// One caller that sends request bodies faster than its rate is refused
// before a byte of the next body is read, with a Retry-After that holds;
// another caller in the same moment is served (issue 17: one caller slows
// only itself). Anonymous callers are told apart by address, token
// holders by subject.
func TestServer_BodyRate(t *testing.T) {
	const limit, rate = 1 << 20, 256 << 10
	rules, err := auth.ParseRules([]byte(testRules))
	if err != nil {
		t.Fatal(err)
	}
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	g := startGateway(t, goattest.Config{Rules: rules, BodyLimit: limit, BodyRate: rate, Now: now})
	alice, bob, ed := g.newAuthor(t, "alice"), g.newAuthor(t, "bob"), g.newAuthor(t, "ed", "editor")
	wantStatus(t, g.call(t, "PUT", "/v1/repos/public.x", ed.Token, nil), 201)
	wantStatus(t, g.call(t, "PUT", "/v1/repos/user.alice.notes", alice.Token, nil), 201)
	wantStatus(t, g.call(t, "PUT", "/v1/repos/user.bob.notes", bob.Token, nil), 201)

	zeros := bytes.Repeat([]byte{0}, limit)
	// send sends a body of zeros of the limit's size (a sync round that is
	// read, then refused 400) from addr with token; chunked sends it with
	// no Content-Length.
	send := func(t *testing.T, addr, path, token string, chunked bool) (*httptest.ResponseRecorder, int64) {
		t.Helper()
		body := &countingBody{r: bytes.NewReader(zeros)}
		req := httptest.NewRequest("POST", path, body)
		req.RemoteAddr = addr
		req.ContentLength = limit
		if chunked {
			req.ContentLength = -1
		}
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		g.Handler().ServeHTTP(rec, req)
		return rec, body.read.Load()
	}
	served := func(t *testing.T, addr, path, token string) {
		t.Helper()
		rec, read := send(t, addr, path, token, false)
		if rec.Code == http.StatusTooManyRequests || read != limit {
			t.Fatalf("status %d after reading %d of %d bytes, want the body read and answered: %s", rec.Code, read, limit, rec.Body)
		}
	}
	refused := func(t *testing.T, rec *httptest.ResponseRecorder, read int64, chunked bool) time.Duration {
		t.Helper()
		if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Fatalf("status %d (%s): %s, want a 429 problem", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
		}
		if !strings.Contains(rec.Body.String(), "rate-limited") || rec.Header().Get("Connection") != "close" {
			t.Fatalf("refused with %s (Connection %q), want rate-limited and the connection closed", rec.Body, rec.Header().Get("Connection"))
		}
		if !chunked && read != 0 {
			t.Fatalf("read %d bytes of the body before refusing it, want 0", read)
		}
		if chunked && read >= limit {
			t.Fatalf("read the whole chunked body (%d bytes) before refusing it", read)
		}
		secs, err := strconv.Atoi(rec.Header().Get("Retry-After"))
		if err != nil || secs < 1 {
			t.Fatalf("Retry-After %q, want whole seconds", rec.Header().Get("Retry-After"))
		}
		return time.Duration(secs) * time.Second
	}

	for _, tc := range []struct {
		name                     string
		path                     string
		over, other              string // addresses
		overToken, otherToken    string
		wantRetryAfterAtMostSecs int
	}{
		{"Anonymous", "/v1/repos/public.x/sync", "192.0.2.1:1000", "198.51.100.7:1000", "", "", limit / rate},
		// Two subjects from one address: the subject is the caller.
		{"Subject", "/v1/repos/user.alice.notes/sync", "192.0.2.2:1000", "192.0.2.2:1001", alice.Token, bob.Token, limit / rate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			otherPath := strings.Replace(tc.path, "alice", "bob", 1)
			served(t, tc.over, tc.path, tc.overToken)
			// The burst (one body limit) is spent: the next body is refused
			// unread, and the other caller's, at the same moment, is read.
			rec, read := send(t, tc.over, tc.path, tc.overToken, false)
			after := refused(t, rec, read, false)
			if after > time.Duration(tc.wantRetryAfterAtMostSecs)*time.Second {
				t.Fatalf("Retry-After %s, want at most %ds (the body at the rate)", after, tc.wantRetryAfterAtMostSecs)
			}
			served(t, tc.other, otherPath, tc.otherToken)
			// A chunked body is cut as it overdraws.
			rec, read = send(t, tc.over, tc.path, tc.overToken, true)
			refused(t, rec, read, true)
			// Retry-After holds: after it, the caller is served again.
			clock.Add(int64(after))
			served(t, tc.over, tc.path, tc.overToken)
		})
	}

	// Over a real connection, a refused body is never waited for: the
	// body below is never sent, yet the 429 arrives and the connection
	// closes.
	t.Run("UnsentBodyOverTheRate", func(t *testing.T) {
		resp, err := http.Post(g.URL()+"/v1/repos/public.x/sync", "application/json", bytes.NewReader(zeros))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			t.Fatalf("the first body from the loopback address was refused")
		}
		conn, err := net.Dial("tcp", g.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, "POST /v1/repos/public.x/sync HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\nContent-Length: "+strconv.Itoa(limit)+"\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(goattest.Patience))
		br := bufio.NewReader(conn)
		resp, err = http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("no answer to a body over the rate: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !resp.Close {
			t.Fatalf("status %d (Retry-After %q, close %v): %s; want 429 with Retry-After and the connection closed", resp.StatusCode, resp.Header.Get("Retry-After"), resp.Close, b)
		}
		if _, err := br.ReadByte(); err != io.EOF {
			t.Fatalf("after the answer: %v, want the connection closed (EOF)", err)
		}
	})
}
