package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/goat-gateway/goat-gateway/internal/goattest"
)

func TestExportAndFsck(t *testing.T) {
	dir := t.TempDir()
	g := goattest.StartGateway(t, goattest.Config{DataDir: dir})
	tok := g.Token("alice")
	do := func(method, path, body string) {
		req, _ := http.NewRequest(method, g.URL()+path, strings.NewReader(body))
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
	do("PUT", "/v1/repos/r", "")
	do("PUT", "/v1/repos/r/items/a", `{"schema":"any/1","data":{"v":1}}`)
	do("PUT", "/v1/repos/r/items/a", `{"schema":"any/1","data":{"v":2}}`)
	do("PUT", "/v1/repos/r/items/b", `{"schema":"any/1","data":{"v":3}}`)
	do("DELETE", "/v1/repos/r/items/b", "")
	g.Stop()

	var out bytes.Buffer
	if err := run(t.Context(), []string{"export", "--data-dir", dir, "--repo", "r"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], `"v":2`) {
		t.Fatalf("current items: %q", out.String())
	}
	out.Reset()
	if err := run(t.Context(), []string{"export", "--data-dir", dir, "--repo", "r", "--history"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	n := 0
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var c map[string]any
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil || c["id"] == nil {
			t.Fatalf("history line %q: %v", sc.Text(), err)
		}
		n++
	}
	if n != 4 {
		t.Fatalf("history has %d commits, want 4", n)
	}
	out.Reset()
	if err := run(t.Context(), []string{"fsck", "--data-dir", dir}, &out, io.Discard); err != nil {
		t.Fatalf("fsck: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "r ") || !strings.Contains(out.String(), "ok") {
		t.Fatalf("fsck output: %s", out.String())
	}
}
