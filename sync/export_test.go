package sync

import (
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
)

// Exported for the conformance suites in package sync_test (the suites'
// package, goattest, imports this one).

// NewMemLocal returns an empty in-memory Local of the tests.
func NewMemLocal() Local { return newMemSet(nil, nil) }

// NewMemTransport returns the tests' in-memory transport serving one
// repository, and seed, which adds commits to the served set.
func NewMemTransport(tb testing.TB, repo string) (Transport, func(...*core.Commit)) {
	server := newMemSet(nil, nil)
	mt := &memTransport{tb: tb, srv: &Server{Rand: seededRand(1)}, server: server, logID: LogID{7}, repo: repo}
	seed := func(cs ...*core.Commit) {
		tb.Helper()
		if err := server.Ingest(tb.Context(), cs); err != nil {
			tb.Fatalf("seed: %v", err)
		}
	}
	return mt, seed
}
