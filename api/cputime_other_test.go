//go:build !unix

package api_test

import (
	"testing"
	"time"
)

// processCPU is not measured here: benchmarks report 0 CPU per op.
func processCPU(tb testing.TB) time.Duration {
	tb.Helper()
	return 0
}
