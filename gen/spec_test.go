package gen_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/goat-gateway/goat-gateway/gen"
	"github.com/goat-gateway/goat-gateway/gen/apiserver"
)

const specPath = "../openapi.yaml"

// loadSpec loads and validates ../openapi.yaml the way the server's request
// validator and the end-to-end tests will: kin-openapi, no external refs,
// examples validated against their schemas.
func loadSpec(tb testing.TB) *openapi3.T {
	tb.Helper()
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = false
	doc, err := loader.LoadFromFile(specPath)
	if err != nil {
		tb.Fatalf("load %s: %v", specPath, err)
	}
	if err := doc.Validate(loader.Context, openapi3.EnableExamplesValidation()); err != nil {
		tb.Fatalf("validate %s: %v", specPath, err)
	}
	return doc
}

type operation struct {
	method, path string
	item         *openapi3.PathItem
	op           *openapi3.Operation
}

func (o operation) String() string { return o.method + " " + o.path + " (" + o.op.OperationID + ")" }

// params returns the path item's and the operation's parameters, the
// operation's winning on a clash as OpenAPI says.
func (o operation) params() []*openapi3.Parameter {
	byKey := map[string]*openapi3.Parameter{}
	var order []string
	for _, list := range []openapi3.Parameters{o.item.Parameters, o.op.Parameters} {
		for _, ref := range list {
			p := ref.Value
			k := p.In + ":" + p.Name
			if _, ok := byKey[k]; !ok {
				order = append(order, k)
			}
			byKey[k] = p
		}
	}
	out := make([]*openapi3.Parameter, len(order))
	for i, k := range order {
		out[i] = byKey[k]
	}
	return out
}

func operations(doc *openapi3.T) []operation {
	var ops []operation
	for _, path := range doc.Paths.InMatchingOrder() {
		item := doc.Paths.Value(path)
		for _, method := range slices.Sorted(maps.Keys(item.Operations())) {
			ops = append(ops, operation{method: method, path: path, item: item, op: item.GetOperation(method)})
		}
	}
	slices.SortFunc(ops, func(a, b operation) int { return strings.Compare(a.path+a.method, b.path+b.method) })
	return ops
}

func TestSpec_Loads(t *testing.T) {
	doc := loadSpec(t)
	if got, want := doc.OpenAPI, "3.0.3"; got != want {
		t.Fatalf("openapi=%q, want %q (3.0.3 is what oapi-codegen and kin-openapi both support fully)", got, want)
	}
	if got, want := len(operations(doc)), 26; got != want {
		t.Fatalf("operations=%d, want %d (DESIGN section 10); update this test when the surface grows", got, want)
	}
}

func TestSpec_EmbeddedCopyIsCurrent(t *testing.T) {
	want, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gen.Spec, want) {
		t.Fatal("gen/openapi.yaml differs from openapi.yaml: run `go generate ./gen` (make generate)")
	}
	if _, err := apiserver.GetSpec(); err != nil {
		t.Fatalf("GetSpec: %v", err)
	}
}

var (
	operationIDPattern = regexp.MustCompile(`^[a-z][A-Za-z0-9]*$`)
	// Operations anyone may call; every other one needs a bearer token.
	public = []string{"getHealthz", "getReadyz", "getMetrics", "getOpenAPI", "getInfo"}
)

func hasExample(example any, examples openapi3.Examples) bool {
	return example != nil || len(examples) > 0
}

// TestSpec_Operations checks the rules every operation follows: a
// camelCase operationId, docs, examples for every parameter, body and
// success response, and declared problem responses for every error the
// gateway can answer.
func TestSpec_Operations(t *testing.T) {
	doc := loadSpec(t)
	seen := map[string]bool{}
	for _, o := range operations(doc) {
		t.Run(o.op.OperationID, func(t *testing.T) {
			op := o.op
			if !operationIDPattern.MatchString(op.OperationID) {
				t.Errorf("%v: operationId must be lowerCamelCase", o)
			}
			if seen[op.OperationID] {
				t.Errorf("%v: duplicate operationId", o)
			}
			seen[op.OperationID] = true
			if op.Summary == "" || op.Description == "" || len(op.Tags) != 1 {
				t.Errorf("%v: needs a summary, a description and exactly one tag", o)
			}

			params := o.params()
			for _, p := range params {
				if !hasExample(p.Example, p.Examples) {
					t.Errorf("%v: parameter %s %q has no example", o, p.In, p.Name)
				}
				if p.Description == "" {
					t.Errorf("%v: parameter %s %q has no description", o, p.In, p.Name)
				}
			}
			hasBody := op.RequestBody != nil
			if hasBody {
				for ct, mt := range op.RequestBody.Value.Content {
					if !hasExample(mt.Example, mt.Examples) {
						t.Errorf("%v: request body %s has no example", o, ct)
					}
				}
			}

			responses := op.Responses
			for code, ref := range responses.Map() {
				resp := ref.Value
				for name, h := range resp.Headers {
					if !hasExample(h.Value.Example, h.Value.Examples) {
						t.Errorf("%v: response %s header %s has no example", o, code, name)
					}
				}
				isError := code == "default" || code[0] == '4' || code[0] == '5'
				for ct, mt := range resp.Content {
					if !hasExample(mt.Example, mt.Examples) {
						t.Errorf("%v: response %s %s has no example", o, code, ct)
					}
					if isError && ct != "application/problem+json" && !(op.OperationID == "getReadyz" && code == "503") {
						t.Errorf("%v: error response %s is %s, want application/problem+json", o, code, ct)
					}
					if ct == "application/problem+json" && mt.Schema.Ref != "#/components/schemas/Problem" {
						t.Errorf("%v: response %s: problem schema is %q, want Problem", o, code, mt.Schema.Ref)
					}
				}
				// 204 No Content is the one success without a body (HTTP
				// forbids one there: RFC 9110 section 15.3.5).
				if code == "204" && len(resp.Content) != 0 {
					t.Errorf("%v: response 204 has a body", o)
				}
				if code[0] == '2' && code != "204" && len(resp.Content) == 0 {
					t.Errorf("%v: success response %s has no body", o, code)
				}
			}
			if d := responses.Default(); d == nil || d.Value.Content.Get("application/problem+json") == nil {
				t.Errorf("%v: no default application/problem+json response", o)
			}
			need := func(code, why string) {
				if responses.Value(code) == nil {
					t.Errorf("%v: no %s response (%s)", o, code, why)
				}
			}
			security := doc.Security
			if op.Security != nil {
				security = *op.Security
			}
			if slices.Contains(public, op.OperationID) {
				if len(security) != 0 {
					t.Errorf("%v: public operation must have `security: []`", o)
				}
			} else {
				if len(security) == 0 {
					t.Errorf("%v: needs authentication", o)
				}
				need("401", "authenticated")
			}
			if strings.HasPrefix(o.path, "/v1/") {
				need("429", "rate limited")
			}
			if len(params) > 0 || hasBody {
				need("400", "has input")
			}
			if hasBody {
				need("413", "has a body")
				need("415", "has a body")
			}
			if strings.Contains(o.path, "{repo}") {
				need("404", "names a repository")
			}
		})
	}
}

// exampleOf returns the example of a parameter, header or media type: the
// `example`, else the first of `examples` by name.
func exampleOf(example any, examples openapi3.Examples) any {
	if example != nil {
		return example
	}
	for _, name := range slices.Sorted(maps.Keys(examples)) {
		return examples[name].Value.Value
	}
	return nil
}

// allExamples returns every example of a media type.
func allExamples(mt *openapi3.MediaType) map[string]any {
	if mt.Example != nil {
		return map[string]any{"example": mt.Example}
	}
	out := map[string]any{}
	for name, ex := range mt.Examples {
		out[name] = ex.Value.Value
	}
	return out
}

// encodeBody renders an example the way it travels for its media type.
func encodeBody(tb testing.TB, contentType string, v any) []byte {
	tb.Helper()
	switch contentType {
	case "text/plain":
		s, ok := v.(string)
		if !ok {
			tb.Fatalf("text/plain example is %T, want a string", v)
		}
		return []byte(s)
	case "text/event-stream":
		return encodeEventStream(tb, v)
	default: // JSON, and YAML (JSON is YAML)
		b, err := json.Marshal(v)
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
}

// encodeEventStream writes parsed events (the EventStream schema) in the
// text/event-stream wire format, as the gateway sends them.
func encodeEventStream(tb testing.TB, v any) []byte {
	tb.Helper()
	events, ok := v.([]any)
	if !ok {
		tb.Fatalf("text/event-stream example is %T, want a list of events", v)
	}
	var b bytes.Buffer
	b.WriteString("retry: 3000\n\n: ping\n\n")
	for _, e := range events {
		m := e.(map[string]any)
		data, err := json.Marshal(m["data"])
		if err != nil {
			tb.Fatal(err)
		}
		fmt.Fprintf(&b, "id: %s\nevent: %s\ndata: %s\n\n", m["id"], m["event"], data)
	}
	return b.Bytes()
}

// decodeEventStream parses a text/event-stream body into the EventStream
// schema's shape, so kin-openapi can validate it. It handles what the
// gateway sends (one data line per event); comments and retry lines are
// skipped.
func decodeEventStream(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
	var events []any
	cur := map[string]any{}
	sc := bufio.NewScanner(body)
	sc.Buffer(nil, 1<<22)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if len(cur) > 0 {
				events = append(events, cur)
				cur = map[string]any{}
			}
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id", "event":
			cur[field] = value
		case "data":
			var v any
			if err := json.Unmarshal([]byte(value), &v); err != nil {
				return nil, fmt.Errorf("event data: %w", err)
			}
			cur["data"] = v
		case "", "retry":
		default:
			return nil, fmt.Errorf("unexpected field %q", field)
		}
	}
	if len(cur) > 0 {
		events = append(events, cur)
	}
	return events, sc.Err()
}

func init() {
	openapi3filter.RegisterBodyDecoder("text/event-stream", decodeEventStream)
}

func scalar(v any) string {
	switch x := v.(type) {
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	default:
		return fmt.Sprint(x)
	}
}

// exampleRequest builds the request an operation's examples describe.
func exampleRequest(tb testing.TB, o operation) *http.Request {
	tb.Helper()
	path := o.path
	query := url.Values{}
	header := http.Header{}
	for _, p := range o.params() {
		ex := exampleOf(p.Example, p.Examples)
		switch p.In {
		case "path":
			path = strings.ReplaceAll(path, "{"+p.Name+"}", url.PathEscape(scalar(ex)))
		case "query":
			if list, ok := ex.([]any); ok {
				for _, e := range list {
					query.Add(p.Name, scalar(e))
				}
			} else {
				query.Set(p.Name, scalar(ex))
			}
		case "header":
			header.Set(p.Name, scalar(ex))
		}
	}
	var body io.Reader = http.NoBody
	if rb := o.op.RequestBody; rb != nil {
		for ct, mt := range rb.Value.Content {
			body = bytes.NewReader(encodeBody(tb, ct, exampleOf(mt.Example, mt.Examples)))
			header.Set("Content-Type", ct)
		}
	}
	// A host the servers list does not name: the spec's server is "/", so
	// routing must not depend on where the gateway runs.
	u := "http://127.0.0.1:34567" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequest(o.method, u, body)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header = header
	req.Header.Set("Authorization", "Bearer eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhbGljZSJ9.c2ln")
	return req
}

// TestSpec_ExamplesPassValidation sends every operation's example request
// through kin-openapi's request validator, and every example response
// through its response validator, as the server's middleware and the
// end-to-end tests will. Examples that the validator refuses mean the spec
// contradicts itself.
func TestSpec_ExamplesPassValidation(t *testing.T) {
	doc := loadSpec(t)
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	opts := &openapi3filter.Options{
		AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
		MultiError:            true,
		IncludeResponseStatus: true,
	}
	for _, o := range operations(doc) {
		t.Run(o.op.OperationID, func(t *testing.T) {
			req := exampleRequest(t, o)
			route, pathParams, err := router.FindRoute(req)
			if err != nil {
				t.Fatalf("%v: route %s %s: %v", o, req.Method, req.URL, err)
			}
			if got, want := route.Operation.OperationID, o.op.OperationID; got != want {
				t.Fatalf("%s %s routed to %s, want %s", req.Method, req.URL, got, want)
			}
			in := &openapi3filter.RequestValidationInput{Request: req, PathParams: pathParams, Route: route, Options: opts}
			if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
				t.Fatalf("%v: example request %s %s is invalid: %v", o, req.Method, req.URL, err)
			}
			for code, ref := range o.op.Responses.Map() {
				status := 500
				if code != "default" {
					if status, err = strconv.Atoi(code); err != nil {
						t.Fatalf("%v: response code %q", o, code)
					}
				}
				header := http.Header{}
				for name, h := range ref.Value.Headers {
					header.Set(name, scalar(exampleOf(h.Value.Example, h.Value.Examples)))
				}
				for ct, mt := range ref.Value.Content {
					for name, ex := range allExamples(mt) {
						h := header.Clone()
						h.Set("Content-Type", ct)
						out := &openapi3filter.ResponseValidationInput{
							RequestValidationInput: in,
							Status:                 status,
							Header:                 h,
							Body:                   io.NopCloser(bytes.NewReader(encodeBody(t, ct, ex))),
							Options:                opts,
						}
						if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
							t.Errorf("%v: example %q of response %s %s is invalid: %v", o, name, code, ct, err)
						}
					}
				}
			}
		})
	}
}

// TestSpec_RejectsMalformedRequests spot-checks that the spec is precise
// enough for the validator to refuse what the gateway must refuse.
func TestSpec_RejectsMalformedRequests(t *testing.T) {
	doc := loadSpec(t)
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	commit := `{"id":"` + strings.Repeat("a", 64) + `","repo":"user.alice.notes","key":"k","parents":[],"author":"s_x","ts":1,"schema":"any/1","data":{}}`
	tests := []struct {
		name, method, target, contentType, body string
		header                                  map[string]string
		wantErr                                 bool
	}{
		{name: "Valid", method: "POST", target: "/v1/repos/user.alice.notes/commits", contentType: "application/json", body: `{"commits":[` + commit + `]}`},
		{name: "RepoUpperCase", method: "GET", target: "/v1/repos/User.Notes", wantErr: true},
		{name: "RepoLeadingDot", method: "GET", target: "/v1/repos/.notes", wantErr: true},
		{name: "RepoTooLong", method: "GET", target: "/v1/repos/" + strings.Repeat("a", 129), wantErr: true},
		{name: "KeyWithSpace", method: "GET", target: "/v1/repos/user.alice.notes/items/a%20b", wantErr: true},
		{name: "KeyTooLong", method: "GET", target: "/v1/repos/user.alice.notes/items/" + strings.Repeat("k", 201), wantErr: true},
		{name: "CommitIdUpperHex", method: "GET", target: "/v1/repos/r/commits/" + strings.Repeat("A", 64), wantErr: true},
		{name: "CommitIdShort", method: "GET", target: "/v1/repos/r/commits/" + strings.Repeat("a", 63), wantErr: true},
		{name: "LimitTooLarge", method: "GET", target: "/v1/repos/r/log?limit=1001", wantErr: true},
		{name: "WaitTooLong", method: "GET", target: "/v1/repos/r/log?wait=31", wantErr: true},
		{name: "WaitDuration", method: "GET", target: "/v1/repos/r/log?wait=25s", wantErr: true},
		{name: "CursorWithSlash", method: "GET", target: "/v1/repos/r/log?after=a%2Fb", wantErr: true},
		{name: "EventsWithoutRepo", method: "GET", target: "/v1/events", wantErr: true},
		{name: "EventsTwoRepos", method: "GET", target: "/v1/events?repo=a&repo=b.c"},
		{name: "IfMatchWeak", method: "DELETE", target: "/v1/repos/r/items/k", header: map[string]string{"If-Match": `W/"` + strings.Repeat("a", 64) + `"`}, wantErr: true},
		{name: "IfNoneMatchWeak", method: "GET", target: "/v1/repos/r/items/k", header: map[string]string{"If-None-Match": `W/"` + strings.Repeat("a", 64) + `"`}},
		{name: "UnknownBodyField", method: "PUT", target: "/v1/repos/r/items/k", contentType: "application/json", body: `{"schema":"any/1","data":{},"extra":1}`, wantErr: true},
		{name: "SchemaRefLeadingZero", method: "PUT", target: "/v1/repos/r/items/k", contentType: "application/json", body: `{"schema":"task/02","data":{}}`, wantErr: true},
		{name: "WrongContentType", method: "PUT", target: "/v1/repos/r/items/k", contentType: "text/plain", body: `{"schema":"any/1","data":{}}`, wantErr: true},
		{name: "MergePatchWithNull", method: "PATCH", target: "/v1/repos/r/items/k", contentType: "application/merge-patch+json", body: `{"notes":null}`},
		{name: "CommitUnknownField", method: "POST", target: "/v1/repos/r/commits", contentType: "application/json", body: `{"commits":[` + strings.Replace(commit, `"ts":1`, `"ts":1,"x":1`, 1) + `]}`, wantErr: true},
		{name: "CommitTsTooLarge", method: "POST", target: "/v1/repos/r/commits", contentType: "application/json", body: `{"commits":[` + strings.Replace(commit, `"ts":1`, `"ts":9007199254740992`, 1) + `]}`, wantErr: true},
		{name: "CommitSigPadded", method: "POST", target: "/v1/repos/r/commits", contentType: "application/json", body: `{"commits":[` + strings.Replace(commit, `"ts":1`, `"ts":1,"sig":"`+strings.Repeat("A", 84)+`=="`, 1) + `]}`, wantErr: true},
		{name: "CommitSetNull", method: "POST", target: "/v1/repos/r/commits", contentType: "application/json", body: `{"commits":[` + strings.Replace(commit, `"data":{}`, `"delta":{"base":"`+strings.Repeat("b", 64)+`","ops":[{"op":"set","field":"f","value":null}]}`, 1) + `]}`},
		{name: "OpUnknownKind", method: "POST", target: "/v1/repos/r/commits", contentType: "application/json", body: `{"commits":[` + strings.Replace(commit, `"data":{}`, `"delta":{"base":"`+strings.Repeat("b", 64)+`","ops":[{"op":"inc","field":"f"}]}`, 1) + `]}`, wantErr: true},
		{name: "PushEmpty", method: "POST", target: "/v1/repos/r/commits", contentType: "application/json", body: `{"commits":[]}`, wantErr: true},
		{name: "FilterKTooLarge", method: "POST", target: "/v1/repos/r/sync", contentType: "application/json", body: `{"count":0,"digest":"` + strings.Repeat("0", 64) + `","filter":{"m":64,"k":33,"salt":"0011223344556677","bits":"AAAAAAAAAAA="}}`, wantErr: true},
		{name: "FilterBitsNotBase64", method: "POST", target: "/v1/repos/r/sync", contentType: "application/json", body: `{"count":0,"digest":"` + strings.Repeat("0", 64) + `","filter":{"m":64,"k":3,"salt":"0011223344556677","bits":"AAAA_AAAAAA="}}`, wantErr: true},
		{name: "FilterMTooLarge", method: "POST", target: "/v1/repos/r/sync", contentType: "application/json", body: `{"count":0,"digest":"` + strings.Repeat("0", 64) + `","filter":{"m":67108865,"k":3,"salt":"0011223344556677","bits":"AAAAAAAAAAA="}}`, wantErr: true},
		{name: "SessionValid", method: "POST", target: "/v1/sessions", contentType: "application/json", body: `{"publicKey":"` + strings.Repeat("A", 43) + `","expires":1766392000000,"proof":"` + strings.Repeat("A", 86) + `"}`},
		{name: "SessionKeyPadded", method: "POST", target: "/v1/sessions", contentType: "application/json", body: `{"publicKey":"` + strings.Repeat("A", 42) + `=","expires":1766392000000,"proof":"` + strings.Repeat("A", 86) + `"}`, wantErr: true},
		{name: "SessionWithoutExpires", method: "POST", target: "/v1/sessions", contentType: "application/json", body: `{"publicKey":"` + strings.Repeat("A", 43) + `","proof":"` + strings.Repeat("A", 86) + `"}`, wantErr: true},
		{name: "SessionExpiresAsDate", method: "POST", target: "/v1/sessions", contentType: "application/json", body: `{"publicKey":"` + strings.Repeat("A", 43) + `","expires":"2025-12-22T08:26:40.000Z","proof":"` + strings.Repeat("A", 86) + `"}`, wantErr: true},
		{name: "GetSession", method: "GET", target: "/v1/sessions/s_6nKoWz9jY_-yd_WQWiUhZJNE"},
		{name: "RevokeSession", method: "DELETE", target: "/v1/sessions/s_6nKoWz9jY_-yd_WQWiUhZJNE"},
		{name: "SessionIdWithDot", method: "DELETE", target: "/v1/sessions/s.x", wantErr: true},
		{name: "SchemaFieldUnknownType", method: "PUT", target: "/v1/schemas/task/3", contentType: "application/json", body: `{"fields":{"title":{"type":"str"}}}`, wantErr: true},
		{name: "SchemaVersionZero", method: "PUT", target: "/v1/schemas/task/0", contentType: "application/json", body: `{"fields":{}}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader = http.NoBody
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			req, err := http.NewRequest(tt.method, "http://gateway.example:8080"+tt.target, body)
			if err != nil {
				t.Fatal(err)
			}
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			err = validate(router, req)
			if got := err != nil; got != tt.wantErr {
				t.Fatalf("%s %s: err=%v, want error %v", tt.method, tt.target, err, tt.wantErr)
			}
		})
	}
}

func validate(router routers.Router, req *http.Request) error {
	route, pathParams, err := router.FindRoute(req)
	if err != nil {
		return err
	}
	return openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{
		Request:    req,
		PathParams: pathParams,
		Route:      route,
		Options:    &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
	})
}
