package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
)

// byteBudget bounds the bytes of all request bodies held at once (issue
// 17, item 2): a body takes its bytes before they are read and gives them
// back when its request ends, so a crowd of large or slow bodies costs at
// most the budget, and the request that does not fit is told to retry
// (429 with Retry-After) instead of growing the heap.
type byteBudget struct {
	mu   sync.Mutex
	max  int64
	used int64
	peak int64 // the most ever held at once, for tests
}

func (b *byteBudget) tryAcquire(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.max {
		return false
	}
	b.used += n
	b.peak = max(b.peak, b.used)
	return true
}

func (b *byteBudget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

// Peak reports the most bytes of bodies the server ever held at once.
func (b *byteBudget) Peak() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.peak
}

// chunkStep is the first step of a body of unknown length (chunked): its
// buffer doubles from here, each growth taken from the budget first.
const chunkStep = 32 << 10

// readBody reads r's body, at most limit bytes, holding its bytes in the
// budget until release is called. A body with a Content-Length takes the
// whole length up front (one allocation, no growth); a chunked one takes
// what its buffer grows to. Its bytes are charged to the caller's rate
// (bodyRate): a Content-Length before a byte is read, a chunked body as
// each piece arrives, so a caller over its rate is cut at once.
func (s *Server) readBody(r *http.Request, limit int64) (b []byte, release func(), err error) {
	var held int64
	giveBack := func() { s.budget.release(held) }
	defer func() {
		if err != nil {
			giveBack()
		}
	}()
	take := func(n int64) error {
		if !s.budget.tryAcquire(n) {
			return fmt.Errorf("%w: the gateway is reading too many request bodies at once; retry shortly", core.ErrRateLimited)
		}
		held += n
		return nil
	}
	// A length of 0 with a body is an in-process caller's request that
	// did not say (a server's has http.NoBody): read it as chunked.
	if n := r.ContentLength; n > 0 {
		if err := take(n); err != nil {
			return nil, nil, err
		}
		if err := s.chargeRate(r, n); err != nil {
			return nil, nil, err
		}
		b = make([]byte, n)
		if _, err := io.ReadFull(r.Body, b); err != nil {
			return nil, nil, s.bodyError(err)
		}
		return b, giveBack, nil
	}
	for {
		if len(b) == cap(b) {
			if int64(len(b)) > limit {
				return nil, nil, fmt.Errorf("%w: request body is over the %d byte limit", core.ErrTooLarge, limit)
			}
			grown := min(max(2*int64(cap(b)), chunkStep), limit+1)
			if err := take(grown - int64(cap(b))); err != nil {
				return nil, nil, err
			}
			b = append(make([]byte, 0, grown), b...)
		}
		n, err := r.Body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if rerr := s.chargeRate(r, int64(n)); rerr != nil {
			return nil, nil, rerr
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, s.bodyError(err)
		}
	}
	if int64(len(b)) > limit {
		return nil, nil, fmt.Errorf("%w: request body is over the %d byte limit", core.ErrTooLarge, limit)
	}
	return b, giveBack, nil
}

// bodyError says what went wrong reading a body; a body that did not
// arrive within the read deadline says so, with the fix.
func (s *Server) bodyError(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%w: the request body did not arrive within %s; send it at once", core.ErrInvalid, s.cfg.BodyReadTimeout)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: the request body ended before its Content-Length", core.ErrInvalid)
	}
	return fmt.Errorf("%w: reading the request body: %v", core.ErrInvalid, err)
}

// bodyRate bounds the rate at which one caller makes the gateway read
// request bodies (issue 17): a token bucket of bytes per caller, refilled
// at rate bytes a second up to burst. The byte budget bounds the memory of
// the bodies held at once, not how fast they come: one anonymous address
// sending 9 MiB sync bodies of zeros, each read in full and answered 400,
// made the node read 190 MB a second, a quarter of its CPU, and slowed
// every other caller. With a bucket per caller, such a caller slows only
// itself.
//
// A caller is the token's subject, or for anonymous callers the remote
// address (withRemote: the rule of the other per-address limits). Peer
// nodes are not limited: they are the deployment itself, healing.
//
// The buckets are bounded: a bucket refilled to burst is the same as no
// bucket, so when there are maxBuckets of them the full ones are dropped;
// if that frees less than an eighth, arbitrary ones go until it has (a
// caller whose bucket was dropped starts full again: a flood of addresses
// costs at most maxBuckets buckets, never memory without bound).
type bodyRate struct {
	rate       float64 // bytes a second
	burst      float64 // bytes
	maxBuckets int

	mu      sync.Mutex
	buckets map[string]*rateBucket
}

type rateBucket struct {
	tokens float64
	at     time.Time
}

// defaultBodyRate is the default rate of body bytes per caller: far above
// the heaviest measured client (the ingest benchmark, one subject pushing
// 100 commits a request back to back: 6,860 commits of a few hundred bytes
// a second, a few MB/s) and the soak's honest writers (KB/s); one sync
// round, filter and push, is at most one body limit, which the burst
// covers, and a client pushing a large repository round after round is
// held to 32 MiB/s. Peer nodes healing are not limited.
const defaultBodyRate = 32 << 20

// defaultRateBuckets is how many callers' buckets are kept at most.
const defaultRateBuckets = 8192

func newBodyRate(rate, burst int64, maxBuckets int) *bodyRate {
	return &bodyRate{rate: float64(rate), burst: float64(burst), maxBuckets: maxBuckets, buckets: map[string]*rateBucket{}}
}

// take charges n bytes to key's bucket at now; when they do not fit, it
// charges nothing and says how long until they would.
func (l *bodyRate) take(key string, n int64, now time.Time) (ok bool, wait time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= l.maxBuckets {
			l.sweep(now)
		}
		b = &rateBucket{tokens: l.burst, at: now}
		l.buckets[key] = b
	}
	if dt := now.Sub(b.at); dt > 0 {
		b.tokens = min(l.burst, b.tokens+l.rate*dt.Seconds())
		b.at = now
	}
	if b.tokens >= float64(n) {
		b.tokens -= float64(n)
		return true, 0
	}
	return false, time.Duration((float64(n) - b.tokens) / l.rate * float64(time.Second))
}

// sweep drops the buckets refilled to burst by now and, if that is less
// than an eighth of them, arbitrary others until it is.
func (l *bodyRate) sweep(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+l.rate*now.Sub(b.at).Seconds() >= l.burst {
			delete(l.buckets, k)
		}
	}
	keep := l.maxBuckets - max(l.maxBuckets/8, 1)
	for k := range l.buckets {
		if len(l.buckets) <= keep {
			break
		}
		delete(l.buckets, k)
	}
}

// len is how many buckets are kept.
func (l *bodyRate) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// retryAfterError is a refusal that knows when the caller may retry.
type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// seconds is the Retry-After value: whole seconds, rounded up, at least 1.
func (e *retryAfterError) seconds() int64 {
	return max(int64((e.after+time.Second-1)/time.Second), 1)
}

// chargeRate charges n body bytes of r to its caller's bucket; nil when
// the gateway has no rate or the caller is a peer node.
func (s *Server) chargeRate(r *http.Request, n int64) error {
	if s.rate == nil || n <= 0 {
		return nil
	}
	p := principalFrom(r.Context())
	if p.Node && !p.Anonymous {
		return nil
	}
	key := "sub:" + p.Sub
	if p.Anonymous || p.Sub == "" {
		key = "anonymous:" + remoteFrom(r.Context())
	}
	ok, wait := s.rate.take(key, n, s.cfg.Now())
	if ok {
		return nil
	}
	return &retryAfterError{
		err:   fmt.Errorf("%w: this caller sends request bodies faster than %d bytes a second; retry after the Retry-After seconds", core.ErrRateLimited, s.cfg.BodyRate),
		after: wait,
	}
}
