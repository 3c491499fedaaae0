package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/internal/goattest"
)

// docBlock returns the first fenced block of doc after the line that
// contains marker.
func docBlock(tb testing.TB, doc, marker string) string {
	tb.Helper()
	b, err := os.ReadFile("../../" + doc)
	if err != nil {
		tb.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), marker)
	if !ok {
		tb.Fatalf("%s has no %q", doc, marker)
	}
	_, rest, _ = strings.Cut(rest, "```")
	_, rest, _ = strings.Cut(rest, "\n") // the fence's info string
	block, _, _ := strings.Cut(rest, "```")
	return block
}

func readDoc(tb testing.TB, doc string) string {
	tb.Helper()
	b, err := os.ReadFile("../../" + doc)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// docs/security.md's registration body, sent as written, registers the
// session the document names.
func TestDocs_SessionExample(t *testing.T) {
	body := docBlock(t, "docs/security.md", "**Proof of possession.**")
	want := regexp.MustCompile(`session:\s+(s_\S+)`).FindStringSubmatch(readDoc(t, "docs/security.md"))
	if want == nil {
		t.Fatal("docs/security.md names no session id")
	}
	// The example expires on 2026-12-22; registration takes an expiry at
	// most 30 days ahead, so the gateway's clock is set inside that window.
	now := time.Date(2026, 12, 15, 0, 0, 0, 0, time.UTC)
	g := goattest.StartGateway(t, goattest.Config{Now: func() time.Time { return now }})
	tok, err := g.Mint("alice", nil, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", g.URL()+"/v1/sessions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /v1/sessions with the example body: %d %s", resp.StatusCode, b)
	}
	var s struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	if s.ID != want[1] {
		t.Fatalf("registered session %s, docs/security.md says %s", s.ID, want[1])
	}
}

// docs/api.md's SSE example starts with the retry line the server sends.
func TestDocs_EventsRetry(t *testing.T) {
	block := docBlock(t, "docs/api.md", "## Events (SSE)")
	want, _, _ := strings.Cut(block, "\n")
	if !strings.HasPrefix(want, "retry: ") {
		t.Fatalf("docs/api.md's SSE example starts with %q, want a retry line", want)
	}
	g := goattest.StartGateway(t, goattest.Config{})
	tok := g.Token("alice")
	req, _ := http.NewRequestWithContext(t.Context(), "PUT", g.URL()+"/v1/repos/r", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	req, _ = http.NewRequestWithContext(t.Context(), "GET", g.URL()+"/v1/events?repo=r", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if got = strings.TrimSpace(got); got != want {
		t.Fatalf("the stream starts with %q, docs/api.md says %q", got, want)
	}
}

// The body limit docs/sync.md and openapi.yaml state is the default.
func TestDocs_BodyLimit(t *testing.T) {
	c, err := loadConfig(nil, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("`maxBodyBytes`\\) of (\\d+) MiB").FindStringSubmatch(readDoc(t, "docs/sync.md"))
	if m == nil {
		t.Fatal("docs/sync.md states no body limit")
	}
	if mib, _ := strconv.ParseInt(m[1], 10, 64); mib<<20 != c.BodyLimit {
		t.Errorf("docs/sync.md says %s MiB, the default --body-limit is %d", m[1], c.BodyLimit)
	}
	for _, n := range regexp.MustCompile(`maxBodyBytes: (\d+)`).FindAllStringSubmatch(readDoc(t, "openapi.yaml"), -1) {
		if n[1] != strconv.FormatInt(c.BodyLimit, 10) {
			t.Errorf("openapi.yaml's example says maxBodyBytes %s, the default is %d", n[1], c.BodyLimit)
		}
	}
	if p := regexp.MustCompile(`request body exceeds (\d+) bytes`).FindStringSubmatch(readDoc(t, "openapi.yaml")); p != nil && p[1] != strconv.FormatInt(c.BodyLimit, 10) {
		t.Errorf("openapi.yaml's 413 example says %s bytes, the default is %d", p[1], c.BodyLimit)
	}
}
