package api_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/goat-gateway/goat-gateway/api"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
)

// The details of the mistakes a newcomer makes first say what the mistake
// was and how to fix it, and never name a storage file or the internals of
// a library (DESIGN section 9).
func TestServer_ErrorDetails(t *testing.T) {
	g := startGateway(t, goattest.Config{})
	tok := g.Token("alice")
	wantStatus(t, g.call(t, "PUT", "/v1/repos/user.alice.notes", tok, nil), http.StatusCreated)

	cases := []struct {
		name, method, path, token string
		status                    int
		slug                      string
		want                      []string
		never                     []string
	}{
		{name: "NoTokenOnACreatedRepo", method: "GET", path: "/v1/repos/user.alice.notes/items",
			status: 404, slug: "not-found", want: []string{"user.alice.notes", "no credentials were sent", "Authorization: Bearer"}},
		{name: "TokenAndNoSuchRepo", method: "GET", path: "/v1/repos/user.alice.ntoes/log", token: tok,
			status: 404, slug: "not-found", want: []string{"user.alice.ntoes", "not found"}, never: []string{".log", "no credentials"}},
		{name: "TypoInRepoInfo", method: "GET", path: "/v1/repos/user.alice.ntoes", token: tok,
			status: 404, slug: "not-found", want: []string{"user.alice.ntoes"}, never: []string{".log"}},
		{name: "TokenNotAJWT", method: "GET", path: "/v1/repos", token: "abc",
			status: 401, slug: "unauthenticated", want: []string{"three base64url parts", "this has 1"}, never: []string{"segments"}},
		{name: "TokenGarbled", method: "GET", path: "/v1/repos", token: "xx" + tok,
			status: 401, slug: "unauthenticated", want: []string{"malformed token", "base64url-encoded JSON"}, never: []string{"could not JSON decode", "invalid character", "token is malformed"}},
		{name: "UnknownQueryParameter", method: "GET", path: "/v1/repos/user.alice.notes/log?cursor=5", token: tok,
			status: 400, slug: "invalid-request", want: []string{`unknown query parameter "cursor"`, "after", "limit", "wait"}},
		{name: "QueryParameterOnAnOperationWithoutAny", method: "GET", path: "/v1/repos/user.alice.notes?verbose=1", token: tok,
			status: 400, slug: "invalid-request", want: []string{`unknown query parameter "verbose"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := g.call(t, tc.method, tc.path, tc.token, nil)
			wantStatus(t, r, tc.status)
			var p api.Problem
			r.json(t, &p)
			if got, want := p.Type, api.ProblemBase+tc.slug; got != want {
				t.Errorf("type=%s, want %s", got, want)
			}
			for _, w := range tc.want {
				if !strings.Contains(p.Detail, w) {
					t.Errorf("detail %q lacks %q", p.Detail, w)
				}
			}
			for _, n := range append(tc.never, "jwt", "golang") {
				if strings.Contains(p.Detail, n) {
					t.Errorf("detail %q contains %q", p.Detail, n)
				}
			}
		})
	}
}

// The largest filter /v1/info advertises fits in a sync request under the
// body limit it advertises, at the default limit and at a smaller one.
func TestServer_InfoFilterFitsTheBodyLimit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit int64
	}{{"Default", 0}, {"TwoMiB", 2 << 20}} {
		t.Run(tc.name, func(t *testing.T) {
			g := startGateway(t, goattest.Config{BodyLimit: tc.limit})
			tok := g.Token("alice")
			wantStatus(t, g.call(t, "PUT", "/v1/repos/r", tok, nil), http.StatusCreated)
			var info struct {
				Limits struct {
					MaxBodyBytes  int64 `json:"maxBodyBytes"`
					MaxFilterBits int64 `json:"maxFilterBits"`
				} `json:"limits"`
			}
			g.call(t, "GET", "/v1/info", "", nil).json(t, &info)
			if tc.limit == 0 && info.Limits.MaxBodyBytes != 16<<20 {
				t.Errorf("default maxBodyBytes=%d, want 16 MiB (docs/sync.md, openapi.yaml)", info.Limits.MaxBodyBytes)
			}
			m := info.Limits.MaxFilterBits
			bits := base64.StdEncoding.EncodeToString(make([]byte, (m+63)/64*8))
			body := fmt.Sprintf(`{"count":1,"digest":"%s","filter":{"m":%d,"k":1,"salt":"0000000000000000","bits":"%s"}}`, strings.Repeat("0", 64), m, bits)
			if int64(len(body)) > info.Limits.MaxBodyBytes {
				t.Fatalf("a request with the advertised filter (m=%d) is %d bytes, over maxBodyBytes=%d", m, len(body), info.Limits.MaxBodyBytes)
			}
			wantStatus(t, g.call(t, "POST", "/v1/repos/r/sync", tok, body), http.StatusOK)
		})
	}
}
