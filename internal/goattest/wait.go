package goattest

import (
	"testing"
	"time"
)

// Patience bounds every wait: generous, so that a loaded CI machine does
// not fail a test that is about convergence, not speed. A passing test
// never waits this long; only a failing one does.
const Patience = 90 * time.Second

// pollEvery paces the polling of conditions that no signal announces.
const pollEvery = 5 * time.Millisecond

// WaitFor waits until cond holds and fails tb after Patience, naming what
// it waited for. Use it for conditions no channel announces (a replica's
// digest, a status, a count on a server); wait on the channel otherwise.
func WaitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	if !Eventually(Patience, cond) {
		tb.Fatalf("timed out after %v waiting for %s", Patience, what)
	}
}

// Eventually reports whether cond held within limit. It is WaitFor for
// goroutines other than the test's and for callers that report a
// failure themselves (with the state they saw).
func Eventually(limit time.Duration, cond func() bool) bool {
	if cond() {
		return true
	}
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for range tick.C {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
	return false
}

// Recv returns the next value from ch, failing tb if none comes within
// Patience. A closed channel yields its zero value, so Recv also waits
// for a signal channel to be closed.
func Recv[T any](tb testing.TB, ch <-chan T, what string) T {
	tb.Helper()
	timer := time.NewTimer(Patience)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		tb.Fatalf("timed out after %v waiting for %s", Patience, what)
	}
	var zero T
	return zero
}
