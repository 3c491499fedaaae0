//go:build linux

package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	stdsync "sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/goat-gateway/goat-gateway/internal/uring"
	"github.com/goat-gateway/goat-gateway/node"
)

// A live stream that has sent its `ready` event only waits and writes, and
// most of the time it waits. Served by net/http it would hold, while it
// waits, a handler goroutine, net/http's background reader goroutine, the
// connection's bufio.Reader and Writer, the response's chunking buffer and
// the middleware's frames: about 40 KiB per stream, most of the memory of
// 20,000 subscribers. So the connection is taken over (hijacked) once the
// stream is ready, and the fan-out writers below serve every taken-over
// stream:
//
//   - one writer goroutine per core; a stream belongs to one of them. A
//     publish marks the stream runnable (Subscription.Notify, no channel
//     and no goroutine per stream) and the writer writes everything
//     queued for it in one non-blocking send: the event frames, chunked
//     by hand (the response was chunked before the takeover and stays
//     so, which nginx and the SDKs' readers already parse). The sends of
//     all the streams runnable at once go to the kernel together, on the
//     writer's io_uring (one system call for a commit's fan-out, where a
//     system call costs about as much as the send itself), or one
//     write(2) each where the kernel offers no io_uring.
//   - a stream whose socket buffer is full gets a goroutine of its own
//     for the rest of that write, under the write deadline, and returns
//     to its writer when it is written: a client that does not read never
//     delays the others, and its queue fills until the hub drops it.
//   - the client's going away is seen by one epoll set for all streams
//     (EPOLLRDHUP), where net/http's background reader saw it per stream.
//   - heartbeats and token expiry are timers (time.AfterFunc): no
//     goroutine waits for them.

// streamer is the process's fan-out writers and the epoll set watching the
// taken-over streams' connections.
type streamer struct {
	writers []*fanWriter
	next    atomic.Uint32 // round robin over writers
	epfd    int

	mu       stdsync.Mutex
	streams  map[uint32]*liveStream // by epoll tag
	tag      uint32
	watching bool // the watch goroutine runs
}

// theStreamer is made by the first takeover and serves every server of
// the process. Its goroutines run only while there is work: a writer's
// while streams are on its run queue, the epoll watcher's while there are
// streams; an idle process holds none.
var theStreamer = stdsync.OnceValues(func() (*streamer, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	st := &streamer{epfd: epfd, streams: map[uint32]*liveStream{}}
	for range runtime.GOMAXPROCS(0) {
		st.writers = append(st.writers, &fanWriter{})
	}
	return st, nil
})

// newRing sets up a writer's ring; nil where the kernel has none (said
// once).
func newRing() *uring.Ring {
	r, err := uring.New(ringSends, 0, 0)
	if err != nil {
		noRing.Do(func() { slog.Info("event streams: no io_uring; writing with one write(2) per stream", "err", err) })
		return nil
	}
	return r
}

var noRing stdsync.Once

// ringSends is how many streams' sends a writer hands the kernel at once:
// enough that the system call is a small part of them, few enough that
// the first streams' sends do not wait long for the others' frames.
const ringSends = 128

// fanOutRing lets tests write without the rings, as where the kernel has
// none (Config.NoIOURing is per server: liveStream.noRing).
var fanOutRing atomic.Bool

func init() { fanOutRing.Store(true) }

// watch marks the streams whose client hung up (or whose connection
// failed) and hands them to their writer to close. It returns once there
// are no streams (add starts it again).
func (st *streamer) watch() {
	evs := make([]syscall.EpollEvent, 256)
	for {
		n, err := syscall.EpollWait(st.epfd, evs, 1000)
		if err != nil && !errors.Is(err, syscall.EINTR) {
			slog.Error("event streams: epoll_wait failed; hang-ups are seen at the next write", "err", err)
			time.Sleep(time.Second) // not a hot loop if it keeps failing
		}
		st.mu.Lock()
		if len(st.streams) == 0 {
			st.watching = false
			st.mu.Unlock()
			return
		}
		for _, ev := range evs[:max(n, 0)] {
			if ls := st.streams[uint32(ev.Fd)]; ls != nil {
				ls.hangup.Store(true)
				ls.schedule()
			}
		}
		st.mu.Unlock()
	}
}

// epollHangup is what the epoll set waits for: the client closed (or shut
// down its side of) the connection; EPOLLHUP and EPOLLERR come always.
// Edge-triggered, so bytes a client sends do not wake it again and again.
const epollHangup = syscall.EPOLLRDHUP | 1<<31 // EPOLLET

// add registers ls with the epoll set and a writer.
func (st *streamer) add(ls *liveStream) error {
	st.mu.Lock()
	st.tag++
	for st.streams[st.tag] != nil || st.tag == 0 {
		st.tag++
	}
	ls.tag = st.tag
	st.streams[ls.tag] = ls
	if !st.watching {
		st.watching = true
		go st.watch()
	}
	st.mu.Unlock()
	var cerr error
	err := ls.raw.Control(func(fd uintptr) {
		cerr = syscall.EpollCtl(st.epfd, syscall.EPOLL_CTL_ADD, int(fd), &syscall.EpollEvent{Events: epollHangup, Fd: int32(ls.tag)})
	})
	if err == nil {
		err = cerr
	}
	if err != nil {
		st.remove(ls)
	}
	return err
}

// remove forgets ls; closing its socket takes it out of the epoll set.
func (st *streamer) remove(ls *liveStream) {
	st.mu.Lock()
	delete(st.streams, ls.tag)
	st.mu.Unlock()
}

// fanWriter writes the streams made runnable on it, one at a time, on a
// goroutine that runs while its run queue is not empty.
type fanWriter struct {
	mu      stdsync.Mutex
	runq    []*liveStream
	spare   []*liveStream // the run queue's other slice, reused
	running bool          // the run goroutine runs

	// run only:
	buf   []byte        // the frames of the stream(s) being written
	sends []pendingSend // the streams whose frames are in buf, for the ring
	chunk uint32        // tags the sends of one system call

	ring      atomic.Pointer[uring.Ring] // nil until a stream may use it, where the kernel has none, or after it failed; set by run only
	ringTried bool                       // run only
	deferred  []*liveStream              // run only: streams of a batch that are not to use the ring
	counts    []sendCount                // run only: sends of a batch, by server
}

// sendCount is how many sends a writer made for one server's streams in
// one batch, counted once per batch rather than once per send.
type sendCount struct {
	m           *metrics
	ring, write int
}

// count counts a send to ls. Writer only.
func (w *fanWriter) count(ls *liveStream, ring bool) {
	m := ls.e.s.metrics
	i := len(w.counts) - 1
	for i >= 0 && w.counts[i].m != m {
		i--
	}
	if i < 0 {
		w.counts = append(w.counts, sendCount{m: m})
		i = len(w.counts) - 1
	}
	if ring {
		w.counts[i].ring++
	} else {
		w.counts[i].write++
	}
}

// flushCounts adds a batch's counts to the metrics. Writer only.
func (w *fanWriter) flushCounts() {
	for i, c := range w.counts {
		if c.ring > 0 {
			c.m.sseSendsRing.Add(float64(c.ring))
		}
		if c.write > 0 {
			c.m.sseSendsWrite.Add(float64(c.write))
		}
		w.counts[i] = sendCount{}
	}
	w.counts = w.counts[:0]
}

// pendingSend is a stream prepared for a send on the ring: its frames are
// buf[start:end], and it stays locked until the send's result is in.
type pendingSend struct {
	ls         *liveStream
	start, end int
	turn       turn
	n          int   // bytes sent
	err        error // the send failed; or errNoResult
}

func (w *fanWriter) push(ls *liveStream) {
	w.mu.Lock()
	w.runq = append(w.runq, ls)
	start := !w.running
	w.running = true
	w.mu.Unlock()
	if start {
		go w.run()
	}
}

func (w *fanWriter) run() {
	w.mu.Lock()
	for len(w.runq) > 0 {
		batch := w.runq
		w.runq = w.spare[:0]
		w.mu.Unlock()
		if r := w.ringFor(batch); r != nil {
			w.sendAll(r, batch)
		} else {
			for _, ls := range batch {
				ls.run(w)
			}
		}
		w.flushCounts()
		clear(batch)
		if cap(batch) > 4096 {
			batch = nil // a burst is over: do not keep its room
		}
		w.mu.Lock()
		w.spare = batch
	}
	w.running = false
	w.mu.Unlock()
}

// liveStream is a taken-over event stream.
type liveStream struct {
	e      *eventStream
	st     *streamer
	conn   net.Conn
	raw    syscall.RawConn
	fd     int // conn's descriptor, for tryWrite
	writer *fanWriter
	tag    uint32
	nodeID string
	noRing bool // its server's Config.NoIOURing

	scheduled atomic.Bool // on its writer's run queue
	hangup    atomic.Bool // the client went
	ping      atomic.Bool // a heartbeat is due
	expire    atomic.Bool // the token expired

	heartbeat *time.Timer
	expiry    *time.Timer

	mu       stdsync.Mutex
	closed   bool
	cut      bool   // conn is closed (ls.fd may already name another file)
	fallback bool   // a goroutine of its own is writing out; the writer keeps off
	out      []byte // what the fallback goroutine writes
	lastSent uint64 // sequence number of the last event written
}

// mayTakeOver reports whether takeOver will try: an HTTP/1.1 request
// (HTTP/1.0 responses are not chunked) on a TCP connection.
func (e *eventStream) mayTakeOver() bool {
	r, ok := e.ctx.Value(remoteKey{}).(*remote)
	if !ok || !r.http11 {
		return false
	}
	_, ok = e.ctx.Value(connKey{}).(*net.TCPConn)
	return ok
}

// takeOver hands the stream to the fan-out writers, which write from
// lastSent on; it reports false, having changed nothing, when the
// connection cannot be taken over (the caller keeps serving it).
func (e *eventStream) takeOver(rc *http.ResponseController, lastSent uint64) bool {
	if !e.mayTakeOver() {
		return false
	}
	st, err := theStreamer()
	if err != nil {
		return false
	}
	conn, rw, err := rc.Hijack()
	if err != nil {
		return false // HTTP/2, or a writer that cannot
	}
	// Bytes the client sent after its request (nothing, for an SSE
	// client) are dropped with net/http's buffers.
	_ = rw
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		conn.Close()
		e.sub.Close()
		e.release()
		return true
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		e.s.log.Warn("event stream: taking over the connection failed", "err", err)
		conn.Close()
		e.sub.Close()
		e.release()
		return true
	}
	_ = conn.SetDeadline(time.Time{})
	ls := &liveStream{e: e, st: st, conn: conn, raw: raw, nodeID: e.s.node.ID(), lastSent: lastSent, noRing: e.s.cfg.NoIOURing}
	if err := raw.Control(func(fd uintptr) { ls.fd = int(fd) }); err != nil {
		e.s.log.Warn("event stream: taking over the connection failed", "err", err)
		conn.Close()
		e.sub.Close()
		e.release()
		return true
	}
	ls.writer = st.writers[int(st.next.Add(1))%len(st.writers)]
	// The stream is whole before anything can schedule it (its timers,
	// the epoll set, the hub). Timers re-arm under ls.mu, so none does
	// after closeLocked stopped it.
	ls.mu.Lock()
	hb := e.s.cfg.Heartbeat
	ls.heartbeat = time.AfterFunc(hb, func() {
		ls.ping.Store(true)
		ls.schedule()
		ls.mu.Lock()
		if !ls.closed {
			ls.heartbeat.Reset(hb)
		}
		ls.mu.Unlock()
	})
	if !e.principal.Expires.IsZero() {
		ls.expiry = time.AfterFunc(time.Until(e.principal.Expires), func() {
			ls.expire.Store(true)
			ls.schedule()
		})
	}
	ls.mu.Unlock()
	if err := st.add(ls); err != nil {
		e.s.log.Warn("event stream: taking over the connection failed", "err", err)
		ls.mu.Lock()
		ls.closeLocked()
		ls.mu.Unlock()
		return true
	}
	// The request's context holds its route, its middleware's values and
	// its connection's: nothing the writers need.
	e.ctx = nil
	e.sub.Notify(ls.schedule)
	ls.schedule() // events queued before Notify
	return true
}

// schedule puts ls on its writer's run queue unless it is there already.
// It never blocks: it runs on the publisher's path.
func (ls *liveStream) schedule() {
	if ls.scheduled.CompareAndSwap(false, true) {
		ls.writer.push(ls)
	}
}

// ringFor returns the writer's ring for writing batch, setting it up the
// first time a stream that may use one is written; nil: write(2). Writer
// only.
func (w *fanWriter) ringFor(batch []*liveStream) *uring.Ring {
	if !fanOutRing.Load() {
		return nil
	}
	if r := w.ring.Load(); r != nil || w.ringTried {
		return r
	}
	for _, ls := range batch {
		if !ls.noRing {
			w.ringTried = true
			r := newRing()
			w.ring.Store(r)
			return r
		}
	}
	return nil
}

// run writes what is due on ls without blocking, with one write(2).
// Writer only.
func (ls *liveStream) run(w *fanWriter) {
	buf, t, ok := ls.prepare(w.buf[:0])
	if !ok {
		return
	}
	n, err := ls.tryWrite(buf)
	w.count(ls, false)
	ls.finish(buf, n, err, t)
	if cap(buf) <= 1<<20 {
		w.buf = buf[:0] // keep the room for the next stream, unless a burst grew it
	} else {
		w.buf = nil
	}
}

// sendAll writes what is due on each stream of batch without blocking:
// their frames are laid end to end in one buffer and sent on the ring,
// ringSends streams (or about a MiB of frames) per system call. Writer
// only.
func (w *fanWriter) sendAll(r *uring.Ring, batch []*liveStream) {
	for len(batch) > 0 {
		buf := w.buf[:0]
		sends := w.sends[:0]
		for len(batch) > 0 && len(sends) < ringSends && len(buf) < 1<<20 {
			ls := batch[0]
			batch = batch[1:]
			if ls.noRing {
				w.deferred = append(w.deferred, ls)
				continue
			}
			start := len(buf)
			var t turn
			var ok bool
			buf, t, ok = ls.prepare(buf)
			if ok {
				sends = append(sends, pendingSend{ls: ls, start: start, end: len(buf), turn: t, err: errNoResult})
			}
		}
		if len(sends) == 0 {
			continue
		}
		// buf no longer grows: its frames can be handed to the kernel.
		// Each send's user value is its index under this chunk's tag, so
		// that a result could never be taken for another chunk's.
		w.chunk++
		tag := uint64(w.chunk) << 32
		queued, reaped := 0, 0
		for i, p := range sends {
			if !p.ls.cut && r.Send(p.ls.fd, buf[p.start:p.end], tag|uint64(i)) {
				queued++
				w.count(p.ls, true)
			} else if p.ls.cut {
				sends[i].err = net.ErrClosed
			}
		}
		frames := buf
		err := r.Submit()
		r.Completions(func(user uint64, res int32) {
			if user&^0xffffffff != tag {
				return
			}
			reaped++
			p := &sends[uint32(user)]
			switch {
			case res >= 0:
				p.n, p.err = int(res), nil
			case res == -int32(syscall.EAGAIN):
				p.n, p.err = 0, nil // full: the fallback goroutine writes it
			default:
				p.err = syscall.Errno(-res)
			}
		})
		if err == nil && reaped != queued {
			// Non-blocking sends complete inside Submit; one that did
			// not may still read buf.
			err = fmt.Errorf("%d of %d sends without a result after io_uring_enter", queued-reaped, queued)
		}
		if err != nil {
			// Sends without a result may or may not have gone out: their
			// streams end (their clients resume from their last event id),
			// and this writer writes with write(2) from now on.
			slog.Error("event streams: io_uring failed; writing with write(2) from now on", "err", err)
			w.ring.Store(nil)
			r.Close()
			buf = nil // whatever the kernel may still read is not reused
		}
		for i := range sends {
			p := &sends[i]
			p.ls.finish(frames[p.start:p.end], p.n, p.err, p.turn)
		}
		if cap(buf) <= 4<<20 {
			w.buf = buf[:0]
		} else {
			w.buf = nil
		}
		clear(sends)
		w.sends = sends[:0]
		if err != nil {
			for _, ls := range batch {
				ls.run(w)
			}
			break
		}
	}
	for i, ls := range w.deferred {
		ls.run(w)
		w.deferred[i] = nil
	}
	w.deferred = w.deferred[:0]
}

// errNoResult is a send on the ring whose result never came.
var errNoResult = errors.New("event stream: the send's result is unknown")

// turn is what a stream's frames of one turn of its writer mean.
type turn struct {
	more    bool // events are left for the next turn
	last    bool // the frames end the stream
	dropped bool // the stream was dropped: its last chunk is written if it fits, and it closes
}

// prepare appends to buf the frames due on ls. When it reports ok, ls.mu
// is held and the frames (buf[len(buf) on entry:]) must be written and
// handed to finish, which unlocks it; otherwise there is nothing to write
// and ls.mu is not held. Writer only.
func (ls *liveStream) prepare(buf []byte) (_ []byte, t turn, ok bool) {
	ls.scheduled.Store(false)
	ls.mu.Lock()
	if ls.closed {
		ls.mu.Unlock()
		return buf, turn{}, false
	}
	if ls.fallback {
		// Its goroutine schedules ls again when the write is done; a
		// stream that is to end meanwhile ends it now (the write fails).
		if ls.e.sub.Ended() || ls.hangup.Load() {
			ls.cutLocked()
		}
		ls.mu.Unlock()
		return buf, turn{}, false
	}
	if ls.hangup.Load() {
		ls.closeLocked()
		ls.mu.Unlock()
		return buf, turn{}, false
	}
	start := len(buf)
	if ls.e.sub.Ended() {
		// Dropped for being slow, or the node shuts down: end the
		// response (if the socket takes it) and close.
		return append(buf, lastChunk...), turn{last: true, dropped: true}, true
	}
	// At most about writeBatch bytes of frames per turn: what does not
	// fit in the socket is copied for the fallback goroutine, and a
	// stream that lags behind a burst must not copy its whole backlog
	// (the queue holds it as pointers to events shared by all). The rest
	// waits for the stream's next turn.
	for len(buf)-start < writeBatch {
		ev, ok := ls.e.sub.Next()
		if !ok {
			break
		}
		if ev.Seq == 0 || ev.Seq > ls.lastSent {
			buf = appendChunk(buf, ev.Encoded(sseFrame))
			ls.lastSent = max(ls.lastSent, ev.Seq)
		}
		t.more = len(buf)-start >= writeBatch
	}
	if ls.ping.Swap(false) {
		buf = appendChunk(buf, []byte(": ping\n\n"))
	}
	if ls.expire.Load() {
		buf = appendChunk(buf, sseFrame(&node.Event{ID: node.EventID(ls.nodeID, ls.lastSent), Name: "expired", Data: expiredData}))
		buf = append(buf, lastChunk...)
		t.last = true
	}
	if len(buf) == start {
		ls.mu.Unlock()
		return buf, turn{}, false
	}
	return buf, t, true
}

// finish takes the result of writing b, the frames prepare gave for ls
// (n bytes of it written, or err), and unlocks ls: the rest goes to a
// goroutine of its own; a failed write or the stream's last frames close
// it; a turn that left events schedules the next. Writer only.
func (ls *liveStream) finish(b []byte, n int, err error, t turn) {
	defer ls.mu.Unlock()
	switch {
	case t.dropped, err != nil:
		ls.closeLocked()
	case n < len(b):
		// The socket is full: the rest is written by a goroutine of its
		// own, under the write deadline, so that this writer goes on.
		ls.out = append([]byte(nil), b[n:]...)
		ls.fallback = true
		ls.e.s.metrics.sseSlowWrites.Inc()
		go ls.writeOut(t.last)
	case t.last:
		ls.closeLocked()
	case t.more:
		ls.schedule()
	}
}

// writeBatch bounds the bytes of events a stream is given per turn of its
// writer (one event at least), so that a stream in fallback holds at most
// about that much besides its queue: 20,000 streams whose clients all
// stopped reading hold about 320 MiB of it at worst, against the 10 GiB
// their sockets' send buffers may hold in the kernel.
const writeBatch = 16 << 10

// tryWrite writes b without waiting for room in the socket; it returns how
// much was written. Under ls.mu, not in fallback. The connection is only
// ever closed under ls.mu, and ls.cut records it, so while ls.cut is false
// ls.fd is still its descriptor (a fallback stream cut by run stays open
// for its goroutine's failing write, and is then closed by it; that
// goroutine giving the stream back after its write succeeded must not
// lead here to a write on a reused number).
//
// It is a raw write(2), not one through the runtime (RawConn.Write, or
// syscall.Write): the socket is non-blocking, so the call never blocks,
// and one writer makes a thousand of them per commit at a thousand
// streams, where the descriptor's lock and poll reset and the runtime's
// syscall bookkeeping were a measurable part of the writer's time.
func (ls *liveStream) tryWrite(b []byte) (int, error) {
	if ls.cut {
		// Never write to the number of a closed descriptor: the kernel
		// may have handed it to another connection or file.
		return 0, net.ErrClosed
	}
	n := 0
	for n < len(b) {
		m, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(ls.fd), uintptr(unsafe.Pointer(&b[n])), uintptr(len(b)-n))
		switch {
		case errno == syscall.EINTR:
			continue
		case errno == syscall.EAGAIN:
			return n, nil
		case errno != 0:
			return n, errno
		case m == 0:
			return n, nil
		}
		n += int(m)
	}
	return n, nil
}

// writeOut is a stream's fallback goroutine: it writes ls.out under the
// write deadline, then gives the stream back to its writer (or closes it,
// at the end of the stream or when the write fails).
func (ls *liveStream) writeOut(end bool) {
	_ = ls.conn.SetWriteDeadline(time.Now().Add(ls.e.s.cfg.WriteTimeout))
	_, err := ls.conn.Write(ls.out)
	_ = ls.conn.SetWriteDeadline(time.Time{})
	ls.mu.Lock()
	ls.out, ls.fallback = nil, false
	if err != nil || end || ls.cut {
		ls.closeLocked()
		ls.mu.Unlock()
		return
	}
	ls.mu.Unlock()
	ls.schedule()
}

// cutLocked closes the connection under a fallback write, which then
// fails and ends the stream. Until then the stream is not closed, but
// tryWrite must not use ls.fd again. Under ls.mu.
func (ls *liveStream) cutLocked() {
	ls.cut = true
	ls.conn.Close()
}

// closeLocked ends the stream: the connection, the subscription, the
// stream's slot and its timers. Under ls.mu.
func (ls *liveStream) closeLocked() {
	if ls.closed {
		return
	}
	ls.closed = true
	ls.heartbeat.Stop()
	if ls.expiry != nil {
		ls.expiry.Stop()
	}
	ls.st.remove(ls)
	ls.cut = true
	ls.conn.Close()
	ls.e.sub.Close()
	ls.e.release()
}

// lastChunk ends a chunked response.
var lastChunk = []byte("0\r\n\r\n")

// appendChunk appends p to b as one HTTP/1.1 chunk.
func appendChunk(b, p []byte) []byte {
	b = strconv.AppendUint(b, uint64(len(p)), 16)
	b = append(b, "\r\n"...)
	b = append(b, p...)
	return append(b, "\r\n"...)
}
