package storage

import (
	"bytes"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// Transparent huge pages for the index's big arrays.
//
// Loading the index of a big repository fills about a hundred bytes of
// fresh memory per commit, once, right after allocating it. Faulting that
// memory in 4 KiB at a time is most of what the load costs on a virtual
// machine (a trap and a page of host memory per 4 KiB: docs/benchmarks.md
// measured 0.5 s of CPU for 128 MiB against 0.02 s in 2 MiB pages). Where
// the system backs memory with huge pages only on request (enabled =
// madvise, the common default), hugeAdvice requests them for those arrays
// while they are filled, and withdraws the request afterwards: the pages
// stay huge, but the Go heap's memory is not left marked, so memory that
// the runtime later frees and reuses is backed as it would be without
// this (the Go runtime stopped marking its heap itself because khugepaged
// then re-inflates freed memory). Nothing changes where huge pages are
// used anyway (always) or not at all (never), nor elsewhere than Linux.

// hugePage is the size of a transparent huge page on amd64 and on arm64
// with 4 KiB base pages; on other page sizes the advice is merely coarser.
const hugePage = 2 << 20

// hugeMin is the smallest array worth the advice.
const hugeMin = hugePage

// thpOnRequest reports whether the system backs memory with transparent
// huge pages only where madvise asks for them.
var thpOnRequest = sync.OnceValue(func() bool {
	b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	return err == nil && bytes.Contains(b, []byte("[madvise]"))
})

// hugeAdvice remembers the address ranges it asked huge pages for, so
// that withdraw can take the request back once they are filled.
type hugeAdvice struct {
	ranges [][2]uintptr
}

// adviseHuge asks for huge pages for s's backing array, which the caller
// is about to fill. The range is widened to whole huge pages: the advice
// is only about how the kernel backs memory, never about its contents,
// so the neighbours that share the first and last huge page lose nothing.
// Addresses stay uintptrs (no Go pointer is made outside s).
func adviseHuge[E any](h *hugeAdvice, s []E) {
	size := uintptr(cap(s)) * unsafe.Sizeof(*new(E))
	if size < hugeMin || !thpOnRequest() {
		return
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	start := p &^ (hugePage - 1)
	end := (p + size + hugePage - 1) &^ (hugePage - 1)
	if madvise(start, end-start, syscall.MADV_HUGEPAGE) == nil {
		h.ranges = append(h.ranges, [2]uintptr{start, end})
	}
}

// withdraw takes back every request of h (the pages already huge stay
// so).
func (h *hugeAdvice) withdraw() {
	for _, r := range h.ranges {
		_ = madvise(r[0], r[1]-r[0], syscall.MADV_NOHUGEPAGE)
	}
	h.ranges = nil
}

func madvise(addr, n uintptr, advice int) error {
	if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, addr, n, uintptr(advice)); errno != 0 {
		return errno
	}
	return nil
}
