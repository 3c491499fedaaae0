package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
)

func TestFsck(t *testing.T) {
	_, img, all := writeLog(t, 1, 1, 1)
	spans := recordSpans(t, img)
	oldID, _ := decodeHeader(img)

	// contentBug keeps every checksum valid but changes a value in record 1,
	// so that its id no longer recomputes: opening trusts it, fsck does not.
	contentBug := bytes.Clone(img)
	mid := spans[1]
	rec := contentBug[mid[0]:mid[1]]
	at := bytes.Index(rec, []byte(`"n":0`))
	if at < 0 {
		t.Fatal("fixture: no n field")
	}
	rec[at+4] = '7'
	binary.LittleEndian.PutUint32(rec[4:], crc(rec[frameHeaderSize:]))

	tests := []struct {
		name      string
		img       []byte
		state     FsckState
		records   int
		goodBytes int64
		newLog    bool // repair rewrites under a new log id, keeping the original
		opens     bool // opening works without repair
		salvaged  int  // intact records after the damage that repair keeps
	}{
		{"Clean", img, FsckOK, 3, int64(len(img)), false, true, 0},
		{"TornTail", img[:spans[2][1]-5], FsckTornTail, 2, spans[2][0], false, true, 0},
		// The third record (another item) is intact after the damage:
		// the scan resynchronises and repair keeps it.
		{"CorruptMiddle", func() []byte { b := bytes.Clone(img); b[mid[0]+20] ^= 4; return b }(), FsckCorrupt, 1, mid[0], true, false, 1},
		// Opening trusts a record whose checksum holds; only fsck decodes
		// every commit and recomputes its id.
		{"ContentBug", contentBug, FsckCorrupt, 1, mid[0], true, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := reopen(t, fsWithLog(t, tt.img)); (err == nil) != tt.opens {
				t.Fatalf("open before repair: err=%v, want success %v", err, tt.opens)
			}
			fsys := fsWithLog(t, tt.img)
			reps, err := FsckFS(fsys, "/data", false)
			if err != nil {
				t.Fatalf("Fsck: %v", err)
			}
			if len(reps) != 1 {
				t.Fatalf("%d reports, want 1", len(reps))
			}
			rep := reps[0]
			if rep.State != tt.state || rep.GoodBytes != tt.goodBytes || rep.Repo != "r" || rep.LogID != oldID || rep.FileBytes != int64(len(tt.img)) || rep.Salvaged != tt.salvaged {
				t.Fatalf("report %+v, want state %s, good prefix %d", rep, tt.state, tt.goodBytes)
			}
			if (rep.Problem == "") != (tt.state == FsckOK) {
				t.Fatalf("problem %q for state %s", rep.Problem, rep.State)
			}
			if after, _ := fsys.ReadFile(logPath("r")); !bytes.Equal(after, tt.img) {
				t.Fatalf("fsck without repair changed the file")
			}

			reps, err = FsckFS(fsys, "/data", true)
			if err != nil {
				t.Fatalf("Fsck repair: %v", err)
			}
			rep = reps[0]
			if got, want := rep.Repaired, tt.state != FsckOK; got != want {
				t.Fatalf("Repaired=%v, want %v", got, want)
			}
			if tt.newLog {
				kept, err := fsys.ReadFile(rep.MovedTo)
				if err != nil || !bytes.Equal(kept, tt.img) {
					t.Fatalf("original not kept intact at %q: %v", rep.MovedTo, err)
				}
				if rep.NewLogID == oldID || rep.NewLogID == (LogID{}) {
					t.Fatalf("new log id %s", rep.NewLogID)
				}
			}
			if tt.state == FsckTornTail {
				cut, err := fsys.ReadFile(rep.MovedTo)
				if err != nil || !bytes.Equal(cut, tt.img[tt.goodBytes:]) {
					t.Fatalf("cut tail not kept aside at %q: %v", rep.MovedTo, err)
				}
			}
			after, _ := fsys.ReadFile(logPath("r"))
			if tt.salvaged == 0 {
				if got, want := int64(len(after)), tt.goodBytes; got != want {
					t.Fatalf("repaired file is %d bytes, want %d", got, want)
				}
			}
			if len(after) < int(tt.goodBytes) || !bytes.Equal(after[headerSize:tt.goodBytes], tt.img[headerSize:tt.goodBytes]) {
				t.Fatalf("repaired file does not hold the good prefix")
			}
			reps, _ = FsckFS(fsys, "/data", false)
			if reps[0].State != FsckOK || reps[0].Records != tt.records+tt.salvaged {
				t.Fatalf("after repair: %+v, want ok with %d records", reps[0], tt.records+tt.salvaged)
			}
			_, r, err := reopen(t, fsys)
			if err != nil {
				t.Fatalf("open after repair: %v", err)
			}
			if got, want := r.Count(), tt.records+tt.salvaged; got != want {
				t.Fatalf("Count after repair=%d, want %d", got, want)
			}
			if tt.salvaged > 0 && !r.Has(all[2].ID) {
				t.Fatalf("the record after the damage was not salvaged")
			}
		})
	}
}

func TestFsck_Unreadable(t *testing.T) {
	fsys := fsWithLog(t, []byte("not a log at all, not even a header"))
	reps, err := FsckFS(fsys, "/data", true)
	if err != nil {
		t.Fatal(err)
	}
	if reps[0].State != FsckCorrupt || reps[0].Repaired {
		t.Fatalf("report %+v, want corrupt and not repaired", reps[0])
	}
}

// A flipped byte in the middle of a long log: repair keeps every record
// but the damaged one, except those that need it (a child of the damaged
// commit loses its parent), and the salvaged log takes appends and reopens.
func TestFsck_SalvagesAfterDamage(t *testing.T) {
	fsys := NewMemFS()
	s := openStore(t, fsys, nil)
	r := repo(t, s, "r")
	var all []*core.Commit
	for i := range 200 {
		all = append(all, mkCommit(t, "r", fmt.Sprintf("k%d", i), int64(i), map[string]any{"n": float64(i)}))
	}
	// k100 has a child: with k100 damaged, the child cannot be kept.
	child := mkCommit(t, "r", "k100", 1000, map[string]any{"n": -1.0}, all[100].ID)
	for _, c := range all {
		mustAppend(t, r, c)
	}
	mustAppend(t, r, child)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	img, _ := fsys.ReadFile(logPath("r"))
	spans := recordSpans(t, img)
	img[spans[100][0]+30] ^= 0x10
	fsys = fsWithLog(t, img)

	if _, _, err := reopen(t, fsWithLog(t, img)); !errors.Is(err, core.ErrCorrupt) {
		t.Fatalf("open of a log damaged mid-way: %v, want ErrCorrupt", err)
	}
	reps, err := FsckFS(fsys, "/data", true)
	if err != nil {
		t.Fatal(err)
	}
	rep := reps[0]
	if rep.State != FsckCorrupt || rep.Records != 100 || rep.Salvaged != 99 || rep.Dropped != 1 || !rep.Repaired {
		t.Fatalf("report %+v, want corrupt, 100 good, 99 salvaged, 1 dropped, repaired", rep)
	}
	s2, r2, err := reopen(t, fsys)
	if err != nil {
		t.Fatalf("open after repair: %v", err)
	}
	if got, want := r2.Count(), 199; got != want {
		t.Fatalf("Count after repair=%d, want %d", got, want)
	}
	for i, c := range all {
		if got, want := r2.Has(c.ID), i != 100; got != want {
			t.Fatalf("commit %d present=%v, want %v", i, got, want)
		}
	}
	mustAppend(t, r2, mkCommit(t, "r", "after", 2000, map[string]any{}))
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	reps, err = FsckFS(fsys, "/data", false)
	if err != nil {
		t.Fatal(err)
	}
	if reps[0].State != FsckOK {
		t.Fatalf("after repair and an append: %+v, want ok", reps[0])
	}
}
