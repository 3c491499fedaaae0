package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/labstack/echo/v5"
	"github.com/labstack/echo/v5/middleware"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/gen"
	"github.com/goat-gateway/goat-gateway/gen/apiserver"
)

type ctxKey int

const (
	principalKey ctxKey = iota
	rawBodyKey
)

// principalFrom returns the caller of the request (anonymous when the
// request carried no token).
func principalFrom(ctx context.Context) auth.Principal {
	if p, ok := ctx.Value(principalKey).(auth.Principal); ok {
		return p
	}
	return auth.Anonymous()
}

// rawBody returns the request body as received (bounded by the body
// limit), for handlers that parse commits strictly themselves.
func rawBody(ctx context.Context) []byte {
	b, _ := ctx.Value(rawBodyKey).([]byte)
	return b
}

func (s *Server) newEcho() *echo.Echo {
	e := echo.NewWithConfig(echo.Config{
		Logger:           s.log,
		HTTPErrorHandler: s.errorHandler,
	})
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{}))
	e.Use(s.metrics.middleware)
	e.Use(s.bodyMiddleware)
	e.Use(s.authMiddleware)
	e.Use(s.validationMiddleware())
	apiserver.RegisterHandlers(e, apiserver.NewStrictHandler(handlers{s}, nil))
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
	writeProblem(c.Response(), p)
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
	if p.Status == http.StatusTooManyRequests || p.Status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "5")
	}
	if p.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="goat-gateway"`)
	}
	w.WriteHeader(p.Status)
	_, _ = w.Write(b)
}

// bodyMiddleware reads the request body up to the body limit (413 past it)
// and keeps it for handlers that decode commits themselves; validation and
// binding then read it again from memory.
func (s *Server) bodyMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		r := c.Request()
		if r.Body == nil || r.Body == http.NoBody || r.Method == http.MethodGet || r.Method == http.MethodHead {
			return next(c)
		}
		if r.ContentLength > s.cfg.BodyLimit {
			return fmt.Errorf("%w: request body of %d bytes is over the %d byte limit", core.ErrTooLarge, r.ContentLength, s.cfg.BodyLimit)
		}
		b, err := io.ReadAll(io.LimitReader(r.Body, s.cfg.BodyLimit+1))
		_ = r.Body.Close()
		if err != nil {
			return fmt.Errorf("%w: reading the request body: %v", core.ErrInvalid, err)
		}
		if int64(len(b)) > s.cfg.BodyLimit {
			return fmt.Errorf("%w: request body is over the %d byte limit", core.ErrTooLarge, s.cfg.BodyLimit)
		}
		r = r.WithContext(context.WithValue(r.Context(), rawBodyKey, b))
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
			if qtok != "" && tok != "" {
				return fmt.Errorf("%w: send the token in the Authorization header or in access_token, not both", core.ErrInvalid)
			}
			if tok == "" {
				tok = qtok
			}
		} else if r.URL.Query().Has("access_token") {
			return fmt.Errorf("%w: access_token is accepted on /v1/events only; send an Authorization header", core.ErrInvalid)
		}
		p := auth.Anonymous()
		if tok != "" {
			if p, err = s.verifier.Verify(r.Context(), tok, s.now()); err != nil {
				return err
			}
		}
		c.SetRequest(r.WithContext(context.WithValue(r.Context(), principalKey, p)))
		return next(c)
	}
}

// validationMiddleware checks every request against openapi.yaml before a
// handler sees it. Unknown routes fall through to echo's 404/405.
func (s *Server) validationMiddleware() echo.MiddlewareFunc {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(gen.Spec)
	if err != nil {
		panic(fmt.Sprintf("embedded openapi.yaml does not load: %v", err))
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		panic(fmt.Sprintf("embedded openapi.yaml does not route: %v", err))
	}
	opts := &openapi3filter.Options{
		AuthenticationFunc:  openapi3filter.NoopAuthenticationFunc,
		ExcludeResponseBody: true,
		// The generated handlers bind the value validated here, so a
		// merge-patch body needs no extra binder.
		KeepValidatedValue: true,
		// Without this, every schema error's message embeds the offending
		// value, JSON-indented: a 20 KB body of 10,000 nested arrays made
		// a 200 MB message and took seconds of CPU per request.
		SchemaValidationOptions: []openapi3.SchemaValidationOption{openapi3.DisableSchemaErrorDetails()},
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c *echo.Context) error {
			r := c.Request()
			route, params, err := router.FindRoute(r)
			if err != nil {
				if errors.Is(err, routers.ErrMethodNotAllowed) {
					return echo.NewHTTPError(http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed on "+r.URL.Path)
				}
				return next(c)
			}
			in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route, Options: opts}
			if err := openapi3filter.ValidateRequest(r.Context(), in); err != nil {
				return validationProblem(err)
			}
			return next(c)
		}
	}
}

func validationProblem(err error) error {
	var re *openapi3filter.RequestError
	if errors.As(err, &re) {
		if re.Parameter != nil {
			return fmt.Errorf("%w: parameter %q (%s): %s", core.ErrInvalid, re.Parameter.Name, re.Parameter.In, shortReason(re))
		}
		if strings.Contains(re.Error(), "header Content-Type has unexpected value") || strings.Contains(re.Reason, "unsupported content type") {
			return echo.NewHTTPError(http.StatusUnsupportedMediaType, re.Error())
		}
		return fmt.Errorf("%w: request body: %s", core.ErrInvalid, shortReason(re))
	}
	var se *openapi3filter.SecurityRequirementsError
	if errors.As(err, &se) {
		return fmt.Errorf("%w: %v", core.ErrUnauthenticated, err)
	}
	return fmt.Errorf("%w: %v", core.ErrInvalid, err)
}

// shortReason keeps a validation error readable: kin-openapi appends the
// whole schema to some messages.
func shortReason(re *openapi3filter.RequestError) string {
	msg := re.Error()
	if i := strings.Index(msg, "\nSchema:"); i >= 0 {
		msg = msg[:i]
	}
	if len(msg) > 500 {
		msg = msg[:500] + "..."
	}
	return strings.ReplaceAll(msg, "\n", " ")
}
