package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"

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
// what its buffer grows to.
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
