package node

import (
	"fmt"
	stdsync "sync"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
)

// AcquireStream takes one of p's concurrent live streams. A subject is
// counted wherever it connects from; anonymous callers are counted per
// remote address (the client's IP as the transport layer knows it), so one
// anonymous client at its quota cannot lock every other anonymous reader
// out. An empty remote counts with every other caller of unknown address.
// It fails with core.ErrRateLimited past the quota; release gives the stream back.
func (n *Node) AcquireStream(p auth.Principal, remote string) (release func(), err error) {
	key := "sub:" + p.Sub
	if p.Anonymous {
		key = "anonymous:" + remote
	}
	if !n.streams.acquire(key) {
		return nil, fmt.Errorf("%w: more than %d concurrent streams for this caller", core.ErrRateLimited, n.cfg.MaxStreamsPerCaller)
	}
	return func() { n.streams.release(key) }, nil
}

// streamLimiter bounds concurrent streams per caller.
type streamLimiter struct {
	mu    stdsync.Mutex
	max   int
	count map[string]int
}

func newStreamLimiter(max int) *streamLimiter {
	return &streamLimiter{max: max, count: map[string]int{}}
}

func (l *streamLimiter) acquire(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.count[key] >= l.max {
		return false
	}
	l.count[key]++
	return true
}

func (l *streamLimiter) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.count[key]--; l.count[key] <= 0 {
		delete(l.count, key)
	}
}
