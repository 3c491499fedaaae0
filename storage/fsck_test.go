package storage

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func TestFsck(t *testing.T) {
	_, img, _ := writeLog(t, 1, 1, 1)
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
	}{
		{"Clean", img, FsckOK, 3, int64(len(img)), false, true},
		{"TornTail", img[:spans[2][1]-5], FsckTornTail, 2, spans[2][0], false, true},
		{"CorruptMiddle", func() []byte { b := bytes.Clone(img); b[mid[0]+20] ^= 4; return b }(), FsckCorrupt, 1, mid[0], true, false},
		// Opening trusts a record whose checksum holds; only fsck decodes
		// every commit and recomputes its id.
		{"ContentBug", contentBug, FsckCorrupt, 1, mid[0], true, true},
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
			if rep.State != tt.state || rep.GoodBytes != tt.goodBytes || rep.Repo != "r" || rep.LogID != oldID || rep.FileBytes != int64(len(tt.img)) {
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
			after, _ := fsys.ReadFile(logPath("r"))
			if got, want := int64(len(after)), tt.goodBytes; got != want {
				t.Fatalf("repaired file is %d bytes, want %d", got, want)
			}
			if !bytes.Equal(after[headerSize:], tt.img[headerSize:tt.goodBytes]) {
				t.Fatalf("repaired file does not hold the good prefix")
			}
			reps, _ = FsckFS(fsys, "/data", false)
			if reps[0].State != FsckOK || reps[0].Records != tt.records {
				t.Fatalf("after repair: %+v, want ok with %d records", reps[0], tt.records)
			}
			_, r, err := reopen(t, fsys)
			if err != nil {
				t.Fatalf("open after repair: %v", err)
			}
			if got, want := r.Count(), tt.records; got != want {
				t.Fatalf("Count after repair=%d, want %d", got, want)
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
