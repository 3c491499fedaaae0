//go:build !linux

package storage

// readAhead is a no-op where posix_fadvise is not available through
// golang.org/x/sys/unix; readahead_linux.go says what it does there.
func readAhead(f any, off, n int64) {}
