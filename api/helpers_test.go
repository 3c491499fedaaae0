package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/goat-gateway/goat-gateway/api"
	"github.com/goat-gateway/goat-gateway/gen"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
)

// gateway is a goattest gateway as the api tests reach it: through call,
// which checks every response against openapi.yaml.
type gateway struct {
	*goattest.Gateway
	// base is where requests go: the gateway itself, or a proxy in front
	// of it.
	base string
	// proxied is set when base is nginx, which consumes
	// X-Accel-Buffering.
	proxied bool
}

func startGateway(tb testing.TB, cfg goattest.Config) *gateway {
	tb.Helper()
	g := goattest.StartGateway(tb, cfg)
	return &gateway{Gateway: g, base: g.URL()}
}

// newAuthor registers a session key for sub through call, so that the
// session's answer is checked against the spec too. The author's token
// carries roles.
func (g *gateway) newAuthor(tb testing.TB, sub string, roles ...string) *goattest.Author {
	tb.Helper()
	a := goattest.NewSigner(sub)
	a.Token, a.URL = g.Token(sub, roles...), g.base
	wantStatus(tb, g.call(tb, "POST", "/v1/sessions", a.Token, goattest.SessionBody(tb, a.Key, sub)), http.StatusCreated)
	return a
}

// specRouter routes requests to operations of openapi.yaml, for checking
// every response the tests see against the spec.
var specRouter = func() routers.Router {
	doc, err := openapi3.NewLoader().LoadFromData(gen.Spec)
	if err != nil {
		panic(err)
	}
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		panic(err)
	}
	return r
}()

// response is a finished HTTP exchange.
type response struct {
	*http.Response
	body []byte
}

func (r response) json(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		tb.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r response) problemType() string {
	var p api.Problem
	_ = json.Unmarshal(r.body, &p)
	return strings.TrimPrefix(p.Type, api.ProblemBase)
}

// call sends a request and checks the response against openapi.yaml
// (status declared, headers and body valid), failing tb otherwise.
func (g *gateway) call(tb testing.TB, method, path, token string, body any, headers ...string) response {
	tb.Helper()
	r, err := g.do(method, path, token, body, headers...)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// do is call for goroutines other than the test's and for callers that
// return errors (transports): err is a failed request or a response
// openapi.yaml does not allow.
func (g *gateway) do(method, path, token string, body any, headers ...string) (response, error) {
	var rd io.Reader
	var raw []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		raw = b
	case string:
		raw = []byte(b)
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			return response{}, err
		}
	}
	if raw != nil {
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, g.base+path, rd)
	if err != nil {
		return response{}, err
	}
	if raw != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	return response{resp, out}, checkSpec(req, raw, resp, out)
}

// checkSpec returns an error unless the response is one openapi.yaml
// allows for the request: no 5xx, problems as application/problem+json,
// a declared status with valid headers and body.
func checkSpec(req *http.Request, reqBody []byte, resp *http.Response, body []byte) error {
	if resp.StatusCode >= 500 {
		return fmt.Errorf("%s %s: %d %s", req.Method, req.URL, resp.StatusCode, body)
	}
	if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
		return fmt.Errorf("%s %s: %d with Content-Type %q, want application/problem+json", req.Method, req.URL, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	route, params, err := specRouter.FindRoute(req)
	if err != nil {
		return nil // not a route of the spec (404 tests)
	}
	if reqBody != nil {
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
		Status:  resp.StatusCode,
		Header:  resp.Header,
		Body:    io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		msg := err.Error()
		if len(msg) > 1500 {
			msg = msg[:1500]
		}
		return fmt.Errorf("%s %s: response %d does not match openapi.yaml: %s\nbody: %.500s", req.Method, req.URL, resp.StatusCode, msg, body)
	}
	return nil
}

func wantStatus(tb testing.TB, r response, want int) {
	tb.Helper()
	if r.StatusCode != want {
		tb.Fatalf("%s %s: status %d, want %d: %s", r.Request.Method, r.Request.URL.Path, r.StatusCode, want, r.body)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
