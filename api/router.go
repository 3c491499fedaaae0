package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"

	"github.com/goat-gateway/goat-gateway/gen"
)

// routeTable finds the operation of openapi.yaml a request is for. It
// answers as kin-openapi's gorillamux router did (its test holds it to
// that router on every path of the spec and on odd ones): the paths are
// tried in the spec's matching order (literal paths before templated
// ones), on the request's escaped path, each parameter a non-empty
// segment, its value as escaped; the first path that matches decides, and
// a method it does not have is routers.ErrMethodNotAllowed. It compares
// segments instead of running a regular expression per path: gorillamux
// took 8 µs of a PUT's ~150 µs of CPU (issue 19, docs/benchmarks.md).
type routeTable struct {
	paths []tablePath
}

// tablePath is one path of the spec.
type tablePath struct {
	segs  []string                  // after the leading "/": a literal, or "" for a parameter
	names []string                  // the parameter's name per segment ("" for a literal)
	ops   map[string]*routers.Route // by method
}

// newRouter routes requests to the operations of the embedded
// openapi.yaml.
func newRouter() routers.Router {
	doc, err := openapi3.NewLoader().LoadFromData(gen.Spec)
	if err != nil {
		panic(fmt.Sprintf("embedded openapi.yaml does not load: %v", err))
	}
	t, err := newRouteTable(doc)
	if err != nil {
		panic(fmt.Sprintf("embedded openapi.yaml does not route: %v", err))
	}
	return t
}

func newRouteTable(doc *openapi3.T) (*routeTable, error) {
	if len(doc.Servers) > 0 {
		return nil, fmt.Errorf("servers are not routed (the gateway serves its paths at its root)")
	}
	t := &routeTable{}
	for _, path := range doc.Paths.InMatchingOrder() {
		item := doc.Paths.Value(path)
		if len(item.Servers) > 0 {
			return nil, fmt.Errorf("%s: servers are not routed", path)
		}
		rest, ok := strings.CutPrefix(path, "/")
		if !ok {
			return nil, fmt.Errorf("%s: a path starts with /", path)
		}
		p := tablePath{ops: map[string]*routers.Route{}}
		for _, seg := range strings.Split(rest, "/") {
			name, isParam := strings.CutPrefix(seg, "{")
			if isParam {
				name, isParam = strings.CutSuffix(name, "}")
			}
			switch {
			case isParam && name != "" && !strings.ContainsAny(name, "{}:"):
				p.segs, p.names = append(p.segs, ""), append(p.names, name)
			case !isParam && seg != "" && !strings.ContainsAny(seg, "{}"):
				p.segs, p.names = append(p.segs, seg), append(p.names, "")
			default:
				return nil, fmt.Errorf("%s: segment %q is neither a literal nor a plain parameter", path, seg)
			}
		}
		for method, op := range item.Operations() {
			p.ops[method] = &routers.Route{Spec: doc, Path: path, PathItem: item, Method: method, Operation: op}
		}
		t.paths = append(t.paths, p)
	}
	return t, nil
}

// FindRoute implements routers.Router. The route returned is shared: its
// callers read it.
func (t *routeTable) FindRoute(req *http.Request) (*routers.Route, map[string]string, error) {
	path := req.URL.EscapedPath()
	rest, ok := strings.CutPrefix(path, "/")
	if !ok {
		return nil, nil, routers.ErrPathNotFound
	}
	n := strings.Count(rest, "/") + 1
	for i := range t.paths {
		p := &t.paths[i]
		if len(p.segs) != n || !p.match(rest) {
			continue
		}
		route := p.ops[req.Method]
		if route == nil {
			return nil, nil, routers.ErrMethodNotAllowed
		}
		vars := make(map[string]string, len(p.names))
		s := rest
		for _, name := range p.names {
			seg, after, _ := strings.Cut(s, "/")
			if name != "" {
				vars[name] = seg
			}
			s = after
		}
		return route, vars, nil
	}
	return nil, nil, routers.ErrPathNotFound
}

// match reports whether rest (the path after its leading "/", with as many
// segments as p) matches p's segments.
func (p *tablePath) match(rest string) bool {
	for _, lit := range p.segs {
		seg, after, _ := strings.Cut(rest, "/")
		if lit == "" && seg == "" || lit != "" && seg != lit {
			return false
		}
		rest = after
	}
	return true
}
