//go:build !linux

package storage

// hugeAdvice is a no-op where transparent huge pages cannot be asked for
// (hugepages_linux.go).
type hugeAdvice struct{}

func adviseHuge[E any](h *hugeAdvice, s []E) {}

func (h *hugeAdvice) withdraw() {}
