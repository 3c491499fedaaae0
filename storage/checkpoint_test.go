package storage

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
)

var ckptRuns = flag.Int("ckpt.n", 120, "runs of TestIndex_Checkpoint's property")

// ckptRepos are the repositories of the checkpoint property's workload; a
// checkpoint of one is also planted as the other's (a checkpoint of
// another log).
var ckptRepos = []string{"a", "b"}

// TestIndex_Checkpoint is the property that makes checkpoints safe: after
// any crash, torn or truncated log, and any stale, foreign, torn or
// corrupt checkpoint, opening with checkpoints gives exactly the index (or
// exactly the error) that rebuilding it from the whole log gives.
func TestIndex_Checkpoint(t *testing.T) {
	used := 0
	for run := range *ckptRuns {
		rng := rand.New(rand.NewPCG(uint64(run), 19))
		img, damage := ckptScenario(t, rng)
		for _, name := range ckptRepos {
			label := fmt.Sprintf("run %d, repo %s, %s", run, name, damage)
			full, fullErr := openImage(t, img, name, -1)
			fast, fastErr := openImage(t, img, name, 0)
			if (fullErr == nil) != (fastErr == nil) || (fullErr != nil && errors.Is(fullErr, core.ErrCorrupt) != errors.Is(fastErr, core.ErrCorrupt)) {
				t.Fatalf("%s: full rebuild: %v; with checkpoint: %v", label, fullErr, fastErr)
			}
			if fullErr != nil {
				continue
			}
			if fast.ckptRecords.Load() > 0 {
				used++
			}
			if err := sameIndex(full.idx, fast.idx); err != nil {
				t.Fatalf("%s: the index opened from the checkpoint differs from the rebuilt one: %v", label, err)
			}
			if full.log.size != fast.log.size || full.log.sealed != fast.log.sealed {
				t.Fatalf("%s: log end %d sealed %v after a full scan, %d %v with the checkpoint", label, full.log.size, full.log.sealed, fast.log.size, fast.log.sealed)
			}
		}
	}
	// The property is only as good as the runs that used a checkpoint.
	if min := *ckptRuns / 2; used < min {
		t.Fatalf("only %d opens used a checkpoint, want at least %d", used, min)
	}
}

// ckptScenario runs a random workload with frequent checkpoints, with
// clean closes and reopens along the way, crashes it, and damages the
// image in one of several ways; it returns the image and what was done.
func ckptScenario(t *testing.T, rng *rand.Rand) (*MemFS, string) {
	t.Helper()
	fsys := NewMemFS()
	every := 1 + rng.IntN(30)
	merge := rng.IntN(2) == 0 // without a merger, items keep several heads
	mod := func(c *Config) {
		c.CheckpointEvery = every
		if merge {
			c.Merger = &maxMerger{tb: t}
		}
	}
	works := map[string]*workload{}
	for _, n := range ckptRepos {
		works[n] = newWorkload(rng, n, 2+rng.IntN(6))
	}
	var older []byte // a checkpoint of "a" as it was some time ago
	s := openStoreNoCleanup(t, fsys, mod)
	for round := range 2 + rng.IntN(6) {
		for range 1 + rng.IntN(12) {
			name := ckptRepos[rng.IntN(len(ckptRepos))]
			r, release, err := s.Ensure(name)
			if err != nil {
				t.Fatal(err)
			}
			var batch []*core.Commit
			for range 1 + rng.IntN(5) {
				batch = append(batch, works[name].next(t))
			}
			if _, err := r.Append(context.Background(), batch); err != nil {
				t.Fatal(err)
			}
			release()
		}
		if round == 1 {
			older, _ = fsys.ReadFile(ckptPath(logPath("a")))
		}
		if rng.IntN(2) == 0 { // a clean close: a close marker and a checkpoint
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openStoreNoCleanup(t, fsys, mod)
		}
	}
	img := fsys.Crash(rng, CrashRandom) // background checkpoints may be mid-write
	s.Close()
	log := logPath("a")
	data, _ := img.ReadFile(log)
	ck, _ := img.ReadFile(ckptPath(log))
	switch k := rng.IntN(8); {
	case k == 0:
		return img, "crash only"
	case k == 1 && len(data) > headerSize:
		at := headerSize + rng.IntN(len(data)-headerSize)
		img.WriteFile(log, data[:at])
		return img, fmt.Sprintf("log of a truncated at %d of %d", at, len(data))
	case k == 2 && len(data) > headerSize:
		at := headerSize + rng.IntN(len(data)-headerSize)
		clear(data[at:])
		img.WriteFile(log, data)
		return img, fmt.Sprintf("log of a zeroed from %d of %d", at, len(data))
	case k == 3 && len(ck) > 0:
		at := rng.IntN(len(ck))
		ck[at] ^= byte(1 + rng.IntN(255))
		img.WriteFile(ckptPath(log), ck)
		return img, fmt.Sprintf("checkpoint of a: byte %d of %d flipped", at, len(ck))
	case k == 4 && len(ck) > 0:
		at := rng.IntN(len(ck))
		img.WriteFile(ckptPath(log), ck[:at])
		return img, fmt.Sprintf("checkpoint of a truncated at %d of %d", at, len(ck))
	case k == 5 && older != nil:
		img.WriteFile(ckptPath(log), older)
		return img, "checkpoint of a: an older one"
	case k == 6:
		if other, err := img.ReadFile(ckptPath(logPath("b"))); err == nil {
			img.WriteFile(ckptPath(log), other)
			return img, "checkpoint of a: b's"
		}
	case k == 7 && len(data) > headerSize:
		// A torn last write: garbage in the log's last few hundred bytes.
		at := max(headerSize, len(data)-1-rng.IntN(400))
		data[at] ^= 0x5a
		img.WriteFile(log, data)
		return img, fmt.Sprintf("log of a: byte %d of %d flipped", at, len(data))
	}
	return img, "crash only"
}

// openStoreNoCleanup opens a Store that the caller closes.
func openStoreNoCleanup(tb testing.TB, fsys FS, mod func(*Config)) *Store {
	tb.Helper()
	cfg := Config{Dir: "/data", FS: fsys, Logger: quietLogger(), IdleTimeout: -1}
	mod(&cfg)
	s, err := Open(cfg)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	return s
}

// openImage opens repository name on a copy of img, with checkpoints
// (every = 0) or without (every < 0, which ignores them: a full rebuild).
func openImage(t *testing.T, img *MemFS, name string, every int) (*Repo, error) {
	t.Helper()
	fsys := img.Crash(nil, CrashDropUnsynced) // a copy
	if _, err := fsys.ReadFile(logPath(name)); err != nil {
		fsys.WriteFile(logPath(name), encodeHeader(LogID{1}))
	}
	s := openStore(t, fsys, func(c *Config) { c.CheckpointEvery = every })
	r, release, err := s.Repo(name)
	if err != nil {
		return nil, err
	}
	t.Cleanup(release)
	return r, nil
}

// sameIndex compares two indexes field by field (the id tables through
// lookups: their layout depends on a per-process seed).
func sameIndex(a, b *index) error {
	if len(a.ents) != len(b.ents) {
		return fmt.Errorf("%d commits, want %d", len(b.ents), len(a.ents))
	}
	for i := range a.ents {
		if a.ents[i] != b.ents[i] {
			return fmt.Errorf("entry %d: %+v, want %+v", i, b.ents[i], a.ents[i])
		}
		if got := b.lookup(a.ents[i].id); got != int32(i) {
			return fmt.Errorf("lookup of commit %d: %d", i, got)
		}
	}
	if b.lookup(core.CommitID{1}) != -1 {
		return errors.New("lookup of an absent id found something")
	}
	switch {
	case !slices.Equal(a.childHead, b.childHead):
		return errors.New("child lists differ")
	case !slices.Equal(a.edgeParent, b.edgeParent), !slices.Equal(a.edgeChild, b.edgeChild), !slices.Equal(a.edgeNext, b.edgeNext):
		return errors.New("edges differ")
	case !slices.Equal(a.sortedKeys, b.sortedKeys):
		return errors.New("sorted keys differ")
	case a.digest != b.digest:
		return errors.New("digests differ")
	case len(a.keys) != len(b.keys) || len(a.keyMap()) != len(b.keyMap()):
		return fmt.Errorf("%d keys, want %d", len(b.keys), len(a.keys))
	case a.ids.n != b.ids.n:
		return fmt.Errorf("id table holds %d, want %d", b.ids.n, a.ids.n)
	}
	for k := range a.keys {
		ka, kb := &a.keys[k], &b.keys[k]
		if ka.name != kb.name || ka.last != kb.last || !slices.Equal(ka.heads, kb.heads) || b.keyOf(ka.name) != k {
			return fmt.Errorf("key %d: %+v, want %+v", k, *kb, *ka)
		}
	}
	return nil
}

// TestIndex_CheckpointWritten checks when checkpoints are written and
// that opening uses them: on close, and while open once enough is
// appended, never for a small log on close, and never when turned off.
func TestIndex_CheckpointWritten(t *testing.T) {
	appendN := func(t *testing.T, r *Repo, w *workload, n int) {
		t.Helper()
		for range n {
			if _, err := r.Append(context.Background(), []*core.Commit{w.next(t)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Run("OnClose", func(t *testing.T) {
		fsys := NewMemFS()
		s := openStoreNoCleanup(t, fsys, func(c *Config) { c.CheckpointEvery = 10 })
		r, release, _ := s.Ensure("a")
		appendN(t, r, newWorkload(rand.New(rand.NewPCG(1, 2)), "a", 4), 20)
		release()
		s.Close()
		if _, err := fsys.ReadFile(ckptPath(logPath("a"))); err != nil {
			t.Fatalf("no checkpoint after close: %v", err)
		}
		s = openStoreNoCleanup(t, fsys, func(c *Config) { c.CheckpointEvery = 10 })
		defer s.Close()
		r, release, err := s.Repo("a")
		if err != nil {
			t.Fatal(err)
		}
		defer release()
		if got, want := r.ckptRecords.Load(), int64(r.Count()); got != want {
			t.Fatalf("opened with a checkpoint of %d records, want %d", got, want)
		}
	})
	t.Run("WhileOpen", func(t *testing.T) {
		fsys := NewMemFS()
		var mu sync.Mutex
		saved := 0
		fsys.SetFault(func(op, name string) error {
			if op == "rename" && name == ckptPath(logPath("a"))+".tmp" {
				mu.Lock()
				saved++
				mu.Unlock()
			}
			return nil
		})
		s := openStoreNoCleanup(t, fsys, func(c *Config) { c.CheckpointEvery = 10 })
		r, release, _ := s.Ensure("a")
		appendN(t, r, newWorkload(rand.New(rand.NewPCG(1, 3)), "a", 4), 25)
		release()
		s.Close() // waits for background checkpoints, then saves one more
		mu.Lock()
		defer mu.Unlock()
		if saved < 2 {
			t.Fatalf("%d checkpoints saved, want at least one while open and one on close", saved)
		}
	})
	t.Run("SmallLogOnClose", func(t *testing.T) {
		fsys := NewMemFS()
		s := openStoreNoCleanup(t, fsys, func(*Config) {})
		r, release, _ := s.Ensure("a")
		appendN(t, r, newWorkload(rand.New(rand.NewPCG(1, 5)), "a", 4), 20)
		release()
		s.Close()
		if _, err := fsys.ReadFile(ckptPath(logPath("a"))); err == nil {
			t.Fatal("a 20-record log got a checkpoint on close")
		}
	})
	t.Run("Off", func(t *testing.T) {
		fsys := NewMemFS()
		s := openStoreNoCleanup(t, fsys, func(c *Config) { c.CheckpointEvery = -1 })
		r, release, _ := s.Ensure("a")
		appendN(t, r, newWorkload(rand.New(rand.NewPCG(1, 6)), "a", 4), 20)
		release()
		s.Close()
		if _, err := fsys.ReadFile(ckptPath(logPath("a"))); err == nil {
			t.Fatal("a checkpoint was written with checkpoints off")
		}
	})
}

// TestIndex_KeysOnDemand: an index loaded from a checkpoint has no map
// from item keys yet (opening does not pay for it); the first readers
// build it, concurrently, and find every item, and appends after that add
// keys to it.
func TestIndex_KeysOnDemand(t *testing.T) {
	fsys := NewMemFS()
	mod := func(c *Config) { c.CheckpointEvery = 10 }
	s := openStoreNoCleanup(t, fsys, mod)
	r, release, _ := s.Ensure("a")
	var keys []string
	for i := range 20 {
		key := fmt.Sprintf("k%02d", i)
		keys = append(keys, key)
		mustAppend(t, r, mkCommit(t, "a", key, int64(1000+i), map[string]any{"n": float64(i)}))
	}
	release()
	s.Close()
	s = openStoreNoCleanup(t, fsys, mod)
	defer s.Close()
	r, release, err := s.Repo("a")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if got := r.ckptRecords.Load(); got != 20 {
		t.Fatalf("opened with a checkpoint of %d records, want 20", got)
	}
	r.mu.RLock()
	built := r.idx.keyIdx != nil
	r.mu.RUnlock()
	if built {
		t.Fatal("opening from the checkpoint built the map from item keys")
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for _, key := range keys {
				if hs := r.Heads(key); len(hs) != 1 {
					t.Errorf("Heads(%s)=%v, want one head", key, hs)
				}
			}
			if hs := r.Heads("absent"); len(hs) != 0 {
				t.Errorf("Heads(absent)=%v, want none", hs)
			}
		})
	}
	wg.Wait()
	head := r.Heads("k03")[0]
	mustAppend(t, r, mkCommit(t, "a", "new", 2000, map[string]any{"n": 1.0}), mkCommit(t, "a", "k03", 2001, map[string]any{"n": 2.0}, head))
	if got, want := r.ItemCount(), 21; got != want {
		t.Fatalf("ItemCount()=%d, want %d", got, want)
	}
	if hs := r.Heads("k03"); len(hs) != 1 || hs[0] == head {
		t.Fatalf("Heads(k03)=%v after an edit of %s, want the edit alone", hs, head)
	}
	if hs := r.Heads("new"); len(hs) != 1 {
		t.Fatalf("Heads(new)=%v, want one head", hs)
	}
}

// TestIndex_CheckpointHeader checks the header's round trip and that each
// byte is covered by its checksum.
func TestIndex_CheckpointHeader(t *testing.T) {
	h := ckptHeader{logID: LogID{7}, end: 1000, records: 12, lastSeq: 99, flags: ckptClosed, tailCRC: 5, keys: 3, edges: 9, bodyLen: 400, bodyCRC: 77}
	b := h.encode()
	got, err := decodeCkptHeader(b)
	if err != nil || got != h {
		t.Fatalf("round trip: %+v, %v; want %+v", got, err, h)
	}
	for i := range b {
		bad := bytes.Clone(b)
		bad[i] ^= 1
		if _, err := decodeCkptHeader(bad); err == nil {
			t.Fatalf("byte %d flipped: accepted", i)
		}
	}
}

// FuzzLoadCheckpoint feeds arbitrary bytes to the checkpoint reader as the
// checkpoint of a small log: it must refuse or accept, never panic, and
// what it accepts must be a well-formed index.
func FuzzLoadCheckpoint(f *testing.F) {
	fsys := NewMemFS()
	s := openStoreNoCleanup(f, fsys, func(c *Config) { c.CheckpointEvery = 1 })
	r, release, err := s.Ensure("a")
	if err != nil {
		f.Fatal(err)
	}
	w := newWorkload(rand.New(rand.NewPCG(3, 3)), "a", 3)
	for range 12 {
		if _, err := r.Append(context.Background(), []*core.Commit{w.next(f)}); err != nil {
			f.Fatal(err)
		}
	}
	release()
	s.Close()
	log, _ := fsys.ReadFile(logPath("a"))
	ck, err := fsys.ReadFile(ckptPath(logPath("a")))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ck)
	f.Add(ck[:ckptHeaderSize])
	id, _ := decodeHeader(log)
	f.Fuzz(func(t *testing.T, data []byte) {
		img := NewMemFS()
		img.MkdirAll("/data", 0o755)
		img.WriteFile("/data/a.idx", data)
		x, st, err := loadCheckpoint(img, "/data/a.idx", bytesReaderAt(log), int64(len(log)), id)
		if err != nil || x == nil {
			return
		}
		if len(x.ents) != st.records || st.end > int64(len(log)) {
			t.Fatalf("accepted %d entries for %d records ending at %d", len(x.ents), st.records, st.end)
		}
		for i := range x.ents {
			if x.lookup(x.ents[i].id) != int32(i) {
				t.Fatalf("entry %d not found by id", i)
			}
		}
	})
}
