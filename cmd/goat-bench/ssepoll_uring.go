package main

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goat-gateway/goat-gateway/internal/uring"
)

// uringPoller reads its streams through an io_uring. Every stream has a
// receive queued on the ring, into a buffer of its own that the kernel
// owns until the receive completes; once its bytes are parsed it is queued
// again. One io_uring_enter then submits every receive queued again and
// reaps every receive that completed meanwhile, where the epoll poller
// enters the kernel once per ready stream.
//
// The ring is single-issuer: receives that complete while its goroutine
// runs are finished in one go on its next wait, instead of interrupting
// it one by one; in exchange only that goroutine, locked to the thread
// that set the ring up, may touch the ring. Other goroutines hand their
// adds over on a list and wake it with an eventfd whose read is always
// queued on the ring; closing likewise.
type uringPoller struct {
	wake  int // the eventfd
	limit int // how many streams it may read: see ringStreams

	mu      sync.Mutex
	pending []*polledStream // added, not yet taken by the goroutine
	n       int             // streams added and not ended
	closing bool
	stopped bool // the goroutine is done with wake
	done    chan struct{}
}

const (
	// ringBuffer is a stream's receive buffer: an event (about 600
	// bytes in its chunk framing) fits three times; a longer burst takes
	// several receives. 20,000 streams hold 40 MiB.
	ringBuffer = 2 << 10
	// ringQueue is the submission queue's size: more receives than that
	// to queue at once are submitted in several goes.
	ringQueue = 1024
	// ringStreams is how many streams a ring reads at most. Each has at
	// most one receive in flight, and the wake read one more, so a
	// completion queue of ringStreams+1 (512 KiB) holds every completion
	// that can be waiting at once: the kernel never has to hold any
	// aside, and never refuses a submission for it.
	ringStreams = 1<<15 - 1
)

// wakeUser is the user value of the eventfd's read; slot i's receives
// carry i+1.
const wakeUser = 0

// newUringPoller starts a poller on a ring of sq submission entries that
// reads up to streams streams. Where the kernel offers no (suitable)
// io_uring, the error wraps uring.ErrUnavailable.
func newUringPoller(sq, streams int) (*uringPoller, error) {
	// Blocking, as in internal/uring's own test: the read queued on the
	// ring is to wait for a wake, not to complete at once with EAGAIN.
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	pl := &uringPoller{wake: wake, limit: streams, done: make(chan struct{})}
	started := make(chan error, 1)
	go pl.run(uint32(sq), uint32(streams+1), started)
	if err := <-started; err != nil {
		unix.Close(wake)
		return nil, err
	}
	return pl, nil
}

func (pl *uringPoller) add(s *sseStream, on func(ev sseEvent, at time.Time), ended func(err error)) error {
	ps, err := takeOver(s, on, ended)
	if err != nil {
		return err
	}
	pl.mu.Lock()
	defer pl.mu.Unlock()
	switch {
	case pl.closing:
		unix.Close(ps.fd)
		return errClosed
	case pl.n >= pl.limit:
		unix.Close(ps.fd)
		return fmt.Errorf("event stream: poller full (%d streams)", pl.limit)
	}
	pl.pending = append(pl.pending, ps)
	if len(pl.pending) == 1 {
		// The goroutine takes the whole list when woken: the adds that
		// find it not empty have a wake on the way.
		one := [8]byte{1}
		if _, err := unix.Write(pl.wake, one[:]); err != nil {
			pl.pending = pl.pending[:0]
			unix.Close(ps.fd)
			return fmt.Errorf("eventfd: %w", err)
		}
	}
	pl.n++
	return nil
}

func (pl *uringPoller) close() {
	pl.mu.Lock()
	pl.closing = true
	if !pl.stopped {
		one := [8]byte{1}
		_, _ = unix.Write(pl.wake, one[:])
	}
	pl.mu.Unlock()
	<-pl.done
}

func (pl *uringPoller) size() int {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.n
}

func (pl *uringPoller) run(sq, cq uint32, started chan<- error) {
	// A single-issuer ring may only be entered from the thread that set
	// it up.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// The receive buffers are mapped outside the Go heap: the garbage
	// collector neither tracks them nor could ever hand one that the
	// kernel still owns to something else, and only the pages of buffers
	// in use take memory.
	mem, err := unix.Mmap(-1, 0, pl.limit*ringBuffer, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		started <- fmt.Errorf("mmap: %w", err)
		return
	}
	r, err := uring.New(sq, cq, uring.SingleIssuer)
	if err != nil {
		unix.Munmap(mem)
		started <- err
		return
	}
	defer close(pl.done)
	started <- nil
	lp := &ringLoop{pl: pl, r: r, mem: mem}
	lp.complete = lp.completed
	lp.finish(lp.loop())
}

// ringLoop is the state of a uringPoller's goroutine, which alone uses it.
type ringLoop struct {
	pl  *uringPoller
	r   *uring.Ring
	mem []byte // the slots' buffers, ringBuffer bytes each

	slots []ringSlot
	free  []uint32 // slots without a stream
	again []uint32 // slots whose receive is to be queued (again)

	inFlight   int // receives in the kernel
	wakeQueued bool
	wakeBuf    [8]byte
	woken      bool
	draining   bool      // closing: completions are only counted
	at         time.Time // when the completions being handled were reaped

	complete func(user uint64, res int32) // completed, bound once
}

// ringSlot is a receive buffer and the stream it is for, if any. Slots
// and their buffers are reused, never freed, until the ring is closed.
type ringSlot struct {
	s      *polledStream
	buf    []byte // in mem
	queued bool   // its receive is in the kernel, which owns buf
}

// loop runs until the poller is closed or the ring fails.
func (lp *ringLoop) loop() error {
	if err := lp.queueWake(); err != nil {
		return err
	}
	for {
		if err := lp.r.SubmitAndWait(1); err != nil {
			return err
		}
		// The receives reaped now were all copied inside the wait
		// (single-issuer completions run there): their bytes were read
		// by now. Those that completed inside a Submit below are dated
		// at the next wait's end, a little late, never early.
		lp.at = time.Now()
		lp.woken = false
		lp.r.Completions(lp.complete)
		if lp.woken {
			lp.pl.mu.Lock()
			adds, closing := lp.pl.pending, lp.pl.closing
			lp.pl.pending = nil
			lp.pl.mu.Unlock()
			for _, s := range adds {
				lp.start(s)
			}
			if closing {
				return errClosed
			}
			if err := lp.queueWake(); err != nil {
				return err
			}
		}
		for _, i := range lp.again {
			if err := lp.queue(i); err != nil {
				return err
			}
		}
		lp.again = lp.again[:0]
	}
}

// start gives s a slot; its first receive is queued with the others.
func (lp *ringLoop) start(s *polledStream) {
	var i uint32
	if n := len(lp.free); n > 0 {
		i = lp.free[n-1]
		lp.free = lp.free[:n-1]
	} else {
		i = uint32(len(lp.slots))
		lp.slots = append(lp.slots, ringSlot{buf: lp.mem[i*ringBuffer : (i+1)*ringBuffer : (i+1)*ringBuffer]})
	}
	lp.slots[i].s = s
	lp.again = append(lp.again, i)
}

// queue queues slot i's receive; a full submission queue is submitted
// first.
func (lp *ringLoop) queue(i uint32) error {
	sl := &lp.slots[i]
	for !lp.r.Recv(sl.s.fd, sl.buf, uint64(i)+1) {
		if err := lp.r.Submit(); err != nil {
			return err
		}
	}
	sl.queued = true
	lp.inFlight++
	return nil
}

func (lp *ringLoop) queueWake() error {
	for !lp.r.Read(lp.pl.wake, lp.wakeBuf[:], wakeUser) {
		if err := lp.r.Submit(); err != nil {
			return err
		}
	}
	lp.wakeQueued = true
	return nil
}

// completed handles one completion. It must not Submit: what is to be
// queued again goes on lp.again.
func (lp *ringLoop) completed(user uint64, res int32) {
	if user == wakeUser {
		lp.wakeQueued = false
		lp.woken = true
		return
	}
	i := uint32(user - 1)
	sl := &lp.slots[i]
	sl.queued = false
	lp.inFlight--
	if lp.draining {
		return
	}
	switch s := sl.s; {
	case res > 0:
		s.at = lp.at
		if err := s.p.feed(sl.buf[:res], s.emitter); err != nil {
			lp.end(i, err)
			return
		}
		lp.again = append(lp.again, i)
	case res == 0:
		lp.end(i, errEOF)
	case res == -int32(unix.EINTR), res == -int32(unix.EAGAIN):
		lp.again = append(lp.again, i)
	default:
		lp.end(i, fmt.Errorf("recv: %w", unix.Errno(-res)))
	}
}

// end ends the stream of slot i, whose receive is not in the kernel.
func (lp *ringLoop) end(i uint32, err error) {
	s := lp.slots[i].s
	lp.slots[i].s = nil
	lp.free = append(lp.free, i)
	if errors.Is(err, errStreamEnd) {
		err = errEOF
	}
	lp.pl.mu.Lock()
	lp.pl.n--
	lp.pl.mu.Unlock()
	unix.Close(s.fd)
	s.ended(err)
}

// finish ends every stream with why and closes the ring.
func (lp *ringLoop) finish(why error) {
	if errors.Is(why, errClosed) {
		// Receives still in the kernel would write into their buffers
		// whenever bytes came. Shutting a socket's reading side down
		// completes its receive (with 0, or with bytes that came first);
		// once every one has been reaped, no buffer is the kernel's and
		// no request holds a socket open after it is closed.
		lp.draining = true
		for i := range lp.slots {
			if sl := &lp.slots[i]; sl.queued {
				_ = unix.Shutdown(sl.s.fd, unix.SHUT_RD)
			}
		}
		for lp.inFlight > 0 || lp.wakeQueued {
			if lp.r.SubmitAndWait(1) != nil {
				break
			}
			lp.r.Completions(lp.complete)
		}
	}
	pl := lp.pl
	pl.mu.Lock()
	pl.closing, pl.stopped = true, true
	pending := pl.pending
	pl.pending, pl.n = nil, 0
	pl.mu.Unlock()
	// After a failure of the ring, requests may still be in the kernel:
	// Close cancels them, and only then may their buffers go.
	lp.r.Close()
	unix.Munmap(lp.mem)
	unix.Close(pl.wake)
	for i := range lp.slots {
		if s := lp.slots[i].s; s != nil {
			unix.Close(s.fd)
			s.ended(why)
		}
	}
	for _, s := range pending {
		unix.Close(s.fd)
		s.ended(why)
	}
	runtime.KeepAlive(lp)
}
