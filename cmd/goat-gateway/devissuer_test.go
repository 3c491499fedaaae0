package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// startServe runs serve with args on a loopback port until the test ends
// and returns its address.
func startServe(tb testing.TB, args ...string) string {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, append([]string{"--listen", "127.0.0.1:0"}, args...), envMap(nil), io.Discard, io.Discard, ready)
	}()
	select {
	case addr := <-ready:
		tb.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				tb.Errorf("serve returned %v after shutdown", err)
			}
		})
		return addr
	case err := <-done:
		cancel()
		tb.Fatalf("serve: %v", err)
	}
	return ""
}

// get sends GET path with token and returns the status and body.
func get(tb testing.TB, addr, path, token string) (int, []byte) {
	tb.Helper()
	req, err := http.NewRequest("GET", "http://"+addr+path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// The dev issuer is trusted only with --dev: its key lives in the keys
// directory, so anyone holding a backup of it could mint tokens (issue 17,
// item 11).
func TestServe_DevIssuerOnlyWithDev(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		want int
	}{
		{"WithoutDev", nil, http.StatusUnauthorized},
		{"WithDev", []string{"--dev"}, http.StatusOK},
		{"WithDevAndNoDevIssuer", []string{"--dev", "--no-dev-issuer"}, http.StatusUnauthorized},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			addr := startServe(t, append([]string{"--data-dir", dir}, c.args...)...)
			var out bytes.Buffer
			if err := run(t.Context(), []string{"token", "--data-dir", dir, "--sub", "alice"}, &out, io.Discard); err != nil {
				t.Fatal(err)
			}
			st, body := get(t, addr, "/v1/repos", strings.TrimSpace(out.String()))
			if st != c.want {
				t.Fatalf("GET /v1/repos with a token of `goat-gateway token`: status %d, want %d: %s", st, c.want, body)
			}
		})
	}
}

// The audience session proofs are bound to is a setting, reported by
// /v1/info.
func TestServe_Audience(t *testing.T) {
	addr := startServe(t, "--data-dir", t.TempDir(), "--audience", "notes.example.com")
	st, body := get(t, addr, "/v1/info", "")
	if st != http.StatusOK {
		t.Fatalf("GET /v1/info: status %d: %s", st, body)
	}
	var info struct{ Audience string }
	if err := json.Unmarshal(body, &info); err != nil {
		t.Fatal(err)
	}
	if got, want := info.Audience, "notes.example.com"; got != want {
		t.Fatalf("audience=%q, want %q", got, want)
	}
}
