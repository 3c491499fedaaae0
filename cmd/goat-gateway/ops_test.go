package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goat-gateway/goat-gateway/internal/goattest"
)

// export --url reads a running gateway through its API; import loads its
// --history into a stopped gateway's directory, where a gateway then has
// the same repository (count and digest), and into a running gateway
// through the API, where commits already present are skipped.
func TestExportImport_RunningGateway(t *testing.T) {
	// A small body limit and rate: the imports below outrun them.
	const bodyLimit, bodyRate = 4 << 10, 1 << 10
	a := goattest.StartGateway(t, goattest.Config{BodyLimit: bodyLimit, BodyRate: bodyRate})
	tok := a.Token("alice")
	do := func(method, path, body string) {
		t.Helper()
		req, _ := http.NewRequest(method, a.URL()+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %d", method, path, resp.StatusCode)
		}
	}
	do("PUT", "/v1/repos/user.alice.notes", "")
	for i := range 5 {
		do("PUT", fmt.Sprintf("/v1/repos/user.alice.notes/items/k%d", i), fmt.Sprintf(`{"schema":"any/1","data":{"n":%d}}`, i))
	}
	do("PUT", "/v1/repos/user.alice.notes/items/k0", `{"schema":"any/1","data":{"n":10}}`)

	var items, history bytes.Buffer
	if err := run(t.Context(), []string{"export", "--url", a.URL(), "--token", tok, "--repo", "user.alice.notes"}, &items, io.Discard); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(items.String(), "\n"); got != 5 || !strings.Contains(items.String(), `"n":10`) {
		t.Fatalf("export --url: %d lines:\n%s", got, items.String())
	}
	if err := run(t.Context(), []string{"export", "--url", a.URL(), "--token", tok, "--repo", "user.alice.notes", "--history"}, &history, io.Discard); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(history.String(), "\n"); got != 6 {
		t.Fatalf("export --url --history: %d commits, want 6", got)
	}

	t.Run("IntoADataDirectory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		var out bytes.Buffer
		args := []string{"--data-dir", dir, "--repo", "user.alice.notes"}
		if err := importCmd(t.Context(), args, bytes.NewReader(history.Bytes()), &out); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "6 commits loaded") {
			t.Fatalf("import printed %q", out.String())
		}
		b := goattest.StartGateway(t, goattest.Config{DataDir: dir})
		want, _ := a.Digest("user.alice.notes")
		if got, ok := b.Digest("user.alice.notes"); !ok || got != want {
			t.Fatalf("imported digest %v (present %v), exported %v", got, ok, want)
		}
	})
	t.Run("IntoARunningGateway", func(t *testing.T) {
		var out bytes.Buffer
		args := []string{"--url", a.URL(), "--token", tok, "--repo", "user.alice.notes"}
		if err := importCmd(t.Context(), args, bytes.NewReader(history.Bytes()), &out); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "6 commits loaded") {
			t.Fatalf("import printed %q", out.String())
		}
	})
	t.Run("PacedByTheBodyRate", func(t *testing.T) {
		// alice's body bucket (bodyLimit, refilled at bodyRate a second)
		// holds one push of this history: importing it twice more meets
		// 429 and must wait for the bucket to refill, not fail.
		if history.Len() > bodyLimit*3/4 {
			t.Fatalf("the history is %d bytes: raise the test's body limit", history.Len())
		}
		args := []string{"--url", a.URL(), "--token", tok, "--repo", "user.alice.notes"}
		for i := range 2 {
			var out bytes.Buffer
			if err := importCmd(t.Context(), args, bytes.NewReader(history.Bytes()), &out); err != nil {
				t.Fatalf("import %d: %v", i+1, err)
			}
			if !strings.Contains(out.String(), "6 commits loaded") {
				t.Fatalf("import %d printed %q", i+1, out.String())
			}
		}
	})
	t.Run("Mistakes", func(t *testing.T) {
		for _, tc := range []struct {
			args  []string
			input string
			want  string
		}{
			{[]string{"--data-dir", t.TempDir(), "--repo", "other.repo"}, history.String(), `a commit of "user.alice.notes", not of --repo other.repo`},
			{[]string{"--data-dir", t.TempDir(), "--repo", "user.alice.notes"}, items.String(), "not a commit: import takes the output of export --history"},
			{[]string{"--repo", "user.alice.notes"}, "", "either --data-dir"},
			{[]string{"--data-dir", t.TempDir()}, "", "--repo is required"},
		} {
			err := importCmd(t.Context(), tc.args, strings.NewReader(tc.input), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("import %v: %v, want %q", tc.args, err, tc.want)
			}
		}
		if err := run(t.Context(), []string{"backup", "--url", a.URL()}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "--out is required") {
			t.Errorf("backup without --out: %v", err)
		}
	})
}
