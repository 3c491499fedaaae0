package reliability

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/internal/goattest"
)

// fuzzNode is a gateway for fuzzing: requests go straight to its handler.
type fuzzNode struct {
	handler http.Handler
	token   string
	spec    *apiSpec
}

func openFuzzNode(f *testing.F) *fuzzNode {
	f.Helper()
	g := goattest.StartGateway(f, goattest.Config{BodyLimit: 64 << 10})
	tok, err := g.Mint("alice", nil, 24*time.Hour, time.Now())
	if err != nil {
		f.Fatal(err)
	}
	n := &fuzzNode{handler: g.Handler(), token: tok, spec: loadSpec(f)}
	for _, r := range []struct{ method, path, body string }{
		{"PUT", "/v1/repos/r", ""},
		{"PUT", "/v1/repos/r/items/k", `{"schema":"any/1","data":{"v":1}}`},
	} {
		if rec := n.serve(context.Background(), r.method, r.path, "", []byte(r.body), ""); rec.Code >= 300 {
			f.Fatalf("seeding %s %s: %d %s", r.method, r.path, rec.Code, rec.Body)
		}
	}
	return n
}

func (n *fuzzNode) serve(ctx context.Context, method, path, query string, body []byte, ifMatch string) *httptest.ResponseRecorder {
	req, err := http.NewRequestWithContext(ctx, method, "http://gateway.test/", strings.NewReader(string(body)))
	if err != nil {
		panic(err)
	}
	req.URL.Path, req.URL.RawPath, req.URL.RawQuery = path, "", query
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+n.token)
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}
	rec := httptest.NewRecorder()
	n.handler.ServeHTTP(rec, req)
	return rec
}

// checkProblem fails unless rec is a non-5xx answer and, if an error, a
// problem that matches the spec's Problem schema.
func (n *fuzzNode) checkProblem(t *testing.T, what string, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code >= 500 {
		t.Fatalf("%s: %d %.500s", what, rec.Code, rec.Body)
	}
	if rec.Code < 400 {
		return
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("%s: %d with Content-Type %q", what, rec.Code, ct)
	}
	var v any
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("%s: problem is not JSON: %v", what, err)
	}
	if err := n.spec.problem.VisitJSON(v); err != nil {
		t.Fatalf("%s: problem does not match the Problem schema: %v\n%.500s", what, err, rec.Body)
	}
}

var fuzzMethods = []string{"GET", "PUT", "POST", "PATCH", "DELETE"}

// FuzzGateway sends fuzzed requests (method, path, query, body, If-Match)
// through the whole handler stack: no input may cause a 5xx or a panic
// (echo's recover turns one into a 500), and every error is a problem.
func FuzzGateway(f *testing.F) {
	n := openFuzzNode(f)
	zeros := strings.Repeat("0", 64)
	f.Add(uint8(1), "/v1/repos/r/items/k", "", []byte(`{"schema":"any/1","data":{"v":2}}`), "")
	f.Add(uint8(3), "/v1/repos/r/items/k", "", []byte(`{"v":null}`), "")
	f.Add(uint8(1), "/v1/repos/r/items/k", "", []byte(`{"schema":"any/1","data":{"v":[[[[1]]]]}}`), `"`+zeros+`"`)
	f.Add(uint8(2), "/v1/repos/r/commits", "", []byte(`{"commits":[{"id":"`+zeros+`","repo":"r","key":"k","parents":[],"author":"s_x","ts":1,"schema":"any/1","data":{}}]}`), "")
	f.Add(uint8(2), "/v1/repos/r/sync", "", []byte(`{"count":0,"digest":"`+zeros+`","filter":{"m":64,"k":3,"salt":"0011223344556677","bits":"AAAAAAAAAAA="}}`), "")
	f.Add(uint8(0), "/v1/repos/r/log", "after=AQ&limit=5", []byte(nil), "")
	f.Add(uint8(0), "/v1/repos/r/items", "after=k&limit=2&schema=any", []byte(nil), "")
	f.Add(uint8(0), "/v1/repos/r/commits/"+zeros, "", []byte(nil), "")
	f.Add(uint8(2), "/v1/sessions", "", []byte(`{"publicKey":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","expires":1,"proof":"x"}`), "")
	f.Add(uint8(1), "/v1/schemas/task/1", "", []byte(`{"fields":{"a":{"type":"set","default":["b","a"]}}}`), "")
	f.Add(uint8(4), "/v1/repos/r/items/k", "", []byte(nil), `"zz"`)
	f.Add(uint8(0), "/v1/repos/..%2F..%2Fetc/items/k", "", []byte(nil), "")
	f.Fuzz(func(t *testing.T, m uint8, path, query string, body []byte, ifMatch string) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		// Streams and long polls end only when their deadline does;
		// FuzzEventsResume covers the stream's input.
		if strings.Contains(strings.ToLower(path), "events") || strings.Contains(query, "wait") {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rec := n.serve(ctx, fuzzMethods[int(m)%len(fuzzMethods)], path, query, body, ifMatch)
		if ctx.Err() != nil {
			t.Fatalf("%s %s?%s: no answer within 10 s", fuzzMethods[int(m)%len(fuzzMethods)], path, query)
		}
		n.checkProblem(t, fuzzMethods[int(m)%len(fuzzMethods)]+" "+path+"?"+query, rec)
	})
}

// streamRecorder records a response and cancels the request at its first
// flush: by then an event stream has written its replay and `ready`.
type streamRecorder struct {
	*httptest.ResponseRecorder
	once   sync.Once
	cancel context.CancelFunc
}

func (s *streamRecorder) Flush() {
	s.ResponseRecorder.Flush()
	s.once.Do(s.cancel)
}

// FuzzEventsResume resumes event streams from fuzzed event ids (header or
// query) over fuzzed repository lists: a 4xx problem or a stream that
// ends its replay with `ready`, never a 5xx.
func FuzzEventsResume(f *testing.F) {
	n := openFuzzNode(f)
	f.Add("abc.1", "r", false)
	f.Add(".5", "r", true)
	f.Add("x.18446744073709551616", "r,nope", false)
	f.Add("x.-1", "r,r", true)
	f.Add("", "", false)
	f.Add("a.b.c", "sys.sessions", false)
	f.Fuzz(func(t *testing.T, id, repos string, inHeader bool) {
		query := ""
		for _, r := range strings.Split(repos, ",") {
			if query != "" {
				query += "&"
			}
			query += "repo=" + r
		}
		if !inHeader && id != "" {
			query += "&lastEventId=" + id
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, "GET", "http://gateway.test/v1/events", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.URL.RawQuery = query
		req.Header.Set("Authorization", "Bearer "+n.token)
		if inHeader && id != "" {
			req.Header.Set("Last-Event-ID", id)
		}
		rec := &streamRecorder{ResponseRecorder: httptest.NewRecorder(), cancel: cancel}
		n.handler.ServeHTTP(rec, req)
		n.checkProblem(t, "events?"+query+" id "+id, rec.ResponseRecorder)
		if rec.Code == 200 && !strings.Contains(rec.Body.String(), "event: ready\n") {
			t.Fatalf("events?%s id %q: a stream without ready: %.500s", query, id, rec.Body)
		}
	})
}
