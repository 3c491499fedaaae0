package storage

import (
	"errors"
	"fmt"
	"io"

	"github.com/goat-gateway/goat-gateway/core"
)

// window serves byte ranges of a file from one buffer, refilled on a miss,
// so that a sequential scan costs one read per window and a byte-by-byte
// search after damage costs no reads at all within a window.
type window struct {
	r     io.ReaderAt
	size  int64
	buf   []byte
	start int64
}

const windowSize = 4 << 20

// at returns the bytes [pos, pos+n), or fewer if EOF comes first. The slice
// is valid until the next call.
func (w *window) at(pos int64, n int) ([]byte, error) {
	if rem := w.size - pos; int64(n) > rem {
		n = int(max(rem, 0))
	}
	if pos >= w.start && pos+int64(n) <= w.start+int64(len(w.buf)) {
		return w.buf[pos-w.start : pos-w.start+int64(n)], nil
	}
	want := int(min(max(int64(n), windowSize), w.size-pos))
	if cap(w.buf) < want {
		w.buf = make([]byte, want)
	}
	w.buf = w.buf[:want]
	w.start = pos
	m, err := w.r.ReadAt(w.buf, pos)
	if m < want {
		w.buf = w.buf[:0]
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("read at %d: %w", pos, err)
	}
	return w.buf[:n], nil
}

// tailState is the verdict on the end of a log file.
type tailState int

const (
	tailClean     tailState = iota // every byte belongs to a valid record
	tailTorn                       // garbage after the good prefix, no valid record in it: truncate
	tailTornGroup                  // valid records of the last write after damage that looks unwritten: rewrite
	tailCorrupt                    // damage to acknowledged data: refuse
)

func (t tailState) String() string {
	return [...]string{"clean", "torn tail", "torn last write", "corrupt"}[t]
}

// scanResult describes a scanned log file.
type scanResult struct {
	id       LogID
	size     int64 // file size
	end      int64 // end of the good prefix
	records  int   // records in the good prefix
	lastSeq  uint64
	closed   bool // the good prefix ends with a close marker
	state    tailState
	bad      frameStatus // why the frame at end is not valid (unless tailClean)
	dropped  int         // valid records found after end
	laterPos int64       // tailCorrupt: position of a valid record of a later write
}

func (r *scanResult) describe() string {
	switch r.state {
	case tailClean:
		return fmt.Sprintf("%d records, clean", r.records)
	case tailTorn:
		return fmt.Sprintf("%d records, torn tail at byte %d (%s): %d bytes to truncate", r.records, r.end, r.bad, r.size-r.end)
	case tailTornGroup:
		return fmt.Sprintf("%d records, torn last write at byte %d (%s) with %d whole records after it", r.records, r.end, r.bad, r.dropped)
	default:
		return fmt.Sprintf("%d good records, then damage at byte %d (record %d: %s) before acknowledged data at byte %d",
			r.records, r.end, r.records, r.bad, r.laterPos)
	}
}

// scanVisit receives each good record in order: its byte position, its
// ordinal, its payload header and its body (which aliases a buffer that is
// reused after the call returns).
type scanVisit func(pos int64, ordinal int, h payloadHeader, body []byte) error

// scanLog reads a whole log file, calls visit for every record of the good
// prefix, and classifies what follows it (see "Recovery" in the package
// comment). An error from visit, a bad header, or a CRC-valid record that
// breaks an invariant, is returned as is (wrapping core.ErrCorrupt for
// content problems); the verdict tailCorrupt is not an error here.
func scanLog(r io.ReaderAt, size int64, visit scanVisit) (scanResult, error) {
	return scanLogFrom(r, size, nil, visit)
}

// scanLogFrom is scanLog that, once the header is read, asks resume
// whether a prefix of the log is already accounted for (by an index
// checkpoint): if resume returns a start, records before start.end are
// neither read nor visited, and the scan and the tail's classification go
// on from there exactly as they would have.
func scanLogFrom(r io.ReaderAt, size int64, resume func(id LogID) *ckptStart, visit scanVisit) (scanResult, error) {
	res := scanResult{size: size}
	// The header alone: an open that resumes after a checkpoint reads
	// nothing more before the checkpoint's end, so a window here would
	// read (and fault in a buffer for) megabytes it never looks at.
	hw := &window{r: r, size: min(size, headerSize)}
	hb, err := hw.at(0, headerSize)
	if err != nil && size >= headerSize {
		return res, err
	}
	if res.id, err = decodeHeader(hb); err != nil {
		return res, err
	}
	w := &window{r: r, size: size}
	pos := int64(headerSize)
	if resume != nil {
		if st := resume(res.id); st != nil {
			pos, res.records, res.lastSeq, res.closed = st.end, st.records, st.lastSeq, st.closed
		}
	}
	for pos < size {
		hdr, err := w.at(pos, frameHeaderSize)
		if err != nil {
			return res, err
		}
		n, st := frameLen(hdr, size-pos)
		var h payloadHeader
		var frame []byte
		if st == frameOK {
			if frame, err = w.at(pos, frameHeaderSize+n); err != nil {
				return res, err
			}
			h, st = checkFrame(frame, pos)
		}
		if st != frameOK {
			res.end, res.bad = pos, st
			return res, classifyTail(w, &res)
		}
		if h.kind == kindClose {
			if h.seq != res.lastSeq || n != payloadHeaderSize {
				return res, fmt.Errorf("%w: close marker at byte %d: malformed", core.ErrCorrupt, pos)
			}
			res.closed = true
			pos += int64(frameHeaderSize + n)
			continue
		}
		if h.seq <= res.lastSeq {
			return res, fmt.Errorf("%w: record %d at byte %d: sequence number %d after %d", core.ErrCorrupt, res.records, pos, h.seq, res.lastSeq)
		}
		res.closed = false
		if visit != nil {
			if err := visit(pos, res.records, h, frame[frameHeaderSize+payloadHeaderSize:]); err != nil {
				return res, fmt.Errorf("record %d at byte %d: %w", res.records, pos, err)
			}
		}
		res.lastSeq = h.seq
		res.records++
		pos += int64(frameHeaderSize + n)
	}
	res.end, res.state = pos, tailClean
	return res, nil
}

// classifyTail searches [res.end, EOF) for valid records and sets the
// verdict.
func classifyTail(w *window, res *scanResult) error {
	x := res.end
	firstValid := int64(-1)
	for y := x + 1; y < res.size; y++ {
		hdr, err := w.at(y, frameHeaderSize)
		if err != nil {
			return err
		}
		n, st := frameLen(hdr, res.size-y)
		if st != frameOK {
			continue
		}
		frame, err := w.at(y, frameHeaderSize+n)
		if err != nil {
			return err
		}
		h, st := checkFrame(frame, y)
		if st != frameOK {
			continue
		}
		if h.group > x {
			res.state, res.laterPos = tailCorrupt, y
			return nil
		}
		if firstValid < 0 {
			firstValid = y
		}
		res.dropped++
		y += int64(frameHeaderSize+n) - 1 // the loop's y++ lands on the next frame
	}
	if firstValid < 0 {
		res.state = tailTorn
		return nil
	}
	unwritten, err := looksUnwritten(w, x, firstValid)
	if err != nil {
		return err
	}
	if unwritten {
		res.state = tailTornGroup
	} else {
		res.state, res.laterPos = tailCorrupt, firstValid
	}
	return nil
}

// looksUnwritten reports whether [from, to) holds the signature of blocks
// that never reached the disk: a whole aligned sector of zeros, or zeros
// from `from` to the next page boundary (at least a frame header's worth,
// so that a lone zero byte of a length field does not count).
func looksUnwritten(w *window, from, to int64) (bool, error) {
	if pb := (from/pageSize + 1) * pageSize; pb <= to && pb-from >= frameHeaderSize {
		b, err := w.at(from, int(pb-from))
		if err != nil {
			return false, err
		}
		if isZero(b) {
			return true, nil
		}
	}
	for s := (from + sectorSize - 1) / sectorSize * sectorSize; s+sectorSize <= to; s += sectorSize {
		b, err := w.at(s, sectorSize)
		if err != nil {
			return false, err
		}
		if isZero(b) {
			return true, nil
		}
	}
	return false, nil
}

// salvageFrames searches [from, EOF) byte by byte for valid commit frames,
// as classifyTail does, and returns those that keep, re-framed for a log
// that continues at position at: each keeps its sequence number and body
// (the CRC vouched for it, and keep re-verifies it), and becomes a write
// of its own (group = its new position), so that damage before one of them
// is later refused rather than taken for a torn write. A frame is kept only
// if its sequence number follows the last one kept (a log's numbers
// increase) and keep accepts its body; the others are counted in dropped.
// Close markers are skipped: a salvaged log was not closed cleanly.
func salvageFrames(r io.ReaderAt, size, from, at int64, lastSeq uint64, keep func(body []byte) error) (tail []byte, kept, dropped int, err error) {
	w := &window{r: r, size: size}
	for y := from; y < size; y++ {
		hdr, err := w.at(y, frameHeaderSize)
		if err != nil {
			return nil, 0, 0, err
		}
		n, st := frameLen(hdr, size-y)
		if st != frameOK {
			continue
		}
		frame, err := w.at(y, frameHeaderSize+n)
		if err != nil {
			return nil, 0, 0, err
		}
		h, st := checkFrame(frame, y)
		if st != frameOK {
			continue
		}
		y += int64(frameHeaderSize+n) - 1 // the loop's y++ lands on the next frame
		if h.kind != kindCommit {
			continue
		}
		body := frame[frameHeaderSize+payloadHeaderSize:]
		if h.seq <= lastSeq || keep(body) != nil {
			dropped++
			continue
		}
		pos := at + int64(len(tail))
		tail = appendFrame(tail, payloadHeader{seq: h.seq, group: pos, kind: kindCommit}, body)
		lastSeq = h.seq
		kept++
	}
	return tail, kept, dropped, nil
}
