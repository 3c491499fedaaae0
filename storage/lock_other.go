//go:build !unix

package storage

import (
	"io"
	"os"
)

// lockFile only creates the lock file where flock(2) is unavailable: two
// processes on one data directory are then not prevented.
func lockFile(name string) (io.Closer, error) {
	return os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
}
