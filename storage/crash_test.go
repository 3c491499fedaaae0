package storage

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
)

var (
	crashRuns = flag.Int("crash.n", 30, "runs of TestCrash_ConcurrentWorkloads")
	crashOps  = flag.Int("crash.appends", 24, "appends in each TestCrash_AtEveryOperation workload")
)

var crashRepos = []string{"a", "b"}

// crashState is what a crash test knows when the disk image is taken.
type crashState struct {
	acked     map[core.CommitID]string // acknowledged commit -> repo
	generated map[core.CommitID][]byte // every commit ever handed to Append -> canonical JSON
}

// verifyCrash opens a crashed image and checks the guarantees: it opens;
// every acknowledged commit is there; every record is whole and is one of
// the commits we appended, byte for byte, after its parents; and the
// recovered store takes appends whose sequence numbers exceed every
// recovered one.
func verifyCrash(tb testing.TB, img *MemFS, st crashState, label string) {
	tb.Helper()
	s, err := Open(Config{Dir: "/data", FS: img, Logger: quietLogger(), IdleTimeout: -1, SeqBlock: 2})
	if err != nil {
		tb.Fatalf("%s: open after crash: %v", label, err)
	}
	defer s.Close()
	var maxSeq uint64
	for _, name := range crashRepos {
		r, release, err := s.Repo(name)
		if err != nil {
			tb.Fatalf("%s: repo %s after crash: %v", label, name, err)
		}
		for id, repo := range st.acked {
			if repo == name && !r.Has(id) {
				tb.Fatalf("%s: acknowledged commit %s lost from %s", label, id, name)
			}
		}
		checkTopological(tb, r)
		recs, err := r.ReadLog(0, r.Count())
		if err != nil {
			tb.Fatalf("%s: %v", label, err)
		}
		for _, rec := range recs {
			want, ok := st.generated[rec.ID]
			if !ok || !bytes.Equal(rec.JSON, want) {
				tb.Fatalf("%s: record %d of %s is not a commit we wrote", label, rec.Offset, name)
			}
			maxSeq = max(maxSeq, rec.Seq)
		}
		release()
	}
	for _, name := range crashRepos {
		r, release, err := s.Repo(name)
		if err != nil {
			tb.Fatal(err)
		}
		res := mustAppend(tb, r, mkCommit(tb, name, "after-crash", 1, map[string]any{"label": label}))
		if res[0].Status == Appended && res[0].Seq <= maxSeq {
			tb.Fatalf("%s: seq %d after recovery, but %d was already used", label, res[0].Seq, maxSeq)
		}
		release()
	}
}

// TestCrash_ConcurrentWorkloads runs concurrent random appenders on two
// repositories, takes the disk image of a power loss at a random moment
// while writes are in flight, and verifies it.
func TestCrash_ConcurrentWorkloads(t *testing.T) {
	for run := range *crashRuns {
		rng := rand.New(rand.NewPCG(uint64(run), 7))
		mode := CrashMode(rng.IntN(int(CrashRandom) + 1))
		label := fmt.Sprintf("run %d (%v)", run, mode)
		fsys := NewMemFS()
		s := openStore(t, fsys, func(c *Config) { c.SeqBlock = uint64(1 + rng.IntN(8)) })
		repos := map[string]*Repo{}
		for _, n := range crashRepos {
			repos[n] = repo(t, s, n)
		}
		var mu sync.Mutex
		st := crashState{acked: map[core.CommitID]string{}, generated: map[core.CommitID][]byte{}}
		stop := make(chan struct{})
		target := 5 + rng.IntN(80)
		reached := make(chan struct{})
		var once sync.Once
		var wg sync.WaitGroup
		for g := range 4 {
			wrng := rand.New(rand.NewPCG(uint64(run), uint64(g)))
			works := map[string]*workload{}
			for _, n := range crashRepos {
				works[n] = newWorkload(wrng, n, 3)
				for i := range works[n].keys {
					works[n].keys[i] = fmt.Sprintf("g%d-%s", g, works[n].keys[i])
				}
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					name := crashRepos[wrng.IntN(len(crashRepos))]
					var batch []*core.Commit
					for range 1 + wrng.IntN(4) {
						c := works[name].next(t)
						js, _ := c.MarshalJSON()
						mu.Lock()
						st.generated[c.ID] = js
						mu.Unlock()
						batch = append(batch, c)
					}
					res, err := repos[name].Append(context.Background(), batch)
					if err != nil {
						if errors.Is(err, core.ErrClosed) {
							return
						}
						t.Errorf("%s: Append: %v", label, err)
						return
					}
					mu.Lock()
					for _, x := range res {
						if x.Status != Rejected {
							st.acked[x.ID] = name
						}
					}
					if len(st.acked) >= target {
						once.Do(func() { close(reached) })
					}
					mu.Unlock()
				}
			}()
		}
		exited := make(chan struct{})
		go func() { wg.Wait(); close(exited) }()
		// The writers announce reaching the target: the power loss hits
		// while appends are in flight, whatever the machine's speed.
		select {
		case <-reached:
		case <-exited:
			t.Fatalf("%s: the writers stopped before %d acknowledged appends", label, target)
		}
		mu.Lock()
		snap := crashState{acked: clone(st.acked), generated: st.generated}
		mu.Unlock()
		img := fsys.Crash(rng, mode) // writes are still in flight
		close(stop)
		wg.Wait()
		s.Close()
		mu.Lock()
		snap.generated = st.generated // unacknowledged commits may appear whole
		mu.Unlock()
		verifyCrash(t, img, snap, label)
	}
}

func clone[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// TestCrash_AtEveryOperation replays one deterministic workload and takes
// a crash image before every single filesystem operation it makes (every
// write, fsync, rename and directory sync, including the sequence leases),
// in each crash mode.
func TestCrash_AtEveryOperation(t *testing.T) {
	build := func(t *testing.T) []*core.Commit {
		w := newWorkload(rand.New(rand.NewPCG(5, 5)), "a", 2)
		var cs []*core.Commit
		for range *crashOps {
			cs = append(cs, w.next(t))
		}
		return cs
	}
	commits := build(t)
	generated := map[core.CommitID][]byte{}
	for _, c := range commits {
		generated[c.ID], _ = c.MarshalJSON()
	}
	for _, mode := range []CrashMode{CrashDropUnsynced, CrashKeepPrefix, CrashZeroTail, CrashReorderPages} {
		t.Run(mode.String(), func(t *testing.T) {
			for k := 0; ; k++ {
				rng := rand.New(rand.NewPCG(uint64(k), uint64(mode)))
				fsys := NewMemFS()
				var img *MemFS
				var atCrash map[core.CommitID]string
				acked := map[core.CommitID]string{}
				ops := 0
				fsys.SetFault(func(op, name string) error {
					if ops == k {
						img = fsys.crashLocked(rng, mode)
						atCrash = clone(acked) // the appender is blocked in Append: acked is stable
					}
					ops++
					return nil
				})
				s, err := Open(Config{Dir: "/data", FS: fsys, Logger: quietLogger(), IdleTimeout: -1, SeqBlock: 2})
				if err != nil {
					t.Fatal(err)
				}
				for _, n := range crashRepos {
					_, release, err := s.Ensure(n)
					if err != nil {
						t.Fatal(err)
					}
					release()
				}
				r, release, _ := s.Repo("a")
				// Alternate single appends and pairs, so that groups vary.
				for i := 0; i < len(commits); {
					batch := commits[i:min(i+1+i%2, len(commits))]
					i += len(batch)
					res, err := r.Append(context.Background(), batch)
					if err != nil {
						t.Fatal(err)
					}
					for _, x := range res {
						if x.Status == Rejected {
							t.Fatalf("commit %s rejected: %v", x.ID, x.Err)
						}
						acked[x.ID] = "a"
					}
				}
				release()
				s.Close()
				if img == nil {
					if k == 0 {
						t.Fatal("the workload made no filesystem operation")
					}
					t.Logf("%d crash points", k)
					return
				}
				if len(atCrash) == 0 {
					// Crashed before the repositories were durably created:
					// there is nothing to check beyond opening.
					if _, err := Open(Config{Dir: "/data", FS: img, Logger: quietLogger()}); err != nil {
						t.Fatalf("crash at op %d: open: %v", k, err)
					}
					continue
				}
				verifyCrash(t, img, crashState{acked: atCrash, generated: generated}, fmt.Sprintf("crash at op %d", k))
			}
		})
	}
}

// TestCrash_ReorderedLastWrite crashes between the write and the fsync of
// a large group commit, with its pages reaching the disk in random order,
// so that recovery meets whole records after a hole.
func TestCrash_ReorderedLastWrite(t *testing.T) {
	rewritten := 0
	for seed := range 40 {
		rng := rand.New(rand.NewPCG(uint64(seed), 11))
		w := newWorkload(rng, "a", 4)
		generated := map[core.CommitID][]byte{}
		next := func(n int) []*core.Commit {
			var cs []*core.Commit
			for range n {
				c := w.next(t)
				generated[c.ID], _ = c.MarshalJSON()
				cs = append(cs, c)
			}
			return cs
		}
		fsys := NewMemFS()
		s := openStore(t, fsys, nil)
		a := repo(t, s, "a")
		repo(t, s, "b")
		acked := map[core.CommitID]string{}
		for range 3 {
			for _, x := range mustAppend(t, a, next(1+rng.IntN(3))...) {
				acked[x.ID] = "a"
			}
		}
		var img *MemFS
		fsys.SetFault(func(op, name string) error {
			if op == "sync" && name == logPath("a") && img == nil {
				img = fsys.crashLocked(rng, CrashReorderPages)
			}
			return nil
		})
		mustAppend(t, a, next(30)...) // about 15 KiB in one write
		s.Close()
		verifyCrash(t, img, crashState{acked: acked, generated: generated}, fmt.Sprintf("seed %d", seed))
		names, _ := img.ReadDir("/data") // as recovery left it
		for _, n := range names {
			if strings.HasPrefix(n, "a.log.damaged-") {
				rewritten++
			}
		}
	}
	if rewritten == 0 {
		t.Fatalf("no run recovered a torn last write by rewriting it: the test does not reach that path")
	}
	t.Logf("%d of 40 runs rewrote a torn last write", rewritten)
}
