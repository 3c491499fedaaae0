package cluster

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/internal/goattest"
)

// fakeConn counts flushes; connected and failing are switches.
type fakeConn struct {
	entered   atomic.Int64
	flushes   atomic.Int64
	connected atomic.Bool
	fail      atomic.Bool
	// gate, if set, holds each flush until it receives.
	gate chan struct{}
}

func (f *fakeConn) FlushTimeout(time.Duration) error {
	f.entered.Add(1)
	if f.gate != nil {
		<-f.gate
	}
	f.flushes.Add(1)
	if f.fail.Load() {
		return errors.New("flush failed")
	}
	return nil
}

func (f *fakeConn) IsConnected() bool { return f.connected.Load() }

func startAcker(tb testing.TB, conn *fakeConn) *acker {
	tb.Helper()
	a := newAcker()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.flushLoop(ctx, conn, time.Second) }()
	tb.Cleanup(func() { cancel(); <-done })
	return a
}

// waitAsync runs a.wait in a goroutine; the channel closes when it returns.
func waitAsync(a *acker, conn natsConn, seq uint64, timeout time.Duration) <-chan struct{} {
	done := make(chan struct{})
	go func() { defer close(done); a.wait(context.Background(), conn, seq, timeout) }()
	return done
}

func returned(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func TestAcker_Wait(t *testing.T) {
	t.Run("WaitsForPublishThenFlush", func(t *testing.T) {
		conn := &fakeConn{}
		conn.connected.Store(true)
		a := startAcker(t, conn)
		done := waitAsync(a, conn, 5, time.Hour)
		a.publishedUpTo(3)
		a.publishedUpTo(5)
		goattest.WaitFor(t, "wait to return", func() bool { return returned(done) })
		if conn.flushes.Load() == 0 {
			t.Fatal("released without a flush")
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.flushed < 5 {
			t.Fatalf("flushed %d, want 5", a.flushed)
		}
	})
	t.Run("NotPublishedYetKeepsWaiting", func(t *testing.T) {
		conn := &fakeConn{}
		conn.connected.Store(true)
		a := startAcker(t, conn)
		a.publishedUpTo(4)
		done5 := waitAsync(a, conn, 5, time.Hour)
		goattest.WaitFor(t, "waiter for 5", func() bool { return a.wantAtLeast(5) })
		done4 := waitAsync(a, conn, 4, time.Hour)
		goattest.WaitFor(t, "waiter for 4 released by a flush", func() bool { return returned(done4) })
		if returned(done5) {
			t.Fatal("a flush covering 4 released the waiter for 5")
		}
		a.publishedUpTo(5)
		goattest.WaitFor(t, "waiter for 5 released", func() bool { return returned(done5) })
	})
	t.Run("OneFlushServesManyWaiters", func(t *testing.T) {
		conn := &fakeConn{gate: make(chan struct{})}
		conn.connected.Store(true)
		a := startAcker(t, conn)
		a.publishedUpTo(1)
		first := waitAsync(a, conn, 1, time.Hour) // its flush is held at the gate
		goattest.WaitFor(t, "first flush to start", func() bool { return conn.entered.Load() == 1 })
		a.publishedUpTo(50)
		var dones []<-chan struct{}
		for seq := uint64(2); seq <= 50; seq++ {
			dones = append(dones, waitAsync(a, conn, seq, time.Hour))
		}
		goattest.WaitFor(t, "waiters registered", func() bool { return a.wantAtLeast(50) })
		go func() {
			for range 2 {
				conn.gate <- struct{}{}
			}
		}()
		goattest.WaitFor(t, "every waiter released", func() bool {
			for _, d := range append(dones, first) {
				if !returned(d) {
					return false
				}
			}
			return true
		})
		if got := conn.flushes.Load(); got > 2 {
			t.Fatalf("%d flushes for 50 waiters, want at most 2", got)
		}
	})
	t.Run("DisconnectedDoesNotWait", func(t *testing.T) {
		conn := &fakeConn{}
		a := startAcker(t, conn)
		done := waitAsync(a, conn, 9, time.Hour)
		goattest.WaitFor(t, "wait to return", func() bool { return returned(done) })
	})
	t.Run("DroppedDoesNotWait", func(t *testing.T) {
		conn := &fakeConn{}
		conn.connected.Store(true)
		a := startAcker(t, conn)
		done := waitAsync(a, conn, 9, time.Hour)
		a.drop(9)
		goattest.WaitFor(t, "wait to return", func() bool { return returned(done) })
	})
	t.Run("FailedFlushReleases", func(t *testing.T) {
		conn := &fakeConn{}
		conn.connected.Store(true)
		conn.fail.Store(true)
		a := startAcker(t, conn)
		a.publishedUpTo(3)
		done := waitAsync(a, conn, 3, time.Hour)
		goattest.WaitFor(t, "wait to return", func() bool { return returned(done) })
	})
	t.Run("Timeout", func(t *testing.T) {
		conn := &fakeConn{}
		conn.connected.Store(true)
		a := startAcker(t, conn)
		done := waitAsync(a, conn, 3, time.Millisecond) // never published
		goattest.WaitFor(t, "wait to time out", func() bool { return returned(done) })
	})
}

// wantAtLeast reports whether a waiter for seq registered (tests only).
func (a *acker) wantAtLeast(seq uint64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.want >= seq
}
