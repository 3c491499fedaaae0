package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/goat-gateway/goat-gateway/api"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/gen"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

// specSlugs returns the slugs of the ProblemType enum of openapi.yaml, the
// list every problem table is held to.
func specSlugs(tb testing.TB) []string {
	tb.Helper()
	var doc struct {
		Components struct {
			Schemas struct {
				ProblemType struct {
					Enum []string `yaml:"enum"`
				} `yaml:"ProblemType"`
			} `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(gen.Spec, &doc); err != nil {
		tb.Fatalf("openapi.yaml: %v", err)
	}
	var slugs []string
	for _, typ := range doc.Components.Schemas.ProblemType.Enum {
		slug, ok := strings.CutPrefix(typ, ProblemBase)
		if !ok {
			tb.Fatalf("problem type %q does not start with %s", typ, ProblemBase)
		}
		slugs = append(slugs, slug)
	}
	if len(slugs) == 0 {
		tb.Fatal("openapi.yaml has no ProblemType enum")
	}
	return sortedSet(slugs)
}

// tsProblemCodes returns the keys of problemCodes in the TypeScript SDK's
// sdk/ts/src/errors.ts, its table from slugs to error codes.
func tsProblemCodes(tb testing.TB) []string {
	tb.Helper()
	const path = "../sdk/ts/src/errors.ts"
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "const problemCodes: Record<string, ErrorCode> = {")
	if !ok {
		tb.Fatalf("%s: no problemCodes table", path)
	}
	body, _, ok := strings.Cut(rest, "};")
	if !ok {
		tb.Fatalf("%s: problemCodes does not end", path)
	}
	entry := regexp.MustCompile(`^\s*"?([a-z-]+)"?\s*:\s*"[a-z-]+",?\s*$`)
	var keys []string
	for _, line := range strings.Split(body, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		m := entry.FindStringSubmatch(line)
		if m == nil {
			tb.Fatalf("%s: problemCodes: cannot read line %q", path, line)
		}
		keys = append(keys, m[1])
	}
	return keys
}

func sortedSet(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

// TestProblemSentinels_MatchSpec holds the three problem tables (the
// gateway's, this client's and the TypeScript SDK's) to the spec's list of
// problem types: each covers exactly the slugs of the ProblemType enum.
func TestProblemSentinels_MatchSpec(t *testing.T) {
	want := specSlugs(t)
	var client []string
	for typ := range problemSentinels {
		slug, ok := strings.CutPrefix(string(typ), ProblemBase)
		if !ok {
			t.Fatalf("client table: %q is not a problem type URI", typ)
		}
		client = append(client, slug)
	}
	for _, tc := range []struct {
		name  string
		slugs []string
	}{
		{"Client", client},
		{"Server", api.ProblemSlugs()},
		{"TypeScript", tsProblemCodes(t)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := sortedSet(tc.slugs)
			if !slices.Equal(got, want) {
				t.Fatalf("slugs %v, want the spec's %v", got, want)
			}
			if len(got) != len(tc.slugs) {
				t.Fatalf("%d entries for %d slugs: a slug is listed twice", len(tc.slugs), len(got))
			}
		})
	}
}

// TestProblemSentinels_RoundTrip maps every core sentinel to its problem
// the way the gateway does (api.ProblemFor), sends it as a problem body,
// and expects this client to map it back to the same sentinel. Only
// internal errors lose theirs: the gateway does not say what went wrong.
func TestProblemSentinels_RoundTrip(t *testing.T) {
	sentinels := []error{
		core.ErrNotFound, core.ErrInvalid, core.ErrTooLarge, core.ErrConflict, core.ErrCorrupt,
		core.ErrBadSignature, core.ErrMissingParents, core.ErrSchema, core.ErrUnauthenticated,
		core.ErrForbidden, core.ErrMustReconcile, core.ErrClosed, core.ErrRateLimited, core.ErrRetired, core.ErrDeleted,
	}
	for _, s := range problemSentinels {
		if s != nil && !slices.Contains(sentinels, s) {
			t.Fatalf("the client table maps to %v, which this test does not list", s)
		}
	}
	for _, s := range sentinels {
		t.Run(s.Error(), func(t *testing.T) {
			p := api.ProblemFor(fmt.Errorf("context: %w", s))
			body, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			got := problemFrom(p.Status, "application/problem+json", body)
			if p.Type == ProblemBase+"internal" {
				if got.Err != nil {
					t.Fatalf("internal problem maps to %v, want no sentinel", got.Err)
				}
				return
			}
			if got.Err != s || !errors.Is(got, s) {
				t.Fatalf("problem type %s maps back to %v, want %v", p.Type, got.Err, s)
			}
			if got.Slug() != api.ProblemSlug(s) {
				t.Fatalf("slug %q, want %q", got.Slug(), api.ProblemSlug(s))
			}
		})
	}
}

func TestProblemError_FromResponse(t *testing.T) {
	for _, tc := range []struct {
		name        string
		status      int
		contentType string
		body        string
		want        error
	}{
		{"NotFound", 404, "application/problem+json", `{"type":"https://goat-gateway.dev/problems/not-found","title":"Not found","status":404,"detail":"x"}`, core.ErrNotFound},
		{"MustReconcile", 409, "application/problem+json", `{"type":"https://goat-gateway.dev/problems/must-reconcile","status":409}`, core.ErrMustReconcile},
		{"Conflict", 409, "application/problem+json", `{"type":"https://goat-gateway.dev/problems/conflict","status":409}`, core.ErrConflict},
		{"Schema", 422, "application/problem+json", `{"type":"https://goat-gateway.dev/problems/schema-violation"}`, core.ErrSchema},
		{"MissingParents", 422, "application/problem+json", `{"type":"https://goat-gateway.dev/problems/missing-parents"}`, core.ErrMissingParents},
		{"BadSignature", 422, "application/problem+json", `{"type":"https://goat-gateway.dev/problems/bad-signature"}`, core.ErrBadSignature},
		{"Unauthenticated", 401, "application/problem+json", `{"type":"https://goat-gateway.dev/problems/unauthenticated"}`, core.ErrUnauthenticated},
		{"Forbidden", 403, "application/problem+json", `{"type":"https://goat-gateway.dev/problems/forbidden"}`, core.ErrForbidden},
		{"TooLarge", 413, "application/problem+json", `{"type":"https://goat-gateway.dev/problems/too-large"}`, core.ErrTooLarge},
		{"Invalid", 400, "application/problem+json", `{"type":"https://goat-gateway.dev/problems/invalid-request"}`, core.ErrInvalid},
		{"UnsupportedMediaType", 415, "application/problem+json", `{"type":"https://goat-gateway.dev/problems/unsupported-media-type"}`, core.ErrInvalid},
		{"Unavailable", 503, "application/problem+json", `{"type":"https://goat-gateway.dev/problems/unavailable"}`, core.ErrClosed},
		{"RateLimited", 429, "application/problem+json", `{"type":"https://goat-gateway.dev/problems/rate-limited"}`, core.ErrRateLimited},
		{"ProxyPage", 404, "text/html", `<html>nope</html>`, core.ErrNotFound},
		{"ProxyTooMany", 429, "text/plain", `slow down`, core.ErrRateLimited},
		{"Internal", 500, "application/problem+json", `{"type":"https://goat-gateway.dev/problems/internal"}`, nil},
		{"UnknownType", 400, "application/problem+json", `{"type":"https://example.com/other"}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := problemFrom(tc.status, tc.contentType, []byte(tc.body))
			if got := p.Unwrap(); got != tc.want {
				t.Fatalf("sentinel %v, want %v", got, tc.want)
			}
			if tc.want != nil && !errors.Is(error(p), tc.want) {
				t.Fatalf("errors.Is(%v, %v) is false", p, tc.want)
			}
			if p.Error() == "" {
				t.Fatal("empty message")
			}
		})
	}
}

func TestRejectedError(t *testing.T) {
	r := gsync.PushResult{ID: strings.Repeat("ab", 32), Status: gsync.StatusRejected, Reason: "no such session", ProblemType: ProblemBase + "unauthenticated"}
	err := RejectedError("user.alice.notes", r)
	var p *ProblemError
	if !errors.As(err, &p) || !errors.Is(err, core.ErrUnauthenticated) {
		t.Fatalf("RejectedError = %v, want a ProblemError matching core.ErrUnauthenticated", err)
	}
	if got, want := p.Slug(), "unauthenticated"; got != want {
		t.Fatalf("slug %q, want %q", got, want)
	}
	if !strings.Contains(err.Error(), r.ID) || !strings.Contains(err.Error(), r.Reason) {
		t.Fatalf("message %q names neither the commit nor the reason", err)
	}
}
