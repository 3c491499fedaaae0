package storage

import (
	"bytes"
	"errors"
	"fmt"

	"strings"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
)

// writeLog appends, on a fresh MemFS, one Append call (one write) per
// element of groups with that many commits each (distinct items, so no
// dependencies), closes the store, and returns the fs, the log image and
// the commits in log order. The image ends with the close marker; cut it
// at the end of the last record (crashed) to model a log that was not
// closed.
func writeLog(tb testing.TB, groups ...int) (*MemFS, []byte, []*core.Commit) {
	tb.Helper()
	fsys := NewMemFS()
	s := openStore(tb, fsys, nil)
	r := repo(tb, s, "r")
	var all []*core.Commit
	for g, n := range groups {
		var cs []*core.Commit
		for i := range n {
			cs = append(cs, mkCommit(tb, "r", fmt.Sprintf("k%d-%d", g, i), int64(1000+len(all)+i),
				map[string]any{"title": strings.Repeat("x", 200), "n": float64(i)}))
		}
		mustAppend(tb, r, cs...)
		all = append(all, cs...)
	}
	if err := s.Close(); err != nil {
		tb.Fatalf("Close: %v", err)
	}
	img, err := fsys.ReadFile(logPath("r"))
	if err != nil {
		tb.Fatal(err)
	}
	return fsys, img, all
}

// fsWithLog returns a MemFS whose data directory holds img as repo "r"
// (plus the NODE file of src, if given).
func fsWithLog(tb testing.TB, img []byte) *MemFS {
	tb.Helper()
	fsys := NewMemFS()
	if err := fsys.MkdirAll("/data", 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := fsys.WriteFile(logPath("r"), img); err != nil {
		tb.Fatal(err)
	}
	return fsys
}

// reopen opens repo "r" of fsys in a new store.
func reopen(tb testing.TB, fsys *MemFS) (*Store, *Repo, error) {
	tb.Helper()
	s := openStore(tb, fsys, nil)
	r, release, err := s.Repo("r")
	if err != nil {
		return s, nil, err
	}
	tb.Cleanup(release)
	return s, r, nil
}

func TestRecovery_TornTailAtEveryOffset(t *testing.T) {
	_, img, commits := writeLog(t, 1, 1, 1)
	spans := recordSpans(t, img)
	last := spans[len(spans)-1]
	wantID, _ := decodeHeader(img)
	for _, zeroFill := range []bool{false, true} {
		t.Run(fmt.Sprintf("ZeroFill=%v", zeroFill), func(t *testing.T) {
			for cut := last[0]; cut < last[1]; cut++ {
				torn := bytes.Clone(img[:cut])
				if zeroFill {
					torn = append(torn, make([]byte, last[1]-cut)...)
				}
				fsys := fsWithLog(t, torn)
				s, r, err := reopen(t, fsys)
				if err != nil {
					t.Fatalf("cut at %d: open: %v", cut, err)
				}
				if got, want := r.Count(), 2; got != want {
					t.Fatalf("cut at %d: Count=%d, want %d", cut, got, want)
				}
				if r.Has(commits[2].ID) || !r.Has(commits[0].ID) || !r.Has(commits[1].ID) {
					t.Fatalf("cut at %d: wrong commits present", cut)
				}
				if got := r.LogID(); got != wantID {
					t.Fatalf("cut at %d: log id changed to %s", cut, got)
				}
				b, _ := fsys.ReadFile(logPath("r"))
				if got, want := int64(len(b)), last[0]; got != want {
					t.Fatalf("cut at %d: file is %d bytes, want exactly the good prefix %d", cut, got, want)
				}
				// The recovered log takes appends and reopens clean.
				mustAppend(t, r, commits[2])
				s.Close()
				_, r2, err := reopen(t, fsys)
				if err != nil {
					t.Fatalf("cut at %d: second open: %v", cut, err)
				}
				if got, want := r2.Count(), 3; got != want {
					t.Fatalf("cut at %d: after re-append Count=%d, want %d", cut, got, want)
				}
			}
		})
	}
}

func TestRecovery_CorruptMiddleRecord(t *testing.T) {
	tests := []struct {
		name   string
		groups []int
	}{
		{"SeparateWrites", []int{1, 1, 1}},
		{"OneWrite", []int{3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, img, _ := writeLog(t, tt.groups...)
			mid := recordSpans(t, img)[1]
			for pos := mid[0]; pos < mid[1]; pos++ {
				for _, bit := range []byte{0x01, 0x80} {
					bad := bytes.Clone(img)
					bad[pos] ^= bit
					fsys := fsWithLog(t, bad)
					_, _, err := reopen(t, fsys)
					if !errors.Is(err, core.ErrCorrupt) {
						t.Fatalf("flip %#x at byte %d: err=%v, want ErrCorrupt", bit, pos, err)
					}
					after, _ := fsys.ReadFile(logPath("r"))
					if !bytes.Equal(after, bad) {
						t.Fatalf("flip %#x at byte %d: a refused file was modified", bit, pos)
					}
				}
			}
		})
	}
}

func TestRecovery_BadFileHeader(t *testing.T) {
	_, img, _ := writeLog(t, 1)
	tests := []struct {
		name string
		img  []byte
	}{
		{"Empty", nil},
		{"HalfHeader", img[:headerSize/2]},
		{"FlippedMagic", func() []byte { b := bytes.Clone(img); b[1] ^= 1; return b }()},
		{"FlippedLogID", func() []byte { b := bytes.Clone(img); b[20] ^= 1; return b }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := reopen(t, fsWithLog(t, tt.img))
			if !errors.Is(err, core.ErrCorrupt) {
				t.Fatalf("err=%v, want ErrCorrupt", err)
			}
		})
	}
}

// A last write whose later pages reached the disk while an earlier one did
// not (writeback in any order) reopens with the records before the hole;
// the original file is kept aside and the log gets a new identity.
func TestRecovery_TornLastWriteWithReorderedPages(t *testing.T) {
	_, img, commits := writeLog(t, 1, 40)
	spans := recordSpans(t, img)
	img = crashed(img, spans)
	if len(img) < 3*pageSize {
		t.Fatalf("fixture too small: %d bytes", len(img))
	}
	bad := bytes.Clone(img)
	clear(bad[pageSize : 2*pageSize])
	good := 0
	for good < len(spans) && spans[good][1] <= pageSize {
		good++
	}
	fsys := fsWithLog(t, bad)
	_, r, err := reopen(t, fsys)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if got, want := r.Count(), good; got != want {
		t.Fatalf("Count=%d, want %d", got, want)
	}
	for i, c := range commits {
		if got, want := r.Has(c.ID), i < good; got != want {
			t.Fatalf("Has(commit %d)=%v, want %v", i, got, want)
		}
	}
	oldID, _ := decodeHeader(img)
	if r.LogID() == oldID {
		t.Fatalf("log id unchanged after dropping whole records")
	}
	names, _ := fsys.ReadDir("/data")
	var kept []byte
	for _, n := range names {
		if strings.HasPrefix(n, "r.log.damaged-") {
			kept, _ = fsys.ReadFile("/data/" + n)
		}
	}
	if !bytes.Equal(kept, bad) {
		t.Fatalf("the original file was not kept aside intact (names %v)", names)
	}
}

// crashed returns a log image as a crash would leave it, without the close
// marker after its last record.
func crashed(img []byte, spans [][2]int64) []byte { return img[:spans[len(spans)-1][1]] }

// Damage to the last write of a log that was closed cleanly is refused:
// the close marker proves that write was acknowledged. Without the marker
// (a crash), the same damage is indistinguishable from a torn write.
func TestRecovery_DamagedLastWrite(t *testing.T) {
	_, img, _ := writeLog(t, 1, 40)
	spans := recordSpans(t, img)
	last := spans[len(spans)-1]
	hole := func(b []byte) []byte { b = bytes.Clone(b); clear(b[pageSize : 2*pageSize]); return b }
	flip := func(b []byte) []byte { b = bytes.Clone(b); b[last[0]+30] ^= 1; return b }
	tests := []struct {
		name    string
		img     []byte
		corrupt bool
		count   int
	}{
		{"ClosedHole", hole(img), true, 0},
		{"ClosedFlipInLastRecord", flip(img), true, 0},
		{"CrashedFlipInLastRecord", flip(crashed(img, spans)), false, len(spans) - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, r, err := reopen(t, fsWithLog(t, tt.img))
			if tt.corrupt {
				if !errors.Is(err, core.ErrCorrupt) {
					t.Fatalf("err=%v, want ErrCorrupt", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			if got := r.Count(); got != tt.count {
				t.Fatalf("Count=%d, want %d", got, tt.count)
			}
		})
	}
}

// The same hole in a write that a later write follows is damage to
// acknowledged data.
func TestRecovery_HoleBeforeLaterWrite(t *testing.T) {
	_, img, _ := writeLog(t, 40, 1)
	bad := bytes.Clone(img)
	clear(bad[pageSize : 2*pageSize])
	_, _, err := reopen(t, fsWithLog(t, bad))
	if !errors.Is(err, core.ErrCorrupt) {
		t.Fatalf("err=%v, want ErrCorrupt", err)
	}
}

// FuzzScanLog feeds arbitrary bytes, alone and after a valid header and
// records, to the recovery reader and checks its verdict.
func FuzzScanLog(f *testing.F) {
	_, img, _ := writeLog(f, 1, 2)
	f.Add(img)
	f.Add(img[:len(img)-7])
	f.Add(append(bytes.Clone(img[:len(img)-50]), make([]byte, 50)...))
	f.Add(img[headerSize:])
	f.Add([]byte{})
	f.Add(make([]byte, 100))
	prefix := img[:recordSpans(f, img)[1][1]]
	f.Fuzz(func(t *testing.T, data []byte) {
		checkScan(t, data)
		checkScan(t, append(bytes.Clone(prefix), data...))
	})
}

func checkScan(t *testing.T, data []byte) {
	size := int64(len(data))
	next := int64(headerSize)
	var lastSeq uint64
	// skipMarkers moves next past close markers, which are not visited.
	skipMarkers := func(to int64) {
		for next < to && next+frameHeaderSize+payloadHeaderSize <= size {
			h, st := checkFrame(data[next:next+frameHeaderSize+payloadHeaderSize], next)
			if st != frameOK || h.kind != kindClose {
				break
			}
			next += frameHeaderSize + payloadHeaderSize
		}
	}
	visit := func(pos int64, _ int, h payloadHeader, body []byte) error {
		skipMarkers(pos)
		if pos != next {
			t.Fatalf("record at %d, want %d", pos, next)
		}
		if h.seq <= lastSeq {
			t.Fatalf("seq %d after %d", h.seq, lastSeq)
		}
		lastSeq = h.seq
		next = pos + frameHeaderSize + payloadHeaderSize + int64(len(body))
		return nil
	}
	res, err := scanLog(bytesReaderAt(data), size, visit)
	if err != nil {
		if !errors.Is(err, core.ErrCorrupt) {
			t.Fatalf("err=%v, want ErrCorrupt", err)
		}
		return
	}
	skipMarkers(res.end)
	if res.end != next || res.end > size {
		t.Fatalf("end=%d, last record ends at %d, size %d", res.end, next, size)
	}
	if (res.state == tailClean) != (res.end == size) {
		t.Fatalf("state %v with end %d of %d", res.state, res.end, size)
	}
	if res.state == tailTorn {
		for y := res.end + 1; y < size; y++ {
			n, st := frameLen(data[y:min(y+frameHeaderSize, size)], size-y)
			if st == frameOK {
				if _, st = checkFrame(data[y:y+frameHeaderSize+int64(n)], y); st == frameOK {
					t.Fatalf("torn tail at %d, but a valid frame starts at %d", res.end, y)
				}
			}
		}
	}
	again, err := scanLog(bytesReaderAt(data[:res.end]), res.end, nil)
	if err != nil || again.state != tailClean || again.records != res.records {
		t.Fatalf("rescanning the good prefix: %v %v %d records, want clean %d", err, again.state, again.records, res.records)
	}
}
