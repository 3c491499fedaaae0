package storage

import (
	"io"
	"io/fs"
	"os"
	"slices"
)

// FS is the filesystem seam (STYLE 8). Everything storage does to disk goes
// through it, so that tests can substitute a MemFS that loses unsynced
// writes on a simulated crash. Paths are OS paths (filepath.Join).
//
// The durability contract is POSIX's: file contents are durable after
// File.Sync, and a directory entry (created, renamed or removed) is durable
// after SyncDir of its directory.
type FS interface {
	// OpenFile opens or creates a file; flag and perm as for os.OpenFile.
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	// Rename atomically replaces newpath with oldpath.
	Rename(oldpath, newpath string) error
	// Remove removes a file.
	Remove(name string) error
	// ReadDir lists the names in a directory, sorted.
	ReadDir(dir string) ([]string, error)
	// MkdirAll creates a directory and its parents.
	MkdirAll(dir string, perm os.FileMode) error
	// SyncDir makes the directory's entries durable.
	SyncDir(dir string) error
	// Lock takes an exclusive advisory lock on a file (created if absent),
	// held until the returned Closer is closed. It fails at once, rather than
	// waiting, when another holder has it, with an error wrapping
	// core.ErrConflict.
	Lock(name string) (io.Closer, error)
}

// File is the part of *os.File that storage uses. Writes name their offset
// explicitly (WriteAt): the append position and the truncation point of a
// log are then the same number, with no hidden file offset to drift.
type File interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
	Truncate(size int64) error
	Stat() (fs.FileInfo, error)
	Close() error
}

// OSFS returns the FS of the operating system.
func OSFS() FS { return osFS{} }

type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (osFS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }
func (osFS) Remove(name string) error             { return os.Remove(name) }

func (osFS) MkdirAll(dir string, perm os.FileMode) error { return os.MkdirAll(dir, perm) }

func (osFS) ReadDir(dir string) ([]string, error) {
	es, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(es))
	for _, e := range es {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names, nil
}

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func (osFS) Lock(name string) (io.Closer, error) { return lockFile(name) }
