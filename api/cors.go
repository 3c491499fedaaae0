package api

import (
	"net/http"
	"slices"
	"strings"
)

// CORS (DESIGN section 10, serve --cors-origin): pages of the configured
// origins may call the API from a browser. Without any origin configured
// the handler is not installed and no Access-Control-* header is ever sent,
// so the browser refuses every cross-origin read.
//
// A request whose Origin is allowed gets Access-Control-Allow-Origin (the
// origin itself, or "*" when "*" is configured: tokens travel in
// Authorization, never in cookies, so credentials mode is never needed),
// and the headers clients read exposed. A preflight (OPTIONS with
// Access-Control-Request-Method) from an allowed origin is answered 204
// here, before authentication, with the methods and request headers the API
// takes: Authorization (bearer tokens), Content-Type, If-Match and
// If-None-Match (conditional writes and reads) and Last-Event-ID (the SSE
// replay cursor a fetch-based stream sends). A preflight from another
// origin reaches the API, which answers it 405 without CORS headers.
// Every answer carries Vary: Origin, so a shared cache keeps the answers to
// different origins apart (log pages are cacheable).

// corsAllowHeaders are the request headers a cross-origin caller may send;
// a wildcard would not cover Authorization.
var corsAllowHeaders = strings.Join([]string{
	"Authorization", "Content-Type", "If-Match", "If-None-Match", "Last-Event-ID", "Cache-Control", "Accept",
}, ", ")

// corsExposeHeaders are the response headers a cross-origin caller may read
// beyond the safelisted ones.
var corsExposeHeaders = strings.Join([]string{
	"ETag", "Location", "Retry-After", "WWW-Authenticate", "Content-Encoding", "Content-Length", "Last-Modified", "Link",
}, ", ")

const corsAllowMethods = "GET, HEAD, PUT, PATCH, POST, DELETE"

// corsMaxAge is how long a browser may reuse a preflight answer, in
// seconds (Chromium caps it at 7200).
const corsMaxAge = "7200"

// corsHandler answers preflights from origins and adds the CORS headers to
// their requests; origins holds exact origins ("https://app.example.com")
// or "*".
func corsHandler(origins []string, next http.Handler) http.Handler {
	anyOrigin := slices.Contains(origins, "*")
	allowed := map[string]bool{}
	for _, o := range origins {
		allowed[strings.TrimSuffix(o, "/")] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Add("Vary", "Origin")
		origin := r.Header.Get("Origin")
		if origin == "" || (!anyOrigin && !allowed[origin]) {
			next.ServeHTTP(w, r)
			return
		}
		if anyOrigin {
			h.Set("Access-Control-Allow-Origin", "*")
		} else {
			h.Set("Access-Control-Allow-Origin", origin)
		}
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			h.Set("Access-Control-Allow-Methods", corsAllowMethods)
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", corsMaxAge)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		next.ServeHTTP(w, r)
	})
}
