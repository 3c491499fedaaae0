package reliability

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/gen"
)

// This file generates the bad-input suite from openapi.yaml. Every
// operation starts from a valid template request (templates, written for
// the seeded data); each case changes one thing so that the request is
// bad. A mechanical case is kept only if the spec's own validator refuses
// it (a mutation the spec allows is not bad input, and for a write it would
// change data). Semantic cases are bad by rules the spec cannot express
// (names with "..", duplicate JSON keys, nesting deeper than core allows,
// signatures, cursors) and are always kept.

// apiSpec is openapi.yaml, loaded and routable.
type apiSpec struct {
	doc     *openapi3.T
	router  routers.Router
	problem *openapi3.Schema
}

func loadSpec(tb testing.TB) *apiSpec {
	tb.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(gen.Spec)
	if err != nil {
		tb.Fatal(err)
	}
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		tb.Fatal(err)
	}
	return &apiSpec{doc: doc, router: r, problem: doc.Components.Schemas["Problem"].Value}
}

// request is one HTTP request of the suite, kept in a form that can be
// built twice (for the local validation and for the real send).
type request struct {
	method  string
	path    string // escaped
	query   string // encoded
	header  http.Header
	body    []byte
	hasBody bool
	chunked bool // no Content-Length
}

func (r request) build(ctx context.Context, base string) (*http.Request, error) {
	u := base + r.path
	if r.query != "" {
		u += "?" + r.query
	}
	var rd io.Reader
	if r.hasBody {
		rd = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, rd)
	if err != nil {
		return nil, err
	}
	for k, vs := range r.header {
		req.Header[k] = slices.Clone(vs)
	}
	if r.chunked {
		req.ContentLength = -1
		req.Body = io.NopCloser(bytes.NewReader(r.body))
	}
	return req, nil
}

// String is the exact request, for failure reports.
func (r request) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.method, r.path)
	if r.query != "" {
		b.WriteString("?" + r.query)
	}
	for _, k := range sortedOf(mapsKeys(r.header)) {
		v := strings.Join(r.header[k], ", ")
		if k == "Authorization" && len(v) > 40 {
			v = v[:40] + "..."
		}
		fmt.Fprintf(&b, "\n%s: %.200s", k, v)
	}
	if r.hasBody {
		fmt.Fprintf(&b, "\n\n%.300q (%d bytes", r.body, len(r.body))
		if r.chunked {
			b.WriteString(", chunked")
		}
		b.WriteString(")")
	}
	return b.String()
}

func mapsKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// expectation is what a case must get.
type expectation int

const (
	// want4xx: a 4xx application/problem+json.
	want4xx expectation = iota
	// want4xxOrRejected: pushes answer per commit; a structurally valid
	// push of bad commits is a 200 in which every commit is rejected.
	want4xxOrRejected
)

type badCase struct {
	op       string // operationId, or "route" for cases no operation matches
	name     string
	req      request
	semantic bool
	want     expectation
}

// template is a valid request of one operation on the seeded data.
type template struct {
	path      map[string]string
	query     url.Values
	header    map[string]string
	body      any // decoded JSON; nil for none
	rawBody   []byte
	authQuery bool // the token goes in access_token, not the header
}

// generator builds the cases.
type generator struct {
	spec      *apiSpec
	templates map[string]template
	token     string
	bodyLimit int
	cases     []badCase
	dropped   map[string]int // per operation: mutations the spec allows
	covered   map[string]int // per operation: cases kept
}

func (g *generator) add(c badCase) {
	if !c.semantic && g.specAccepts(c.req) {
		g.dropped[c.op]++
		return
	}
	g.covered[c.op]++
	g.cases = append(g.cases, c)
}

// specAccepts reports whether openapi.yaml's validator accepts req.
func (g *generator) specAccepts(r request) bool {
	req, err := r.build(context.Background(), "http://gateway.test")
	if err != nil {
		return false
	}
	route, params, err := g.spec.router.FindRoute(req)
	if err != nil {
		return false
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	return openapi3filter.ValidateRequest(context.Background(), in) == nil
}

var methods = []string{"GET", "PUT", "POST", "PATCH", "DELETE"}

// operation is one operation of the spec with its merged parameters.
type operation struct {
	path, method string
	op           *openapi3.Operation
	params       []*openapi3.Parameter
	tpl          template
}

func (g *generator) operations(tb testing.TB) []operation {
	tb.Helper()
	var ops []operation
	paths := g.spec.doc.Paths.Map()
	for _, p := range sortedOf(mapsKeys(paths)) {
		item := paths[p]
		for _, m := range methods {
			op := item.GetOperation(m)
			if op == nil {
				continue
			}
			tpl, ok := g.templates[op.OperationID]
			if !ok {
				tb.Fatalf("no bad-input template for operation %s (%s %s): add one to templates", op.OperationID, m, p)
			}
			var params []*openapi3.Parameter
			for _, pr := range append(slices.Clone(item.Parameters), op.Parameters...) {
				params = append(params, pr.Value)
			}
			ops = append(ops, operation{path: p, method: m, op: op, params: params, tpl: tpl})
		}
	}
	for id := range g.templates {
		if !slices.ContainsFunc(ops, func(o operation) bool { return o.op.OperationID == id }) {
			tb.Fatalf("template %s names no operation of openapi.yaml", id)
		}
	}
	return ops
}

// base renders the template as a request; over replaces parameters (a nil
// slice removes one), body replaces the body.
type override struct {
	params  map[string][]string
	rawPath map[string]bool // path parameters not to escape
	header  map[string]string
	body    []byte
	noBody  bool
	ctype   string
	chunked bool
}

func (g *generator) render(o operation, ov override) request {
	r := request{method: o.method, header: http.Header{}}
	path := o.path
	q := url.Values{}
	for k, vs := range o.tpl.query {
		q[k] = slices.Clone(vs)
	}
	hdr := map[string]string{}
	for k, v := range o.tpl.header {
		hdr[k] = v
	}
	for _, p := range o.params {
		vals, over := ov.params[p.Name]
		switch p.In {
		case "path":
			v := o.tpl.path[p.Name]
			if over {
				v = ""
				if len(vals) > 0 {
					v = vals[0]
				}
			}
			if !ov.rawPath[p.Name] {
				v = url.PathEscape(v)
			}
			path = strings.ReplaceAll(path, "{"+p.Name+"}", v)
		case "query":
			if over {
				if vals == nil {
					q.Del(p.Name)
				} else {
					q[p.Name] = vals
				}
			}
		case "header":
			if over {
				if vals == nil {
					delete(hdr, p.Name)
				} else {
					hdr[p.Name] = vals[0]
				}
			}
		}
	}
	if o.tpl.authQuery {
		if _, over := ov.params["access_token"]; !over {
			q.Set("access_token", g.token)
		}
	} else {
		hdr["Authorization"] = "Bearer " + g.token
	}
	for k, v := range ov.header {
		if v == "" {
			delete(hdr, k)
		} else {
			hdr[k] = v
		}
	}
	r.path = path
	r.query = q.Encode()
	for k, v := range hdr {
		r.header.Set(k, v)
	}
	if o.op.RequestBody != nil && !ov.noBody {
		r.hasBody = true
		r.body = o.tpl.rawBody
		if o.tpl.body != nil {
			r.body, _ = json.Marshal(o.tpl.body)
		}
		if ov.body != nil {
			r.body = ov.body
		}
		ct := contentType(o.op)
		if ov.ctype != "" {
			ct = ov.ctype
		}
		if ct != "-" {
			r.header.Set("Content-Type", ct)
		}
		r.chunked = ov.chunked
	}
	return r
}

func contentType(op *openapi3.Operation) string {
	if op.RequestBody == nil {
		return ""
	}
	for _, ct := range sortedOf(mapsKeys(op.RequestBody.Value.Content)) {
		return ct
	}
	return ""
}

func (g *generator) generate(tb testing.TB) {
	tb.Helper()
	ops := g.operations(tb)
	for _, o := range ops {
		id := o.op.OperationID
		for _, p := range o.params {
			for _, m := range paramMutations(p) {
				ov := override{params: map[string][]string{p.Name: m.values}}
				if m.raw {
					ov.rawPath = map[string]bool{p.Name: true}
				}
				g.add(badCase{op: id, name: fmt.Sprintf("%s %s: %s", p.In, p.Name, m.name), req: g.render(o, ov)})
			}
			if p.Name == "repo" && p.In == "path" {
				for _, name := range []string{"a..b", "x..", "public..", "sys.sessions", "sys.nope"} {
					if strings.HasPrefix(name, "sys.") && o.method == "GET" {
						continue // system repositories are readable by design
					}
					g.add(badCase{op: id, name: "path repo: refused name " + name, semantic: true, want: pushWant(id),
						req: g.render(o, override{params: map[string][]string{"repo": {name}}})})
				}
			}
		}
		if o.op.RequestBody != nil {
			g.bodyCases(o)
		}
		if secured(g.spec.doc, o.op) {
			g.authCases(o)
		}
	}
	g.routeCases(ops)
}

func pushWant(op string) expectation {
	if op == "pushCommits" || op == "syncRound" {
		return want4xxOrRejected
	}
	return want4xx
}

func secured(doc *openapi3.T, op *openapi3.Operation) bool {
	if op.Security != nil {
		return len(*op.Security) > 0
	}
	return len(doc.Security) > 0
}

// mutation is one bad value of a parameter.
type mutation struct {
	name   string
	values []string // nil: leave the parameter out
	raw    bool     // a path value sent unescaped
}

// hostile strings that break every name, key, id and cursor pattern of
// the spec in a different way.
var hostile = []struct{ name, v string }{
	{"path traversal", "../../../etc/passwd"},
	{"encoded traversal", "..%2F..%2Fetc%2Fpasswd"},
	{"backslash traversal", `..\..\windows\win.ini`},
	{"unicode", "ünïcødé-☃"},
	{"right-to-left override", "abc\u202edef"},
	{"emoji", "😀"},
	{"space", "a b"},
	{"upper case", "UPPER"},
	{"markup", "<script>alert(1)</script>"},
	{"quote", `a"b'c`},
	{"NUL", "a\x00b"},
	{"newline", "a\nb"},
	{"overlong utf-8 dot", "%C0%AE%C0%AE"},
}

func paramMutations(p *openapi3.Parameter) []mutation {
	s := p.Schema.Value
	var ms []mutation
	one := func(name, v string) { ms = append(ms, mutation{name: name, values: []string{v}}) }
	if p.Required && p.In != "path" {
		ms = append(ms, mutation{name: "missing", values: nil})
	}
	switch {
	case s.Type.Is("array"):
		item := s.Items.Value
		for _, m := range scalarMutations(item, p.In) {
			ms = append(ms, mutation{name: "element " + m.name, values: m.values})
		}
		if s.MaxItems != nil {
			vals := make([]string, *s.MaxItems+1)
			for i := range vals {
				vals[i] = fmt.Sprintf("r%d", i)
			}
			ms = append(ms, mutation{name: "too many elements", values: vals})
		}
		if s.UniqueItems {
			ms = append(ms, mutation{name: "duplicate elements", values: []string{"r", "r"}})
		}
	default:
		ms = append(ms, scalarMutations(s, p.In)...)
	}
	if p.In == "path" {
		ms = append(ms, mutation{name: "raw traversal", values: []string{"../../../../etc/passwd"}, raw: true})
		ms = append(ms, mutation{name: "raw dot-dot", values: []string{".."}, raw: true})
		one("empty", "")
	}
	if p.In == "header" {
		// Values no HTTP client can send are not the handlers' business.
		ms = slices.DeleteFunc(ms, func(m mutation) bool {
			return len(m.values) > 0 && strings.ContainsFunc(m.values[0], func(r rune) bool { return r < 0x20 || r == 0x7f })
		})
	}
	return ms
}

func scalarMutations(s *openapi3.Schema, in string) []mutation {
	var ms []mutation
	one := func(name, v string) { ms = append(ms, mutation{name: name, values: []string{v}}) }
	switch {
	case s.Type.Is("integer") || s.Type.Is("number"):
		one("not a number", "abc")
		one("fraction", "1.5")
		one("hex", "0x10")
		one("overflow", "99999999999999999999999999")
		one("empty", "")
		one("NaN", "NaN")
		if s.Min != nil {
			one("below minimum", strconv.FormatFloat(*s.Min-1, 'f', -1, 64))
		}
		if s.Max != nil {
			one("above maximum", strconv.FormatFloat(*s.Max+1, 'f', -1, 64))
		}
	case s.Type.Is("boolean"):
		one("not a boolean", "yes")
		one("number", "2")
		one("empty", "")
	default:
		if s.MaxLength != nil {
			one("too long", strings.Repeat("a", int(*s.MaxLength)+1))
		}
		one("huge", strings.Repeat("a", 16<<10))
		if s.MinLength > 0 && in != "path" {
			one("too short", "")
		}
		for _, h := range hostile {
			one(h.name, h.v)
		}
		if len(s.Enum) > 0 {
			one("not in enum", "not-in-enum")
		}
	}
	return ms
}

// bodyCases mutates the request body of o.
func (g *generator) bodyCases(o operation) {
	id := o.op.OperationID
	add := func(name string, semantic bool, ov override) {
		g.add(badCase{op: id, name: "body: " + name, semantic: semantic, want: pushWant(id), req: g.render(o, ov)})
	}
	valid := g.render(o, override{}).body
	for _, m := range []struct{ name, body string }{
		{"empty", ""},
		{"truncated", string(valid[:len(valid)/2])},
		{"single quotes", `{'a':1}`},
		{"trailing comma", strings.TrimSuffix(string(valid), "}") + `,}`},
		{"trailing garbage", string(valid) + " x"},
		{"two documents", string(valid) + string(valid)},
		{"byte order mark", "\ufeff" + string(valid)},
		{"NaN", `{"a":NaN}`},
		{"infinite number", `{"a":1e999}`},
		{"invalid UTF-8", "{\"a\":\"\xff\xfe\"}"},
		{"unterminated string", `{"a":"abc`},
		{"null", "null"},
		{"array", "[]"},
		{"string", `"s"`},
		{"number", "1"},
		{"boolean", "true"},
		{"top-level nesting 10000", strings.Repeat("[", 10000) + strings.Repeat("]", 10000)},
	} {
		add(m.name, false, override{body: []byte(m.body)})
	}
	add("wrong Content-Type", false, override{ctype: "text/plain"})
	add("no Content-Type", false, override{ctype: "-"})
	add("form Content-Type", false, override{ctype: "application/x-www-form-urlencoded"})

	// Over the size limit, announced and chunked.
	over := bytes.Buffer{}
	over.WriteString(`{"pad":"`)
	over.WriteString(strings.Repeat("x", g.bodyLimit))
	over.WriteString(`"}`)
	add("over the size limit", true, override{body: over.Bytes()})
	add("over the size limit, chunked", true, override{body: over.Bytes(), chunked: true})

	if o.tpl.body == nil {
		return
	}
	schema := o.op.RequestBody.Value.Content[contentType(o.op)].Schema.Value
	// A duplicate key whose first value is wrong: a last-wins parser sees
	// a valid body, a strict one refuses it. The gateway must refuse.
	if obj, ok := o.tpl.body.(map[string]any); ok && len(obj) > 0 {
		k := sortedOf(mapsKeys(obj))[0]
		dup := append([]byte(`{"`+k+`":"duplicate",`), valid[1:]...)
		add("duplicate key "+k, true, override{body: dup})
	}
	walkSchema(schema, o.tpl.body, nil, func(name string, path []any, v any, del bool, semantic bool) {
		add(name, semantic, override{body: marshalHostile(replaceAt(o.tpl.body, path, v, del))})
	})
}

// walkSchema calls emit with every single-point change of v (at path) that
// breaks schema s.
func walkSchema(s *openapi3.Schema, v any, path []any, emit func(name string, path []any, nv any, del bool, semantic bool)) {
	at := pointer(path)
	wrong := []any{float64(12345), "str", true, []any{}, map[string]any{}, nil}
	n := 0
	for _, w := range wrong {
		if s.VisitJSON(w) != nil && n < 3 {
			emit(fmt.Sprintf("%s: wrong type %s", at, jsonType(w)), path, w, false, false)
			n++
		}
	}
	if freeForm(s) {
		for _, depth := range []int{65, 1000, 10000} {
			emit(fmt.Sprintf("%s: nesting %d", at, depth), path, map[string]any{"deep": nested(depth)}, false, true)
		}
		emit(at+": lone surrogate", path, map[string]any{"s": loneSurrogate}, false, true)
		emit(at+": invalid UTF-8", path, map[string]any{"s": invalidUTF8}, false, true)
		emit(at+": number out of range", path, map[string]any{"n": outOfRange}, false, true)
	}
	switch v := v.(type) {
	case string:
		if s.MaxLength != nil {
			emit(at+": too long", path, strings.Repeat("a", int(*s.MaxLength)+1), false, false)
		}
		emit(at+": huge string", path, strings.Repeat("a", 100<<10), false, false)
		if s.MinLength > 0 {
			emit(at+": empty", path, "", false, false)
		}
		for _, h := range hostile[:6] {
			emit(at+": "+h.name, path, h.v, false, false)
		}
		if len(s.Enum) > 0 {
			emit(at+": not in enum", path, "not-in-enum", false, false)
		}
	case float64:
		if s.Min != nil {
			emit(at+": below minimum", path, *s.Min-1, false, false)
		}
		if s.Max != nil {
			emit(at+": above maximum", path, *s.Max+1, false, false)
		}
		if s.Type.Is("integer") {
			emit(at+": fraction", path, v+0.5, false, false)
		}
		emit(at+": huge", path, 1e300, false, false)
	case []any:
		if s.MaxItems != nil && len(v) > 0 {
			many := make([]any, *s.MaxItems+1)
			for i := range many {
				many[i] = v[0]
			}
			emit(at+": too many items", path, many, false, false)
		}
		if s.MinItems > 0 {
			emit(at+": too few items", path, []any{}, false, false)
		}
		if s.UniqueItems && len(v) > 0 {
			emit(at+": duplicate items", path, []any{v[0], v[0]}, false, false)
		}
		if len(v) > 0 && s.Items != nil {
			walkSchema(s.Items.Value, v[0], append(slices.Clone(path), 0), emit)
		}
	case map[string]any:
		for _, k := range s.Required {
			if _, ok := v[k]; ok {
				emit(fmt.Sprintf("%s: missing required %s", at, k), append(slices.Clone(path), k), nil, true, false)
			}
		}
		if s.AdditionalProperties.Has != nil && !*s.AdditionalProperties.Has {
			emit(at+": extra field", append(slices.Clone(path), "zzExtra"), float64(1), false, false)
		}
		for _, k := range sortedOf(mapsKeys(v)) {
			var ps *openapi3.Schema
			if p := s.Properties[k]; p != nil {
				ps = p.Value
			} else if s.AdditionalProperties.Schema != nil {
				ps = s.AdditionalProperties.Schema.Value
			}
			if ps != nil {
				walkSchema(ps, v[k], append(slices.Clone(path), k), emit)
			}
		}
	}
}

// freeForm reports whether s takes any object members (item data, merge
// patches): the places where only the gateway's own parser stands between
// hostile JSON and storage.
func freeForm(s *openapi3.Schema) bool {
	return s.Type.Is("object") && len(s.Properties) == 0 && s.AdditionalProperties.Schema == nil &&
		(s.AdditionalProperties.Has == nil || *s.AdditionalProperties.Has)
}

// Placeholders for JSON that encoding/json will not write; marshalHostile
// puts the real bytes in.
const (
	loneSurrogate = "@@lone-surrogate@@"
	invalidUTF8   = "@@invalid-utf8@@"
	outOfRange    = "@@out-of-range@@"
)

func marshalHostile(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	b = bytes.ReplaceAll(b, []byte(`"`+loneSurrogate+`"`), []byte(`"\ud800"`))
	b = bytes.ReplaceAll(b, []byte(`"`+invalidUTF8+`"`), []byte("\"\xff\xfe\""))
	return bytes.ReplaceAll(b, []byte(`"`+outOfRange+`"`), []byte(`1e400`))
}

func nested(depth int) any {
	var v any = "bottom"
	for range depth {
		v = []any{v}
	}
	return v
}

func jsonType(v any) string {
	switch v.(type) {
	case float64:
		return "number"
	case string:
		return "string"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "null"
}

func pointer(path []any) string {
	var b strings.Builder
	for _, p := range path {
		fmt.Fprintf(&b, "/%v", p)
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}

// replaceAt returns a copy of root with the value at path replaced by v
// (or removed).
func replaceAt(root any, path []any, v any, del bool) any {
	if len(path) == 0 {
		return v
	}
	switch r := root.(type) {
	case map[string]any:
		out := make(map[string]any, len(r)+1)
		for k, x := range r {
			out[k] = x
		}
		k := path[0].(string)
		if len(path) == 1 {
			if del {
				delete(out, k)
			} else {
				out[k] = v
			}
			return out
		}
		out[k] = replaceAt(r[k], path[1:], v, del)
		return out
	case []any:
		out := slices.Clone(r)
		i := path[0].(int)
		if len(path) == 1 {
			if del {
				return slices.Delete(out, i, i+1)
			}
			out[i] = v
			return out
		}
		out[i] = replaceAt(r[i], path[1:], v, del)
		return out
	}
	panic(fmt.Sprintf("replaceAt: %T at %v", root, path))
}

// authCases send a secured operation's template with bad credentials.
func (g *generator) authCases(o operation) {
	id := o.op.OperationID
	anonymous := false // the operation's own security lists {}: no credentials is a valid call
	if o.op.Security != nil {
		for _, req := range *o.op.Security {
			anonymous = anonymous || len(req) == 0
		}
	}
	for _, a := range badCredentials {
		if a.header == "" && (anonymous || id == "listRepos") {
			// listRepos: anonymous callers list what they may read (public
			// repositories); getSession: records are public certificates.
			continue
		}
		ov := override{header: map[string]string{"Authorization": a.header}}
		if o.tpl.authQuery {
			ov.params = map[string][]string{"access_token": nil}
		}
		g.add(badCase{op: id, name: "auth: " + a.name, semantic: true, req: g.render(o, ov)})
	}
	if !o.tpl.authQuery {
		r := g.render(o, override{})
		q, _ := url.ParseQuery(r.query)
		q.Set("access_token", g.token)
		r.query = q.Encode()
		g.add(badCase{op: id, name: "auth: access_token outside /v1/events", semantic: true, req: r})
	}
}

// badCredentials are filled in by the test (some need the node's keys).
var badCredentials []struct{ name, header string }

// routeCases are requests no operation takes: wrong methods and paths that
// escape the routes.
func (g *generator) routeCases(ops []operation) {
	byPath := map[string]operation{}
	for _, o := range ops {
		if _, ok := byPath[o.path]; !ok {
			byPath[o.path] = o
		}
	}
	for _, p := range sortedOf(mapsKeys(byPath)) {
		o := byPath[p]
		item := g.spec.doc.Paths.Value(p)
		for _, m := range methods {
			if item.GetOperation(m) != nil {
				continue
			}
			r := g.render(o, override{})
			r.method = m
			g.add(badCase{op: o.op.OperationID, name: "wrong method " + m, req: r})
		}
	}
	for _, p := range []string{
		"/v1/repos/r/items/../../../../etc/passwd",
		"/v1/repos/%2e%2e/items/k",
		"/v1/repos/%2e%2e%2f%2e%2e%2fetc/items/k",
		"/v1/repos/r/items/k%00",
		"/v1//repos",
		"/v1/repos/r%2Fitems",
		"/v1/repos/r/items/%C0%AE%C0%AE",
		"/v1/nope",
		"/v1/repos/r/commits/" + strings.Repeat("ab", 32) + "/x",
		"/v1/repos/r/items/k/history/x",
		"/v2/repos",
		"/" + strings.Repeat("a/", 4000),
	} {
		r := request{method: "GET", path: p, header: http.Header{"Authorization": {"Bearer " + g.token}}}
		g.add(badCase{op: "route", name: "path " + fmt.Sprintf("%.60s", p), semantic: true, req: r})
	}
}

// handCases are written out: Bloom filters, base64, hex, cursors, event
// ids, and rules only the handlers know.
func (g *generator) handCases(tb testing.TB, ops []operation, hc []handCase) {
	tb.Helper()
	byID := map[string]operation{}
	for _, o := range ops {
		byID[o.op.OperationID] = o
	}
	for _, h := range hc {
		o, ok := byID[h.op]
		if !ok {
			tb.Fatalf("hand case %q: no operation %s", h.name, h.op)
		}
		ov := h.ov
		if h.body != nil {
			ov.body = marshalHostile(h.body(core.Clone(o.tpl.body)))
		}
		g.add(badCase{op: h.op, name: h.name, semantic: true, want: pushWant(h.op), req: g.render(o, ov)})
	}
}

// handCase changes a template's parameters and/or body.
type handCase struct {
	op, name string
	ov       override
	body     func(tpl any) any
}

func sortedOf[E cmp.Ordered](s []E) []E {
	slices.Sort(s)
	return s
}
