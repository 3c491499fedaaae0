package main

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goat-gateway/goat-gateway/internal/uring"
)

// A subscriber that blocks in Read on a goroutine of its own pays, per
// event, a goroutine wake-up and two read(2)s (the one that gets the event
// and the one that finds the socket empty and parks), and that CPU is
// taken from the gateway it measures, on the same cores. An ssePoller
// instead reads many live streams on one goroutine, parsing in place.
// Every event of every stream is still read, parsed and handed on, with
// the time its bytes were read.
//
// Two implementations: uringPoller keeps a receive queued on an io_uring
// for every stream, so that one system call reaps the events of many
// streams (where a system call costs microseconds, as on VMs with
// page-table isolation, that is most of the tool's CPU per event);
// epollPoller is the fallback where io_uring is unavailable, and the
// comparison: one epoll_wait, then one read(2) per ready stream.

// ssePoller is one goroutine reading the streams added to it.
type ssePoller interface {
	// add takes s over: its socket leaves the Go runtime's poller for the
	// poller's, and the events s had parsed but not returned are handed
	// to on first, with the time they were read. From then on the poller
	// calls on with every event of the stream, on its goroutine, and
	// ended once, when the stream ends (errEOF when the server ended it,
	// errClosed when the poller was closed); on and ended must not
	// block. s is closed whatever add returns.
	add(s *sseStream, on func(ev sseEvent, at time.Time), ended func(err error)) error
	// close ends every stream (their ended sees errClosed) and waits for
	// the poller's goroutine. Closing twice is harmless.
	close()
	// size returns how many streams the poller reads.
	size() int
}

var (
	_ ssePoller = (*epollPoller)(nil)
	_ ssePoller = (*uringPoller)(nil)
)

// pollerKind chooses an ssePoller implementation (goat-bench --poller).
type pollerKind string

const (
	pollerAuto  pollerKind = "auto" // io_uring where the kernel offers it, else epoll
	pollerEpoll pollerKind = "epoll"
	pollerUring pollerKind = "uring"
)

// setup says, for a scenario's setup, how goat-bench read its streams.
func (k pollerKind) setup() string {
	how := map[pollerKind]string{
		pollerUring: "io_uring: a receive queued per stream, one io_uring_enter for the events of many streams",
		pollerEpoll: "epoll: epoll_wait, then one read(2) per stream with bytes",
	}[k]
	return fmt.Sprintf("goat-bench reads the streams on one goroutine per core with %s (--poller %s)", how, k)
}

// newSSEPoller starts a poller of the given kind.
func newSSEPoller(kind pollerKind) (ssePoller, error) {
	switch kind {
	case pollerEpoll:
		pl, err := newEpollPoller()
		if err != nil {
			return nil, err
		}
		return pl, nil
	case pollerUring, pollerAuto, "":
		pl, err := newUringPoller(ringQueue, ringStreams)
		if err == nil {
			return pl, nil
		}
		if kind == pollerUring || !errors.Is(err, uring.ErrUnavailable) {
			return nil, err
		}
		return newSSEPoller(pollerEpoll)
	}
	return nil, fmt.Errorf("unknown poller %q (have auto, epoll, uring)", kind)
}

// resolvePoller returns the kind of poller newSSEPoller(kind) starts
// here, auto made uring or epoll by starting one.
func resolvePoller(kind pollerKind) (pollerKind, error) {
	pl, err := newSSEPoller(kind)
	if err != nil {
		return "", err
	}
	defer pl.close()
	if _, ok := pl.(*uringPoller); ok {
		return pollerUring, nil
	}
	return pollerEpoll, nil
}

// polledStream is a stream that a poller reads.
type polledStream struct {
	fd      int
	p       sseParser
	at      time.Time // when the bytes being parsed were read
	on      func(ev sseEvent, at time.Time)
	ended   func(err error)
	emitter func(sseEvent) error // emit, bound once
}

func (s *polledStream) emit(ev sseEvent) error {
	s.on(ev, s.at)
	return nil
}

// takeOver is the first half of add, the same for every poller: it
// returns s's socket as a non-blocking descriptor of its own and s's
// parser, once the events s had queued are handed to on.
func takeOver(s *sseStream, on func(ev sseEvent, at time.Time), ended func(err error)) (*polledStream, error) {
	raw, err := s.conn.SyscallConn()
	if err != nil {
		s.Close()
		return nil, err
	}
	fd := -1
	var derr error
	handoverSlots <- struct{}{}
	if err := raw.Control(func(f uintptr) { fd, derr = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		derr = err
	}
	// Closing the connection takes the socket out of the runtime's epoll
	// set; the duplicate keeps it open, without a FIN.
	s.Close()
	<-handoverSlots
	if derr != nil {
		return nil, fmt.Errorf("dup: %w", derr)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	p, queued, at := s.take()
	ps := &polledStream{fd: fd, p: p, on: on, ended: ended}
	ps.emitter = ps.emit
	for _, ev := range queued {
		on(ev, at)
	}
	return ps, nil
}

// handoverSlots bounds the handovers under way, each of which holds a
// second descriptor for a moment: the fan-out ramp opens streams up to the
// open-files limit less fanoutSpareFDs, with many dials at once.
var handoverSlots = make(chan struct{}, 4)

// errClosed ends the streams of a poller that is closed.
var errClosed = errors.New("event stream: poller closed")

// errEOF is a stream that the server ended.
var errEOF = errors.New("event stream: ended by the server")

// epollPoller reads its streams with an epoll set of its own: one
// epoll_wait for every stream that has bytes, then one read(2) per such
// stream into one buffer (level-triggered: what does not fit is reported
// again).
type epollPoller struct {
	epfd int
	wake int // an eventfd that wakes the goroutine to close

	mu      sync.Mutex
	streams map[int32]*polledStream // by descriptor
	closing bool
	done    chan struct{}
}

func newEpollPoller() (*epollPoller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wake)}); err != nil {
		unix.Close(wake)
		unix.Close(epfd)
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	pl := &epollPoller{epfd: epfd, wake: wake, streams: map[int32]*polledStream{}, done: make(chan struct{})}
	go pl.run()
	return pl, nil
}

func (pl *epollPoller) add(s *sseStream, on func(ev sseEvent, at time.Time), ended func(err error)) error {
	ps, err := takeOver(s, on, ended)
	if err != nil {
		return err
	}
	fd := ps.fd
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.closing || pl.streams == nil {
		unix.Close(fd)
		return errClosed
	}
	pl.streams[int32(fd)] = ps
	if err := unix.EpollCtl(pl.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)}); err != nil {
		delete(pl.streams, int32(fd))
		unix.Close(fd)
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	return nil
}

// pollBuffer is what one read(2) may take from a stream: more than the
// kernel's socket buffer usually holds for one stream, so that one read
// empties it.
const pollBuffer = 256 << 10

func (pl *epollPoller) run() {
	defer close(pl.done)
	evs := make([]unix.EpollEvent, 512)
	batch := make([]*polledStream, 0, len(evs))
	buf := make([]byte, pollBuffer)
	for {
		n, err := unix.EpollWait(pl.epfd, evs, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			pl.closeAll(fmt.Errorf("epoll_wait: %w", err))
			return
		}
		batch = batch[:0]
		pl.mu.Lock()
		if pl.closing {
			pl.mu.Unlock()
			pl.closeAll(errClosed)
			return
		}
		for _, ev := range evs[:n] {
			if s := pl.streams[ev.Fd]; s != nil {
				batch = append(batch, s)
			}
		}
		pl.mu.Unlock()
		for i, s := range batch {
			batch[i] = nil
			m, err := unix.Read(s.fd, buf)
			s.at = time.Now()
			if m > 0 {
				if ferr := s.p.feed(buf[:m], s.emitter); ferr != nil {
					err = ferr
				}
			}
			switch {
			case err == nil && m == 0:
				err = errEOF
			case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
				continue
			case err == nil:
				continue
			}
			if errors.Is(err, errStreamEnd) {
				err = errEOF
			}
			pl.mu.Lock()
			delete(pl.streams, int32(s.fd))
			pl.mu.Unlock()
			unix.Close(s.fd) // leaves the epoll set with it
			s.ended(err)
		}
	}
}

// closeAll ends every stream of pl. Its goroutine only.
func (pl *epollPoller) closeAll(why error) {
	pl.mu.Lock()
	pl.closing = true
	streams := pl.streams
	pl.streams = nil
	// Under mu: close writes to wake under mu while streams is not nil.
	unix.Close(pl.wake)
	unix.Close(pl.epfd)
	pl.mu.Unlock()
	for _, s := range streams {
		unix.Close(s.fd)
		s.ended(why)
	}
}

func (pl *epollPoller) close() {
	pl.mu.Lock()
	pl.closing = true
	if pl.streams != nil {
		one := [8]byte{1}
		_, _ = unix.Write(pl.wake, one[:])
	}
	pl.mu.Unlock()
	<-pl.done
}

func (pl *epollPoller) size() int {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return len(pl.streams)
}
