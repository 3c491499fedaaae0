package storage

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
)

func TestStore_RepoLifecycle(t *testing.T) {
	s := openStore(t, NewMemFS(), nil)
	if _, _, err := s.Repo("absent"); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("Repo(absent) err=%v, want ErrNotFound", err)
	}
	for _, bad := range []string{"", "A", "a/b", "a..b", ".a", "-a", string(make([]byte, 200))} {
		if _, _, err := s.Ensure(bad); !errors.Is(err, core.ErrInvalid) {
			t.Errorf("Ensure(%q) err=%v, want ErrInvalid", bad, err)
		}
	}
	r, release, err := s.Create("b.notes")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	release()
	release() // idempotent
	if _, _, err := s.Create("b.notes"); !errors.Is(err, core.ErrConflict) {
		t.Fatalf("Create twice err=%v, want ErrConflict", err)
	}
	r2, release2, err := s.Repo("b.notes")
	if err != nil || r2 != r {
		t.Fatalf("Repo after Create: %v, same=%v", err, r2 == r)
	}
	release2()
	repo(t, s, "a")
	repo(t, s, "c_1-x")
	names, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b.notes", "c_1-x"}; !slices.Equal(names, want) {
		t.Fatalf("List=%v, want %v", names, want)
	}
}

func TestStore_CreateIsDurable(t *testing.T) {
	fsys := NewMemFS()
	s := openStore(t, fsys, nil)
	repo(t, s, "r")
	// A crash right after Create returned: the repository exists.
	img := fsys.Crash(rand.New(rand.NewPCG(1, 1)), CrashDropUnsynced)
	if _, _, err := reopen(t, img); err != nil {
		t.Fatalf("repository lost by a crash after Create: %v", err)
	}
}

func TestStore_Lock(t *testing.T) {
	fsys := NewMemFS()
	openStore(t, fsys, nil)
	if _, err := Open(Config{Dir: "/data", FS: fsys, Logger: quietLogger()}); !errors.Is(err, core.ErrConflict) {
		t.Fatalf("second Open err=%v, want ErrConflict", err)
	}
	if _, err := FsckFS(fsys, "/data", false); !errors.Is(err, core.ErrConflict) {
		t.Fatalf("Fsck on an open directory err=%v, want ErrConflict", err)
	}
}

func TestStore_IdleClose(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	fsys := NewMemFS()
	// The background loop runs too (on the fake clock); the test calls
	// closeIdle itself and asserts on what is open, whoever closed it.
	s := openStore(t, fsys, func(c *Config) { c.IdleTimeout = time.Minute; c.Now = clock })

	r, release, err := s.Ensure("r")
	if err != nil {
		t.Fatal(err)
	}
	c := mkCommit(t, "r", "a", 1, map[string]any{})
	mustAppend(t, r, c)
	held, releaseHeld, _ := s.Ensure("held")
	release()

	advance(30 * time.Second)
	s.closeIdle()
	if got, want := s.OpenCount(), 2; got != want {
		t.Fatalf("%d open before the timeout, want %d", got, want)
	}
	advance(time.Minute)
	s.closeIdle()
	if got, want := s.OpenCount(), 1; got != want {
		t.Fatalf("%d open after the timeout, want %d (the held one)", got, want)
	}
	if _, err := r.Append(context.Background(), []*core.Commit{mkCommit(t, "r", "b", 1, map[string]any{})}); !errors.Is(err, core.ErrClosed) {
		t.Fatalf("Append on a closed idle repository: %v", err)
	}
	if _, err := held.ReadLog(0, 1); err != nil {
		t.Fatalf("a held repository was closed: %v", err)
	}
	releaseHeld()
	r2, release2, err := s.Repo("r")
	if err != nil {
		t.Fatal(err)
	}
	defer release2()
	if r2 == r || !r2.Has(c.ID) {
		t.Fatalf("reopened repository: new=%v has=%v", r2 != r, r2.Has(c.ID))
	}
}

func TestStore_OpenBudget(t *testing.T) {
	t.Run("SequentialNeverExceeds", func(t *testing.T) {
		const budget = 8
		s := openStore(t, NewMemFS(), func(c *Config) { c.MaxOpen = budget })
		first := mkCommit(t, "r0", "a", 1, map[string]any{"v": 1})
		for i := range 2000 {
			name := fmt.Sprintf("r%d", i)
			r, release, err := s.Ensure(name)
			if err != nil {
				t.Fatalf("Ensure(%q): %v", name, err)
			}
			if i == 0 {
				mustAppend(t, r, first)
			}
			release()
			if got := s.OpenCount(); got > budget {
				t.Fatalf("after opening %d repositories: %d open, budget %d", i+1, got, budget)
			}
		}
		// The first one was closed for the budget long ago; it reopens whole.
		r, release, err := s.Repo("r0")
		if err != nil {
			t.Fatal(err)
		}
		defer release()
		if !r.Has(first.ID) {
			t.Fatalf("r0 lost its commit across a budget close")
		}
	})
	t.Run("InUseIsNeverClosed", func(t *testing.T) {
		const budget = 3
		s := openStore(t, NewMemFS(), func(c *Config) { c.MaxOpen = budget })
		var held []*Repo
		var releases []func()
		for i := range budget + 2 {
			r, release, err := s.Ensure(fmt.Sprintf("held%d", i))
			if err != nil {
				t.Fatalf("open past the budget with every repository in use: %v", err)
			}
			held, releases = append(held, r), append(releases, release)
		}
		if got, want := s.OpenCount(), budget+2; got != want {
			t.Fatalf("%d open, want %d (the budget is exceeded, not enforced on repositories in use)", got, want)
		}
		for i, r := range held {
			mustAppend(t, r, mkCommit(t, r.Name(), "a", 1, map[string]any{"i": i}))
		}
		for _, release := range releases {
			release()
		}
		_, release, err := s.Ensure("next")
		if err != nil {
			t.Fatal(err)
		}
		defer release()
		if got := s.OpenCount(); got > budget {
			t.Fatalf("%d open once the others were released, budget %d", got, budget)
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		const budget = 4
		s := openStore(t, NewMemFS(), func(c *Config) { c.MaxOpen = budget })
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 50 {
					name := fmt.Sprintf("c%d", (g*7+i)%12)
					r, release, err := s.Ensure(name)
					if err != nil {
						t.Errorf("Ensure(%q): %v", name, err)
						return
					}
					c := mkCommit(t, name, fmt.Sprintf("k%d-%d", g, i), 1, map[string]any{})
					if _, err := r.Append(context.Background(), []*core.Commit{c}); err != nil {
						t.Errorf("Append to %q: %v", name, err)
					}
					release()
				}
			}()
		}
		wg.Wait()
		total := 0
		for i := range 12 {
			r, release, err := s.Repo(fmt.Sprintf("c%d", i))
			if err != nil {
				t.Fatal(err)
			}
			total += r.Count()
			release()
		}
		if got, want := total, 8*50; got != want {
			t.Fatalf("%d commits stored, want %d", got, want)
		}
		if got := s.OpenCount(); got > budget {
			t.Fatalf("%d open after the run, budget %d", got, budget)
		}
	})
}

func TestStore_ConcurrentOpen(t *testing.T) {
	s := openStore(t, NewMemFS(), nil)
	var wg sync.WaitGroup
	got := make([]*Repo, 16)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, release, err := s.Ensure("r")
			if err != nil {
				t.Error(err)
				return
			}
			defer release()
			got[i] = r
		}()
	}
	wg.Wait()
	for _, r := range got {
		if r != got[0] {
			t.Fatalf("concurrent opens returned different repositories")
		}
	}
}

// Sequence numbers increase across repositories, restarts and crashes,
// whatever the lease block size.
func TestStore_SequenceAcrossRestarts(t *testing.T) {
	fsys := NewMemFS()
	rng := rand.New(rand.NewPCG(3, 3))
	var last uint64
	var node NodeID
	for round := range 6 {
		s := openStore(t, fsys, func(c *Config) { c.SeqBlock = 3 })
		if round == 0 {
			node = s.NodeID()
		} else if s.NodeID() != node {
			t.Fatalf("round %d: node id changed", round)
		}
		for i := range 10 {
			name := []string{"a", "b"}[i%2]
			r, release, err := s.Ensure(name)
			if err != nil {
				t.Fatal(err)
			}
			res := mustAppend(t, r, mkCommit(t, name, fmt.Sprintf("k%d-%d", round, i), 1, map[string]any{}))
			release()
			if res[0].Seq <= last {
				t.Fatalf("round %d: seq %d after %d", round, res[0].Seq, last)
			}
			last = res[0].Seq
		}
		if round%2 == 0 {
			s.Close()
			continue
		}
		fsys = fsys.Crash(rng, CrashRandom) // every append was acknowledged: all survive
	}
	wiped := openStore(t, NewMemFS(), nil)
	if wiped.NodeID() == node {
		t.Fatalf("a new data directory got the old node id")
	}
}

// OnAppend sees every record once, in strictly increasing sequence order
// across repositories, although they reach the disk in any order.
func TestStore_OnAppendOrder(t *testing.T) {
	const repos, per = 4, 50
	var mu sync.Mutex
	var seqs []uint64
	delivered := make(chan struct{}) // closed when every record was seen
	s := openStore(t, NewMemFS(), func(c *Config) {
		c.OnAppend = func(_ string, recs []Record) {
			mu.Lock()
			defer mu.Unlock()
			for _, r := range recs {
				seqs = append(seqs, r.Seq)
			}
			if len(seqs) == repos*per {
				close(delivered)
			}
		}
	})
	var wg sync.WaitGroup
	for i := range repos {
		name := fmt.Sprintf("r%d", i)
		r := repo(t, s, name)
		for j := range per {
			wg.Add(1)
			go func() {
				defer wg.Done()
				mustAppend(t, r, mkCommit(t, name, fmt.Sprintf("k%d", j), 1, map[string]any{}))
			}()
		}
	}
	wg.Wait()
	<-delivered
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			t.Fatalf("delivery %d: seq %d after %d", i, seqs[i], seqs[i-1])
		}
	}
}

// TestSequencer_AfterTheAnswer: a ticket's after runs in ticket order, after
// its deliver, and not before the ticket is answered; a ticket without an
// after needs no answer. Tickets are completed and answered out of order.
func TestSequencer_AfterTheAnswer(t *testing.T) {
	s, ts := openTickets(t, NewMemFS(), 4, 1)
	var got []string
	complete := func(i int, withAfter bool) {
		tk := ts[i]
		var after func()
		if withAfter {
			after = func() { got = append(got, fmt.Sprintf("after %d", i)) }
		}
		s.complete(tk, func() { got = append(got, fmt.Sprintf("deliver %d", i)) }, after)
	}
	step := func(what string, do func(), want ...string) {
		t.Helper()
		got = got[:0]
		do()
		if !slices.Equal(got, want) {
			t.Fatalf("%s: ran %q, want %q", what, got, want)
		}
	}
	step("complete 1", func() { complete(1, true) })
	step("complete 0", func() { complete(0, true) }, "deliver 0", "deliver 1")
	step("answer 1", func() { s.answer(ts[1]) })
	step("complete 2, no after", func() { complete(2, false) }, "deliver 2")
	step("answer 0", func() { s.answer(ts[0]) }, "after 0", "after 1")
	step("complete 3", func() { complete(3, true) }, "deliver 3")
	step("answer 3", func() { s.answer(ts[3]) }, "after 3")
}

// openTickets opens a sequencer in /d of fsys (leases of 10) and reserves
// n tickets of size numbers each.
func openTickets(t *testing.T, fsys *MemFS, n, size int) (*sequencer, []*ticket) {
	t.Helper()
	fsys.MkdirAll("/d", 0o755)
	s, err := openSequencer(fsys, "/d", 10, false)
	if err != nil {
		t.Fatal(err)
	}
	var ts []*ticket
	for range n {
		tk, err := s.reserve(size)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, tk)
	}
	return s, ts
}

func TestSequencer_DeliveryOrder(t *testing.T) {
	fsys := NewMemFS()
	s, ts := openTickets(t, fsys, 5, 2)
	var order []uint64
	// Complete in the order 3, 1, 0, 4, 2: nothing runs before 0.
	for _, i := range []int{3, 1, 0, 4, 2} {
		tk := ts[i]
		s.complete(tk, func() { order = append(order, tk.first) }, nil)
		if i == 3 || i == 1 {
			if len(order) != 0 {
				t.Fatalf("delivered %v before the first ticket completed", order)
			}
		}
	}
	if want := []uint64{1, 3, 5, 7, 9}; !slices.Equal(order, want) {
		t.Fatalf("order=%v, want %v", order, want)
	}
	// The lease was persisted: a new sequencer starts past it.
	s2, err := openSequencer(fsys, "/d", 10, false)
	if err != nil {
		t.Fatal(err)
	}
	tk, _ := s2.reserve(1)
	if tk.first <= 10 {
		t.Fatalf("after restart first=%d, want > 10", tk.first)
	}
	s2.observe(1000)
	if tk, _ := s2.reserve(1); tk.first <= 1000 {
		t.Fatalf("after observe(1000) first=%d", tk.first)
	}
}

func TestSequencer_CorruptNodeFile(t *testing.T) {
	fsys := NewMemFS()
	fsys.MkdirAll("/d", 0o755)
	fsys.WriteFile("/d/NODE", []byte("GOATNODE garbage garbage garbage garbage"))
	if _, err := openSequencer(fsys, "/d", 10, false); !errors.Is(err, core.ErrCorrupt) {
		t.Fatalf("err=%v, want ErrCorrupt", err)
	}
}

func TestMemFS_Crash(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for _, mode := range []CrashMode{CrashDropUnsynced, CrashKeepPrefix, CrashZeroTail, CrashReorderPages} {
		t.Run(mode.String(), func(t *testing.T) {
			for range 20 {
				fsys := NewMemFS()
				fsys.MkdirAll("/d", 0o755)
				f, _ := fsys.OpenFile("/d/f", 0x42 /* O_RDWR|O_CREATE */, 0o644)
				synced := make([]byte, 1000+rng.IntN(5000))
				for i := range synced {
					synced[i] = byte(1 + rng.IntN(255))
				}
				f.WriteAt(synced, 0)
				f.Sync()
				fsys.SyncDir("/d")
				extra := make([]byte, rng.IntN(10000))
				for i := range extra {
					extra[i] = byte(1 + rng.IntN(255))
				}
				f.WriteAt(extra, int64(len(synced)))
				fsys.OpenFile("/d/unsynced-entry", 0x42, 0o644)

				img := fsys.Crash(rng, mode)
				got, err := img.ReadFile("/d/f")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := img.ReadFile("/d/unsynced-entry"); err == nil {
					t.Fatalf("a directory entry that was never synced survived")
				}
				if len(got) < len(synced) || !slices.Equal(got[:len(synced)], synced) {
					t.Fatalf("synced bytes lost")
				}
				tail := got[len(synced):]
				for i, b := range tail {
					if b != 0 && b != extra[i] {
						t.Fatalf("byte %d of the tail is neither written nor zero", i)
					}
				}
				switch mode {
				case CrashDropUnsynced:
					if len(tail) != 0 {
						t.Fatalf("unsynced bytes kept")
					}
				case CrashKeepPrefix:
					if !slices.Equal(tail, extra[:len(tail)]) {
						t.Fatalf("not a prefix")
					}
				case CrashZeroTail, CrashReorderPages:
					if len(tail) != len(extra) {
						t.Fatalf("size %d, want %d", len(tail), len(extra))
					}
				}
			}
		})
	}
}

func TestStore_Damaged(t *testing.T) {
	_, img, _ := writeLog(t, 1, 1, 1)
	spans := recordSpans(t, img)
	img[spans[1][0]+20] ^= 4
	s := openStore(t, fsWithLog(t, img), nil)
	if got := s.Damaged(); len(got) != 0 {
		t.Fatalf("Damaged()=%v before any open, want none", got)
	}
	_, _, err := s.Repo("r")
	if !errors.Is(err, core.ErrCorrupt) {
		t.Fatalf("Repo of a damaged log: %v, want ErrCorrupt", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, `"r"`) || !strings.Contains(msg, "fsck --repair") || strings.Contains(msg, ".log") {
		t.Fatalf("error %q should name the repository and the repair, and no file", msg)
	}
	if got, want := s.Damaged(), []string{"r"}; !slices.Equal(got, want) {
		t.Fatalf("Damaged()=%v, want %v", got, want)
	}
}

// ScanForDamage names a damaged log at start, before any request opens
// it; a clean log and a torn tail (which opening cuts) are not damage; and
// a repository found damaged is refused without being opened.
func TestStore_ScanForDamage(t *testing.T) {
	_, img, _ := writeLog(t, 1, 1, 1)
	spans := recordSpans(t, img)
	fsys := fsWithLog(t, img)
	damaged := slices.Clone(img)
	damaged[spans[1][0]+20] ^= 4
	torn := append(slices.Clone(img), 1, 2, 3)
	for name, b := range map[string][]byte{"bad": damaged, "torn": torn} {
		if err := fsys.WriteFile("/data/"+name+".log", b); err != nil {
			t.Fatal(err)
		}
	}
	s := openStore(t, fsys, nil)
	if got := s.Damaged(); len(got) != 0 {
		t.Fatalf("Damaged()=%v before the scan, want none", got)
	}
	n, err := s.ScanForDamage(context.Background())
	if err != nil || n != 3 {
		t.Fatalf("ScanForDamage: %d logs, %v; want 3, nil", n, err)
	}
	if got, want := s.Damaged(), []string{"bad"}; !slices.Equal(got, want) {
		t.Fatalf("Damaged()=%v after the scan, want %v", got, want)
	}
	t.Run("DamagedIsRefused", func(t *testing.T) {
		_, _, err := s.Repo("bad")
		if !errors.Is(err, core.ErrCorrupt) || !strings.Contains(err.Error(), `"bad"`) {
			t.Fatalf("Repo of a repository the scan found damaged: %v, want ErrCorrupt naming it", err)
		}
	})
	t.Run("OthersAreServed", func(t *testing.T) {
		for _, name := range []string{"r", "torn"} {
			_, release, err := s.Repo(name)
			if err != nil {
				t.Fatalf("Repo(%s): %v", name, err)
			}
			release()
		}
	})
	t.Run("StopsWhenCancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if n, err := s.ScanForDamage(ctx); !errors.Is(err, context.Canceled) || n != 0 {
			t.Fatalf("ScanForDamage with a cancelled context: %d, %v", n, err)
		}
	})
	// The scan gives way to an open in flight (the first request for a
	// big repository at start), then completes and still names the
	// damage. In a synctest bubble: "the scan waits" is the moment every
	// goroutine is blocked, and the bubble's clock shows what it waited
	// for.
	t.Run("YieldsToAnOpen", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s, gate := scanWithOpenInFlight(t, img, damaged)
			start := time.Now()
			scanned := make(chan error, 1)
			go func() { _, err := s.ScanForDamage(context.Background()); scanned <- err }()
			synctest.Wait()
			select {
			case err := <-scanned:
				t.Fatalf("the scan finished (%v) while an open was in flight", err)
			default:
			}
			if got := s.Damaged(); len(got) != 0 {
				t.Fatalf("Damaged()=%v while the scan waits, want none yet", got)
			}
			gate.release()
			if err := <-scanned; err != nil {
				t.Fatalf("ScanForDamage: %v", err)
			}
			if d := time.Since(start); d != 0 {
				t.Fatalf("the scan resumed after %v, want at once when the open ended", d)
			}
			if got, want := s.Damaged(), []string{"bad"}; !slices.Equal(got, want) {
				t.Fatalf("Damaged()=%v after the deferred scan, want %v", got, want)
			}
		})
	})
	// An open that never ends delays each of the scan's reads by
	// scanYieldMax at most: the scan completes and names the damage.
	t.Run("WaitsBoundedly", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s, gate := scanWithOpenInFlight(t, img, damaged)
			defer gate.release()
			start := time.Now()
			if n, err := s.ScanForDamage(context.Background()); err != nil || n != 2 {
				t.Fatalf("ScanForDamage: %d logs, %v; want 2, nil", n, err)
			}
			if d := time.Since(start); d < scanYieldMax {
				t.Fatalf("the scan took %v with an open in flight, want at least %v (it waits)", d, scanYieldMax)
			}
			if got, want := s.Damaged(), []string{"bad"}; !slices.Equal(got, want) {
				t.Fatalf("Damaged()=%v, want %v", got, want)
			}
		})
	})
}

// scanWithOpenInFlight returns a store holding log img as repository r and
// damaged as repository bad, with an open of r in flight (held in
// OpenFile until gate.release is called; at the latest at cleanup).
func scanWithOpenInFlight(t *testing.T, img, damaged []byte) (*Store, *openGate) {
	t.Helper()
	fsys := fsWithLog(t, img)
	if err := fsys.WriteFile("/data/bad.log", damaged); err != nil {
		t.Fatal(err)
	}
	gate := &openGate{FS: fsys, path: logPath("r"), entered: make(chan struct{}), open: make(chan struct{})}
	gate.release = sync.OnceFunc(func() { close(gate.open) })
	s := openStore(t, gate, nil)
	opened := make(chan error, 1)
	go func() {
		_, release, err := s.Repo("r")
		if err == nil {
			release()
		}
		opened <- err
	}()
	<-gate.entered
	t.Cleanup(func() {
		gate.release()
		if err := <-opened; err != nil {
			t.Errorf("Repo(r): %v", err)
		}
	})
	return s, gate
}

// openGate is an FS whose opening of one log for writing (what opening a
// repository does, and the damage scan does not) waits until the test
// opens the gate.
type openGate struct {
	FS
	path    string
	entered chan struct{} // closed when a held open started
	open    chan struct{} // closed by release
	release func()
	once    sync.Once
}

func (g *openGate) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	if name == g.path && flag&os.O_RDWR != 0 {
		g.once.Do(func() { close(g.entered) })
		<-g.open
	}
	return g.FS.OpenFile(name, flag, perm)
}

// syncGate is an FS whose File.Sync of one file waits until the test
// opens the gate: a slow fsync of one repository.
type syncGate struct {
	FS
	path    string
	armed   atomic.Bool   // Syncs of path pass until set
	entered chan struct{} // closed when a held Sync of path started
	open    chan struct{} // closed by the test to let it finish
	once    sync.Once
}

func (g *syncGate) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := g.FS.OpenFile(name, flag, perm)
	if err != nil || name != g.path {
		return f, err
	}
	return gatedFile{File: f, g: g}, nil
}

type gatedFile struct {
	File
	g *syncGate
}

func (f gatedFile) Sync() error {
	if f.g.armed.Load() {
		f.g.once.Do(func() { close(f.g.entered) })
		<-f.g.open
	}
	return f.File.Sync()
}

// TestStore_OnDurable: a repository's records reach OnIndexed and
// OnDurable as soon as they are durable, while an earlier write to another
// repository is still in its fsync; OnAppend and AfterAppend keep node
// sequence order and wait for it.
func TestStore_OnDurable(t *testing.T) {
	fsys := NewMemFS()
	type delivery struct {
		repo string
		seq  uint64
	}
	indexed := make(chan delivery, 16)
	durable := make(chan delivery, 16)
	appended := make(chan delivery, 16)
	after := make(chan delivery, 16)
	gate := &syncGate{FS: fsys, path: logPath("a"), entered: make(chan struct{}), open: make(chan struct{})}
	s := openStore(t, gate, func(c *Config) {
		c.OnIndexed = func(repo string, recs []Record) { indexed <- delivery{repo, recs[len(recs)-1].Seq} }
		c.OnDurable = func(repo string, recs []Record) { durable <- delivery{repo, recs[len(recs)-1].Seq} }
		c.OnAppend = func(repo string, recs []Record) { appended <- delivery{repo, recs[len(recs)-1].Seq} }
		c.AfterAppend = func(repo string, recs []Record) { after <- delivery{repo, recs[len(recs)-1].Seq} }
	})
	a, b := repo(t, s, "a"), repo(t, s, "b")
	slowA := make(chan []Result, 1)
	gate.armed.Store(true)
	go func() {
		res, _ := a.Append(context.Background(), []*core.Commit{mkCommit(t, "a", "k", 1, map[string]any{"x": 1.0})})
		slowA <- res
	}()
	<-gate.entered
	resB := mustAppend(t, b, mkCommit(t, "b", "k", 1, map[string]any{"y": 1.0}))
	if got := <-indexed; got.repo != "b" || got.seq != resB[0].Seq {
		t.Fatalf("OnIndexed got %+v first, want b's record %d while a's fsync is held", got, resB[0].Seq)
	}
	if got := <-durable; got.repo != "b" || got.seq != resB[0].Seq {
		t.Fatalf("OnDurable got %+v first, want b's record %d while a's fsync is held", got, resB[0].Seq)
	}
	select {
	case got := <-appended:
		t.Fatalf("OnAppend got %+v while a's earlier write is in its fsync", got)
	case got := <-after:
		t.Fatalf("AfterAppend got %+v while a's earlier write is in its fsync", got)
	default:
	}
	close(gate.open)
	resA := <-slowA
	if len(resA) != 1 || resA[0].Status != Appended || resA[0].Seq >= resB[0].Seq {
		t.Fatalf("a's append=%+v, want appended before b's seq %d", resA, resB[0].Seq)
	}
	if got := <-indexed; got.repo != "a" || got.seq != resA[0].Seq {
		t.Fatalf("OnIndexed got %+v, want a's record %d", got, resA[0].Seq)
	}
	if got := <-durable; got.repo != "a" || got.seq != resA[0].Seq {
		t.Fatalf("OnDurable got %+v, want a's record %d", got, resA[0].Seq)
	}
	for _, want := range []delivery{{"a", resA[0].Seq}, {"b", resB[0].Seq}} {
		if got := <-appended; got != want {
			t.Fatalf("OnAppend got %+v, want %+v (node sequence order)", got, want)
		}
	}
	for _, want := range []delivery{{"a", resA[0].Seq}, {"b", resB[0].Seq}} {
		if got := <-after; got != want {
			t.Fatalf("AfterAppend got %+v, want %+v (node sequence order)", got, want)
		}
	}
}

// TestStore_OnDurableAfterTheAnswer: an append is answered after OnIndexed
// and OnAppend and before OnDurable and AfterAppend. When the write leaves
// an item with two heads, the answer also waits for the merge the writer
// appends, and the write's own records reach OnDurable and AfterAppend
// before that merge is written (their subscribers do not wait for it), the
// merge's after the answer.
//
// OnDurable waits for the test to have its answer; were the answer to wait
// for OnDurable instead, every goroutine of the synctest bubble would be
// blocked, which synctest reports as a deadlock.
func TestStore_OnDurableAfterTheAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var got []string
		note := func(what string, recs []Record) {
			mu.Lock()
			got = append(got, fmt.Sprintf("%s %d", what, len(recs)))
			mu.Unlock()
		}
		answers := []chan struct{}{make(chan struct{}), make(chan struct{})}
		waits := 0 // writer goroutine only
		s := openStore(t, NewMemFS(), func(c *Config) {
			c.Merger = &maxMerger{tb: t}
			c.OnIndexed = func(_ string, recs []Record) { note("indexed", recs) }
			c.OnAppend = func(_ string, recs []Record) { note("appended", recs) }
			c.AfterAppend = func(_ string, recs []Record) { note("after", recs) }
			c.OnDurable = func(_ string, recs []Record) {
				if len(recs) == 1 { // the first append's, the merge's: after an answer
					<-answers[waits]
					waits++
				}
				note("durable", recs)
			}
		})
		r := repo(t, s, "r")
		root := mkCommit(t, "r", "a", 1, map[string]any{"v": 0.0})
		answer := func(cs ...*core.Commit) {
			t.Helper()
			mustAppend(t, r, cs...)
			mu.Lock()
			got = append(got, "answered")
			mu.Unlock()
		}
		answer(root)
		close(answers[0])
		answer(mkCommit(t, "r", "a", 2, map[string]any{"v": 1.0}, root.ID), mkCommit(t, "r", "a", 3, map[string]any{"v": 2.0}, root.ID))
		close(answers[1])
		synctest.Wait()
		want := []string{
			"indexed 1", "appended 1", "answered", "durable 1", "after 1",
			"indexed 2", "appended 2", "durable 2", "after 2", "indexed 1", "appended 1", "answered", "durable 1", "after 1",
		}
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(got, want) {
			t.Fatalf("deliveries and answers\n%q\nwant\n%q", got, want)
		}
	})
}
