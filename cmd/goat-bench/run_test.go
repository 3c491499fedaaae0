package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every scenario that needs only goat-gateway, at toy sizes, against the
// real binary (built by runAll), checking the results for what must hold
// whatever the machine: nothing lost, digests equal, bytes counted.
func TestRunAll_ToyScenarios(t *testing.T) {
	root, err := findRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	cfg := config{
		Mode: "test", Root: root, Out: out, Cache: t.TempDir(), Parallel: 4,
		Only:     map[string]bool{"live": true, "fanout": true, "ingest": true, "clone": true, "heal": true, "cold": true},
		LiveSubs: []int{1, 3}, LiveSamples: 4,
		FanoutSteps: []int{4, 8}, FanoutCommits: 2,
		IngestClients: []int{1, 2}, IngestBatch: 10, IngestCommits: 40, IngestPutSecs: 0.2, IngestReps: 1,
		CloneN: 300, CloneReps: 1,
		HealMissing: []int{0, 5}, HealReps: 2,
		ColdN: 400, ColdReps: 1,
	}
	if err := runAll(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatalf("runAll: %v", err)
	}
	results, err := readResults(out)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("Live", func(t *testing.T) {
		var d LiveData
		if !decodeData(results["live"], &d) || len(d.Points) != 2 {
			t.Fatalf("live data: %+v", results["live"])
		}
		for _, p := range d.Points {
			if p.Lost != 0 || p.FromSend.N != p.Subscribers*4 || p.FromSend.Min <= 0 {
				t.Errorf("point %+v: want 4 samples per subscriber, none lost, positive latency", p)
			}
		}
	})
	t.Run("Fanout", func(t *testing.T) {
		var d FanoutData
		if !decodeData(results["fanout"], &d) {
			t.Fatal("no fanout data")
		}
		if d.Held != 8 || d.ConnectErrors != 0 {
			t.Fatalf("held %d (%d errors), want 8", d.Held, d.ConnectErrors)
		}
		for _, s := range d.Steps {
			if s.ServerSubscribers != s.Subscribers || s.Lost != 0 || s.RSS <= 0 {
				t.Errorf("step %+v: the gateway must count the same streams, none lost", s)
			}
		}
	})
	t.Run("Ingest", func(t *testing.T) {
		var d IngestData
		if !decodeData(results["ingest"], &d) || len(d.Points) != 4 {
			t.Fatalf("ingest data: %+v", d)
		}
		for _, p := range d.Points {
			if p.CommitsPerSec <= 0 || p.Errors != 0 || p.Latency.N == 0 {
				t.Errorf("point %+v", p)
			}
		}
	})
	t.Run("Clone", func(t *testing.T) {
		var d CloneData
		if !decodeData(results["clone"], &d) || len(d.Runs) != len(cloneCodings) {
			t.Fatalf("clone data: %+v", d)
		}
		wire := map[string]int64{}
		for _, r := range d.Runs {
			wire[r.Accept] = r.WireIn
			if r.Accept != "" && !strings.Contains(r.Coding, r.Accept) {
				t.Errorf("asked for %s, got %s", r.Accept, r.Coding)
			}
		}
		if wire["zstd"] >= wire[""] || wire["gzip"] >= wire[""] {
			t.Errorf("compressed clones are not smaller on the wire: %v", wire)
		}
	})
	t.Run("Heal", func(t *testing.T) {
		var d HealData
		if !decodeData(results["heal"], &d) || len(d.Points) != 4 {
			t.Fatalf("heal data: %+v", d)
		}
		for _, p := range d.Points {
			switch {
			case p.Side == "in-sync" && (p.Rounds.Max != 1 || p.PayloadBytes.Max >= 300):
				t.Errorf("in-sync check: %+v, want 1 round under 300 bytes", p)
			case p.Side != "in-sync" && p.Rounds.Min < 2:
				t.Errorf("%s missing %d healed in %v rounds, want at least 2", p.Side, p.Missing, p.Rounds.Min)
			}
		}
	})
	t.Run("Cold", func(t *testing.T) {
		var d ColdData
		if !decodeData(results["cold"], &d) || len(d.Runs) != 1 {
			t.Fatalf("cold data: %+v", d)
		}
		if d.Runs[0].OpenSeconds <= 0 || d.Runs[0].OpenCPUSeconds < 0 || d.InSyncBytes >= 300 || d.FileBytes == 0 {
			t.Errorf("cold data: %+v", d)
		}
	})
	t.Run("Report", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(out, "report.md"))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"## Targets", "## Runs and machine load", scenarioTitles["live"], scenarioTitles["cold"], "gateway CPU during the open", "](live.png)", "](clone.png)"} {
			if !strings.Contains(string(b), want) {
				t.Errorf("report.md lacks %q", want)
			}
		}
		for _, p := range []string{"live.png", "fanout-memory.png", "fanout-delivery.png", "ingest.png", "clone.png", "heal.png"} {
			b, err := os.ReadFile(filepath.Join(out, p))
			if err != nil {
				t.Fatal(err)
			}
			decodePNG(t, b)
		}
	})
}
