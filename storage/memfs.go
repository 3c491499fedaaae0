package storage

import (
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
)

// MemFS is an in-memory FS that remembers what is durable, for crash tests
// and for fast tests of packages built on storage.
//
// It keeps, per file, the bytes as of the last File.Sync next to the current
// bytes, and per directory, the entries as of the last SyncDir next to the
// current ones. Crash returns the image a machine would find after losing
// power at that instant: synced state always survives, unsynced state is
// lost or survives in part, as the CrashMode says. Directories themselves
// are durable as soon as MkdirAll returns (storage creates them once, at
// startup).
type MemFS struct {
	mu    sync.Mutex
	dirs  map[string]*memDir
	locks map[string]bool
	fault func(op, name string) error
}

type memDir struct {
	entries map[string]*memNode // current
	synced  map[string]*memNode // as of the last SyncDir
}

type memNode struct {
	data   []byte
	synced []byte // as of the last Sync
}

// NewMemFS returns an empty MemFS with the root directory.
func NewMemFS() *MemFS {
	m := &MemFS{dirs: map[string]*memDir{}, locks: map[string]bool{}}
	m.dirs[string(filepath.Separator)] = newMemDir()
	m.dirs["."] = newMemDir()
	return m
}

func newMemDir() *memDir {
	return &memDir{entries: map[string]*memNode{}, synced: map[string]*memNode{}}
}

// SetFault installs a hook called before every mutating operation ("open",
// "write", "sync", "syncdir", "truncate", "rename", "remove") with the path;
// a non-nil error fails the operation without side effects. nil removes it.
func (m *MemFS) SetFault(f func(op, name string) error) {
	m.mu.Lock()
	m.fault = f
	m.mu.Unlock()
}

func (m *MemFS) check(op, name string) error {
	if m.fault == nil {
		return nil
	}
	if err := m.fault(op, name); err != nil {
		return &fs.PathError{Op: op, Path: name, Err: err}
	}
	return nil
}

func (m *MemFS) lookup(name string) (*memDir, string, error) {
	name = filepath.Clean(name)
	d, ok := m.dirs[filepath.Dir(name)]
	if !ok {
		return nil, "", &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return d, filepath.Base(name), nil
}

// OpenFile implements FS. O_RDONLY, O_WRONLY, O_RDWR, O_CREATE, O_EXCL and
// O_TRUNC are honoured; O_APPEND is not supported (storage uses WriteAt).
func (m *MemFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if flag&os.O_APPEND != 0 {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	d, base, err := m.lookup(name)
	if err != nil {
		return nil, err
	}
	n := d.entries[base]
	switch {
	case n == nil && flag&os.O_CREATE == 0:
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	case n != nil && flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrExist}
	}
	if err := m.check("open", name); err != nil {
		return nil, err
	}
	if n == nil {
		n = &memNode{}
		d.entries[base] = n
	}
	if flag&os.O_TRUNC != 0 {
		n.data = nil
	}
	writable := flag&(os.O_WRONLY|os.O_RDWR) != 0
	return &memFile{fs: m, node: n, name: filepath.Clean(name), writable: writable, readable: flag&os.O_WRONLY == 0}, nil
}

// Rename implements FS.
func (m *MemFS) Rename(oldpath, newpath string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	od, ob, err := m.lookup(oldpath)
	if err != nil {
		return err
	}
	nd, nb, err := m.lookup(newpath)
	if err != nil {
		return err
	}
	n := od.entries[ob]
	if n == nil {
		return &fs.PathError{Op: "rename", Path: oldpath, Err: fs.ErrNotExist}
	}
	if err := m.check("rename", oldpath); err != nil {
		return err
	}
	delete(od.entries, ob)
	nd.entries[nb] = n
	return nil
}

// Remove implements FS.
func (m *MemFS) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, b, err := m.lookup(name)
	if err != nil {
		return err
	}
	if d.entries[b] == nil {
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	if err := m.check("remove", name); err != nil {
		return err
	}
	delete(d.entries, b)
	return nil
}

// ReadDir implements FS: files and subdirectories, sorted.
func (m *MemFS) ReadDir(dir string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir = filepath.Clean(dir)
	d, ok := m.dirs[dir]
	if !ok {
		return nil, &fs.PathError{Op: "readdir", Path: dir, Err: fs.ErrNotExist}
	}
	var names []string
	for n := range d.entries {
		names = append(names, n)
	}
	for p := range m.dirs {
		if p != dir && filepath.Dir(p) == dir {
			names = append(names, filepath.Base(p))
		}
	}
	slices.Sort(names)
	return names, nil
}

// MkdirAll implements FS.
func (m *MemFS) MkdirAll(dir string, perm os.FileMode) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for p := filepath.Clean(dir); ; p = filepath.Dir(p) {
		if _, ok := m.dirs[p]; ok {
			break
		}
		m.dirs[p] = newMemDir()
	}
	return nil
}

// SyncDir implements FS.
func (m *MemFS) SyncDir(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.dirs[filepath.Clean(dir)]
	if !ok {
		return &fs.PathError{Op: "syncdir", Path: dir, Err: fs.ErrNotExist}
	}
	if err := m.check("syncdir", dir); err != nil {
		return err
	}
	d.synced = make(map[string]*memNode, len(d.entries))
	for k, v := range d.entries {
		d.synced[k] = v
	}
	return nil
}

// Lock implements FS with an in-process lock table.
func (m *MemFS) Lock(name string) (io.Closer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	name = filepath.Clean(name)
	if m.locks[name] {
		return nil, fmt.Errorf("%w: %s is locked by another process", core.ErrConflict, name)
	}
	m.locks[name] = true
	return closerFunc(func() error {
		m.mu.Lock()
		delete(m.locks, name)
		m.mu.Unlock()
		return nil
	}), nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// ReadFile returns a copy of a file's current contents.
func (m *MemFS) ReadFile(name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, b, err := m.lookup(name)
	if err != nil {
		return nil, err
	}
	n := d.entries[b]
	if n == nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return slices.Clone(n.data), nil
}

// WriteFile replaces a file's contents and makes the file and its directory
// entry durable, as if written by another tool before the test.
func (m *MemFS) WriteFile(name string, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, b, err := m.lookup(name)
	if err != nil {
		return err
	}
	n := d.entries[b]
	if n == nil {
		n = &memNode{}
		d.entries[b] = n
	}
	n.data = slices.Clone(data)
	n.synced = slices.Clone(data)
	d.synced[b] = n
	return nil
}

// CrashMode says what survives of the writes that were not synced.
type CrashMode int

const (
	// CrashDropUnsynced keeps exactly what was synced.
	CrashDropUnsynced CrashMode = iota
	// CrashKeepPrefix also keeps a random prefix of the bytes appended
	// since the last sync (a write torn at any byte).
	CrashKeepPrefix
	// CrashZeroTail keeps a random prefix of the appended bytes and reads
	// the rest, up to the size the file had, as zeros (the size reached
	// disk, the data blocks did not).
	CrashZeroTail
	// CrashReorderPages keeps each 4 KiB page of the appended bytes, or
	// not, independently, the lost ones reading as zeros (writeback in any
	// order).
	CrashReorderPages
	// CrashRandom picks one of the modes above per file.
	CrashRandom
)

func (c CrashMode) String() string {
	switch c {
	case CrashDropUnsynced:
		return "drop-unsynced"
	case CrashKeepPrefix:
		return "keep-prefix"
	case CrashZeroTail:
		return "zero-tail"
	case CrashReorderPages:
		return "reorder-pages"
	case CrashRandom:
		return "random"
	}
	return fmt.Sprintf("CrashMode(%d)", int(c))
}

// crashPage is the unit of CrashReorderPages: the page size of the usual
// page cache.
const crashPage = 4096

// Crash returns the disk image after a power loss at this instant. m itself
// is not changed and stays usable, so a test can crash a store while its
// goroutines keep running. Open files of m are not open in the result, and
// no locks are held.
func (m *MemFS) Crash(rng *rand.Rand, mode CrashMode) *MemFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.crashLocked(rng, mode)
}

// crashLocked is Crash for a caller that holds m.mu: a fault hook, which
// can so crash the disk at one exact operation.
func (m *MemFS) crashLocked(rng *rand.Rand, mode CrashMode) *MemFS {
	out := &MemFS{dirs: map[string]*memDir{}, locks: map[string]bool{}}
	done := map[*memNode]*memNode{}
	// Sorted so that a seeded rng gives the same image every run.
	paths := make([]string, 0, len(m.dirs))
	for p := range m.dirs {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		d := m.dirs[p]
		nd := newMemDir()
		names := make([]string, 0, len(d.synced))
		for name := range d.synced {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			n := d.synced[name]
			c, ok := done[n]
			if !ok {
				data := crashData(rng, mode, n)
				c = &memNode{data: data, synced: slices.Clone(data)}
				done[n] = c
			}
			nd.entries[name] = c
			nd.synced[name] = c
		}
		out.dirs[p] = nd
	}
	return out
}

func crashData(rng *rand.Rand, mode CrashMode, n *memNode) []byte {
	s := slices.Clone(n.synced)
	if len(n.data) <= len(s) || !slices.Equal(n.data[:len(s)], s) {
		// Not a pure append since the last sync (a truncation, a rewrite):
		// storage syncs those at once, so the synced state is what counts.
		return s
	}
	tail := n.data[len(s):]
	if mode == CrashRandom {
		mode = CrashMode(rng.IntN(int(CrashRandom)))
	}
	switch mode {
	case CrashKeepPrefix:
		return append(s, tail[:rng.IntN(len(tail)+1)]...)
	case CrashZeroTail:
		k := rng.IntN(len(tail) + 1)
		s = append(s, tail[:k]...)
		return append(s, make([]byte, len(tail)-k)...)
	case CrashReorderPages:
		base := len(s)
		s = append(s, tail...)
		for start := base; start < len(s); {
			end := min((start/crashPage+1)*crashPage, len(s))
			if rng.IntN(2) == 0 {
				clear(s[start:end])
			}
			start = end
		}
		return s
	}
	return s
}

type memFile struct {
	fs                 *MemFS
	node               *memNode
	name               string
	readable, writable bool
	closed             bool
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed || !f.readable {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: fs.ErrClosed}
	}
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: fs.ErrInvalid}
	}
	if off >= int64(len(f.node.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.node.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed || !f.writable {
		return 0, &fs.PathError{Op: "write", Path: f.name, Err: fs.ErrClosed}
	}
	if off < 0 {
		return 0, &fs.PathError{Op: "write", Path: f.name, Err: fs.ErrInvalid}
	}
	if err := f.fs.check("write", f.name); err != nil {
		return 0, err
	}
	if end := off + int64(len(p)); end > int64(len(f.node.data)) {
		f.node.data = append(f.node.data, make([]byte, end-int64(len(f.node.data)))...)
	}
	copy(f.node.data[off:], p)
	return len(p), nil
}

func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return &fs.PathError{Op: "sync", Path: f.name, Err: fs.ErrClosed}
	}
	if err := f.fs.check("sync", f.name); err != nil {
		return err
	}
	f.node.synced = slices.Clone(f.node.data)
	return nil
}

func (f *memFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed || !f.writable {
		return &fs.PathError{Op: "truncate", Path: f.name, Err: fs.ErrClosed}
	}
	if err := f.fs.check("truncate", f.name); err != nil {
		return err
	}
	if size < int64(len(f.node.data)) {
		f.node.data = f.node.data[:size:size]
	} else {
		f.node.data = append(f.node.data, make([]byte, size-int64(len(f.node.data)))...)
	}
	return nil
}

func (f *memFile) Stat() (fs.FileInfo, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return nil, &fs.PathError{Op: "stat", Path: f.name, Err: fs.ErrClosed}
	}
	return memInfo{name: filepath.Base(f.name), size: int64(len(f.node.data))}, nil
}

func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return &fs.PathError{Op: "close", Path: f.name, Err: fs.ErrClosed}
	}
	f.closed = true
	return nil
}

type memInfo struct {
	name string
	size int64
}

func (i memInfo) Name() string       { return i.name }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) Mode() fs.FileMode  { return 0o644 }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }
