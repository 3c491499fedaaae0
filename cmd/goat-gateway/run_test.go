package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestServe_Healthz(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	env := map[string]string{"GOAT_DATA_DIR": t.TempDir()}
	go func() {
		done <- serve(ctx, []string{"--listen", "127.0.0.1:0"}, func(k string) string { return env[k] }, io.Discard, io.Discard, ready)
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got, want := resp.StatusCode, http.StatusOK; got != want {
		t.Fatalf("status=%d, want %d (%s)", got, want, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve returned %v after shutdown", err)
	}
}

// A clustered node's /metrics carries the cluster's counters.
func TestServe_ClusterMetrics(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	env := map[string]string{"GOAT_DATA_DIR": t.TempDir()}
	go func() {
		// A peer that is not there: the node is clustered (node-to-node
		// reconciliation) without a second process.
		done <- serve(ctx, []string{"--listen", "127.0.0.1:0", "--dev", "--peers", "http://127.0.0.1:1"}, func(k string) string { return env[k] }, io.Discard, io.Discard, ready)
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
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"goat_cluster_published_total", "goat_cluster_received_total", "goat_cluster_heal_passes_total", "goat_cluster_heal_errors_total"} {
		if !strings.Contains(string(body), "\n"+want+" ") && !strings.Contains(string(body), "\n"+want+"{") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
