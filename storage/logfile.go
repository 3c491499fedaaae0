package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
)

// logFile is one open log file. Appends are serialized by the caller (the
// repository's writer goroutine); reads may run concurrently with them and
// with each other, and only ever cover durable records.
type logFile struct {
	fsys   FS
	path   string
	f      File
	id     LogID
	size   int64 // end of the last durable record: where the next write goes
	noSync bool
	broken error // sticky: after a failed write or fsync nothing more is written
	sealed bool  // the file ends with a close marker
}

// createLog creates an empty log (header only) at path, atomically: the
// file appears under its name complete and durable, or not at all.
func createLog(fsys FS, path string, noSync bool) error {
	if f, err := fsys.OpenFile(path, os.O_RDONLY, 0); err == nil {
		f.Close()
		return fmt.Errorf("%w: %s exists", core.ErrConflict, filepath.Base(path))
	}
	return writeFileAtomic(fsys, path, encodeHeader(newLogID()), noSync)
}

// writeFileAtomic writes data to path via a synced temporary file, a
// rename and a directory sync.
func writeFileAtomic(fsys FS, path string, data []byte, noSync bool) error {
	tmp := path + ".tmp"
	f, err := fsys.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		f.Close()
		return err
	}
	if !noSync {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := fsys.Rename(tmp, path); err != nil {
		return err
	}
	if noSync {
		return nil
	}
	return fsys.SyncDir(filepath.Dir(path))
}

// openLog opens the log at path, calls visit for every good record, and
// recovers the tail as the package comment describes: a torn tail is
// truncated, a torn last write is rewritten, damage to acknowledged data is
// refused with core.ErrCorrupt.
//
// resume, if not nil, is asked once the header is read whether a prefix of
// the log is already indexed (scanLogFrom); it may read f.
func openLog(fsys FS, path string, noSync bool, logger *slog.Logger, resume func(f File, size int64, id LogID) *ckptStart, visit scanVisit) (*logFile, scanResult, error) {
	f, err := fsys.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			// No file name: this error reaches callers who typed a
			// repository name, and the caller names the repository.
			return nil, scanResult{}, core.ErrNotFound
		}
		return nil, scanResult{}, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, scanResult{}, err
	}
	var resumeAt func(LogID) *ckptStart
	if resume != nil {
		resumeAt = func(id LogID) *ckptStart { return resume(f, st.Size(), id) }
	}
	res, err := scanLogFrom(f, st.Size(), resumeAt, visit)
	if err != nil {
		f.Close()
		return nil, res, err
	}
	l := &logFile{fsys: fsys, path: path, f: f, id: res.id, size: res.end, noSync: noSync, sealed: res.closed}
	switch res.state {
	case tailTorn:
		kept, err := keepTornTail(fsys, f, path, res.end, res.size, noSync)
		if err != nil {
			f.Close()
			return nil, res, fmt.Errorf("keep the torn tail aside: %w", err)
		}
		logger.Warn("truncating torn log tail", logKeyFile, path, logKeyRecords, res.records, logKeyOffset, res.end, logKeyBytes, res.size-res.end, logKeyReason, res.bad.String(), logKeyTornCopy, kept)
		if err := f.Truncate(res.end); err != nil {
			f.Close()
			return nil, res, err
		}
		if !noSync {
			if err := f.Sync(); err != nil {
				f.Close()
				return nil, res, err
			}
		}
	case tailTornGroup:
		f.Close()
		id, damaged, err := salvage(fsys, path, res.end, nil, noSync)
		if err != nil {
			return nil, res, fmt.Errorf("rewrite after torn last write: %w", err)
		}
		logger.Warn("torn last write: kept the good prefix under a new log id",
			logKeyFile, path, logKeyRecords, res.records, logKeyOffset, res.end, logKeyDropped, res.dropped, logKeyDamaged, damaged)
		if l.f, err = fsys.OpenFile(path, os.O_RDWR, 0); err != nil {
			return nil, res, err
		}
		l.id = id
	case tailCorrupt:
		f.Close()
		return nil, res, fmt.Errorf("%w: %s: %s", core.ErrCorrupt, filepath.Base(path), res.describe())
	}
	return l, res, nil
}

// keepTornTail copies the bytes [end, size) of the log f at path, which
// recovery is about to cut, to path.torn-UNIXNANO (synced) and returns that
// name: a torn tail is never acknowledged data, but what is cut is kept
// aside, never erased (DESIGN section 7), in case the verdict was wrong.
func keepTornTail(fsys FS, f File, path string, end, size int64, noSync bool) (string, error) {
	kept := path + ".torn-" + strconv.FormatInt(time.Now().UnixNano(), 10)
	if err := copyFile(fsys, f, kept, nil, end, size, nil, noSync); err != nil {
		return "", err
	}
	if !noSync {
		if err := fsys.SyncDir(filepath.Dir(path)); err != nil {
			return "", err
		}
	}
	return kept, nil
}

// salvage replaces the log at path with its first end bytes, followed by
// tail (whole frames, framed for this position), under a new log id, after
// copying the original, whole, to path.damaged-UNIXNANO. At every instant
// path names either the original or the complete rewrite, and the
// original's bytes are never deleted.
func salvage(fsys FS, path string, end int64, tail []byte, noSync bool) (LogID, string, error) {
	id := newLogID()
	damaged := path + ".damaged-" + strconv.FormatInt(time.Now().UnixNano(), 10)
	src, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return id, "", err
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return id, "", err
	}
	if err := copyFile(fsys, src, damaged, nil, 0, st.Size(), nil, noSync); err != nil {
		return id, "", err
	}
	tmp := path + ".tmp"
	if err := copyFile(fsys, src, tmp, encodeHeader(id), headerSize, end, tail, noSync); err != nil {
		return id, "", err
	}
	if err := fsys.Rename(tmp, path); err != nil {
		return id, "", err
	}
	if !noSync {
		if err := fsys.SyncDir(filepath.Dir(path)); err != nil {
			return id, "", err
		}
	}
	return id, damaged, nil
}

// copyFile writes prefix, src's bytes [from, to), then suffix to a new
// file dst, synced.
func copyFile(fsys FS, src File, dst string, prefix []byte, from, to int64, suffix []byte, noSync bool) error {
	f, err := fsys.OpenFile(dst, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.WriteAt(prefix, 0); err != nil {
		return err
	}
	out := int64(len(prefix))
	buf := make([]byte, 1<<20)
	for pos := from; pos < to; {
		n := int(min(int64(len(buf)), to-pos))
		if _, err := src.ReadAt(buf[:n], pos); err != nil {
			return err
		}
		if _, err := f.WriteAt(buf[:n], out); err != nil {
			return err
		}
		pos += int64(n)
		out += int64(n)
	}
	if _, err := f.WriteAt(suffix, out); err != nil {
		return err
	}
	if noSync {
		return nil
	}
	return f.Sync()
}

// append writes buf (whole frames) at the end of the log and syncs it.
// After a failure the log refuses further writes: the bytes may have
// reached the disk in part, and after a failed fsync the page cache can no
// longer be trusted to say what did. Reopening recovers.
func (l *logFile) append(buf []byte) error {
	if l.broken != nil {
		return l.broken
	}
	_, err := l.f.WriteAt(buf, l.size)
	if err == nil && !l.noSync {
		err = l.f.Sync()
	}
	if err != nil {
		// Best effort, so that the partial write is not read back before
		// the next open recovers the file properly.
		_ = l.f.Truncate(l.size)
		l.broken = fmt.Errorf("log %s is read-only after a failed write (reopen to recover): %w", filepath.Base(l.path), err)
		return err
	}
	l.size += int64(len(buf))
	l.sealed = false
	return nil
}

// seal appends a close marker after the last record (seq lastSeq). The
// marker is a write of its own, so recovery counts it as a later write:
// damage before it, even in the last group of commits, is then refused as
// corruption instead of being taken for a torn write. A crash can still
// tear the last write before a marker exists, which is the case recovery
// must (and does) forgive.
func (l *logFile) seal(lastSeq uint64) error {
	if l.broken != nil || l.sealed || l.size == headerSize {
		return nil
	}
	if err := l.append(appendFrame(nil, payloadHeader{seq: lastSeq, group: l.size, kind: kindClose}, nil)); err != nil {
		return err
	}
	l.sealed = true
	return nil
}

// readAt reads n bytes at pos into a new buffer.
func (l *logFile) readAt(pos int64, n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := l.f.ReadAt(b, pos); err != nil {
		return nil, fmt.Errorf("read %s at %d: %w", filepath.Base(l.path), pos, err)
	}
	return b, nil
}

func (l *logFile) close() error { return l.f.Close() }
