package storage

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
)

// The log format is shared with the TypeScript SDK's OPFSStore
// (sdk/ts/src/logformat.ts). testdata/browser.log was written by the SDK's
// encoder (sdk/ts/test/unit/logformat.test.ts checks its bytes);
// testdata/go.log is written here (-update-vectors) and read by that test.

var updateVectors = flag.Bool("update-vectors", false, "rewrite testdata/go.log")

const vectorRepo = "user.alice.todos"

// openVector opens a copy of a log file as repository vectorRepo of a new
// store.
func openVector(tb testing.TB, path string) *Repo {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	if err := os.WriteFile(filepath.Join(dir, vectorRepo+".log"), b, 0o644); err != nil {
		tb.Fatal(err)
	}
	s, err := Open(Config{Dir: dir, Logger: quietLogger(), IdleTimeout: -1, NoSync: true})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	r, release, err := s.Repo(vectorRepo)
	if err != nil {
		tb.Fatalf("a log written by the browser does not open: %v", err)
	}
	tb.Cleanup(release)
	return r
}

func TestLog_BrowserVector(t *testing.T) {
	r := openVector(t, "testdata/browser.log")
	if got, want := r.LogID().String(), "000102030405060708090a0b0c0d0e0f"; got != want {
		t.Fatalf("log id=%s, want %s", got, want)
	}
	recs, err := r.ReadLog(0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(recs), 4; got != want {
		t.Fatalf("records=%d, want %d", got, want)
	}
	var cs []*core.Commit
	for i, rec := range recs {
		c, err := core.DecodeCommit(rec.JSON)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if c.ID != rec.ID || rec.Seq != uint64(i+1) {
			t.Fatalf("record %d: id %s seq %d, want %s and %d", i, rec.ID, rec.Seq, c.ID, i+1)
		}
		cs = append(cs, c)
	}
	if m, _ := r.Meta(cs[1].ID); !m.Delta || m.Base != cs[0].ID || m.Deleted {
		t.Fatalf("delta commit meta %+v", m)
	}
	if m, _ := r.Meta(cs[3].ID); !m.Deleted || m.Delta {
		t.Fatalf("tombstone meta %+v", m)
	}
	if got, want := r.Heads("t1"), []core.CommitID{cs[1].ID}; !slices.Equal(got, want) {
		t.Fatalf("heads of t1=%v, want %v", got, want)
	}
	// The store appends after the browser's records, as to any log of its own.
	more := mkCommit(t, vectorRepo, "t3", 1_763_800_000_004, map[string]any{"title": "from Go"})
	mustAppend(t, r, more)
	if got, want := r.Count(), 5; got != want {
		t.Fatalf("count=%d, want %d", got, want)
	}
}

func TestLog_GoVector(t *testing.T) {
	src := openVector(t, "testdata/browser.log")
	recs, err := src.ReadLog(0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var cs []*core.Commit
	for _, rec := range recs {
		c, err := core.DecodeCommit(rec.JSON)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	if *updateVectors {
		dir := t.TempDir()
		s, err := Open(Config{Dir: dir, Logger: quietLogger(), IdleTimeout: -1})
		if err != nil {
			t.Fatal(err)
		}
		r, release, err := s.Create(vectorRepo)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			mustAppend(t, r, c) // one write per commit, as a gateway receives them
		}
		release()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, vectorRepo+".log"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("testdata/go.log", b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := openVector(t, "testdata/go.log")
	if got, want := r.Count(), len(cs); got != want {
		t.Fatalf("count=%d, want %d", got, want)
	}
	for _, c := range cs {
		if !r.Has(c.ID) {
			t.Fatalf("go.log lacks %s", c.ID)
		}
	}
}
