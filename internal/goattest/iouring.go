package goattest

import (
	"testing"

	"github.com/goat-gateway/goat-gateway/internal/uring"
)

// NeedIOURing skips tb where the kernel refuses io_uring, unless the
// environment requires it (uring.Required: `make test` does), where it
// fails tb instead.
func NeedIOURing(tb testing.TB) {
	tb.Helper()
	r, err := uring.New(8, 0, 0)
	if err == nil {
		r.Close()
		return
	}
	NoIOURing(tb, err)
}

// NoIOURing ends tb for err, the kernel's refusal of io_uring: a skip, or
// a failure where io_uring is required.
func NoIOURing(tb testing.TB, err error) {
	tb.Helper()
	if uring.Required() {
		tb.Fatalf("io_uring is required here (GOAT_TEST_IO_URING=required), and the kernel refuses it: %v", err)
	}
	tb.Skipf("this kernel offers no io_uring: %v", err)
}
