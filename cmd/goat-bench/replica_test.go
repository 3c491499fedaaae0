package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

func chain(tb testing.TB, n int) []*core.Commit {
	tb.Helper()
	_, priv, _ := ed25519.GenerateKey(nil)
	var out []*core.Commit
	for i := range n {
		var parents []core.CommitID
		if i > 0 {
			parents = []core.CommitID{out[i-1].ID}
		}
		c := &core.Commit{Repo: "r", Key: "k", Parents: parents, Author: "s_aaaaaaaaaaaaaaaaaaaaaaaa", TS: int64(1_700_000_000_000 + i), Schema: core.AnySchema, Data: doc(i)}
		if err := c.Sign(priv); err != nil {
			tb.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

func TestReplica_Ingest(t *testing.T) {
	cs := chain(t, 5)
	r := newReplica()
	err := r.Ingest(context.Background(), []*core.Commit{cs[0], cs[2]})
	if !errors.Is(err, core.ErrMissingParents) {
		t.Fatalf("Ingest with a missing parent: %v, want ErrMissingParents", err)
	}
	if got, want := r.Len(), 1; got != want {
		t.Fatalf("Len=%d, want %d", got, want)
	}
	if err := r.Ingest(context.Background(), cs); err != nil {
		t.Fatalf("Ingest in order: %v", err)
	}
	if err := r.Ingest(context.Background(), cs); err != nil {
		t.Fatalf("Ingest again: %v", err)
	}
	var ids []core.CommitID
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	if got, want := r.Digest(), gsync.DigestOf(ids...); !got.Equal(want) {
		t.Fatalf("Digest=%v, want %v", got, want)
	}
	cl := r.clone(2)
	if got, want := cl.Digest(), gsync.DigestOf(ids[:3]...); !got.Equal(want) {
		t.Fatalf("clone(2) digest=%v, want %v", got, want)
	}
	if got, want := r.Len(), 5; got != want {
		t.Fatalf("clone changed the original: Len=%d, want %d", got, want)
	}
}

func TestRatios(t *testing.T) {
	mk := func(name string, v any) *Result {
		b, err := jsonMarshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return &Result{Scenario: name, Data: b}
	}
	results := map[string]*Result{
		"clone": mk("clone", CloneData{Commits: 100, Runs: []CloneRun{{Accept: "", Median: 2}, {Accept: "zstd", Median: 0.5, WireIn: 900, WireOut: 100, Requests: 2}}}),
		"heal":  mk("heal", HealData{Points: []HealPoint{{Side: "in-sync", Rounds: Summary{Max: 1}, WireBytes: Summary{P50: 1000}, Millis: Summary{P50: 2}}}}),
		"live":  mk("live", LiveData{Points: []LivePoint{{Subscribers: 100, FromSend: Summary{P50: 2, P99: 4}}}}),
	}
	peer := &PeerData{Docs: 100,
		Clone:  []PeerClone{{Config: "default", Median: 10, WireIn: 3000, Requests: 10}, {Config: "batch_size 1000", Median: 5, WireIn: 2000, Requests: 3}},
		InSync: PeerInSync{Runs: 5, Requests: 6, WireBytes: 4000, Millis: Summary{P50: 10}},
		Live:   []LivePoint{{Subscribers: 100, FromSend: Summary{P50: 20, P99: 80}}, {Subscribers: 1000}},
	}
	got := map[string]float64{}
	for _, r := range ratios(results, peer) {
		got[r.Name] = r.Factor
	}
	for name, want := range map[string]float64{
		"clone":                             10, // the peer's better configuration (5 s) over goat's zstd clone (0.5 s)
		"clone bytes on the wire":           2,
		"in-sync check round trips":         6,
		"in-sync check bytes on the wire":   4,
		"in-sync check time":                5,
		"live latency p50, 100 subscribers": 10,
		"live latency p99, 100 subscribers": 20,
	} {
		if got[name] != want {
			t.Errorf("%s: factor %v, want %v", name, got[name], want)
		}
	}
	if _, ok := got["live latency p50, 1000 subscribers"]; ok {
		t.Error("ratio for a subscriber count goat-gateway did not run")
	}
}
