package main

import (
	"strings"
	"testing"
)

const benchOutput = `goos: linux
goarch: amd64
pkg: github.com/goat-gateway/goat-gateway/auth
cpu: Intel(R) Xeon(R) Processor
BenchmarkVerifyCommit-2   	   10000	    112345 ns/op	    2048 B/op	      31 allocs/op
BenchmarkRules_CanRead-2  	 5000000	       240.5 ns/op	       0 B/op	       0 allocs/op
PASS
ok  	github.com/goat-gateway/goat-gateway/auth	3.201s
# github.com/goat-gateway/goat-gateway/sdk/go
sdk/go/x.go:1:1: syntax error
FAIL	github.com/goat-gateway/goat-gateway/sdk/go [build failed]
goos: linux
pkg: github.com/goat-gateway/goat-gateway/storage
BenchmarkOpen/commits=100000-2         	       5	 214000000 ns/op	       712.0 file-B/commit	       250.5 heap-B/commit	 9000000 B/op	  100 allocs/op
PASS
ok  	github.com/goat-gateway/goat-gateway/storage	9.1s
`

func TestParseBench(t *testing.T) {
	got, failed := parseBench([]byte(benchOutput))
	if len(got) != 3 {
		t.Fatalf("parsed %d benchmarks, want 3: %+v", len(got), got)
	}
	if got[0].Package != "github.com/goat-gateway/goat-gateway/auth" || got[0].Name != "BenchmarkVerifyCommit-2" || got[0].NsPerOp != 112345 || got[0].Iterations != 10000 {
		t.Errorf("first = %+v", got[0])
	}
	if got, want := got[1].NsPerOp, 240.5; got != want {
		t.Errorf("second ns/op=%v, want %v", got, want)
	}
	open := got[2]
	if open.Package != "github.com/goat-gateway/goat-gateway/storage" || open.Metrics["heap-B/commit"] != 250.5 || open.Metrics["allocs/op"] != 100 {
		t.Errorf("custom metrics = %+v", open)
	}
	if len(failed) != 1 || failed[0] != "github.com/goat-gateway/goat-gateway/sdk/go" {
		t.Errorf("failed=%v", failed)
	}
}

func TestParseMetrics(t *testing.T) {
	m, err := parseMetrics(strings.NewReader("# HELP x y\n# TYPE x gauge\ngo_goroutines 42\nprocess_resident_memory_bytes 1.5e+07\ngoat_http_requests_total{route=\"/\"} 3\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m["go_goroutines"], 42.0; got != want {
		t.Errorf("go_goroutines=%v, want %v", got, want)
	}
	if got, want := m["process_resident_memory_bytes"], 1.5e7; got != want {
		t.Errorf("rss=%v, want %v", got, want)
	}
	if _, ok := m["goat_http_requests_total"]; ok {
		t.Error("labelled sample kept")
	}
}
