package storage

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/goat-gateway/goat-gateway/core"
)

// FsckState is the verdict on one log file.
type FsckState string

const (
	// FsckOK: every byte belongs to a valid record.
	FsckOK FsckState = "ok"
	// FsckTornTail: an incomplete or zero-filled last write, which opening
	// truncates on its own.
	FsckTornTail FsckState = "torn-tail"
	// FsckTornWrite: a last write whose later pages landed without earlier
	// ones, which opening rewrites on its own (keeping the original aside).
	FsckTornWrite FsckState = "torn-write"
	// FsckCorrupt: damage before acknowledged data, or a record whose
	// checksum holds but whose content is wrong. Opening refuses the file.
	FsckCorrupt FsckState = "corrupt"
)

// FsckReport describes one repository log.
type FsckReport struct {
	Repo      string
	File      string
	LogID     LogID // before any repair
	State     FsckState
	Records   int    // records in the good prefix
	GoodBytes int64  // length of the good prefix, header included
	FileBytes int64  // length of the file
	Problem   string // what is wrong, for people; empty when State is FsckOK
	// Salvaged counts the intact records after the damage of a corrupt
	// log: found by resynchronising the scan, each verified as strictly as
	// the good prefix, and kept by repair after the good prefix.
	Salvaged int
	// Dropped counts the whole frames after the damage that repair does
	// not keep: a commit that does not verify, or whose parent or delta
	// base was lost with the damage. They stay in the original (MovedTo).
	Dropped  int
	Repaired bool
	MovedTo  string // repair kept the original here, whole
	NewLogID LogID  // the rewritten log's identity (repair of FsckTornWrite or FsckCorrupt)
}

// Fsck checks every repository log in a data directory more thoroughly
// than opening does: besides the framing and checksums, every commit is
// decoded strictly, its id recomputed, and the index fields and the
// topological order checked.
//
// With repair, a torn tail is truncated (as opening would do, keeping the
// cut bytes in NAME.log.torn-UNIXNANO), a torn write is rewritten to its
// good prefix, and a corrupt file is rewritten to its good prefix followed
// by every intact record after the damage (Salvaged): records are
// self-delimiting and checksummed, so the scan resynchronises byte by byte
// after the damage, and each record found is decoded strictly, its id
// recomputed, and its parents and delta base required before it is kept.
// A rewrite gets a new log id, after the original has been copied, whole,
// to NAME.log.damaged-UNIXNANO. Nothing is deleted. It takes the data directory's lock, so it fails with
// core.ErrConflict while a gateway has the directory open.
func Fsck(dir string, repair bool) ([]FsckReport, error) { return FsckFS(OSFS(), dir, repair) }

// FsckFS is Fsck on the given filesystem.
func FsckFS(fsys FS, dir string, repair bool) ([]FsckReport, error) {
	lock, err := fsys.Lock(filepath.Join(dir, "LOCK"))
	if err != nil {
		return nil, fmt.Errorf("fsck %s: %w", dir, err)
	}
	defer lock.Close()
	repos, err := listRepos(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("fsck %s: %w", dir, err)
	}
	reports := make([]FsckReport, 0, len(repos))
	for _, name := range repos {
		rep, err := fsckOne(fsys, dir, name, repair)
		if err != nil {
			return reports, fmt.Errorf("fsck %s: %w", name, err)
		}
		reports = append(reports, rep)
	}
	return reports, nil
}

func fsckOne(fsys FS, dir, name string, repair bool) (FsckReport, error) {
	path := filepath.Join(dir, name+".log")
	rep := FsckReport{Repo: name, File: path}
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return rep, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return rep, err
	}
	rep.FileBytes = st.Size()
	var (
		ids     = map[core.CommitID]string{} // id -> key
		full    = map[core.CommitID]bool{}   // ids of full-data commits
		lastPos int64
		tail    []byte // the salvaged records, framed to follow the good prefix
	)
	visit := func(pos int64, _ int, h payloadHeader, body []byte) error {
		lastPos = pos
		return fsckRecord(body, name, ids, full)
	}
	res, err := scanLog(f, rep.FileBytes, visit)
	rep.LogID, rep.Records, rep.GoodBytes = res.id, res.records, res.end
	corrupt := false
	switch {
	case err != nil && errors.Is(err, core.ErrCorrupt) && res.id != (LogID{}):
		// A content problem in a CRC-valid record: the good prefix ends
		// before that record.
		rep.State, rep.Problem, rep.GoodBytes = FsckCorrupt, err.Error(), lastPos
		corrupt = true
	case err != nil && errors.Is(err, core.ErrCorrupt):
		f.Close()
		rep.State, rep.Problem = FsckCorrupt, err.Error()
		return rep, nil // no readable header: nothing to salvage
	case err != nil:
		f.Close()
		return rep, err
	case res.state == tailClean:
		rep.State = FsckOK
		return rep, nil
	case res.state == tailTorn:
		rep.State, rep.Problem = FsckTornTail, res.describe()
	case res.state == tailTornGroup:
		rep.State, rep.Problem = FsckTornWrite, res.describe()
	default:
		rep.State, rep.Problem = FsckCorrupt, res.describe()
		corrupt = true
	}
	if corrupt {
		keep := func(body []byte) error { return fsckRecord(body, name, ids, full) }
		tail, rep.Salvaged, rep.Dropped, err = salvageFrames(f, rep.FileBytes, rep.GoodBytes+1, rep.GoodBytes, res.lastSeq, keep)
		if err != nil {
			f.Close()
			return rep, err
		}
		rep.Problem += fmt.Sprintf("; %d intact records after the damage to salvage, %d not", rep.Salvaged, rep.Dropped)
	}
	f.Close()
	if !repair {
		return rep, nil
	}
	if rep.State == FsckTornTail {
		f, err := fsys.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return rep, err
		}
		defer f.Close()
		if rep.MovedTo, err = keepTornTail(fsys, f, path, rep.GoodBytes, rep.FileBytes, false); err != nil {
			return rep, err
		}
		if err := f.Truncate(rep.GoodBytes); err != nil {
			return rep, err
		}
		if err := f.Sync(); err != nil {
			return rep, err
		}
		rep.Repaired = true
		return rep, nil
	}
	id, moved, err := salvage(fsys, path, rep.GoodBytes, tail, false)
	if err != nil {
		return rep, err
	}
	rep.Repaired, rep.MovedTo, rep.NewLogID = true, moved, id
	return rep, nil
}

// fsckRecord checks one commit record strictly.
func fsckRecord(body []byte, repo string, ids map[core.CommitID]string, full map[core.CommitID]bool) error {
	v, err := parseCommitBody(body)
	if err != nil {
		return err
	}
	c, err := core.DecodeCommit(v.json)
	if err != nil {
		return fmt.Errorf("%w: commit %s: %v", core.ErrCorrupt, v.id, err)
	}
	// The tombstone flag of a delta commit depends on its base's value:
	// taken as stored. Everything else must be what the writer derives.
	m := commitMeta{id: c.ID, ts: c.TS, flags: v.flags & flagDeleted, parents: c.Parents, key: c.Key}
	if c.Delta != nil {
		m.flags |= flagDelta
		m.base = c.Delta.Base
	} else if core.IsDeleted(c.Data) != (v.flags&flagDeleted != 0) {
		return fmt.Errorf("%w: commit %s: tombstone flag disagrees with the data", core.ErrCorrupt, c.ID)
	}
	if c.IsMerge() {
		m.flags |= flagMerge
	}
	if !bytes.Equal(appendCommitBody(nil, &m, v.json), body) {
		return fmt.Errorf("%w: commit %s: index fields disagree with the commit JSON", core.ErrCorrupt, v.id)
	}
	if c.Repo != repo {
		return fmt.Errorf("%w: commit %s belongs to repository %q", core.ErrCorrupt, c.ID, c.Repo)
	}
	if _, dup := ids[c.ID]; dup {
		return fmt.Errorf("%w: commit %s appears twice", core.ErrCorrupt, c.ID)
	}
	for _, p := range c.Parents {
		k, ok := ids[p]
		if !ok {
			return fmt.Errorf("%w: commit %s precedes its parent %s", core.ErrCorrupt, c.ID, p)
		}
		if k != c.Key {
			return fmt.Errorf("%w: commit %s has parent %s of item %q", core.ErrCorrupt, c.ID, p, k)
		}
	}
	if c.Delta != nil && !full[c.Delta.Base] {
		return fmt.Errorf("%w: commit %s: delta base %s absent or not full data", core.ErrCorrupt, c.ID, c.Delta.Base)
	}
	ids[c.ID] = c.Key
	if c.Data != nil {
		full[c.ID] = true
	}
	return nil
}
