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
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/internal/goattest"
)

// countingBody is a request body that counts the bytes the server takes
// from it.
type countingBody struct {
	r    io.Reader
	read atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read.Add(int64(n))
	return n, err
}

// A caller who may not do an operation is answered from the route and the
// token alone: not one byte of its body is read (issue 17, item 1).
func TestServer_AuthorizesBeforeTheBody(t *testing.T) {
	g := rulesGateway(t)
	alice, ed := g.newAuthor(t, "alice"), g.newAuthor(t, "ed", "editor")
	wantStatus(t, g.call(t, "PUT", "/v1/repos/public.x", ed.Token, nil), 201)
	wantStatus(t, g.call(t, "PUT", "/v1/repos/user.alice.notes", alice.Token, nil), 201)

	// 8 MB of numbers, under the 8 MiB body limit: what cost 530 MB and
	// 3.5 s of CPU before the 403.
	big := []byte(`{"schema":"any/1","data":{"v":[` + strings.Repeat("1,", 4_000_000-1) + `1]}}`)
	cases := []struct {
		name, method, path, token string
		want                      int
	}{
		{"AnonymousWritesPublic", "PUT", "/v1/repos/public.x/items/k", "", 403},
		{"ReaderWritesPublic", "PUT", "/v1/repos/public.x/items/k", alice.Token, 403},
		{"ReaderPatchesPublic", "PATCH", "/v1/repos/public.x/items/k", alice.Token, 403},
		{"ReaderPushesToPublic", "POST", "/v1/repos/public.x/commits", alice.Token, 403},
		{"AnonymousWritesPrivate", "PUT", "/v1/repos/user.alice.notes/items/k", "", 404},
		{"AnonymousSyncsPrivate", "POST", "/v1/repos/user.alice.notes/sync", "", 404},
		{"AnonymousCreatesRepo", "PUT", "/v1/repos/user.bob.x", "", 404},
		{"AnonymousRegistersSession", "POST", "/v1/sessions", "", 401},
		{"ReaderPublishesSchema", "PUT", "/v1/schemas/task/1", alice.Token, 403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := &countingBody{r: bytes.NewReader(big)}
			req := httptest.NewRequest(c.method, c.path, body)
			req.ContentLength = int64(len(big))
			req.Header.Set("Content-Type", "application/json")
			if c.token != "" {
				req.Header.Set("Authorization", "Bearer "+c.token)
			}
			rec := httptest.NewRecorder()
			g.Handler().ServeHTTP(rec, req)
			if got := rec.Code; got != c.want {
				t.Fatalf("status %d, want %d: %s", got, c.want, rec.Body)
			}
			if got := body.read.Load(); got != 0 {
				t.Fatalf("read %d bytes of the body before answering %d, want 0", got, c.want)
			}
		})
	}

	t.Run("AnAuthorizedCallersBodyIsRead", func(t *testing.T) {
		body := &countingBody{r: strings.NewReader(`{"schema":"any/1","data":{"v":1}}`)}
		req := httptest.NewRequest("PUT", "/v1/repos/user.alice.notes/items/k", body)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+alice.Token)
		rec := httptest.NewRecorder()
		g.Handler().ServeHTTP(rec, req)
		if got, want := rec.Code, http.StatusCreated; got != want {
			t.Fatalf("status %d, want %d: %s", got, want, rec.Body)
		}
		if body.read.Load() == 0 {
			t.Fatal("the body was not read")
		}
	})
}

// stallingBody delivers all but the last byte of a body of size bytes,
// then waits for resume: a body almost complete, held open.
type stallingBody struct {
	size, sent int64
	stalled    chan struct{} // closed when the body stalls
	resume     <-chan struct{}
	once       sync.Once
}

func (b *stallingBody) Read(p []byte) (int, error) {
	if b.sent < b.size-1 {
		n := int(min(int64(len(p)), b.size-1-b.sent))
		for i := range p[:n] {
			p[i] = '0'
		}
		b.sent += int64(n)
		return n, nil
	}
	if b.sent == b.size {
		return 0, io.EOF
	}
	b.once.Do(func() { close(b.stalled) })
	<-b.resume
	p[0] = '0'
	b.sent++
	return 1, nil
}

// Many large bodies at once never hold more than the body budget: the
// ones that do not fit are told to retry (issue 17, item 2).
func TestServer_BodyBudget(t *testing.T) {
	const budget, size, n = 1 << 20, 300 << 10, 10
	for _, chunked := range []bool{false, true} {
		name := "ContentLength"
		if chunked {
			name = "Chunked"
		}
		t.Run(name, func(t *testing.T) {
			g := startGateway(t, goattest.Config{BodyBudget: budget})
			tok := g.Token("alice")
			resume := make(chan struct{})
			bodies := make([]*stallingBody, n)
			done := make(chan *httptest.ResponseRecorder, n)
			var wg sync.WaitGroup
			for i := range bodies {
				bodies[i] = &stallingBody{size: size, stalled: make(chan struct{}), resume: resume}
				req := httptest.NewRequest("PUT", "/v1/repos/r/items/k"+strconv.Itoa(i), bodies[i])
				req.ContentLength = size
				if chunked {
					req.ContentLength = -1
				}
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+tok)
				wg.Go(func() {
					rec := httptest.NewRecorder()
					g.Handler().ServeHTTP(rec, req)
					done <- rec
				})
			}
			t.Cleanup(wg.Wait)
			t.Cleanup(func() { close(resume) })

			// Every request either stalls inside its body (held) or is
			// answered without it.
			var answered []*httptest.ResponseRecorder
			stalled := func() (held []*stallingBody) {
				for _, b := range bodies {
					select {
					case <-b.stalled:
						held = append(held, b)
					default:
					}
				}
				return held
			}
			goattest.WaitFor(t, "every body held or refused", func() bool {
				for {
					select {
					case rec := <-done:
						answered = append(answered, rec)
						continue
					default:
					}
					break
				}
				return len(stalled())+len(answered) == n
			})
			var held int64
			for _, b := range stalled() {
				held += b.sent
			}
			if held > budget {
				t.Fatalf("%d bodies hold %d bytes at once, over the budget of %d", len(stalled()), held, budget)
			}
			if len(answered) == 0 {
				t.Fatal("no request was refused")
			}
			for _, rec := range answered {
				if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
					t.Fatalf("refused with %d (Retry-After %q): %s, want 429 with Retry-After", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
				}
			}
		})
	}
}

// A body sent a byte at a time is cut after the body read deadline, with a
// problem that says so (issue 17, item 2).
func TestServer_BodyReadDeadline(t *testing.T) {
	g := startGateway(t, goattest.Config{BodyReadTimeout: 200 * time.Millisecond})
	conn, err := net.Dial("tcp", g.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = io.WriteString(conn, "PUT /v1/repos/r/items/k HTTP/1.1\r\nHost: gateway\r\n"+
		"Authorization: Bearer "+g.Token("alice")+"\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{")
	if err != nil {
		t.Fatal(err)
	}
	// Trickle the rest, a byte per tick, until the server answers: a
	// body that would take hours to arrive.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := conn.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(goattest.Patience))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a trickling body: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if got, want := resp.StatusCode, http.StatusBadRequest; got != want {
		t.Fatalf("status %d, want %d: %s", got, want, b)
	}
	if !strings.Contains(string(b), "did not arrive within") {
		t.Fatalf("problem %s does not say the body was too slow", b)
	}
}

// A small body that stalls is never waited for beyond the body read
// deadline, whether the request is refused before its body (net/http would
// read up to 256 KiB of an unread body, with no deadline, before answering)
// or its body is cut while it arrives: the answer comes and the connection
// closes, so stalled clients cannot hold connections (issue 17, item 2).
func TestServer_StalledSmallBodies(t *testing.T) {
	g := startGateway(t, goattest.Config{BodyReadTimeout: 200 * time.Millisecond})
	tok := g.Token("alice")
	for _, tc := range []struct {
		name, request string
		status        int
	}{
		{"RefusedBeforeTheBody", "POST /v1/sessions HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{", http.StatusUnauthorized},
		{"CutWhileItArrives", "PUT /v1/repos/r/items/k HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer " + tok + "\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", g.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, tc.request); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(goattest.Patience))
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer to a stalled body: %v", err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || !resp.Close {
				t.Fatalf("status %d (close %v): %s; want %d and the connection closed", resp.StatusCode, resp.Close, b, tc.status)
			}
			if _, err := br.ReadByte(); err != io.EOF {
				t.Fatalf("after the answer: %v, want the connection closed (EOF)", err)
			}
		})
	}
}
