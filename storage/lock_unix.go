//go:build unix

package storage

import (
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/goat-gateway/goat-gateway/core"
)

// lockFile takes a flock(2) lock, which the kernel releases when the
// process dies, so a crashed gateway never leaves a stale lock behind.
func lockFile(name string) (io.Closer, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if err == syscall.EWOULDBLOCK {
			return nil, fmt.Errorf("%w: %s is locked by another process", core.ErrConflict, name)
		}
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	return f, nil
}
