package uring

import (
	"bytes"
	"errors"
	"net"
	"runtime"
	"syscall"
	"testing"
	"unsafe"
)

func TestABI_Sizes(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"io_uring_sqe", unsafe.Sizeof(sqe{}), 64},
		{"io_uring_cqe", unsafe.Sizeof(cqe{}), 16},
		{"io_uring_params", unsafe.Sizeof(params{}), 120},
		{"io_uring_sqe.user_data", unsafe.Offsetof(sqe{}.userData), 32},
		{"io_uring_sqe.msg_flags", unsafe.Offsetof(sqe{}.opFlags), 28},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d bytes, want %d", c.name, c.got, c.want)
		}
	}
}

func newRing(t *testing.T, sq, cq uint32, flags Flags) *Ring {
	t.Helper()
	r, err := New(sq, cq, flags)
	if errors.Is(err, ErrUnavailable) && !Required() {
		t.Skipf("this kernel offers no io_uring: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// tcpPair returns the two ends of a loopback TCP connection as
// non-blocking descriptors of their own.
func tcpPair(t testing.TB) (a, b int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	fd := func(c net.Conn) int {
		f, err := c.(*net.TCPConn).File()
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		n, err := syscall.Dup(int(f.Fd()))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if err := syscall.SetNonblock(n, true); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Close(n) })
		return n
	}
	return fd(s), fd(c)
}

type completion struct {
	user uint64
	res  int32
}

func reap(r *Ring) []completion {
	var got []completion
	r.Completions(func(user uint64, res int32) { got = append(got, completion{user, res}) })
	return got
}

func readAll(t *testing.T, fd, n int) []byte {
	t.Helper()
	var out []byte
	buf := make([]byte, 64<<10)
	var rfds syscall.FdSet
	for len(out) < n {
		m, err := syscall.Read(fd, buf)
		if errors.Is(err, syscall.EAGAIN) {
			rfds.Bits[fd/64] |= 1 << (uint(fd) % 64)
			if _, err := syscall.Select(fd+1, &rfds, nil, nil, nil); err != nil && !errors.Is(err, syscall.EINTR) {
				t.Fatal(err)
			}
			continue
		}
		if err != nil || m == 0 {
			t.Fatalf("read: %d, %v after %d of %d bytes", m, err, len(out), n)
		}
		out = append(out, buf[:m]...)
	}
	return out
}

func TestRing_SendsCompleteInsideSubmit(t *testing.T) {
	r := newRing(t, 8, 0, 0)
	var fds [3][2]int
	for i := range fds {
		fds[i][0], fds[i][1] = tcpPair(t)
	}
	msgs := [][]byte{[]byte("one"), bytes.Repeat([]byte("two"), 100), []byte("three")}
	for i, m := range msgs {
		if !r.Send(fds[i][0], m, uint64(i+10)) {
			t.Fatal("a ring of 8 refused the first sends")
		}
	}
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	got := reap(r)
	if len(got) != len(msgs) {
		t.Fatalf("%d completions after Submit, want %d: %v", len(got), len(msgs), got)
	}
	for i, c := range got {
		if c.user != uint64(i+10) || c.res != int32(len(msgs[i])) {
			t.Errorf("completion %d = %+v, want user %d res %d", i, c, i+10, len(msgs[i]))
		}
		if b := readAll(t, fds[i][1], len(msgs[i])); !bytes.Equal(b, msgs[i]) {
			t.Errorf("peer %d read %q, want %q", i, b, msgs[i])
		}
	}
}

// A send to a socket with no room must complete at once, with what fit or
// with EAGAIN, never wait for room: the fan-out writer moves on.
func TestRing_SendToAFullSocketDoesNotWait(t *testing.T) {
	r := newRing(t, 4, 0, 0)
	a, b := tcpPair(t)
	if err := syscall.SetsockoptInt(a, syscall.SOL_SOCKET, syscall.SO_SNDBUF, 4096); err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("x"), 8192)
	sent, short, eagain := 0, false, false
	for i := 0; i < 10000 && !eagain; i++ {
		r.Send(a, chunk, uint64(i))
		if err := r.Submit(); err != nil {
			t.Fatal(err)
		}
		got := reap(r)
		if len(got) != 1 {
			t.Fatalf("send %d: %d completions after Submit, want 1", i, len(got))
		}
		switch res := got[0].res; {
		case res == -int32(syscall.EAGAIN):
			eagain = true
		case res < 0:
			t.Fatalf("send %d: %v", i, syscall.Errno(-res))
		default:
			short = short || int(res) < len(chunk)
			sent += int(res)
		}
	}
	if !eagain {
		t.Fatalf("10,000 sends of 8 KiB to a peer that reads nothing never found the socket full (short sends: %v)", short)
	}
	// What was acknowledged as sent is what the peer gets.
	if got := readAll(t, b, sent); len(got) != sent {
		t.Fatalf("peer read %d bytes, want %d", len(got), sent)
	}
}

// A request that cannot start completes with its error; the ones after it
// in the same submission still run.
func TestRing_OneBadRequestDoesNotStopTheRest(t *testing.T) {
	r := newRing(t, 8, 0, 0)
	a, b := tcpPair(t)
	r.Send(1<<20, []byte("nowhere"), 1) // not a descriptor
	r.Send(a, []byte("here"), 2)
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	got := reap(r)
	if len(got) != 2 {
		t.Fatalf("completions %v, want 2", got)
	}
	want := map[uint64]int32{1: -int32(syscall.EBADF), 2: 4}
	for _, c := range got {
		if want[c.user] != c.res {
			t.Errorf("completion %d: res %d, want %d", c.user, c.res, want[c.user])
		}
	}
	if got := readAll(t, b, 4); string(got) != "here" {
		t.Errorf("peer read %q", got)
	}
}

func TestRing_SendReportsFullQueue(t *testing.T) {
	r := newRing(t, 2, 0, 0)
	a, b := tcpPair(t)
	n := 0
	for r.Send(a, []byte("y"), uint64(n)) {
		n++
		if n > 64 {
			t.Fatal("a ring of 2 took 64 requests without a Submit")
		}
	}
	if n != 2 || r.Free() != 0 {
		t.Fatalf("queued %d (free %d), want 2 (free 0)", n, r.Free())
	}
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	if got := reap(r); len(got) != 2 || r.Free() != 2 {
		t.Fatalf("completions %v, free %d", got, r.Free())
	}
	readAll(t, b, 2)
}

func testReceives(t *testing.T, flags Flags) {
	r := newRing(t, 4, 16, flags)
	a, b := tcpPair(t)
	buf := make([]byte, 64)
	r.Recv(b, buf, 7)
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	if got := reap(r); len(got) != 0 {
		t.Fatalf("a receive on an empty socket completed: %v", got)
	}
	if _, err := syscall.Write(a, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	got := waitSome(t, r)
	if got[0] != (completion{7, 5}) || string(buf[:5]) != "hello" {
		t.Fatalf("completion %+v, buffer %q; want {7 5} and hello", got[0], buf[:5])
	}
	// The end of the stream completes a receive with 0.
	r.Recv(b, buf, 8)
	syscall.Shutdown(a, syscall.SHUT_WR)
	got = waitSome(t, r)
	if got[0] != (completion{8, 0}) {
		t.Fatalf("completion at the end of the stream %+v, want {8 0}", got[0])
	}
	// An eventfd read wakes the waiter.
	efd, err := eventfd()
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(efd)
	var word [8]byte
	r.Read(efd, word[:], 9)
	one := [8]byte{1}
	if _, err := syscall.Write(efd, one[:]); err != nil {
		t.Fatal(err)
	}
	got = waitSome(t, r)
	if got[0] != (completion{9, 8}) {
		t.Fatalf("eventfd read %+v, want {9 8}", got[0])
	}
}

// waitSome submits and waits until at least one completion is reaped (a
// signal may end a wait early).
func waitSome(t *testing.T, r *Ring) []completion {
	t.Helper()
	for {
		if err := r.SubmitAndWait(1); err != nil {
			t.Fatal(err)
		}
		if got := reap(r); len(got) > 0 {
			return got
		}
	}
}

func eventfd() (int, error) {
	fd, _, errno := syscall.Syscall(syscall.SYS_EVENTFD2, 0, syscall.O_CLOEXEC, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

func TestRing_Receives(t *testing.T) {
	t.Run("Shared", func(t *testing.T) { testReceives(t, 0) })
	t.Run("SingleIssuer", func(t *testing.T) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		testReceives(t, SingleIssuer)
	})
}
