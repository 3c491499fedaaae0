package storage

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
)

// The tests of this package wait on signals (channels, OnAppend,
// testing/synctest), never on goattest.WaitFor: goattest runs a gateway,
// which imports this package, so these internal tests cannot import it.
// The conformance suite runs in the external package storage_test.

// fakeSig stands in for a signature: storage checks a signature's length,
// never its validity (that is Config.Verify's job).
var fakeSig = make([]byte, 64)

// mkCommit builds a sealed commit of repo/key with full data.
func mkCommit(tb testing.TB, repo, key string, ts int64, data map[string]any, parents ...core.CommitID) *core.Commit {
	tb.Helper()
	ps := slices.Clone(parents)
	slices.SortFunc(ps, core.CommitID.Compare)
	c := &core.Commit{Repo: repo, Key: key, Parents: ps, Author: "s_test", TS: ts, Schema: "any/1", Data: data, Sig: fakeSig}
	if err := c.Seal(); err != nil {
		tb.Fatalf("seal: %v", err)
	}
	return c
}

// mkDelta builds a sealed delta commit setting field to value.
func mkDelta(tb testing.TB, repo, key string, ts int64, base core.CommitID, field string, value any, parents ...core.CommitID) *core.Commit {
	tb.Helper()
	ps := slices.Clone(parents)
	slices.SortFunc(ps, core.CommitID.Compare)
	c := &core.Commit{Repo: repo, Key: key, Parents: ps, Author: "s_test", TS: ts, Schema: "any/1",
		Delta: &core.Delta{Base: base, Ops: []core.Op{{Op: core.OpSet, Field: field, Value: value}}}, Sig: fakeSig}
	if err := c.Seal(); err != nil {
		tb.Fatalf("seal: %v", err)
	}
	return c
}

// mkMerge builds the merge commit a simple merger would: the value of the
// greatest head, with every head as parent.
func mkMerge(tb testing.TB, repo, key string, ts int64, data map[string]any, heads ...core.CommitID) *core.Commit {
	tb.Helper()
	ps := slices.Clone(heads)
	slices.SortFunc(ps, core.CommitID.Compare)
	c := &core.Commit{Repo: repo, Key: key, Parents: ps, Author: core.MergeAuthor, TS: ts, Schema: "any/1", Data: data}
	if err := c.Seal(); err != nil {
		tb.Fatalf("seal: %v", err)
	}
	return c
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// openStore opens a Store on fsys/dir for a test and closes it at cleanup.
func openStore(tb testing.TB, fsys FS, mod func(*Config)) *Store {
	tb.Helper()
	cfg := Config{Dir: "/data", FS: fsys, Logger: quietLogger(), IdleTimeout: -1}
	if mod != nil {
		mod(&cfg)
	}
	s, err := Open(cfg)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// repo returns the named repository, created if needed, released at
// cleanup.
func repo(tb testing.TB, s *Store, name string) *Repo {
	tb.Helper()
	r, release, err := s.Ensure(name)
	if err != nil {
		tb.Fatalf("Ensure(%q): %v", name, err)
	}
	tb.Cleanup(release)
	return r
}

// mustAppend appends and fails the test on a call error or on any
// rejection.
func mustAppend(tb testing.TB, r *Repo, cs ...*core.Commit) []Result {
	tb.Helper()
	res, err := r.Append(context.Background(), cs)
	if err != nil {
		tb.Fatalf("Append: %v", err)
	}
	for i, x := range res {
		if x.Status == Rejected {
			tb.Fatalf("Append: commit %d (%s) rejected: %v", i, x.ID, x.Err)
		}
	}
	return res
}

func logPath(name string) string { return filepath.Join("/data", name+".log") }

// recordSpans returns the byte spans [start, end) of every record of a
// log image, by walking its frames.
func recordSpans(tb testing.TB, img []byte) [][2]int64 {
	tb.Helper()
	var spans [][2]int64
	var visit scanVisit = func(pos int64, _ int, _ payloadHeader, body []byte) error {
		spans = append(spans, [2]int64{pos, pos + frameHeaderSize + payloadHeaderSize + int64(len(body))})
		return nil
	}
	res, err := scanLog(bytesReaderAt(img), int64(len(img)), visit)
	if err != nil || res.state != tailClean {
		tb.Fatalf("recordSpans: %v %v", err, res.state)
	}
	return spans
}

type bytesReaderAt []byte

func (b bytesReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(b)) {
		return 0, fmt.Errorf("EOF at %d", off)
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, fmt.Errorf("short read at %d", off)
	}
	return n, nil
}
