package storage

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
	"unsafe"
)

// TestHugeAdvice_Withdraw: where the system gives huge pages on request,
// adviseHuge marks the memory of a big array for them (the VMA's VmFlags
// say hg) and withdraw unmarks it (nh), with the array's contents intact;
// where it does not, nothing is asked.
func TestHugeAdvice_Withdraw(t *testing.T) {
	s := make([]int64, 3*hugePage/8+5)
	var h hugeAdvice
	adviseHuge(&h, s)
	for i := range s {
		s[i] = int64(i)
	}
	addr := uintptr(unsafe.Pointer(&s[len(s)/2]))
	if !thpOnRequest() {
		if len(h.ranges) != 0 {
			t.Fatalf("asked for huge pages (%v) where the system does not give them on request", h.ranges)
		}
		return
	}
	if len(h.ranges) != 1 {
		t.Fatalf("%d ranges advised, want 1", len(h.ranges))
	}
	p, size := uintptr(unsafe.Pointer(&s[0])), uintptr(len(s))*8
	if r := h.ranges[0]; r[0] > p || r[1] < p+size || r[0]%hugePage != 0 || r[1]%hugePage != 0 {
		t.Fatalf("advised [%#x, %#x), want whole huge pages around the array [%#x, %#x)", r[0], r[1], p, p+size)
	}
	if flags := vmFlags(t, addr); !strings.Contains(flags, " hg") {
		t.Fatalf("VmFlags %q of the array's memory after the advice, want hg", flags)
	}
	h.withdraw()
	if flags := vmFlags(t, addr); strings.Contains(flags, " hg") || !strings.Contains(flags, " nh") {
		t.Fatalf("VmFlags %q after withdraw, want nh and no hg", flags)
	}
	if len(h.ranges) != 0 {
		t.Fatalf("%d ranges left after withdraw", len(h.ranges))
	}
	for i := range s {
		if s[i] != int64(i) {
			t.Fatalf("s[%d]=%d after the advice, want %d", i, s[i], i)
		}
	}
}

// vmFlags returns the VmFlags line of the mapping of this process that
// holds addr.
func vmFlags(t *testing.T, addr uintptr) string {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	in := false
	for sc.Scan() {
		line := sc.Text()
		var lo, hi uintptr
		if n, _ := fmt.Sscanf(line, "%x-%x ", &lo, &hi); n == 2 && !strings.Contains(line[:strings.IndexByte(line, ' ')], ":") {
			in = lo <= addr && addr < hi
			continue
		}
		if in && strings.HasPrefix(line, "VmFlags:") {
			return line
		}
	}
	t.Fatalf("no mapping holds %#x", addr)
	return ""
}
