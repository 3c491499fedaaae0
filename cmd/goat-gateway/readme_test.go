package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"regexp"
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

// The README's curl walkthrough, run as written against a real gateway
// started the way `make run` starts it, so the README stays true.
func TestReadme_CurlWalkthrough(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is needed (installed by .ci/run)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	var out syncBuffer
	env := map[string]string{}
	go func() {
		done <- serve(ctx, []string{"--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--dev", "--print-token", "dev"},
			func(k string) string { return env[k] }, &out, io.Discard, ready)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	m := regexp.MustCompile(`export TOKEN=(\S+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("serve --print-token printed no token:\n%s", out.String())
	}
	cmds := walkthrough(t)
	if len(cmds) < 10 {
		t.Fatalf("walkthrough has only %d commands", len(cmds))
	}
	script := "set -e\nexport TOKEN=" + m[1] + "\n" + strings.Join(cmds, "\n") + "\n"
	script = strings.ReplaceAll(script, "http://localhost:8080", "http://"+addr)
	cmd := exec.Command("bash", "-c", script)
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
}
