package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
)

// Keys of structured log attributes.
const (
	logKeyRepo     = "repo"
	logKeyItem     = "item"
	logKeyFile     = "file"
	logKeyRecords  = "records"
	logKeyOffset   = "offset"
	logKeyBytes    = "bytes"
	logKeyReason   = "reason"
	logKeyDropped  = "dropped_records"
	logKeyDamaged  = "damaged_copy"
	logKeyErr      = "err"
	logKeyElapsed  = "elapsed"
	logKeyOpen     = "open"
	logKeyBudget   = "budget"
	logKeyTornCopy = "torn_copy"
)

// Config configures a Store. The zero value of every field but Dir is a
// usable default.
type Config struct {
	// Dir is the data directory; created if absent.
	Dir string
	// FS is the filesystem; nil means the operating system's.
	FS FS
	// NoSync skips every fsync. For tests and benchmarks only: with it an
	// acknowledged append can be lost to a power failure (not to a crash
	// of the process alone).
	NoSync bool
	// IdleTimeout is how long a repository stays open after its last
	// release; 0 means 5 minutes, a negative value means forever.
	IdleTimeout time.Duration
	// MaxOpen is the open-files budget: how many repositories may be open
	// at once. Opening one more first closes the least recently released
	// idle repository; 0 means 512, a negative value means no budget. See
	// acquire for what happens when every open repository is in use.
	MaxOpen int
	// MaxBatchBytes bounds the record bytes of one group commit; 0 means
	// 4 MiB. A single append larger than this still goes in one write.
	MaxBatchBytes int
	// SeqBlock is how many sequence numbers one NODE file write leases;
	// 0 means 65536.
	SeqBlock uint64
	// CheckpointEvery is how many records appended to an open repository
	// since its last index checkpoint make the writer save a new one (and
	// at least a quarter of what the last one covered); closing saves one
	// for any log of 4,096 records or more (or CheckpointEvery, if
	// smaller) that changed. 0 means 65,536; a negative value turns
	// checkpoints off, for reading too. See "Index checkpoints" in the
	// package comment.
	CheckpointEvery int
	// Verify, if set, is called for each commit that Append is about to
	// append (signatures, schemas, authorization: not storage's business).
	// An error rejects that commit alone. AppendVerified overrides it per
	// call.
	Verify VerifyFunc
	// Merger, if set, is asked for a merge commit whenever an append
	// leaves an item with several heads.
	Merger Merger
	// OnAppend, if set, is called after records are durable and indexed,
	// with the records of one write, across all repositories of the store
	// in strictly increasing sequence order: before the write's appenders
	// are answered, unless an earlier write (of another repository) is
	// still in progress, whose completion then runs it. It must not block
	// (buffer and drop, as SSE subscribers do) and must not modify the
	// records.
	OnAppend func(repo string, recs []Record)
	// AfterAppend, if set, is called with the same records as OnAppend,
	// in the same node sequence order, after OnAppend and once their
	// appenders are answered: for fan-out that an appender's answer should
	// not wait for, where node order matters. Same rules as OnAppend.
	AfterAppend func(repo string, recs []Record)
	// OnIndexed, if set, is called with the same records as OnAppend, as
	// soon as they are durable and indexed, before OnAppend and before
	// their appenders are answered: in sequence order within the
	// repository, but in no order across repositories, so that one
	// repository's records never wait for another's write (a big batch, a
	// slow fsync). It runs on the repository's writer goroutine, and every
	// write of the repository waits for it: it must be quick, must not
	// block and must not modify the records.
	OnIndexed func(repo string, recs []Record)
	// OnDurable, if set, is called with the same records, on the
	// repository's writer goroutine in its sequence order like OnIndexed,
	// but once their appenders are answered: for fan-out that an
	// appender's answer should not wait for. It must not block and must
	// not modify the records.
	OnDurable func(repo string, recs []Record)
	// Logger receives warnings about recovery and failed writes; nil means
	// slog.Default().
	Logger *slog.Logger
	// Now is the clock for idle accounting; nil means time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.FS == nil {
		c.FS = OSFS()
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 5 * time.Minute
	}
	if c.MaxOpen == 0 {
		c.MaxOpen = DefaultMaxOpen
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = 4 << 20
	}
	if c.CheckpointEvery == 0 {
		c.CheckpointEvery = 1 << 16
	}
	if c.SeqBlock == 0 {
		c.SeqBlock = 1 << 16
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// DefaultMaxOpen is the default open-files budget (Config.MaxOpen): far
// below the usual descriptor limit of 1024, with room left for the
// connections of the HTTP face.
const DefaultMaxOpen = 512

// Store is the set of repositories in one data directory. Repositories are
// opened on first use and closed when idle. Its methods are safe for
// concurrent use.
type Store struct {
	cfg    Config
	seq    *sequencer
	lock   io.Closer
	logger *slog.Logger

	mu    sync.Mutex
	repos map[string]*Repo
	busy  map[string]chan struct{} // a repository being opened or closed
	// opening counts the repositories being opened: with repos, what the
	// open-files budget is held to.
	opening int
	// openIdle is closed when the last open in flight ends (nil while
	// none is): the damage scan waits on it (yieldToOpens).
	openIdle   chan struct{}
	overBudget bool                // every open repository was in use when one more had to open
	damaged    map[string]struct{} // repositories whose log failed to open as corrupt
	closed     bool
	opens      sync.WaitGroup

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Open opens the data directory: takes its lock (a second Store on the
// same directory fails with core.ErrConflict), reads or creates the node file,
// and starts the idle closer.
func Open(cfg Config) (*Store, error) {
	cfg.setDefaults()
	if cfg.Dir == "" {
		return nil, fmt.Errorf("%w: storage: no data directory", core.ErrInvalid)
	}
	if err := cfg.FS.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("open data directory: %w", err)
	}
	lock, err := cfg.FS.Lock(filepath.Join(cfg.Dir, "LOCK"))
	if err != nil {
		return nil, fmt.Errorf("open data directory %s: %w", cfg.Dir, err)
	}
	seq, err := openSequencer(cfg.FS, cfg.Dir, cfg.SeqBlock, cfg.NoSync)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("open data directory %s: %w", cfg.Dir, err)
	}
	s := &Store{
		cfg: cfg, seq: seq, lock: lock, logger: cfg.Logger,
		repos: map[string]*Repo{}, busy: map[string]chan struct{}{}, damaged: map[string]struct{}{},
	}
	s.removeTemps()
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	if cfg.IdleTimeout > 0 {
		s.wg.Add(1)
		go s.closeIdleLoop(ctx)
	}
	return s, nil
}

// removeTemps removes the temporary files of creations or rewrites that a
// crash interrupted: they were never renamed into place, so no data is in
// them alone.
func (s *Store) removeTemps() {
	names, err := s.cfg.FS.ReadDir(s.cfg.Dir)
	if err != nil {
		return
	}
	for _, n := range names {
		if strings.HasSuffix(n, ".tmp") {
			if err := s.cfg.FS.Remove(filepath.Join(s.cfg.Dir, n)); err == nil {
				s.logger.Info("removed an interrupted temporary file", logKeyFile, n)
			}
		}
	}
}

// Close closes every repository (appends already handed to a writer
// finish first) and releases the directory. Repositories still held by
// callers return core.ErrClosed from then on.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	repos := s.repos
	s.repos = map[string]*Repo{}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	s.opens.Wait()
	var errs []error
	for _, r := range repos {
		errs = append(errs, r.close())
	}
	errs = append(errs, s.lock.Close())
	return errors.Join(errs...)
}

// NodeID returns the node id of the data directory.
func (s *Store) NodeID() NodeID { return s.seq.Node() }

// LastSeq returns the largest sequence number handed out so far.
func (s *Store) LastSeq() uint64 { return s.seq.Last() }

// openMode says what acquire does when the log file does or does not exist.
type openMode int

const (
	modeOpen   openMode = iota // must exist: core.ErrNotFound otherwise
	modeCreate                 // must not exist: core.ErrConflict otherwise
	modeEnsure                 // open, creating it if needed
)

// Repo returns the named repository, opening it if needed (core.ErrNotFound
// if it was never created). Call release when done with it: a repository
// is only closed for idleness once every holder has released it. release
// is idempotent.
func (s *Store) Repo(name string) (r *Repo, release func(), err error) {
	return s.acquire(name, modeOpen)
}

// Create creates the named repository and returns it like Repo
// (core.ErrConflict if it exists, core.ErrInvalid for a bad name).
func (s *Store) Create(name string) (r *Repo, release func(), err error) {
	return s.acquire(name, modeCreate)
}

// Ensure returns the named repository like Repo, creating it if needed.
func (s *Store) Ensure(name string) (r *Repo, release func(), err error) {
	return s.acquire(name, modeEnsure)
}

func (s *Store) path(name string) string { return filepath.Join(s.cfg.Dir, name+".log") }

func (s *Store) acquire(name string, mode openMode) (*Repo, func(), error) {
	if err := core.ValidateRepoName(name); err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	for {
		if s.closed {
			s.mu.Unlock()
			return nil, nil, fmt.Errorf("repo %q: %w", name, core.ErrClosed)
		}
		if r := s.repos[name]; r != nil {
			if mode == modeCreate {
				s.mu.Unlock()
				return nil, nil, fmt.Errorf("%w: repository %q exists", core.ErrConflict, name)
			}
			r.refs++
			s.mu.Unlock()
			return r, s.releaser(r), nil
		}
		if _, bad := s.damaged[name]; bad {
			s.mu.Unlock()
			return nil, nil, damagedError(name)
		}
		ch := s.busy[name]
		if ch == nil {
			break
		}
		s.mu.Unlock()
		<-ch
		s.mu.Lock()
	}
	ch := make(chan struct{})
	s.busy[name] = ch
	s.opens.Add(1)
	evicted := s.makeRoomLocked()
	if s.opening++; s.opening == 1 {
		s.openIdle = make(chan struct{})
	}
	s.mu.Unlock()

	s.closeEvicted(evicted)
	r, err := s.open(name, mode)

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opening--; s.opening == 0 {
		close(s.openIdle)
		s.openIdle = nil
	}
	delete(s.busy, name)
	close(ch)
	s.opens.Done()
	if errors.Is(err, core.ErrCorrupt) {
		// The file's name and the byte positions are for the operator's
		// log; the caller is told which repository and what to do.
		s.damaged[name] = struct{}{}
		s.logger.Error("repository damaged: run goat-gateway fsck --repair", logKeyRepo, name, logKeyErr, err)
		return nil, nil, damagedError(name)
	}
	if err != nil {
		return nil, nil, err
	}
	delete(s.damaged, name)
	if s.closed {
		r.close()
		return nil, nil, fmt.Errorf("repo %q: %w", name, core.ErrClosed)
	}
	s.repos[name] = r
	r.refs++
	return r, s.releaser(r), nil
}

// makeRoomLocked keeps the open-files budget before one more repository
// opens: it takes the least recently released idle repositories out of
// the open set (marking them busy, so that reopening one waits for its
// close) and returns them for closeEvicted. s.mu is held.
//
// When every open repository is in use, the budget is exceeded rather than
// waited for or failed: a holder may hold one repository while it opens
// another (a write and the system repositories, a heal), so waiting could
// deadlock, and failing would answer a request with an error the caller
// did nothing to cause. Repositories in use are bounded by the requests in
// flight, which the HTTP face bounds; the excess closes as soon as they are
// released and another open needs room.
func (s *Store) makeRoomLocked() []*Repo {
	if s.cfg.MaxOpen < 0 {
		return nil
	}
	var out []*Repo
	for len(s.repos)+s.opening >= s.cfg.MaxOpen {
		var lru *Repo
		for _, r := range s.repos {
			if r.refs == 0 && (lru == nil || r.idleSince.Before(lru.idleSince)) {
				lru = r
			}
		}
		if lru == nil {
			if !s.overBudget {
				s.logger.Warn("open-files budget exceeded: every open repository is in use", logKeyOpen, len(s.repos)+s.opening, logKeyBudget, s.cfg.MaxOpen)
			}
			s.overBudget = true
			return out
		}
		delete(s.repos, lru.name)
		s.busy[lru.name] = make(chan struct{})
		out = append(out, lru)
	}
	s.overBudget = false
	return out
}

// closeEvicted closes what makeRoomLocked took out of the open set and
// lets whoever waits to reopen one of them go on.
func (s *Store) closeEvicted(rs []*Repo) {
	for _, r := range rs {
		if err := r.close(); err != nil {
			s.logger.Warn("close repository for the open-files budget", logKeyRepo, r.name, logKeyErr, err)
		}
		s.mu.Lock()
		close(s.busy[r.name])
		delete(s.busy, r.name)
		s.mu.Unlock()
	}
}

func (s *Store) open(name string, mode openMode) (*Repo, error) {
	path := s.path(name)
	if mode != modeOpen {
		err := createLog(s.cfg.FS, path, s.cfg.NoSync)
		switch {
		case err == nil:
			s.logger.Info("created repository", logKeyRepo, name)
		case mode == modeEnsure && errors.Is(err, core.ErrConflict):
		default:
			return nil, fmt.Errorf("create repo %q: %w", name, err)
		}
	}
	start := time.Now()
	r, err := openRepo(name, path, &s.cfg, s.seq, s.logger)
	if err != nil {
		return nil, err
	}
	if d := time.Since(start); d > time.Second {
		s.logger.Info("opened a large repository", logKeyRepo, name, logKeyRecords, r.Count(), logKeyElapsed, d)
	}
	return r, nil
}

func (s *Store) releaser(r *Repo) func() {
	return sync.OnceFunc(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if r.refs--; r.refs == 0 {
			r.idleSince = s.cfg.Now()
		}
	})
}

// List returns the names of all repositories in the data directory, sorted.
func (s *Store) List() ([]string, error) {
	return listRepos(s.cfg.FS, s.cfg.Dir)
}

func listRepos(fsys FS, dir string) ([]string, error) {
	names, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range names {
		repo, ok := strings.CutSuffix(n, ".log")
		if ok && core.ValidateRepoName(repo) == nil {
			out = append(out, repo)
		}
	}
	return out, nil
}

func (s *Store) closeIdleLoop(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(max(s.cfg.IdleTimeout/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.closeIdle()
		}
	}
}

// closeIdle closes the repositories released longer than IdleTimeout ago
// and returns how many it closed.
func (s *Store) closeIdle() int {
	now := s.cfg.Now()
	s.mu.Lock()
	var idle []*Repo
	var chans []chan struct{}
	for name, r := range s.repos {
		if r.refs == 0 && now.Sub(r.idleSince) >= s.cfg.IdleTimeout {
			delete(s.repos, name)
			ch := make(chan struct{})
			s.busy[name] = ch // reopening waits until the file is closed
			idle = append(idle, r)
			chans = append(chans, ch)
		}
	}
	s.mu.Unlock()
	for i, r := range idle {
		if err := r.close(); err != nil {
			s.logger.Warn("close idle repository", logKeyRepo, r.name, logKeyErr, err)
		}
		s.mu.Lock()
		delete(s.busy, r.name)
		close(chans[i])
		s.mu.Unlock()
	}
	return len(idle)
}

// ScanForDamage reads every repository's log, framing and checksums only
// (no record is decoded or indexed), and marks damaged the ones whose
// verdict would refuse an open: a checksum failure before acknowledged
// data, or a malformed header. So Damaged names a damaged repository at
// start, before a request asks for it. A log is read as it was when its
// scan began: a write in progress at its end is at worst a torn tail, which
// opening cuts and which is not damage. A repository marked damaged is not
// opened until the node restarts (after goat-gateway fsck --repair); one
// already open keeps serving what it indexed. It returns how many logs it
// read, and stops when ctx is done.
//
// The scan gives way to opens: before each read it waits while a
// repository is being opened, at most scanYieldMax per read, so that the
// first request for a big repository at start does not share the disk,
// the page cache and the cores with it, and a stream of opens slows the
// scan without stopping it.
func (s *Store) ScanForDamage(ctx context.Context) (int, error) {
	names, err := s.List()
	if err != nil {
		return 0, err
	}
	scanned := 0
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return scanned, err
		}
		f, err := s.cfg.FS.OpenFile(s.path(name), os.O_RDONLY, 0)
		if err != nil {
			continue // deleted since List
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			continue
		}
		res, err := scanLog(scanReader{ctx, f, s}, st.Size(), nil)
		f.Close()
		scanned++
		if errors.Is(err, core.ErrCorrupt) || (err == nil && res.state == tailCorrupt) {
			problem := res.describe()
			if err != nil {
				problem = err.Error()
			}
			s.mu.Lock()
			s.damaged[name] = struct{}{}
			s.mu.Unlock()
			s.logger.Error("repository damaged: run goat-gateway fsck --repair", logKeyRepo, name, logKeyErr, problem)
		}
	}
	return scanned, nil
}

// scanReader is the damage scan's reader: it stops a long read when ctx
// is done, and gives way to opens before each read.
type scanReader struct {
	ctx context.Context
	r   io.ReaderAt
	s   *Store
}

func (c scanReader) ReadAt(p []byte, off int64) (int, error) {
	if err := c.s.yieldToOpens(c.ctx); err != nil {
		return 0, err
	}
	return c.r.ReadAt(p, off)
}

// scanYieldMax bounds how long the damage scan waits for opens in flight
// before each of its reads (a window of windowSize bytes). It is longer
// than a cold open of a million-commit repository from its checkpoint, so
// that such an open has the machine to itself, and short enough that
// opens one after another leave the scan at least a few MB/s.
const scanYieldMax = time.Second

// yieldToOpens waits until no repository is being opened, or scanYieldMax
// has passed, or ctx is done (its error).
func (s *Store) yieldToOpens(ctx context.Context) error {
	s.mu.Lock()
	idle := s.openIdle
	s.mu.Unlock()
	if idle == nil {
		return ctx.Err()
	}
	t := time.NewTimer(scanYieldMax)
	defer t.Stop()
	select {
	case <-idle:
	case <-t.C:
	case <-ctx.Done():
	}
	return ctx.Err()
}

// damagedError is the error of a request for damaged repository name: it
// names the repository and the repair, never the file.
func damagedError(name string) error {
	return fmt.Errorf("%w: repository %q is damaged (a record before acknowledged data fails its checksum) and cannot be served until an operator repairs it with goat-gateway fsck --repair", core.ErrCorrupt, name)
}

// Damaged returns the repositories, sorted, whose logs failed to open as
// corrupt, or that ScanForDamage found damaged, since the Store was
// opened.
func (s *Store) Damaged() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.damaged))
	for name := range s.damaged {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// OpenCount returns how many repositories are open (for metrics).
func (s *Store) OpenCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.repos)
}
