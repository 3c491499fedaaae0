package api

import (
	"strconv"
	"testing"
	"time"
)

// A flood of callers, each from its own address, keeps at most
// maxBuckets buckets, and the bucket of a caller still paying off its
// bodies outlives the buckets of callers who have refilled (issue 17).
func TestBodyRate_Bounded(t *testing.T) {
	const rate, burst = 1 << 20, 16 << 20
	l := newBodyRate(rate, burst, defaultRateBuckets)
	t0 := time.Unix(1_800_000_000, 0)
	if ok, _ := l.take("anonymous:192.0.2.1", burst, t0); !ok {
		t.Fatal("a fresh bucket refused a body of its burst")
	}
	for i := range 10_000 {
		now := t0.Add(time.Duration(i) * time.Millisecond)
		if ok, _ := l.take("anonymous:10.0."+strconv.Itoa(i/256)+"."+strconv.Itoa(i%256), 1, now); !ok {
			t.Fatalf("caller %d refused its first byte", i)
		}
		if n := l.len(); n > defaultRateBuckets {
			t.Fatalf("after %d callers: %d buckets, want at most %d", i+1, n, defaultRateBuckets)
		}
	}
	// 10 s later the drained caller has 10 MiB back: a 16 MiB body still
	// does not fit, for 6 s more.
	ok, wait := l.take("anonymous:192.0.2.1", burst, t0.Add(10*time.Second))
	if ok {
		t.Fatal("the drained caller's bucket was dropped by the flood: its next body was free")
	}
	if wait < 5*time.Second || wait > 7*time.Second {
		t.Fatalf("wait %s, want about 6s", wait)
	}

	// Callers that never refill (each drained at once) still cost at most
	// maxBuckets buckets.
	l = newBodyRate(rate, burst, defaultRateBuckets)
	for i := range 10_000 {
		l.take("anonymous:10.1."+strconv.Itoa(i/256)+"."+strconv.Itoa(i%256), burst, t0)
		if n := l.len(); n > defaultRateBuckets {
			t.Fatalf("after %d drained callers: %d buckets, want at most %d", i+1, n, defaultRateBuckets)
		}
	}
}

func TestBodyRate_Take(t *testing.T) {
	const rate, burst = 1000, 4000
	l := newBodyRate(rate, burst, 16)
	t0 := time.Unix(1_800_000_000, 0)
	steps := []struct {
		at   time.Duration
		n    int64
		ok   bool
		wait time.Duration
	}{
		{0, 3000, true, 0},
		{0, 2000, false, time.Second}, // 1000 left
		{0, 1000, true, 0},
		{500 * time.Millisecond, 1000, false, 500 * time.Millisecond},
		{time.Second, 1000, true, 0},
		{time.Hour, 4000, true, 0}, // refilled to the burst, not past it
		{time.Hour, 1, false, time.Millisecond},
	}
	for i, s := range steps {
		ok, wait := l.take("sub:alice", s.n, t0.Add(s.at))
		if ok != s.ok || wait != s.wait {
			t.Fatalf("step %d: take(%d) at %s = %v, %s; want %v, %s", i, s.n, s.at, ok, wait, s.ok, s.wait)
		}
	}
}
