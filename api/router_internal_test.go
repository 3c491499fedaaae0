package api

import (
	"math/rand/v2"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/goat-gateway/goat-gateway/gen"
)

// The route table answers every request as kin-openapi's gorillamux
// router, which it replaced: the same operation, the same parameters (as
// escaped), the same 404 and 405, on every path of the spec with plain,
// escaped and odd parameter values, on near misses (a segment more or
// less, empty segments, trailing slashes, escaped literals), and on random
// paths built from the spec's own segments.
func TestRouteTable_AgreesWithGorillamux(t *testing.T) {
	doc, table, oracle := bothRouters(t)
	methods := []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "BREW"}
	values := []string{"x", "notes", "user.alice.notes", "a%20b", "%2F", "a%2Fb", "%C3%A9", "items", "history", "{repo}", "..", ".", "a:b", "-", "~", "%00"}

	var paths []string
	literals := map[string]bool{}
	for _, tmpl := range doc.Paths.InMatchingOrder() {
		segs := strings.Split(strings.TrimPrefix(tmpl, "/"), "/")
		for _, s := range segs {
			if !strings.HasPrefix(s, "{") {
				literals[s] = true
			}
		}
		for _, v := range values {
			p := "/" + strings.Join(fill(segs, v), "/")
			paths = append(paths, p, p+"/", p+"/x", strings.TrimSuffix(p, "/"+segs[len(segs)-1]), strings.Replace(p, "/", "//", 1), p+"?q=1")
		}
	}
	paths = append(paths, "", "/", "//", "*", "/v1", "/v1/", "/V1/info", "/v1/inf%6F", "/v1/repos//items", "/v1/repos/x//", "/%76%31/info", "/v1/repos/x/items/y/history/z")
	words := []string{"", "x", "%2F", "%20"}
	for w := range literals {
		words = append(words, w)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		n := 1 + rng.IntN(6)
		segs := make([]string, n)
		for i := range segs {
			segs[i] = words[rng.IntN(len(words))]
		}
		p := "/" + strings.Join(segs, "/")
		if rng.IntN(8) == 0 {
			p += "/"
		}
		paths = append(paths, p)
	}

	checked := 0
	for _, p := range paths {
		u, err := requestURL(p)
		if err != nil {
			continue // net/http answers 400 before any routing
		}
		checked++
		for _, m := range methods {
			req := &http.Request{Method: m, URL: u, Header: http.Header{}}
			wantRoute, wantVars, wantErr := oracle.FindRoute(req)
			gotRoute, gotVars, gotErr := table.FindRoute(req)
			if gotErr != wantErr || describe(gotRoute) != describe(wantRoute) || (wantErr == nil && !reflect.DeepEqual(gotVars, wantVars)) {
				t.Fatalf("%s %q: got %s %v %v, gorillamux %s %v %v", m, p, describe(gotRoute), gotVars, gotErr, describe(wantRoute), wantVars, wantErr)
			}
		}
	}
	if checked < len(paths)*9/10 {
		t.Fatalf("only %d of %d paths parse as request URIs", checked, len(paths))
	}
	t.Logf("%d paths, %d methods each", checked, len(methods))
}

// bothRouters returns the embedded spec, its route table and gorillamux's
// router of it.
func bothRouters(tb testing.TB) (*openapi3.T, *routeTable, routers.Router) {
	tb.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(gen.Spec)
	if err != nil {
		tb.Fatal(err)
	}
	table, err := newRouteTable(doc)
	if err != nil {
		tb.Fatal(err)
	}
	oracle, err := gorillamux.NewRouter(doc)
	if err != nil {
		tb.Fatal(err)
	}
	return doc, table, oracle
}

// fill puts v in the place of every parameter of a path's segments.
func fill(segs []string, v string) []string {
	out := make([]string, len(segs))
	for i, s := range segs {
		if strings.HasPrefix(s, "{") {
			s = v
		}
		out[i] = s
	}
	return out
}

// requestURL parses p as net/http parses a request's target.
func requestURL(p string) (*url.URL, error) {
	if p == "*" {
		return &url.URL{Path: "*"}, nil
	}
	return url.ParseRequestURI(p)
}

// describe names what a route says about a request.
func describe(r *routers.Route) string {
	if r == nil {
		return "no route"
	}
	op := "no operation"
	if r.Operation != nil {
		op = r.Operation.OperationID
	}
	return r.Method + " " + r.Path + " (" + op + ")"
}

// BenchmarkFindRoute routes a PUT of an item, the table against
// gorillamux.
func BenchmarkFindRoute(b *testing.B) {
	_, table, oracle := bothRouters(b)
	req := &http.Request{Method: "PUT", URL: &url.URL{Path: "/v1/repos/bench/items/k123"}, Header: http.Header{}}
	for _, r := range []struct {
		name string
		r    routers.Router
	}{{"table", table}, {"gorillamux", oracle}} {
		b.Run(r.name, func(b *testing.B) {
			for b.Loop() {
				if _, _, err := r.r.FindRoute(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
