package uring

import (
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// The kernel's interface (include/uapi/linux/io_uring.h).
const (
	sysSetup = 425 // io_uring_setup, the same number on every architecture
	sysEnter = 426 // io_uring_enter

	opRead = 22 // IORING_OP_READ
	opSend = 26 // IORING_OP_SEND
	opRecv = 27 // IORING_OP_RECV

	setupCQSize       = 1 << 3  // IORING_SETUP_CQSIZE
	setupSubmitAll    = 1 << 7  // IORING_SETUP_SUBMIT_ALL: one failed request does not stop the rest
	setupCoopTaskrun  = 1 << 8  // IORING_SETUP_COOP_TASKRUN: completions wait for the next entry, no interrupt
	setupSingleIssuer = 1 << 12 // IORING_SETUP_SINGLE_ISSUER
	setupDeferTaskrun = 1 << 13 // IORING_SETUP_DEFER_TASKRUN: completions are run only when waited for

	enterGetEvents = 1 // IORING_ENTER_GETEVENTS

	recvPollFirst = 1 << 0 // IORING_RECVSEND_POLL_FIRST, in a receive's ioprio

	featSingleMmap = 1 << 0 // IORING_FEAT_SINGLE_MMAP
	featNoDrop     = 1 << 1 // IORING_FEAT_NODROP

	offSQRing = 0          // IORING_OFF_SQ_RING
	offSQEs   = 0x10000000 // IORING_OFF_SQES
)

type sqringOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

type cqringOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

type params struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFd uint32
	resv                                                                   [3]uint32
	sqOff                                                                  sqringOffsets
	cqOff                                                                  cqringOffsets
}

// sqe is a submission queue entry (struct io_uring_sqe), 64 bytes.
type sqe struct {
	opcode   uint8
	flags    uint8
	ioprio   uint16
	fd       int32
	off      uint64
	addr     uint64
	len      uint32
	opFlags  uint32 // msg_flags, rw_flags, ...
	userData uint64
	bufIndex uint16
	pers     uint16
	fileIdx  int32
	addr3    uint64
	_        uint64
}

// cqe is a completion queue entry (struct io_uring_cqe), 16 bytes.
type cqe struct {
	userData uint64
	res      int32
	flags    uint32
}

// Flags choose how a ring is set up.
type Flags uint32

// SingleIssuer sets the ring up for one thread that submits and waits
// (IORING_SETUP_SINGLE_ISSUER and DEFER_TASKRUN, Linux 6.1): receives
// that complete while it runs are finished on its next wait, in one go,
// instead of interrupting it one by one. The goroutine must be locked to
// the thread that calls New.
const SingleIssuer Flags = 1

// ErrUnavailable wraps the reason the kernel gave for not setting up a
// ring; callers fall back to plain system calls.
var ErrUnavailable = errors.New("io_uring unavailable")

// Ring is an io_uring instance; see the package comment.
type Ring struct {
	fd int

	sqHead, sqTail, sqMask *uint32
	sqArray                []uint32
	sqes                   []sqe
	sqEntries              uint32
	tail                   uint32 // the submission queue's tail, ours until Submit publishes it

	cqHead, cqTail, cqMask *uint32
	cqes                   []cqe

	waitFlags uintptr // what Submit passes: GETEVENTS for a SingleIssuer ring, which must run its completions
	ringMem   []byte
	sqeMem    []byte
}

// New sets up a ring with room for sq queued requests and cq completions
// not yet reaped (the kernel rounds both up to powers of two; cq at least
// 2*sq). A caller must reap before more than cq of its requests have
// completed: the kernel then holds the rest aside (never dropping them)
// and refuses new submissions until they are reaped.
func New(sq, cq uint32, flags Flags) (*Ring, error) {
	p := params{flags: setupSubmitAll | setupCoopTaskrun | setupCQSize, cqEntries: max(cq, 2*sq)}
	if flags&SingleIssuer != 0 {
		p.flags = setupSubmitAll | setupSingleIssuer | setupDeferTaskrun | setupCQSize
	}
	fd, _, errno := syscall.Syscall(sysSetup, uintptr(sq), uintptr(unsafe.Pointer(&p)), 0)
	if errno != 0 {
		return nil, fmt.Errorf("%w: io_uring_setup: %w", ErrUnavailable, errno)
	}
	r := &Ring{fd: int(fd)}
	if flags&SingleIssuer != 0 {
		r.waitFlags = enterGetEvents
	}
	if p.features&featSingleMmap == 0 || p.features&featNoDrop == 0 {
		syscall.Close(r.fd)
		return nil, fmt.Errorf("%w: the kernel's io_uring is older than 5.5", ErrUnavailable)
	}
	size := max(p.sqOff.array+p.sqEntries*4, p.cqOff.cqes+p.cqEntries*uint32(unsafe.Sizeof(cqe{})))
	var err error
	r.ringMem, err = syscall.Mmap(r.fd, offSQRing, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED|syscall.MAP_POPULATE)
	if err != nil {
		syscall.Close(r.fd)
		return nil, fmt.Errorf("%w: mmap: %w", ErrUnavailable, err)
	}
	r.sqeMem, err = syscall.Mmap(r.fd, offSQEs, int(p.sqEntries)*int(unsafe.Sizeof(sqe{})), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED|syscall.MAP_POPULATE)
	if err != nil {
		syscall.Munmap(r.ringMem)
		syscall.Close(r.fd)
		return nil, fmt.Errorf("%w: mmap: %w", ErrUnavailable, err)
	}
	base := unsafe.Pointer(&r.ringMem[0])
	r.sqHead = (*uint32)(unsafe.Add(base, p.sqOff.head))
	r.sqTail = (*uint32)(unsafe.Add(base, p.sqOff.tail))
	r.sqMask = (*uint32)(unsafe.Add(base, p.sqOff.ringMask))
	r.sqArray = unsafe.Slice((*uint32)(unsafe.Add(base, p.sqOff.array)), p.sqEntries)
	r.sqEntries = p.sqEntries
	r.tail = atomic.LoadUint32(r.sqTail)
	r.cqHead = (*uint32)(unsafe.Add(base, p.cqOff.head))
	r.cqTail = (*uint32)(unsafe.Add(base, p.cqOff.tail))
	r.cqMask = (*uint32)(unsafe.Add(base, p.cqOff.ringMask))
	r.cqes = unsafe.Slice((*cqe)(unsafe.Add(base, p.cqOff.cqes)), p.cqEntries)
	r.sqes = unsafe.Slice((*sqe)(unsafe.Pointer(&r.sqeMem[0])), p.sqEntries)
	return r, nil
}

// Close releases the ring. Requests still in the kernel are cancelled;
// their buffers must stay untouched until Close returns.
func (r *Ring) Close() error {
	syscall.Munmap(r.sqeMem)
	syscall.Munmap(r.ringMem)
	return syscall.Close(r.fd)
}

// Fd returns the ring's descriptor.
func (r *Ring) Fd() int { return r.fd }

// Free returns how many requests can be queued before Submit.
func (r *Ring) Free() int {
	return int(r.sqEntries - (r.tail - atomic.LoadUint32(r.sqHead)))
}

// next returns the next free submission entry, zeroed, or nil.
func (r *Ring) next() *sqe {
	if r.tail-atomic.LoadUint32(r.sqHead) >= r.sqEntries {
		return nil
	}
	i := r.tail & *r.sqMask
	r.sqArray[i] = i
	r.tail++
	s := &r.sqes[i]
	*s = sqe{}
	return s
}

// Send queues a non-blocking send of b on the socket fd; it reports false,
// queueing nothing, when the submission queue is full (Submit, then queue
// again). b must not change until the send's completion is reaped.
func (r *Ring) Send(fd int, b []byte, user uint64) bool {
	return r.queue(opSend, fd, b, user, syscall.MSG_DONTWAIT|syscall.MSG_NOSIGNAL)
}

// Recv queues a receive into b on the socket fd: it completes when the
// socket has bytes (their count), at the end of the stream (0) or on an
// error (minus its errno). b belongs to the kernel until then. The kernel
// waits for the socket to be readable before it tries (POLL_FIRST): a
// receive is queued again right after the last one emptied the socket,
// when a first try would find nothing.
func (r *Ring) Recv(fd int, b []byte, user uint64) bool {
	if !r.queue(opRecv, fd, b, user, 0) {
		return false
	}
	r.sqes[(r.tail-1)&*r.sqMask].ioprio = recvPollFirst
	return true
}

// Read queues a read(2) of fd into b, for descriptors that are not
// sockets (an eventfd that wakes the ring's waiter).
func (r *Ring) Read(fd int, b []byte, user uint64) bool {
	return r.queue(opRead, fd, b, user, 0)
}

func (r *Ring) queue(op uint8, fd int, b []byte, user uint64, opFlags uint32) bool {
	s := r.next()
	if s == nil {
		return false
	}
	s.opcode = op
	s.fd = int32(fd)
	if len(b) > 0 {
		s.addr = uint64(uintptr(unsafe.Pointer(&b[0])))
	}
	s.len = uint32(len(b))
	s.opFlags = opFlags
	s.userData = user
	if op == opRead {
		s.off = ^uint64(0) // the file's position: eventfds and pipes have none
	}
	return true
}

// Submit hands every queued request to the kernel. Sends complete inside
// it.
func (r *Ring) Submit() error {
	return r.enter(0, r.waitFlags)
}

// SubmitAndWait submits, then waits until at least n completions are
// ready to reap; a signal may end the wait early.
func (r *Ring) SubmitAndWait(n uint32) error {
	return r.enter(n, enterGetEvents)
}

func (r *Ring) enter(wait uint32, flags uintptr) error {
	atomic.StoreUint32(r.sqTail, r.tail)
	for {
		queued := r.tail - atomic.LoadUint32(r.sqHead)
		submitted, _, errno := syscall.Syscall6(sysEnter, uintptr(r.fd), uintptr(queued), uintptr(wait), flags, 0, 0)
		switch {
		case errno == syscall.EINTR:
			if r.tail != atomic.LoadUint32(r.sqHead) {
				continue // not all submitted yet
			}
			return nil
		case errno != 0:
			return fmt.Errorf("io_uring_enter: %w", errno)
		case r.tail == atomic.LoadUint32(r.sqHead):
			return nil
		case submitted == 0:
			return errors.New("io_uring_enter: the kernel took none of the queued requests")
		}
		wait = 0 // the completions waited for came; submit the rest
	}
}

// Completions calls f with each completion ready, in order, and returns
// how many there were. f may queue requests, but must not Submit.
func (r *Ring) Completions(f func(user uint64, res int32)) int {
	head := *r.cqHead
	tail := atomic.LoadUint32(r.cqTail)
	n := 0
	for ; head != tail; head++ {
		c := &r.cqes[head&*r.cqMask]
		f(c.userData, c.res)
		n++
	}
	atomic.StoreUint32(r.cqHead, head)
	return n
}
