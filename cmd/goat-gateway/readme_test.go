package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// walkthrough returns the commands of the README block marked as the
// walkthrough, with continuation lines joined.
func walkthrough(tb testing.TB) []string {
	tb.Helper()
	return walkthroughIn(tb, "../../README.md")
}

// walkthroughIn returns the commands of the block of file marked as the
// walkthrough, with continuation lines joined.
func walkthroughIn(tb testing.TB, file string) []string {
	tb.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		tb.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "<!-- walkthrough")
	if !ok {
		tb.Fatalf("%s has no walkthrough block", file)
	}
	_, rest, _ = strings.Cut(rest, "```sh\n")
	block, _, _ := strings.Cut(rest, "```")
	var cmds []string
	cur := ""
	for _, line := range strings.Split(block, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") || strings.TrimSpace(line) == "" {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur += strings.TrimSuffix(line, "\\")
			continue
		}
		cmds = append(cmds, cur+line)
		cur = ""
	}
	return cmds
}

// readmeGateway starts a gateway the way `make run` does (dev mode, a token
// printed for "dev") and returns its address and the printed token.
func readmeGateway(t *testing.T) (addr, token string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	var out syncBuffer
	env := map[string]string{}
	go func() {
		done <- serve(ctx, []string{"--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--dev", "--print-token", "dev"},
			func(k string) string { return env[k] }, &out, io.Discard, ready)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	m := regexp.MustCompile(`export TOKEN=(\S+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("serve --print-token printed no token:\n%s", out.String())
	}
	return addr, m[1]
}

// The README's curl walkthrough, run as written against a real gateway
// started the way `make run` starts it, so the README stays true.
func TestReadme_CurlWalkthrough(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is needed (make setup installs it)")
	}
	addr, token := readmeGateway(t)
	m := []string{"", token}
	cmds := walkthrough(t)
	if len(cmds) < 10 {
		t.Fatalf("walkthrough has only %d commands", len(cmds))
	}
	// Each command's output follows a marker line, so that each can be
	// held to what the README's comment above it says.
	var script strings.Builder
	script.WriteString("set -e\nexport TOKEN=" + m[1] + "\n")
	for i, c := range cmds {
		fmt.Fprintf(&script, "echo; echo '@@@ %d'\n%s\n", i, strings.ReplaceAll(c, "http://localhost:8080", "http://"+addr))
	}
	cmd := exec.Command("bash", "-c", script.String())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("walkthrough failed: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	for _, want := range []string{`"title":"Buy milk"`, `"done":true`, `"commits":[`, `"inSync":false`, `"deleted":true`} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("walkthrough output lacks %s:\n%s", want, stdout.String())
		}
	}
	outputs := map[string]string{} // command -> its output
	for _, part := range strings.Split(stdout.String(), "@@@ ")[1:] {
		num, out, _ := strings.Cut(part, "\n")
		i, err := strconv.Atoi(num)
		if err != nil {
			t.Fatalf("marker %q", num)
		}
		outputs[cmds[i]] = strings.TrimSpace(out)
	}
	find := func(substr string) string {
		t.Helper()
		for _, c := range cmds {
			if strings.Contains(c, substr) {
				return outputs[c]
			}
		}
		t.Fatalf("the walkthrough has no command with %q", substr)
		return ""
	}
	t.Run("SyncFromAnEmptyReplica", func(t *testing.T) {
		// The README: an empty replica is sent every commit it lacks and
		// inSync false (the PUT and the PATCH so far), not a filter.
		var round struct {
			InSync  bool              `json:"inSync"`
			Commits []json.RawMessage `json:"commits"`
			Filter  json.RawMessage   `json:"filter"`
		}
		if err := json.Unmarshal([]byte(find("/sync")), &round); err != nil {
			t.Fatal(err)
		}
		if round.InSync || len(round.Commits) != 2 {
			t.Fatalf("sync from an empty replica: inSync=%v with %d commits, want false with 2", round.InSync, len(round.Commits))
		}
	})
	t.Run("NoToken", func(t *testing.T) {
		var p struct {
			Status int    `json:"status"`
			Detail string `json:"detail"`
		}
		var out string
		for _, c := range cmds {
			if !strings.Contains(c, "Authorization") {
				out = outputs[c]
			}
		}
		if err := json.Unmarshal([]byte(out), &p); err != nil {
			t.Fatalf("the command without a token printed %q: %v", out, err)
		}
		if p.Status != 404 || !strings.Contains(p.Detail, "no credentials were sent") {
			t.Fatalf("without a token: %d %q, want 404 saying no credentials were sent (as the README says)", p.Status, p.Detail)
		}
	})
}

// The README walkthrough through a client that a second generator,
// @hey-api/openapi-ts, generates from openapi.yaml at every run
// (tools/clientgen): the spec serves generic clients too, including the
// two things they do that the project's own clients do not (the token in
// both the header and the query on getEvents, a merge patch sent as
// application/json).
func TestReadme_GeneratedClient(t *testing.T) {
	dir := "../../tools/clientgen"
	if _, err := os.Stat(dir + "/node_modules/.bin/openapi-ts"); err != nil {
		t.Fatalf("tools/clientgen is not installed (make setup, or npm ci --prefix tools/clientgen): %v", err)
	}
	addr, token := readmeGateway(t)
	cmd := exec.CommandContext(t.Context(), "npm", "run", "-s", "walkthrough")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOAT=http://"+addr, "TOKEN="+token)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("walkthrough: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	steps := map[string]map[string]any{}
	for _, line := range strings.Split(stdout.String(), "\n") {
		var v map[string]any
		if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &v) != nil {
			continue // the generator's own output
		}
		steps[fmt.Sprint(v["step"])] = v
	}
	want := map[string]map[string]any{
		"createRepo":     {"status": 201.0},
		"getItem":        {"title": "Buy milk"},
		"patchItem":      {"done": true, "note": "2 litres", "done2": true},
		"getItemHistory": {"commits": 3.0},
		"listItems":      {"items": 1.0},
		"getLog":         {"commits": 3.0, "tail": true},
		"syncRound":      {"count": 3.0, "inSync": false, "commits": 3.0},
		"getEvents":      {"first": "{}"},
		"deleteItem":     {"deleted": true},
		"noToken":        {"status": 404.0},
	}
	for step, fields := range want {
		got, ok := steps[step]
		if !ok {
			t.Errorf("step %s printed nothing:\n%s", step, stdout.String())
			continue
		}
		for k, v := range fields {
			if got[k] != v {
				t.Errorf("%s: %s=%v, want %v", step, k, got[k], v)
			}
		}
	}
	if g := steps["getItem"]; g != nil && g["etag"] != `"`+fmt.Sprint(g["head"])+`"` {
		t.Errorf("getItem: ETag %v, want the head %v quoted", g["etag"], g["head"])
	}
	if d := fmt.Sprint(steps["noToken"]["detail"]); !strings.Contains(d, "no credentials were sent") {
		t.Errorf("noToken: detail %q", d)
	}
}
