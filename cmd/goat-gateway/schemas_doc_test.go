package main

import (
	"bytes"
	"context"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// docs/schemas.md's curl walkthrough (publish, upgrade, rolling deploy,
// rollback, time travel), run as written against a real gateway started
// the way `make run` starts it. The admin token line is run in process:
// the same token command, on the same data directory.
func TestSchemasDoc_CurlWalkthrough(t *testing.T) {
	for _, tool := range []string{"curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed (installed by .ci/run)", tool)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	var out syncBuffer
	dir := t.TempDir()
	go func() {
		done <- serve(ctx, []string{"--listen", "127.0.0.1:0", "--data-dir", dir, "--dev", "--print-token", "dev"},
			func(string) string { return "" }, &out, io.Discard, ready)
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
	cmds := walkthroughIn(t, "../../docs/schemas.md")
	if len(cmds) < 20 {
		t.Fatalf("walkthrough has only %d commands", len(cmds))
	}
	for i, c := range cmds {
		if strings.HasPrefix(c, "export ADMIN=") {
			args := strings.Fields(strings.TrimSuffix(strings.TrimPrefix(c, "export ADMIN=$(./bin/goat-gateway "), ")"))
			if len(args) == 0 || args[0] != "token" {
				t.Fatalf("the admin line is not the token command: %s", c)
			}
			for j, a := range args {
				if a == "./data" {
					args[j] = dir
				}
			}
			var tok bytes.Buffer
			if err := token(args[1:], &tok); err != nil {
				t.Fatalf("%s: %v", c, err)
			}
			cmds[i] = "export ADMIN=" + strings.TrimSpace(tok.String())
		}
	}
	script := "set -e\nexport TOKEN=" + m[1] + "\n" + strings.Join(cmds, "\n") + "\n"
	script = strings.ReplaceAll(script, "http://localhost:8080", "http://"+addr)
	cmd := exec.Command("bash", "-c", script)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("walkthrough failed: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	got := stdout.String()
	for _, want := range []string{
		`"data":{"name":"Buy milk","owner":"nobody","prio":"1"}`,    // upgraded on read
		`"data":{"prio":1,"title":"Buy milk"}`,                      // the old build's branch
		`"data":{"name":"Buy oat milk","owner":"alice","prio":"3"}`, // both branches merged
		`"data":{"prio":3,"title":"Buy milk"}`,                      // rolled back
		`schema-retired`, `422`, `"retired":true`,
		`"values":[`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("walkthrough output lacks %s:\n%s", want, got)
		}
	}
}
