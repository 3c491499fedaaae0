package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/labstack/echo/v5"
	"github.com/labstack/echo/v5/middleware"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/gen/apiserver"
)

type ctxKey int

const (
	principalKey ctxKey = iota
	rawBodyKey
	bodyValueKey
	routeKey
)

// matchedRoute is the operation of openapi.yaml a request was routed to.
type matchedRoute struct {
	route  *routers.Route
	params map[string]string
}

// reqState is what the middleware chain learns of a request, for the
// middlewares after it and the handlers. It lives in the remote that
// withRemote put in the request's context, and each middleware sets its
// field there, before calling the next: one context value and no copy of
// the request per middleware (issue 19: four copies of each PUT). A
// request without it (a handler served without withRemote) carries each
// value as a context value of its own instead.
type reqState struct {
	principal    auth.Principal
	hasPrincipal bool
	route        matchedRoute
	routed       bool
	rawBody      []byte
	bodyRead     bool
	bodyValue    any
}

// stateFrom returns ctx's reqState, or nil.
func stateFrom(ctx context.Context) *reqState {
	if r, ok := ctx.Value(remoteKey{}).(*remote); ok {
		return &r.req
	}
	return nil
}

// withValue replaces c's request with one whose context has key set to
// v: for a request without a reqState.
func withValue(c *echo.Context, key ctxKey, v any) {
	r := c.Request()
	c.SetRequest(r.WithContext(context.WithValue(r.Context(), key, v)))
}

// principalFrom returns the caller of the request (anonymous when the
// request carried no token).
func principalFrom(ctx context.Context) auth.Principal {
	if st := stateFrom(ctx); st != nil && st.hasPrincipal {
		return st.principal
	}
	if p, ok := ctx.Value(principalKey).(auth.Principal); ok {
		return p
	}
	return auth.Anonymous()
}

// rawBody returns the request body as received (bounded by the body
// limit), for the operations whose protocol decoders read the bytes
// themselves (pushes and sync rounds: commits must keep their bytes).
func rawBody(ctx context.Context) []byte {
	b, _ := rawBodyOf(ctx)
	return b
}

// rawBodyOf is rawBody, and whether bodyMiddleware read the body.
func rawBodyOf(ctx context.Context) ([]byte, bool) {
	if st := stateFrom(ctx); st != nil && st.bodyRead {
		return st.rawBody, true
	}
	b, ok := ctx.Value(rawBodyKey).([]byte)
	return b, ok
}

// bodyValue returns the request body parsed (once, strictly, by
// core.ParseJSON) and validated against the operation's schema.
func bodyValue(ctx context.Context) any {
	if st := stateFrom(ctx); st != nil && st.bodyValue != nil {
		return st.bodyValue
	}
	return ctx.Value(bodyValueKey)
}

// routeFrom returns the operation routeMiddleware found for the request.
func routeFrom(ctx context.Context) (matchedRoute, bool) {
	if st := stateFrom(ctx); st != nil && st.routed {
		return st.route, true
	}
	m, ok := ctx.Value(routeKey).(matchedRoute)
	return m, ok
}

// bodyObject returns the parsed body as an object.
func bodyObject(ctx context.Context) (map[string]any, error) {
	m, ok := bodyValue(ctx).(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: body must be a JSON object", core.ErrInvalid)
	}
	return m, nil
}

func (s *Server) newEcho() *echo.Echo {
	e := echo.NewWithConfig(echo.Config{
		Logger:           s.log,
		HTTPErrorHandler: s.errorHandler,
	})
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{}))
	e.Use(s.metrics.middleware)
	e.Use(s.authMiddleware)
	e.Use(s.routeMiddleware)
	e.Use(s.bodyMiddleware)
	e.Use(s.validationMiddleware())
	apiserver.RegisterHandlers(e, rawBodies{apiserver.NewStrictHandler(handlers{s}, nil), handlers{s}})
	return e
}

// errorHandler writes every error as application/problem+json. Errors from
// our handlers carry core sentinels; echo's own (unknown route, method not
// allowed, parameter binding) carry a status.
func (s *Server) errorHandler(c *echo.Context, err error) {
	if rw, uerr := echo.UnwrapResponse(c.Response()); uerr == nil && rw.Committed {
		return
	}
	p := ProblemFor(err)
	var he *echo.HTTPError
	var sc echo.HTTPStatusCoder
	switch {
	case errors.As(err, &he):
		p = problemForStatus(he.Code, he.Message)
	case errors.As(err, &sc):
		p = problemForStatus(sc.StatusCode(), "")
	}
	if p.Status == http.StatusNotFound && (he != nil || sc != nil) {
		p.Detail = "no such route: " + c.Request().Method + " " + c.Request().URL.Path
	}
	if p.Status >= 500 && p.Status != http.StatusServiceUnavailable {
		s.log.Error("request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
	}
	if bodyUnread(c.Request()) {
		// The body of a request refused before it was read, or cut while
		// it arrived, is not read before the answer, and the connection
		// closes after it. net/http reads up to 256 KiB of what is left
		// when it closes the body; without a deadline a client that
		// stalls a small body would hold its connection forever, and
		// with none of it read a client still sending would meet a reset
		// that drops the answer it has not read yet. So it gets a short
		// grace: a small body still arriving is drained and the answer
		// read; a stalled one is cut when the grace ends.
		c.Response().Header().Set("Connection", "close")
		_ = http.NewResponseController(c.Response()).SetReadDeadline(time.Now().Add(min(s.cfg.BodyReadTimeout, drainGrace)))
	}
	if ra := (*retryAfterError)(nil); errors.As(err, &ra) {
		c.Response().Header().Set("Retry-After", strconv.FormatInt(ra.seconds(), 10))
	}
	writeProblem(c.Response(), p)
}

// drainGrace bounds how long the rest of a refused body is read after the
// answer (net/http reads at most 256 KiB of it), so that a client still
// sending it reads the answer instead of a connection reset.
const drainGrace = time.Second

// bodyUnread reports whether r has a body that bodyMiddleware did not read
// whole.
func bodyUnread(r *http.Request) bool {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return false
	}
	_, read := rawBodyOf(r.Context())
	return !read
}

func problemForStatus(status int, msg string) Problem {
	slug, title := "invalid-request", "Invalid request"
	switch status {
	case http.StatusNotFound:
		slug, title = "not-found", "Not found"
	case http.StatusRequestEntityTooLarge:
		slug, title = "too-large", "Too large"
	case http.StatusUnsupportedMediaType:
		slug, title = "unsupported-media-type", "Unsupported media type"
	case http.StatusUnauthorized:
		slug, title = "unauthenticated", "Authentication required"
	case http.StatusForbidden:
		slug, title = "forbidden", "Forbidden"
	case http.StatusTooManyRequests:
		slug, title = "rate-limited", "Too many requests"
	case http.StatusServiceUnavailable:
		slug, title = "unavailable", "Unavailable"
	case http.StatusMethodNotAllowed:
		title = "Method not allowed"
	default:
		if status >= 500 {
			slug, title, msg = "internal", "Internal error", "internal error; see the gateway log"
		}
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	return Problem{Type: ProblemBase + slug, Title: title, Status: status, Detail: msg}
}

// maxDetail is the Problem schema's maxLength of detail; details quote
// input (an unknown path, a bad value), so they are cut to fit.
const maxDetail = 4096

func writeProblem(w http.ResponseWriter, p Problem) {
	if len(p.Detail) > maxDetail {
		p.Detail = strings.ToValidUTF8(p.Detail[:maxDetail-3], "") + "..."
	}
	b, _ := json.Marshal(p)
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Del("ETag")
	if (p.Status == http.StatusTooManyRequests || p.Status == http.StatusServiceUnavailable) && h.Get("Retry-After") == "" {
		h.Set("Retry-After", "5")
	}
	if p.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="goat-gateway"`)
	}
	w.WriteHeader(p.Status)
	_, _ = w.Write(b)
}

// routeMiddleware finds the operation of openapi.yaml a request is for
// (405 for a method the path does not have) and, for an operation with a
// body, asks the node whether the caller may do it at all: one who may not
// is answered 401/403/404 before a byte of the body is read (DESIGN
// section 9: resources are bounded before they are spent). Unknown routes
// fall through to echo's 404.
func (s *Server) routeMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		r := c.Request()
		route, params, err := s.router.FindRoute(r)
		if err != nil {
			if errors.Is(err, routers.ErrMethodNotAllowed) {
				return echo.NewHTTPError(http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed on "+r.URL.Path)
			}
			return next(c)
		}
		if check := preauthorize[route.Operation.OperationID]; check != nil {
			if err := check(s.node, principalFrom(r.Context()), params); err != nil {
				return err
			}
		}
		m := matchedRoute{route, params}
		if st := stateFrom(r.Context()); st != nil {
			st.route, st.routed = m, true
		} else {
			withValue(c, routeKey, m)
		}
		return next(c)
	}
}

// bodyMiddleware reads the request body up to the body limit (413 past it)
// and keeps the bytes for the validation middleware and the handlers; the
// body is read once, after the caller was authenticated and authorized.
// The body must arrive within BodyReadTimeout (a trickling body is cut
// with a 400), and its bytes are held in the server's body budget until
// the request ends (429 when the budget is spent).
func (s *Server) bodyMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		r := c.Request()
		if r.Body == nil || r.Body == http.NoBody || r.Method == http.MethodGet || r.Method == http.MethodHead {
			return next(c)
		}
		if r.ContentLength > s.cfg.BodyLimit {
			return fmt.Errorf("%w: request body of %d bytes is over the %d byte limit", core.ErrTooLarge, r.ContentLength, s.cfg.BodyLimit)
		}
		// Per request, not http.Server.ReadTimeout: that would also cut
		// the long-lived SSE streams, which have no body.
		rc := http.NewResponseController(c.Response())
		_ = rc.SetReadDeadline(time.Now().Add(s.cfg.BodyReadTimeout))
		b, release, err := s.readBody(r, s.cfg.BodyLimit)
		if err != nil {
			// The rest is never read (errorHandler closes the connection):
			// closing the body here would read on without a deadline.
			return err
		}
		// Cleared at once: net/http keeps reading the connection in the
		// background after the body, and a deadline passing there would
		// cancel the request's context mid-handler.
		_ = rc.SetReadDeadline(time.Time{})
		_ = r.Body.Close()
		defer release()
		if st := stateFrom(r.Context()); st != nil {
			st.rawBody, st.bodyRead = b, true
		} else {
			withValue(c, rawBodyKey, b)
		}
		// A copy: a handler must not modify the request it was given.
		r = c.Request().WithContext(c.Request().Context())
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.ContentLength = int64(len(b))
		c.SetRequest(r)
		return next(c)
	}
}

// publicPaths need no token and ignore one.
var publicPaths = map[string]bool{
	"/healthz": true, "/readyz": true, "/metrics": true, "/openapi.yaml": true, "/v1/info": true,
}

// authMiddleware turns the bearer token (or, on /v1/events only, the
// access_token query parameter: EventSource cannot send headers) into the
// request's principal. No token means anonymous; a bad token is a 401,
// never silently anonymous.
func (s *Server) authMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		r := c.Request()
		if publicPaths[r.URL.Path] {
			return next(c)
		}
		tok, err := auth.TokenFromHeader(r.Header)
		if err != nil {
			return err
		}
		if r.URL.Path == "/v1/events" {
			qtok, err := auth.TokenFromQuery(r.URL.Query())
			if err != nil {
				return err
			}
			// Generated clients apply every security scheme the spec
			// lists, so they send the same token twice: that is one
			// token. Two different ones leave no principal to choose.
			if qtok != "" && tok != "" && qtok != tok {
				return fmt.Errorf("%w: the Authorization header and access_token carry different tokens; send one token", core.ErrInvalid)
			}
			if tok == "" {
				tok = qtok
			}
		} else if r.URL.Query().Has("access_token") {
			return fmt.Errorf("%w: access_token is accepted on /v1/events only; send an Authorization header", core.ErrInvalid)
		}
		p := auth.Anonymous()
		if tok != "" {
			if p, err = s.verifier.Verify(r.Context(), tok, s.cfg.Now()); err != nil {
				return err
			}
		}
		if st := stateFrom(r.Context()); st != nil {
			st.principal, st.hasPrincipal = p, true
		} else {
			withValue(c, principalKey, p)
		}
		return next(c)
	}
}

// protocolBodies are the operations whose bodies their own protocol
// decoder (gsync.DecodeRequest) reads strictly and completely (unknown
// fields, types, sizes): they are not parsed a second time here.
var protocolBodies = map[string]bool{"syncRound": true}

// validationMiddleware checks every request against openapi.yaml before a
// handler sees it: parameters and headers, the content type, and the body,
// which it parses once (core.ParseJSON: duplicate keys, depth, UTF-8) and
// validates as a value against the operation's schema, for the handler to
// use. Unknown routes fall through to echo's 404/405.
func (s *Server) validationMiddleware() echo.MiddlewareFunc {
	opts := &openapi3filter.Options{
		AuthenticationFunc:  openapi3filter.NoopAuthenticationFunc,
		ExcludeRequestBody:  true,
		ExcludeResponseBody: true,
		// Without this, every schema error's message embeds the offending
		// value, JSON-indented: a 20 KB body of 10,000 nested arrays made
		// a 200 MB message and took seconds of CPU per request.
		SchemaValidationOptions: []openapi3.SchemaValidationOption{openapi3.DisableSchemaErrorDetails()},
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c *echo.Context) error {
			r := c.Request()
			m, ok := routeFrom(r.Context())
			if !ok {
				return next(c)
			}
			route, params := m.route, m.params
			if err := checkQueryNames(r, route); err != nil {
				return err
			}
			// The validator would read the whole body again, once per
			// security requirement, to hand each authentication function
			// a fresh copy; ours is a no-op and the body is validated
			// below from bodyMiddleware's bytes, so it gets none (issue
			// 17: copying anonymous 9 MiB sync bodies a second time was a
			// fifth of the gateway's CPU under the soak's attack mix).
			vr := r.WithContext(r.Context())
			vr.Body = http.NoBody
			in := &openapi3filter.RequestValidationInput{Request: vr, PathParams: params, Route: route, Options: opts}
			if err := openapi3filter.ValidateRequest(r.Context(), in); err != nil {
				return validationProblem(err)
			}
			if rb := route.Operation.RequestBody; rb != nil && rb.Value != nil {
				v, err := validateBody(r, rb.Value, route.Operation.OperationID)
				if err != nil {
					return err
				}
				if v != nil {
					if st := stateFrom(r.Context()); st != nil {
						st.bodyValue = v
					} else {
						withValue(c, bodyValueKey, v)
					}
				}
			}
			return next(c)
		}
	}
}

// checkQueryNames refuses query parameters the operation does not have
// (DESIGN section 9: like unknown body fields): a misspelled one, such as
// log?cursor= for after=, would otherwise be ignored and the request
// answered as if it were not there.
func checkQueryNames(r *http.Request, route *routers.Route) error {
	if r.URL.RawQuery == "" {
		return nil
	}
	var known []string
	for _, ps := range []openapi3.Parameters{route.PathItem.Parameters, route.Operation.Parameters} {
		for _, p := range ps {
			if p.Value != nil && p.Value.In == openapi3.ParameterInQuery {
				known = append(known, p.Value.Name)
			}
		}
	}
	names := slices.Sorted(maps.Keys(r.URL.Query()))
	for _, name := range names {
		if slices.Contains(known, name) {
			continue
		}
		takes := "takes no query parameters"
		if len(known) > 0 {
			slices.Sort(known)
			takes = "takes " + strings.Join(known, ", ")
		}
		return fmt.Errorf("%w: unknown query parameter %s: %s %s %s", core.ErrInvalid, quoteName(name), r.Method, route.Path, takes)
	}
	return nil
}

// quoteName quotes a caller's parameter name, shortened.
func quoteName(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strconv.Quote(s)
}

// validateBody checks the content type and, except for protocolBodies,
// parses the body and validates the value against the schema.
func validateBody(r *http.Request, rb *openapi3.RequestBody, op string) (any, error) {
	raw := rawBody(r.Context())
	if len(raw) == 0 {
		if rb.Required {
			return nil, fmt.Errorf("%w: request body: a JSON body is required", core.ErrInvalid)
		}
		return nil, nil
	}
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || rb.Content.Get(mt) == nil {
		return nil, echo.NewHTTPError(http.StatusUnsupportedMediaType, fmt.Sprintf("request body: Content-Type %q is not accepted here; send %s", ct, strings.Join(mediaTypes(rb), " or ")))
	}
	if protocolBodies[op] {
		return nil, nil
	}
	sr := rb.Content.Get(mt).Schema
	if op == "pushCommits" && sr != nil {
		// A push in canonical form is decoded once, and valid as the
		// validator would find it: see decodeCanonicalPush. Anything
		// else, errors included, goes the general way below.
		if p, ok := decodeCanonicalPush(raw, pushMaxItems(sr.Value)); ok {
			return p, nil
		}
	}
	v, err := core.ParseJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("request body: %w", err)
	}
	if sr != nil && sr.Value != nil {
		if err := sr.Value.VisitJSON(v, openapi3.DisableSchemaErrorDetails()); err != nil {
			return nil, fmt.Errorf("%w: request body: %s", core.ErrInvalid, shortMessage(err.Error()))
		}
	}
	return v, nil
}

func mediaTypes(rb *openapi3.RequestBody) []string {
	var out []string
	for mt := range rb.Content {
		out = append(out, mt)
	}
	slices.Sort(out)
	return out
}

func validationProblem(err error) error {
	var re *openapi3filter.RequestError
	if errors.As(err, &re) {
		if re.Parameter != nil {
			return fmt.Errorf("%w: parameter %q (%s): %s", core.ErrInvalid, re.Parameter.Name, re.Parameter.In, shortMessage(re.Error()))
		}
		return fmt.Errorf("%w: request: %s", core.ErrInvalid, shortMessage(re.Error()))
	}
	var se *openapi3filter.SecurityRequirementsError
	if errors.As(err, &se) {
		return fmt.Errorf("%w: %v", core.ErrUnauthenticated, err)
	}
	return fmt.Errorf("%w: %v", core.ErrInvalid, err)
}

// shortMessage keeps a validation error readable: kin-openapi appends the
// whole schema to some messages.
func shortMessage(msg string) string {
	if i := strings.Index(msg, "\nSchema:"); i >= 0 {
		msg = msg[:i]
	}
	if len(msg) > 500 {
		msg = msg[:500] + "..."
	}
	return strings.ReplaceAll(msg, "\n", " ")
}
