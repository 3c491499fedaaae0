//go:build linux

package storage

import (
	"os"

	"golang.org/x/sys/unix"
)

// readAhead tells the kernel that bytes [off, off+n) of f will be read
// once, in order, soon: it widens the file's readahead (FADV_SEQUENTIAL) and starts reading the range into the page cache
// (FADV_WILLNEED), so that a cold open's reads of the checkpoint and of
// the log after it find the disk already streaming rather than waiting
// on one readahead window at a time. WILLNEED can block while it queues
// the reads, so it runs on its own goroutine, alongside the decoding; the
// runtime keeps the descriptor open until the call returns. Only an
// *os.File has a kernel to ask (MemFS files need nothing), and the advice
// is only advice: errors are ignored, reads stay correct without it.
func readAhead(f any, off, n int64) {
	of, ok := f.(*os.File)
	if !ok || n <= 0 { // (fadvise reads a length of 0 as "to the end")
		return
	}
	rc, err := of.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) { _ = unix.Fadvise(int(fd), off, n, unix.FADV_SEQUENTIAL) })
	go func() {
		_ = rc.Control(func(fd uintptr) { _ = unix.Fadvise(int(fd), off, n, unix.FADV_WILLNEED) })
	}()
}
