package uring

import (
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// BenchmarkFanOut is what the platform allows a fan-out over loopback,
// with no gateway around it: one op is a 560-byte message sent to each of
// n TCP connections by one thread and read from all of them by another,
// timed until the last byte is read. The sender writes with one write(2)
// per connection or with the ring (one system call per 128 sends); the
// receiver reads with epoll and read(2) or with a receive queued per
// connection on a single-issuer ring. Besides ns/op (the wall time until
// every connection had its message) it reports each side's CPU per
// message (the threads' own, from getrusage).
//
//	go test ./internal/uring -run '^$' -bench FanOut
func BenchmarkFanOut(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		for _, mode := range []struct{ send, recv string }{{"write", "epoll"}, {"ring", "epoll"}, {"ring", "ring"}} {
			b.Run(fmt.Sprintf("conns=%d/send=%s/recv=%s", n, mode.send, mode.recv), func(b *testing.B) {
				benchFanOut(b, n, mode.send == "ring", mode.recv == "ring")
			})
		}
	}
}

func threadCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(1, &ru) // RUSAGE_THREAD
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchFanOut(b *testing.B, n int, sendRing, recvRing bool) {
	senders, receivers := make([]int, n), make([]int, n)
	for i := range n {
		senders[i], receivers[i] = tcpPair(b)
	}
	msg := make([]byte, 560)
	start := make(chan struct{})
	done := make(chan time.Duration) // the receiver's CPU for the op
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		receive(b, receivers, len(msg), start, done, recvRing)
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var r *Ring
	if sendRing {
		var err error
		if r, err = New(128, 0, 0); err != nil {
			if Required() {
				b.Fatal(err)
			}
			b.Skipf("no io_uring: %v", err)
		}
		defer r.Close()
	}
	var sendCPU, recvCPU time.Duration
	b.ResetTimer()
	for b.Loop() {
		start <- struct{}{}
		c0 := threadCPU()
		if r == nil {
			for _, fd := range senders {
				if m, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&msg[0])), uintptr(len(msg))); e != 0 || int(m) != len(msg) {
					b.Fatalf("write: %d %v", m, e)
				}
			}
		} else {
			for i := 0; i < n; i += 128 {
				for _, fd := range senders[i:min(i+128, n)] {
					r.Send(fd, msg, 0)
				}
				if err := r.Submit(); err != nil {
					b.Fatal(err)
				}
				r.Completions(func(_ uint64, res int32) {
					if res != int32(len(msg)) {
						b.Fatalf("send: %d", res)
					}
				})
			}
		}
		sendCPU += threadCPU() - c0
		recvCPU += <-done
	}
	close(start)
	ev := float64(b.N * n)
	b.ReportMetric(float64(sendCPU.Nanoseconds())/ev/1000, "send-µs/msg")
	b.ReportMetric(float64(recvCPU.Nanoseconds())/ev/1000, "recv-µs/msg")
}

// receive reads each op's message from every connection and reports the
// CPU it took.
func receive(b *testing.B, fds []int, size int, start <-chan struct{}, done chan<- time.Duration, ring bool) {
	bufs := make([][]byte, len(fds))
	for i := range bufs {
		bufs[i] = make([]byte, 4096)
	}
	var r *Ring
	var ep int
	if ring {
		var err error
		if r, err = New(1024, uint32(len(fds)), SingleIssuer); err != nil {
			b.Errorf("no io_uring: %v", err)
			return
		}
		defer r.Close()
		for i := range fds {
			for !r.Recv(fds[i], bufs[i], uint64(i)) {
				r.Submit()
			}
		}
		r.Submit()
	} else {
		ep, _ = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		defer syscall.Close(ep)
		for i, fd := range fds {
			syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, fd, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(i)})
		}
	}
	got := make([]int, len(fds))
	evs := make([]syscall.EpollEvent, 256)
	for range start {
		c0 := threadCPU()
		left := len(fds)
		for left > 0 {
			if ring {
				if err := r.SubmitAndWait(1); err != nil {
					b.Error(err)
					return
				}
				r.Completions(func(user uint64, res int32) {
					i := int(user)
					if res > 0 {
						if got[i] += int(res); got[i] == size {
							left--
							got[i] = 0
						}
					}
					r.Recv(fds[i], bufs[i], user)
				})
				continue
			}
			k, _ := syscall.EpollWait(ep, evs, -1)
			for _, ev := range evs[:max(k, 0)] {
				i := int(ev.Fd)
				m, _ := syscall.Read(fds[i], bufs[i])
				if m > 0 {
					if got[i] += m; got[i] == size {
						left--
						got[i] = 0
					}
				}
			}
		}
		done <- threadCPU() - c0
	}
}
