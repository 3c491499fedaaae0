package storage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
)

// benchChains returns n commits as `chains` linear histories (one item
// each), commit i of a chain being the child of commit i-1: what a busy
// client editing its own items produces. Values are small realistic
// objects (the canonical JSON of a commit is about 420 bytes).
func benchChains(tb testing.TB, repo string, chains, n int) [][]*core.Commit {
	tb.Helper()
	out := make([][]*core.Commit, chains)
	for i := range n {
		ch := i % chains
		var parents []core.CommitID
		if k := len(out[ch]); k > 0 {
			parents = []core.CommitID{out[ch][k-1].ID}
		}
		c := mkCommit(tb, repo, fmt.Sprintf("task-%d", ch), int64(1_763_800_000_000+i),
			map[string]any{"title": fmt.Sprintf("Buy milk %d", i), "done": i%2 == 0, "prio": float64(i % 5)}, parents...)
		out[ch] = append(out[ch], c)
	}
	return out
}

func benchStore(b *testing.B, noSync bool) *Repo {
	b.Helper()
	s, err := Open(Config{Dir: b.TempDir(), NoSync: noSync, Logger: quietLogger(), IdleTimeout: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	r, release, err := s.Ensure("bench")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(release)
	return r
}

// BenchmarkAppend measures durable appends on the real filesystem, one
// commit per Append call: from one goroutine (each append pays a whole
// fsync), and from 64 goroutines (group commit shares the fsyncs).
func BenchmarkAppend(b *testing.B) {
	for _, noSync := range []bool{false, true} {
		mode := "fsync"
		if noSync {
			mode = "nosync"
		}
		b.Run("Serial/"+mode, func(b *testing.B) {
			r := benchStore(b, noSync)
			cs := benchChains(b, "bench", 1, b.N)[0]
			ctx := context.Background()
			b.ResetTimer()
			for i := range b.N {
				if _, err := r.Append(ctx, cs[i:i+1]); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			reportGroups(b, r)
		})
		b.Run("Concurrent64/"+mode, func(b *testing.B) {
			const writers = 64
			r := benchStore(b, noSync)
			chains := benchChains(b, "bench", writers, b.N)
			ctx := context.Background()
			var wg sync.WaitGroup
			var failed atomic.Bool
			b.ResetTimer()
			for _, chain := range chains {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range chain {
						if _, err := r.Append(ctx, chain[i:i+1]); err != nil {
							failed.Store(true)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			if failed.Load() {
				b.Fatal("an append failed")
			}
			reportGroups(b, r)
		})
	}
}

// reportGroups reports how many commits shared each write and fsync, read
// back from the group field of the records.
func reportGroups(b *testing.B, r *Repo) {
	b.Helper()
	f, err := os.Open(r.path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	groups := map[int64]bool{}
	if _, err := scanLog(f, st.Size(), func(_ int64, _ int, h payloadHeader, _ []byte) error { groups[h.group] = true; return nil }); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(r.Count())/float64(len(groups)), "commits/fsync")
}

// writeFixture writes a log of n commits over n/10 items straight to
// path, the way the writer would have (canonical JSON, index fields,
// frames), much faster than appending them one by one.
func writeFixture(tb testing.TB, path string, n int) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	buf := encodeHeader(newLogID())
	pos := int64(0)
	group := int64(headerSize)
	keys := max(n/10, 1)
	last := make([]core.CommitID, keys)
	for i := range n {
		k := i % keys
		var parents []core.CommitID
		if i >= keys {
			parents = []core.CommitID{last[k]}
		}
		c := mkCommit(tb, "fixture", fmt.Sprintf("task-%d", k), int64(1_763_800_000_000+i),
			map[string]any{"title": fmt.Sprintf("Buy milk %d", i), "done": i%2 == 0, "prio": float64(i % 5)}, parents...)
		last[k] = c.ID
		js, err := c.MarshalJSON()
		if err != nil {
			tb.Fatal(err)
		}
		m := commitMeta{id: c.ID, ts: c.TS, parents: c.Parents, key: c.Key}
		buf = appendFrame(buf, payloadHeader{seq: uint64(i + 1), group: group, kind: kindCommit}, appendCommitBody(nil, &m, js))
		if len(buf) > 4<<20 || i == n-1 {
			if _, err := f.WriteAt(buf, pos); err != nil {
				tb.Fatal(err)
			}
			pos += int64(len(buf))
			group = pos
			buf = buf[:0]
		}
	}
}

var fixtures sync.Map // n -> path, generated once per process

func fixture(b *testing.B, n int) string {
	b.Helper()
	if p, ok := fixtures.Load(n); ok {
		return p.(string)
	}
	dir, err := os.MkdirTemp("", "goat-storage-bench-")
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, "fixture.log")
	writeFixture(b, path, n)
	fixtures.Store(n, path)
	return path
}

// TestMain removes the benchmark fixtures, which outlive single
// benchmarks so that each size is generated once.
func TestMain(m *testing.M) {
	code := m.Run()
	fixtures.Range(func(_, p any) bool { os.RemoveAll(filepath.Dir(p.(string))); return true })
	os.Exit(code)
}

// BenchmarkOpen measures opening a repository: from=log reads and checks
// every record and builds the index (no checkpoint, or checkpoints off);
// from=checkpoint loads the index checkpoint that closing the repository
// wrote and reads only the log's tail (here, nothing after it). The files
// are in the page cache (they were just written); the process has
// nothing. It also reports the heap the open repository holds per commit.
func BenchmarkOpen(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		for _, from := range []string{"log", "checkpoint"} {
			b.Run(fmt.Sprintf("commits=%d/from=%s", n, from), func(b *testing.B) {
				path := fixture(b, n)
				cfg := Config{FS: OSFS(), NoSync: true, CheckpointEvery: -1}
				fsys := NewMemFS()
				fsys.MkdirAll("/seq", 0o755)
				seq, err := openSequencer(fsys, "/seq", 1<<20, true)
				if err != nil {
					b.Fatal(err)
				}
				logger := quietLogger()
				if from == "checkpoint" {
					cfg.CheckpointEvery = 1 << 16
					if _, err := os.Stat(ckptPath(path)); err != nil {
						r, err := openRepo("fixture", path, &cfg, seq, logger)
						if err != nil {
							b.Fatal(err)
						}
						r.close() // writes the checkpoint
					}
				}
				for b.Loop() {
					r, err := openRepo("fixture", path, &cfg, seq, logger)
					if err != nil {
						b.Fatal(err)
					}
					if from == "checkpoint" && r.ckptRecords.Load() != int64(n) {
						b.Fatalf("opened without the checkpoint")
					}
					r.close()
				}
				b.StopTimer()
				st, _ := os.Stat(path)
				b.ReportMetric(float64(st.Size())/float64(n), "file-B/commit")
				if st, err := os.Stat(ckptPath(path)); err == nil && from == "checkpoint" {
					b.ReportMetric(float64(st.Size())/float64(n), "ckpt-B/commit")
				}
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				r, err := openRepo("fixture", path, &cfg, seq, logger)
				if err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				if r.Count() != n {
					b.Fatalf("Count=%d, want %d", r.Count(), n)
				}
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(n), "heap-B/commit")
				r.close()
			})
		}
	}
}

// BenchmarkRead measures the read paths on a 100k-commit repository.
func BenchmarkRead(b *testing.B) {
	path := fixture(b, 100_000)
	cfg := Config{FS: OSFS(), NoSync: true}
	fsys := NewMemFS()
	fsys.MkdirAll("/seq", 0o755)
	seq, _ := openSequencer(fsys, "/seq", 1<<20, true)
	r, err := openRepo("fixture", path, &cfg, seq, quietLogger())
	if err != nil {
		b.Fatal(err)
	}
	defer r.close()
	b.Run("ReadLog100", func(b *testing.B) {
		i := int64(0)
		for b.Loop() {
			if _, err := r.ReadLog(i%99_900, 100); err != nil {
				b.Fatal(err)
			}
			i += 100
		}
	})
	b.Run("Value", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := r.Value(fmt.Sprintf("task-%d", i%10_000)); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("Has", func(b *testing.B) {
		var ids []core.CommitID
		r.EachID(0, func(_ int64, id core.CommitID) bool { ids = append(ids, id); return len(ids) < 4096 })
		i := 0
		for b.Loop() {
			if !r.Has(ids[i%len(ids)]) {
				b.Fatal("missing")
			}
			i++
		}
	})
}
