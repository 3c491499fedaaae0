package storage

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
)

// DeletedDir is the directory of the data directory where Retire moves
// the files of deleted repositories: one directory per deletion, named
// "<UTC time>.<repository>", holding the log and its index checkpoint
// under their usual names. Nothing there is ever read or erased by the
// gateway; an operator restores a repository by moving its files back
// into the data directory while the gateway is stopped.
const DeletedDir = "deleted"

// genSuffix names a repository's generation file: the incarnation of the
// name its log belongs to (see Generation).
const genSuffix = ".gen"

func (s *Store) genPath(name string) string { return filepath.Join(s.cfg.Dir, name+genSuffix) }

// Generation returns the generation recorded for the named repository's
// log (SetGeneration), 0 when none was. A name deleted and created again
// starts a new generation, so that a node can tell a log of the name's
// earlier life from one of its current life.
func (s *Store) Generation(name string) (uint64, error) {
	if err := core.ValidateRepoName(name); err != nil {
		return 0, err
	}
	f, err := s.cfg.FS.OpenFile(s.genPath(name), os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 32))
	if err != nil {
		return 0, err
	}
	g, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: generation of %q: %v", core.ErrCorrupt, name, err)
	}
	return g, nil
}

// SetGeneration records the generation of the named repository's log,
// durably; call it before creating the log, so that a log never exists
// with a generation older than the one it was created for. Generation 0
// removes the record.
func (s *Store) SetGeneration(name string, gen uint64) error {
	if err := core.ValidateRepoName(name); err != nil {
		return err
	}
	if gen == 0 {
		if err := s.cfg.FS.Remove(s.genPath(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	return writeFileAtomic(s.cfg.FS, s.genPath(name), []byte(strconv.FormatUint(gen, 10)+"\n"), s.cfg.NoSync)
}

// Exists reports whether the named repository has a log in the data
// directory, without opening it.
func (s *Store) Exists(name string) bool {
	if core.ValidateRepoName(name) != nil {
		return false
	}
	f, err := s.cfg.FS.OpenFile(s.path(name), os.O_RDONLY, 0)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// Retire takes the named repository out of the store and moves its log,
// its index checkpoint and its generation file into a new directory under
// DeletedDir, which it returns (relative to the data directory). Nothing
// is erased.
//
// Holders are cut, not waited for: appends already handed to the writer
// finish and are durable in the moved log; later appends, reads and waits
// through handles taken before return core.ErrClosed, and opening the name
// again waits for Retire and then finds nothing (core.ErrNotFound). A
// repository whose log does not exist is core.ErrNotFound; a damaged one
// is retired like any other.
func (s *Store) Retire(name string, at time.Time) (string, error) {
	if err := core.ValidateRepoName(name); err != nil {
		return "", err
	}
	s.mu.Lock()
	for {
		if s.closed {
			s.mu.Unlock()
			return "", fmt.Errorf("repo %q: %w", name, core.ErrClosed)
		}
		ch := s.busy[name]
		if ch == nil {
			break
		}
		s.mu.Unlock()
		<-ch
		s.mu.Lock()
	}
	r := s.repos[name]
	delete(s.repos, name)
	ch := make(chan struct{})
	s.busy[name] = ch
	s.opens.Add(1)
	s.mu.Unlock()

	dir, err := s.retire(name, r, at)

	s.mu.Lock()
	if err == nil {
		delete(s.damaged, name)
	}
	delete(s.busy, name)
	close(ch)
	s.opens.Done()
	s.mu.Unlock()
	return dir, err
}

func (s *Store) retire(name string, r *Repo, at time.Time) (string, error) {
	if r != nil {
		if err := r.close(); err != nil {
			// The log is sealed or not, either way intact: it moves.
			s.logger.Warn("close repository to retire it", logKeyRepo, name, logKeyErr, err)
		}
	}
	logPath := s.path(name)
	if f, err := s.cfg.FS.OpenFile(logPath, os.O_RDONLY, 0); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%w: repository %q", core.ErrNotFound, name)
		}
		return "", err
	} else {
		f.Close()
	}
	// A directory of its own, never an existing one: two deletions of
	// the name within one millisecond must not overwrite each other.
	base := at.UTC().Format("20060102T150405.000Z")
	taken, err := s.cfg.FS.ReadDir(filepath.Join(s.cfg.Dir, DeletedDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	leaf := base + "." + name
	for i := 2; slices.Contains(taken, leaf); i++ {
		leaf = base + "-" + strconv.Itoa(i) + "." + name
	}
	rel := filepath.Join(DeletedDir, leaf)
	dst := filepath.Join(s.cfg.Dir, rel)
	if err := s.cfg.FS.MkdirAll(dst, 0o755); err != nil {
		return "", err
	}
	// The checkpoint and the generation first, the log last: until the
	// log moves, the repository exists as it was (a checkpoint is only a
	// shortcut, and a missing generation file reads as 0, which the node
	// retires again at its next start if the name was deleted meanwhile).
	for _, p := range []string{ckptPath(logPath), s.genPath(name), logPath} {
		err := s.cfg.FS.Rename(p, filepath.Join(dst, filepath.Base(p)))
		if err != nil && !(errors.Is(err, fs.ErrNotExist) && p != logPath) {
			return "", fmt.Errorf("retire repository %q: %w", name, err)
		}
	}
	if !s.cfg.NoSync {
		if err := s.cfg.FS.SyncDir(dst); err != nil {
			return "", err
		}
		if err := s.cfg.FS.SyncDir(s.cfg.Dir); err != nil {
			return "", err
		}
	}
	s.logger.Info("retired repository", logKeyRepo, name, logKeyFile, rel)
	return rel, nil
}
