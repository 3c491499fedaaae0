package main

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// A subscriber that blocks in Read on a goroutine of its own pays, per
// event, a goroutine wake-up and two read(2)s (the one that gets the event
// and the one that finds the socket empty and parks), and that CPU is
// taken from the gateway it measures, on the same cores. An ssePoller
// instead reads many live streams on one goroutine with an epoll set of
// its own: one epoll_wait for every stream that has bytes, then one
// read(2) per such stream into one buffer (level-triggered: what does not
// fit is reported again), parsed in place. Every event of every stream is
// still read, parsed and handed on, with the time its bytes were read.

// ssePoller is one goroutine reading the streams added to it.
type ssePoller struct {
	epfd int
	wake int // an eventfd that wakes the goroutine to close

	mu      sync.Mutex
	streams map[int32]*polledStream // by descriptor
	closing bool
	done    chan struct{}
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

func newSSEPoller() (*ssePoller, error) {
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
	pl := &ssePoller{epfd: epfd, wake: wake, streams: map[int32]*polledStream{}, done: make(chan struct{})}
	go pl.run()
	return pl, nil
}

// add takes s over: its socket leaves the Go runtime's poller for pl's,
// and the events s had parsed but not returned are handed to on first,
// with the time they were read. From then on pl calls on with every event
// of the stream, on its goroutine, and ended once, when the stream ends
// (errEOF when the server ended it, errClosed when pl was closed); on and
// ended must not block. s is closed whatever add returns.
func (pl *ssePoller) add(s *sseStream, on func(ev sseEvent, at time.Time), ended func(err error)) error {
	raw, err := s.conn.SyscallConn()
	if err != nil {
		s.Close()
		return err
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
		return fmt.Errorf("dup: %w", derr)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return err
	}
	p, queued, at := s.take()
	ps := &polledStream{fd: fd, p: p, on: on, ended: ended}
	ps.emitter = ps.emit
	for _, ev := range queued {
		on(ev, at)
	}
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

// handoverSlots bounds the handovers under way, each of which holds a
// second descriptor for a moment: the fan-out ramp opens streams up to the
// open-files limit less fanoutSpareFDs, with many dials at once.
var handoverSlots = make(chan struct{}, 4)

// errClosed ends the streams of a poller that is closed.
var errClosed = errors.New("event stream: poller closed")

// pollBuffer is what one read(2) may take from a stream: more than the
// kernel's socket buffer usually holds for one stream, so that one read
// empties it.
const pollBuffer = 256 << 10

func (pl *ssePoller) run() {
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

// errEOF is a stream that the server ended.
var errEOF = errors.New("event stream: ended by the server")

// closeAll ends every stream of pl. Its goroutine only.
func (pl *ssePoller) closeAll(why error) {
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

// close ends every stream of pl (their ended sees errClosed) and waits
// for its goroutine.
func (pl *ssePoller) close() {
	pl.mu.Lock()
	pl.closing = true
	if pl.streams != nil {
		one := [8]byte{1}
		_, _ = unix.Write(pl.wake, one[:])
	}
	pl.mu.Unlock()
	<-pl.done
}

// size returns how many streams pl reads.
func (pl *ssePoller) size() int {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return len(pl.streams)
}
