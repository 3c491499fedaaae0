package api

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
