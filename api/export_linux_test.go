package api

import (
	"errors"
	"syscall"
)

// SetFanOutRing makes the fan-out writers write with io_uring (on, where
// the kernel offers it) or with one write(2) per stream; restore undoes it.
func SetFanOutRing(on bool) (restore func()) {
	old := fanOutRing.Swap(on)
	return func() { fanOutRing.Store(old) }
}

// FanOutRings returns how many fan-out writers have a working io_uring.
func FanOutRings() int {
	st, err := theStreamer()
	if err != nil {
		return 0
	}
	n := 0
	for _, w := range st.writers {
		if w.ring.Load() != nil {
			n++
		}
	}
	return n
}

// BreakFanOutRings gives every fan-out writer a ring whose system calls
// fail, as if the kernel stopped serving it. The rings it replaces are
// left open: a writer may be using one.
func BreakFanOutRings() error {
	st, err := theStreamer()
	if err != nil {
		return err
	}
	null, err := syscall.Open("/dev/null", syscall.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(null)
	for _, w := range st.writers {
		r := newRing()
		if r == nil {
			return errors.New("no io_uring")
		}
		if err := syscall.Dup3(null, r.Fd(), syscall.O_CLOEXEC); err != nil {
			return err
		}
		w.ring.Store(r)
	}
	return nil
}

// RestoreFanOutRings gives every fan-out writer a working ring.
func RestoreFanOutRings() {
	st, err := theStreamer()
	if err != nil {
		return
	}
	for _, w := range st.writers {
		w.ring.Store(newRing())
	}
}
