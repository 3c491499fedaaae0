package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/goat-gateway/goat-gateway/core"
)

// Index checkpoints (see "Index checkpoints" in the package comment): a
// repository's index, as of a prefix of its log, saved next to the log so
// that opening reads only what was appended after it.

// These constants are part of the checkpoint format.
const (
	ckptMagic      = "GOATIDX\x00"
	ckptVersion    = 1
	ckptHeaderSize = 88
	ckptTailBytes  = 4096 // how much of the covered log's end the checkpoint checksums
	ckptClosed     = 1    // header flag: the covered prefix ends with a close marker
)

// ckptBufSize is the unit in which checkpoints are written and read: the
// cost of either is this buffer and the index itself, never the whole file.
const ckptBufSize = 1 << 20

// ckptMaxRecord bounds the encoded size of one commit in a checkpoint body
// (id, seven varints, flags, parents, base), so that the reader knows how
// many bytes to have at hand before it decodes one.
const ckptMaxRecord = 32 + 8*binary.MaxVarintLen64 + 1 + (core.MaxParents+1)*binary.MaxVarintLen64

func ckptPath(logPath string) string {
	return logPath[:len(logPath)-len(filepath.Ext(logPath))] + ".idx"
}

// ckptHeader is the fixed part of a checkpoint file.
type ckptHeader struct {
	logID   LogID
	end     int64  // byte length of the covered log prefix
	records int    // commit records in it
	lastSeq uint64 // seq of its last commit record
	flags   uint32
	tailCRC uint32 // CRC-32C of the log's bytes [max(headerSize, end-ckptTailBytes), end)
	keys    int
	edges   int
	bodyLen int64
	bodyCRC uint32
}

func (h *ckptHeader) encode() []byte {
	b := make([]byte, ckptHeaderSize)
	copy(b, ckptMagic)
	binary.LittleEndian.PutUint32(b[8:], ckptVersion)
	copy(b[12:28], h.logID[:])
	binary.LittleEndian.PutUint64(b[28:], uint64(h.end))
	binary.LittleEndian.PutUint64(b[36:], uint64(h.records))
	binary.LittleEndian.PutUint64(b[44:], h.lastSeq)
	binary.LittleEndian.PutUint32(b[52:], h.flags)
	binary.LittleEndian.PutUint32(b[56:], h.tailCRC)
	binary.LittleEndian.PutUint32(b[60:], uint32(h.keys))
	binary.LittleEndian.PutUint32(b[64:], uint32(h.edges))
	binary.LittleEndian.PutUint64(b[68:], uint64(h.bodyLen))
	binary.LittleEndian.PutUint32(b[76:], h.bodyCRC)
	binary.LittleEndian.PutUint32(b[84:], crc(b[:84]))
	return b
}

func decodeCkptHeader(b []byte) (ckptHeader, error) {
	var h ckptHeader
	switch {
	case len(b) < ckptHeaderSize:
		return h, errors.New("short header")
	case string(b[:8]) != ckptMagic:
		return h, errors.New("bad magic")
	case binary.LittleEndian.Uint32(b[84:]) != crc(b[:84]):
		return h, errors.New("header checksum mismatch")
	case binary.LittleEndian.Uint32(b[8:]) != ckptVersion:
		return h, fmt.Errorf("version %d", binary.LittleEndian.Uint32(b[8:]))
	}
	copy(h.logID[:], b[12:28])
	h.end = int64(binary.LittleEndian.Uint64(b[28:]))
	rec := binary.LittleEndian.Uint64(b[36:])
	h.lastSeq = binary.LittleEndian.Uint64(b[44:])
	h.flags = binary.LittleEndian.Uint32(b[52:])
	h.tailCRC = binary.LittleEndian.Uint32(b[56:])
	h.keys = int(binary.LittleEndian.Uint32(b[60:]))
	h.edges = int(binary.LittleEndian.Uint32(b[64:]))
	h.bodyLen = int64(binary.LittleEndian.Uint64(b[68:]))
	h.bodyCRC = binary.LittleEndian.Uint32(b[76:])
	if h.end < headerSize || rec > maxCommits || h.bodyLen < 0 || h.flags&^ckptClosed != 0 ||
		h.keys > int(rec) || h.edges > int(rec)*core.MaxParents {
		return h, errors.New("header fields out of range")
	}
	h.records = int(rec)
	return h, nil
}

// ckptSnapshot is what a checkpoint is written from: a prefix of an index.
// Every slice is either immutable (entries and parent edges are never
// changed once appended) or a private copy, so that it is encoded without
// holding the repository's lock.
type ckptSnapshot struct {
	hdr        ckptHeader
	ents       []entry
	edgeParent []int32
	names      []string
	sortedKeys []uint32
}

// snapshotLocked takes a snapshot of the index (r.mu held, read or write)
// covering the log up to end (a frame boundary after the last record, and
// after a close marker when closed), whose last bytes are read from the
// file.
func (r *Repo) snapshotLocked(end int64, closed bool) (*ckptSnapshot, error) {
	x := r.idx
	n := len(x.ents)
	s := &ckptSnapshot{ents: x.ents[:n:n], edgeParent: x.edgeParent[:len(x.edgeParent):len(x.edgeParent)]}
	s.names = make([]string, len(x.keys))
	for i := range x.keys {
		s.names[i] = x.keys[i].name
	}
	s.sortedKeys = slices.Clone(x.sortedKeys)
	from := max(int64(headerSize), end-ckptTailBytes)
	tail, err := r.log.readAt(from, int(end-from))
	if err != nil {
		return nil, err
	}
	s.hdr = ckptHeader{logID: r.log.id, end: end, records: n, tailCRC: crc(tail), keys: len(x.keys), edges: len(x.edgeParent)}
	if n > 0 {
		s.hdr.lastSeq = x.ents[n-1].seq
	}
	if closed {
		s.hdr.flags |= ckptClosed
	}
	return s, nil
}

// ckptWriter streams a checkpoint body to a file through one buffer,
// checksumming as it goes.
type ckptWriter struct {
	f   File
	buf []byte
	off int64
	crc uint32
	err error
}

func (w *ckptWriter) flush() {
	if w.err != nil || len(w.buf) == 0 {
		w.buf = w.buf[:0]
		return
	}
	w.crc = crc32.Update(w.crc, castagnoli, w.buf)
	_, w.err = w.f.WriteAt(w.buf, w.off)
	w.off += int64(len(w.buf))
	w.buf = w.buf[:0]
}

// room flushes the buffer unless n more bytes fit in it.
func (w *ckptWriter) room(n int) {
	if len(w.buf)+n > cap(w.buf) {
		w.flush()
	}
}

// writeCheckpoint writes s to path atomically (temporary file, fsync,
// rename, directory fsync), so that a crash leaves the old checkpoint, the
// new one, or none, never a torn one under the name.
func writeCheckpoint(fsys FS, path string, s *ckptSnapshot, noSync bool) error {
	tmp := path + ".tmp"
	f, err := fsys.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	w := &ckptWriter{f: f, buf: make([]byte, 0, ckptBufSize), off: ckptHeaderSize}
	for _, name := range s.names {
		w.room(1 + len(name))
		w.buf = append(w.buf, byte(len(name)))
		w.buf = append(w.buf, name...)
	}
	for _, k := range s.sortedKeys {
		w.room(binary.MaxVarintLen64)
		w.buf = binary.AppendUvarint(w.buf, uint64(k))
	}
	var prevSeq uint64
	var prevTS int64
	prevEnd := int64(headerSize)
	for i := range s.ents {
		e := &s.ents[i]
		w.room(ckptMaxRecord)
		w.buf = append(w.buf, e.id[:]...)
		w.buf = binary.AppendUvarint(w.buf, e.seq-prevSeq)
		w.buf = binary.AppendVarint(w.buf, e.ts-prevTS)
		w.buf = binary.AppendUvarint(w.buf, uint64(e.pos-prevEnd))
		w.buf = binary.AppendUvarint(w.buf, uint64(e.size))
		w.buf = binary.AppendUvarint(w.buf, uint64(e.key))
		w.buf = append(w.buf, e.flags)
		w.buf = binary.AppendUvarint(w.buf, uint64(e.npar))
		for _, p := range s.edgeParent[e.par : e.par+uint32(e.npar)] {
			w.buf = binary.AppendUvarint(w.buf, uint64(int32(i)-p))
		}
		if e.flags&flagDelta != 0 {
			w.buf = binary.AppendUvarint(w.buf, uint64(int32(i)-e.base))
		}
		prevSeq, prevTS, prevEnd = e.seq, e.ts, e.pos+int64(e.size)
	}
	w.flush()
	if w.err == nil {
		s.hdr.bodyLen, s.hdr.bodyCRC = w.off-ckptHeaderSize, w.crc
		_, w.err = f.WriteAt(s.hdr.encode(), 0)
	}
	if w.err == nil && !noSync {
		w.err = f.Sync()
	}
	if cerr := f.Close(); w.err == nil {
		w.err = cerr
	}
	if w.err != nil {
		_ = fsys.Remove(tmp)
		return w.err
	}
	if err := fsys.Rename(tmp, path); err != nil {
		return err
	}
	if noSync {
		return nil
	}
	return fsys.SyncDir(filepath.Dir(path))
}

// ckptReader reads a checkpoint body through one buffer, checksumming as
// it goes.
type ckptReader struct {
	f    File
	off  int64 // file position of buf's end
	end  int64 // file position of the body's end
	buf  []byte
	at   int // next unread byte of buf
	crc  uint32
	fail error
}

// need makes at least n bytes available at r.buf[r.at:] unless the body
// ends first; it reports whether they are.
func (r *ckptReader) need(n int) bool {
	if len(r.buf)-r.at >= n {
		return true
	}
	if r.fail != nil {
		return false
	}
	rest := copy(r.buf[:cap(r.buf)], r.buf[r.at:])
	r.buf, r.at = r.buf[:rest], 0
	want := int(min(int64(cap(r.buf)-rest), r.end-r.off))
	if want > 0 {
		m, err := r.f.ReadAt(r.buf[rest:rest+want], r.off)
		if m < want {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			r.fail = err
			return false
		}
		r.crc = crc32.Update(r.crc, castagnoli, r.buf[rest:rest+want])
		r.buf = r.buf[:rest+want]
		r.off += int64(want)
	}
	return len(r.buf)-r.at >= n
}

func (r *ckptReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.buf[r.at:])
	if n <= 0 {
		r.fail = errors.New("bad varint")
		return 0
	}
	r.at += n
	return v
}

func (r *ckptReader) varint() int64 {
	v, n := binary.Varint(r.buf[r.at:])
	if n <= 0 {
		r.fail = errors.New("bad varint")
		return 0
	}
	r.at += n
	return v
}

// ckptStart is where a log scan resumes after a checkpoint.
type ckptStart struct {
	end     int64
	records int
	lastSeq uint64
	closed  bool
}

// loadCheckpoint reads the checkpoint at path and, if it matches the log
// (the open file f of size logSize, whose header names logID), returns the
// index it holds and where the scan of the log resumes. A missing file is
// (nil, nil); anything that does not match or does not check out is an
// error that says why, and the caller rebuilds the index from the whole
// log instead. Nothing the checkpoint says is trusted before its checksums
// and its structure are checked: a bad checkpoint costs time, never
// correctness.
func loadCheckpoint(fsys FS, path string, log io.ReaderAt, logSize int64, logID LogID) (*index, ckptStart, error) {
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, ckptStart{}, nil
		}
		return nil, ckptStart{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, ckptStart{}, err
	}
	hb := make([]byte, ckptHeaderSize)
	if _, err := f.ReadAt(hb, 0); err != nil {
		return nil, ckptStart{}, fmt.Errorf("read header: %w", err)
	}
	h, err := decodeCkptHeader(hb)
	if err != nil {
		return nil, ckptStart{}, err
	}
	switch {
	case h.logID != logID:
		return nil, ckptStart{}, errors.New("made for another incarnation of the log (log id differs)")
	case h.end > logSize:
		return nil, ckptStart{}, fmt.Errorf("covers %d bytes of a %d-byte log", h.end, logSize)
	case ckptHeaderSize+h.bodyLen != st.Size():
		return nil, ckptStart{}, fmt.Errorf("file is %d bytes, header says %d", st.Size(), ckptHeaderSize+h.bodyLen)
	}
	from := max(int64(headerSize), h.end-ckptTailBytes)
	tail := make([]byte, h.end-from)
	if _, err := log.ReadAt(tail, from); err != nil {
		return nil, ckptStart{}, fmt.Errorf("read the log's covered end: %w", err)
	}
	if crc(tail) != h.tailCRC {
		return nil, ckptStart{}, errors.New("the log's covered end does not match its checksum")
	}
	x, err := decodeCkptBody(f, &h, logSize)
	if err != nil {
		return nil, ckptStart{}, err
	}
	return x, ckptStart{end: h.end, records: h.records, lastSeq: h.lastSeq, closed: h.flags&ckptClosed != 0}, nil
}

// decodeCkptBody builds the index a checkpoint body describes, checking
// every field against the structure an index built from the log would
// have (topological order, parents and bases of the same item, frames
// inside the covered prefix, increasing sequence numbers). logSize is used
// to leave room in the index for the log's tail.
func decodeCkptBody(f File, h *ckptHeader, logSize int64) (_ *index, err error) {
	r := &ckptReader{f: f, off: ckptHeaderSize, end: ckptHeaderSize + h.bodyLen, buf: make([]byte, 0, ckptBufSize)}
	x := &index{}
	defer func() {
		if err != nil { // the index is dropped; a good one is finished by finishBulk
			x.huge.withdraw()
		}
	}()
	// Room for the tail, estimated from the covered part's average record.
	want := h.records
	if h.records > 0 && logSize > h.end {
		want += int(float64(logSize-h.end) / float64(h.end-headerSize) * float64(h.records) * 1.05)
	}
	x.keys = make([]keyState, h.keys, h.keys+h.keys/16)
	adviseHuge(&x.huge, x.keys)
	for k := range h.keys {
		if !r.need(1) || !r.need(1+int(r.buf[r.at])) {
			return nil, errors.New("truncated key table")
		}
		n := int(r.buf[r.at])
		name := string(r.buf[r.at+1 : r.at+1+n])
		r.at += 1 + n
		if n == 0 {
			return nil, errors.New("empty key")
		}
		x.keys[k] = keyState{name: name, last: -1}
	}
	// No map from names yet (index.keyMap builds it on first use): a name
	// that is there twice is caught below, as two equal neighbours in the
	// sorted order.
	x.sortedKeys = make([]uint32, h.keys, cap(x.keys))
	seen := make([]bool, h.keys)
	for i := range h.keys {
		r.need(binary.MaxVarintLen64)
		k := r.uvarint()
		if r.fail != nil || k >= uint64(h.keys) || seen[k] {
			return nil, errors.New("sorted keys: not a permutation")
		}
		seen[k] = true
		x.sortedKeys[i] = uint32(k)
		if i > 0 && compareKeys(x.keys[x.sortedKeys[i-1]].name, x.keys[k].name) >= 0 {
			return nil, errors.New("sorted keys: out of order or repeated")
		}
	}
	x.ents = make([]entry, h.records, want)
	x.childHead = make([]int32, h.records, want)
	x.edgeParent = make([]int32, 0, h.edges+(want-h.records))
	x.edgeChild = make([]int32, 0, cap(x.edgeParent))
	x.edgeNext = make([]int32, 0, cap(x.edgeParent))
	for _, s := range [][]int32{x.childHead, x.edgeParent, x.edgeChild, x.edgeNext} {
		adviseHuge(&x.huge, s)
	}
	adviseHuge(&x.huge, x.ents)
	var prevSeq uint64
	var prevTS int64
	prevEnd := int64(headerSize)
	x.ids = newIDTable(want, &x.huge)
	ids := buildIDs(x)
	defer func() {
		if ids.ranges != nil {
			ids.wait()
		}
	}()
	handed := 0
	for i := range int32(h.records) {
		if int(i)-handed == idBuildChunk {
			ids.add(handed, int(i))
			handed = int(i)
		}
		r.need(32 + 8*binary.MaxVarintLen64 + 1) // less only at the body's end; short varints fail below
		if len(r.buf)-r.at < 32 {
			return nil, fmt.Errorf("record %d: truncated", i)
		}
		e := &x.ents[i]
		e.id = core.CommitID(r.buf[r.at:])
		r.at += 32
		seqd := r.uvarint()
		e.seq = prevSeq + seqd
		e.ts = prevTS + r.varint()
		gap := r.uvarint()
		size := r.uvarint()
		key := r.uvarint()
		if r.fail != nil || r.at >= len(r.buf) {
			return nil, fmt.Errorf("record %d: truncated", i)
		}
		e.flags = r.buf[r.at]
		r.at++
		r.need((core.MaxParents + 2) * binary.MaxVarintLen64)
		npar := r.uvarint()
		switch {
		case r.fail != nil:
			return nil, fmt.Errorf("record %d: %w", i, r.fail)
		case seqd == 0 || e.seq < prevSeq:
			return nil, fmt.Errorf("record %d: sequence numbers do not increase", i)
		case e.ts < 0 || e.ts > core.MaxTS:
			return nil, fmt.Errorf("record %d: ts out of range", i)
		case gap > uint64(h.end) || size < frameHeaderSize+payloadHeaderSize || size > frameHeaderSize+maxPayload:
			return nil, fmt.Errorf("record %d: frame out of range", i)
		case key >= uint64(h.keys):
			return nil, fmt.Errorf("record %d: key out of range", i)
		case e.flags&^knownFlags != 0:
			return nil, fmt.Errorf("record %d: unknown flags", i)
		case npar > core.MaxParents:
			return nil, fmt.Errorf("record %d: %d parents", i, npar)
		}
		e.pos = prevEnd + int64(gap)
		e.size = uint32(size)
		if e.pos+int64(e.size) > h.end {
			return nil, fmt.Errorf("record %d: past the covered prefix", i)
		}
		ks := &x.keys[key]
		e.key, e.prev, e.base = uint32(key), ks.last, -1
		ks.last = i
		e.par, e.npar = uint32(len(x.edgeParent)), uint16(npar)
		for range npar {
			d := r.uvarint()
			if r.fail != nil || d == 0 || d > uint64(i) {
				return nil, fmt.Errorf("record %d: parent out of range", i)
			}
			p := i - int32(d)
			if x.ents[p].key != e.key {
				return nil, fmt.Errorf("record %d: a parent of another item", i)
			}
			edge := int32(len(x.edgeParent))
			x.edgeParent = append(x.edgeParent, p)
			x.edgeChild = append(x.edgeChild, i)
			x.edgeNext = append(x.edgeNext, x.childHead[p])
			x.childHead[p] = edge + 1
		}
		if e.flags&flagDelta != 0 {
			d := r.uvarint()
			if r.fail != nil || d == 0 || d > uint64(i) {
				return nil, fmt.Errorf("record %d: delta base out of range", i)
			}
			e.base = i - int32(d)
			if b := &x.ents[e.base]; b.flags&flagDelta != 0 || b.key != e.key {
				return nil, fmt.Errorf("record %d: delta base not a full-data commit of the item", i)
			}
		}
		xorID(&x.digest, &e.id)
		prevSeq, prevTS, prevEnd = e.seq, e.ts, e.pos+int64(e.size)
	}
	ids.add(handed, h.records)
	if r.fail != nil {
		return nil, r.fail
	}
	if r.at != len(r.buf) || r.off != r.end {
		return nil, errors.New("bytes after the last record")
	}
	if r.crc != h.bodyCRC {
		return nil, errors.New("body checksum mismatch")
	}
	if len(x.edgeParent) != h.edges {
		return nil, errors.New("edge count differs from the header's")
	}
	last := prevEnd
	if h.flags&ckptClosed != 0 {
		last += frameHeaderSize + payloadHeaderSize
	}
	if last != h.end || prevSeq != h.lastSeq {
		return nil, errors.New("the records do not end where the covered prefix does")
	}
	// Heads are the commits without children, sorted by id, as add keeps
	// them.
	for i := range x.ents {
		if x.childHead[i] == 0 {
			ks := &x.keys[x.ents[i].key]
			ks.heads = append(ks.heads, int32(i))
		}
	}
	for k := range x.keys {
		if hs := x.keys[k].heads; len(hs) > 1 {
			slices.SortFunc(hs, func(a, b int32) int { return x.ents[a].id.Compare(x.ents[b].id) })
		}
	}
	dup := ids.wait()
	ids.ranges = nil
	if dup >= 0 {
		return nil, fmt.Errorf("commit %s twice", x.ents[dup].id)
	}
	x.ids.n = len(x.ents)
	return x, nil
}

// idBuilder fills an index's id table on its own goroutine while the
// entries are being decoded, one finished range at a time: the table is
// random access into memory, decoding is sequential, and the two overlap
// on a second core. x.ents never grows while it runs (its capacity is
// final), so a finished range stays where it is.
type idBuilder struct {
	ranges chan [2]int
	done   chan int // the ordinal of a repeated id, or -1
}

const idBuildChunk = 1 << 16

func buildIDs(x *index) *idBuilder {
	b := &idBuilder{ranges: make(chan [2]int, 64), done: make(chan int, 1)}
	go func() {
		dup := -1
		for r := range b.ranges {
			for i := r[0]; i < r[1] && dup < 0; i++ {
				if !x.ids.placeNew(x.ents, int32(i)) {
					dup = i
				}
			}
		}
		b.done <- dup
	}()
	return b
}

// add hands over the entries [from, to).
func (b *idBuilder) add(from, to int) {
	if to > from {
		b.ranges <- [2]int{from, to}
	}
}

// wait returns, once every range is placed, the ordinal of a repeated id
// or -1.
func (b *idBuilder) wait() int {
	close(b.ranges)
	return <-b.done
}
