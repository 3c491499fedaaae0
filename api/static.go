package api

import (
	"errors"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path"
	"regexp"
	"strings"
)

// Static assets (DESIGN section 10, serve --static DIR): the gateway serves
// the application's own files, so one process and one port carry the app
// and its data.
//
// What is served: GET and HEAD of any path outside /v1 and the operational
// paths (/healthz, /readyz, /metrics, /openapi.yaml), which always reach
// the API, whatever DIR holds. A directory serves its index.html. A path
// that names no file falls back to DIR/index.html when it looks like a page
// of the app (its last segment has no extension, or the caller accepts
// text/html): client-side routes load the app, while a missing script or
// image stays a 404 rather than an HTML page the browser would refuse as
// the wrong type. Other methods on those paths get the API's answer (404).
//
// Caching: HTML is no-cache (revalidated every time, so a deploy shows at
// the next load); fingerprinted assets (a name with a hash in it, as
// bundlers write them: app-3F2A9C1B.js, app.3f2a9c1b7d.css) are public,
// max-age one year, immutable; everything else is no-cache. Every answer
// carries Last-Modified and answers If-Modified-Since.
//
// Safety: files are opened through an os.Root, so neither "..", nor a
// symbolic link, nor an absolute path reaches outside DIR; a path with a
// segment that starts with a dot (.git, .env) is a 404. Range requests are
// answered whole: the compression in front of this handler would encode a
// partial body, and an app's assets are small.

// staticHandler serves root for the paths that are not the API's and
// passes everything else to next.
func staticHandler(root *os.Root, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isAPIPath(r.URL.Path) || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			next.ServeHTTP(w, r)
			return
		}
		name, ok := staticName(r.URL.Path)
		if !ok {
			writeProblem(w, problemForStatus(http.StatusNotFound, "no such file: "+r.URL.Path))
			return
		}
		f, st, err := openStatic(root, name)
		if errors.Is(err, fs.ErrNotExist) && wantsPage(r, name) {
			name = "index.html"
			f, st, err = openStatic(root, name)
		}
		if err != nil {
			writeProblem(w, problemForStatus(http.StatusNotFound, "no such file: "+r.URL.Path))
			return
		}
		defer f.Close()
		h := w.Header()
		h.Set("Cache-Control", cacheControl(name))
		h.Set("X-Content-Type-Options", "nosniff")
		if ct := mime.TypeByExtension(path.Ext(name)); ct != "" {
			h.Set("Content-Type", ct)
		}
		r.Header.Del("Range")
		http.ServeContent(w, r, name, st.ModTime(), f)
	})
}

// apiPrefixes are the paths the API owns; a file of the app cannot shadow
// them.
var apiPaths = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true, "/openapi.yaml": true, "/v1": true}

func isAPIPath(p string) bool {
	return apiPaths[p] || strings.HasPrefix(p, "/v1/")
}

// staticName turns a URL path into a name relative to the static root; ok
// is false for a path no file may have (a dot segment).
func staticName(urlPath string) (string, bool) {
	clean := path.Clean("/" + urlPath)
	for _, seg := range strings.Split(clean, "/") {
		if strings.HasPrefix(seg, ".") {
			return "", false
		}
	}
	name := strings.TrimPrefix(clean, "/")
	if name == "" || strings.HasSuffix(urlPath, "/") {
		name = path.Join(name, "index.html")
	}
	return name, true
}

// openStatic opens a regular file under root; a directory opens its
// index.html.
func openStatic(root *os.Root, name string) (*os.File, os.FileInfo, error) {
	for range 2 {
		f, err := root.Open(name)
		if err != nil {
			return nil, nil, err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, nil, err
		}
		if st.Mode().IsRegular() {
			return f, st, nil
		}
		f.Close()
		if !st.IsDir() {
			break
		}
		name = path.Join(name, "index.html")
	}
	return nil, nil, fs.ErrNotExist
}

// wantsPage reports whether a request for a missing file is a route of the
// app (index.html answers it) rather than a missing asset.
func wantsPage(r *http.Request, name string) bool {
	return path.Ext(name) == "" || strings.Contains(r.Header.Get("Accept"), "text/html")
}

// fingerprint matches a name with a content hash in it after a '-' or '.'
// and before the extension: lowercase hex of 8 or more characters (webpack,
// vite) or uppercase letters and digits (esbuild's base32), with at least
// one digit, so that app-settings.js or main-FEEDBACK.js is not taken for one.
var fingerprint = regexp.MustCompile(`[.-]([0-9a-f]{8,}|[A-Z0-9]{8,})\.[A-Za-z0-9]+$`)

func cacheControl(name string) string {
	if strings.HasSuffix(name, ".html") {
		return "no-cache"
	}
	if m := fingerprint.FindStringSubmatch(path.Base(name)); m != nil && strings.ContainsAny(m[1], "0123456789") {
		return "public, max-age=31536000, immutable"
	}
	return "no-cache"
}
