package storage

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"

	"github.com/goat-gateway/goat-gateway/core"
)

// These constants are part of the wire format (the package comment draws
// it) and must not change without a new format version.
const (
	headerMagic            = "GOATLOG\x00"
	formatVersion          = 1
	headerSize             = 32
	frameHeaderSize        = 8
	payloadHeaderSize      = 17
	maxPayload             = 4 << 20
	kindCommit        byte = 1
	kindClose         byte = 2

	flagDelta   byte = 1 << 0
	flagMerge   byte = 1 << 1
	flagDeleted byte = 1 << 2
	knownFlags       = flagDelta | flagMerge | flagDeleted
)

// Recovery heuristics, not wire format: the units in which a disk and a
// page cache lose unwritten data.
const (
	sectorSize = 512
	pageSize   = 4096
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// LogID identifies one incarnation of a repository log (see the package
// comment). Its text form is 32 lowercase hex characters.
type LogID [16]byte

func (id LogID) String() string { return hex.EncodeToString(id[:]) }

// MarshalText implements encoding.TextMarshaler.
func (id LogID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// ParseLogID parses the text form of a LogID.
func ParseLogID(s string) (LogID, error) {
	var id LogID
	if len(s) != 2*len(id) {
		return id, fmt.Errorf("%w: log id must be %d hex characters", core.ErrInvalid, 2*len(id))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil || hex.EncodeToString(id[:]) != s {
		return LogID{}, fmt.Errorf("%w: log id must be lowercase hex", core.ErrInvalid)
	}
	return id, nil
}

func newLogID() LogID {
	var id LogID
	rand.Read(id[:])
	return id
}

func encodeHeader(id LogID) []byte {
	b := make([]byte, headerSize)
	copy(b, headerMagic)
	binary.LittleEndian.PutUint32(b[8:], formatVersion)
	copy(b[12:28], id[:])
	binary.LittleEndian.PutUint32(b[28:], crc(b[:28]))
	return b
}

func decodeHeader(b []byte) (LogID, error) {
	var id LogID
	if len(b) < headerSize {
		return id, fmt.Errorf("%w: file header: %d bytes, want %d", core.ErrCorrupt, len(b), headerSize)
	}
	if string(b[:8]) != headerMagic {
		return id, fmt.Errorf("%w: file header: bad magic %q (not a goat-gateway log)", core.ErrCorrupt, b[:8])
	}
	if got, want := binary.LittleEndian.Uint32(b[28:]), crc(b[:28]); got != want {
		return id, fmt.Errorf("%w: file header: checksum mismatch", core.ErrCorrupt)
	}
	if v := binary.LittleEndian.Uint32(b[8:]); v != formatVersion {
		return id, fmt.Errorf("%w: file header: format version %d, this binary reads version %d", core.ErrCorrupt, v, formatVersion)
	}
	copy(id[:], b[12:28])
	return id, nil
}

// payloadHeader is the part of every payload that precedes the body.
type payloadHeader struct {
	seq   uint64
	group int64
	kind  byte
}

// appendFrame appends one framed record to dst.
func appendFrame(dst []byte, h payloadHeader, body []byte) []byte {
	n := payloadHeaderSize + len(body)
	start := len(dst)
	dst = append(dst, make([]byte, frameHeaderSize+payloadHeaderSize)...)
	p := dst[start+frameHeaderSize:]
	binary.LittleEndian.PutUint64(p[0:], h.seq)
	binary.LittleEndian.PutUint64(p[8:], uint64(h.group))
	p[16] = h.kind
	dst = append(dst, body...)
	binary.LittleEndian.PutUint32(dst[start:], uint32(n))
	binary.LittleEndian.PutUint32(dst[start+4:], crc(dst[start+frameHeaderSize:]))
	return dst
}

// frameStatus says why the bytes at some position are not a valid frame.
type frameStatus int

const (
	frameOK        frameStatus = iota
	frameShort                 // fewer than 8 header bytes before EOF
	frameBadLength             // length outside [payloadHeaderSize, maxPayload]
	framePastEOF               // the payload would run past EOF
	frameBadCRC                // checksum mismatch
	frameBadHeader             // CRC-valid, but the payload header is malformed
)

func (s frameStatus) String() string {
	return [...]string{"ok", "incomplete frame header", "length out of range", "frame runs past end of file", "checksum mismatch", "malformed payload header"}[s]
}

// frameLen reads a frame header and reports the payload length, or why the
// frame cannot be valid before its payload is even read. avail is the
// number of bytes from the frame's start to EOF.
func frameLen(hdr []byte, avail int64) (int, frameStatus) {
	if len(hdr) < frameHeaderSize || avail < frameHeaderSize {
		return 0, frameShort
	}
	n := binary.LittleEndian.Uint32(hdr)
	if n < payloadHeaderSize || n > maxPayload {
		return 0, frameBadLength
	}
	if int64(n)+frameHeaderSize > avail {
		return 0, framePastEOF
	}
	return int(n), frameOK
}

// checkFrame validates a whole frame (header and payload) that starts at
// file position pos.
func checkFrame(frame []byte, pos int64) (payloadHeader, frameStatus) {
	if got, want := binary.LittleEndian.Uint32(frame[4:]), crc(frame[frameHeaderSize:]); got != want {
		return payloadHeader{}, frameBadCRC
	}
	p := frame[frameHeaderSize:]
	h := payloadHeader{
		seq:   binary.LittleEndian.Uint64(p[0:]),
		group: int64(binary.LittleEndian.Uint64(p[8:])),
		kind:  p[16],
	}
	if (h.kind != kindCommit && h.kind != kindClose) || h.group < headerSize || h.group > pos {
		return h, frameBadHeader
	}
	return h, frameOK
}

// commitMeta is the index part of a commit body, as the writer fills it.
type commitMeta struct {
	id      core.CommitID
	ts      int64
	flags   byte
	parents []core.CommitID
	base    core.CommitID // zero unless flagDelta
	key     string
}

// appendCommitBody appends the commit body for m and the canonical JSON js.
func appendCommitBody(dst []byte, m *commitMeta, js []byte) []byte {
	dst = append(dst, m.id[:]...)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(m.ts))
	dst = append(dst, m.flags)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(m.parents)))
	for _, p := range m.parents {
		dst = append(dst, p[:]...)
	}
	if m.flags&flagDelta != 0 {
		dst = append(dst, m.base[:]...)
	}
	dst = append(dst, byte(len(m.key)))
	dst = append(dst, m.key...)
	return append(dst, js...)
}

// bodyView is a parsed commit body. Its slices alias the bytes it was
// parsed from, so that opening a log allocates nothing per record beyond
// the index itself.
type bodyView struct {
	id      core.CommitID
	ts      int64
	flags   byte
	parents []byte // 32 bytes per parent
	base    core.CommitID
	key     []byte
	json    []byte
}

func (v *bodyView) nparents() int { return len(v.parents) / 32 }

func (v *bodyView) parent(i int) core.CommitID { return core.CommitID(v.parents[32*i:]) }

// parseCommitBody parses a commit body. A CRC-valid body that does not
// parse was written wrong, never torn, so every error is core.ErrCorrupt.
func parseCommitBody(b []byte) (bodyView, error) {
	var v bodyView
	const fixed = 32 + 8 + 1 + 2
	if len(b) < fixed {
		return v, fmt.Errorf("%w: commit record: %d bytes", core.ErrCorrupt, len(b))
	}
	v.id = core.CommitID(b)
	v.ts = int64(binary.LittleEndian.Uint64(b[32:]))
	v.flags = b[40]
	np := int(binary.LittleEndian.Uint16(b[41:]))
	b = b[fixed:]
	if v.flags&^knownFlags != 0 {
		return v, fmt.Errorf("%w: commit record %s: unknown flags %#x", core.ErrCorrupt, v.id, v.flags)
	}
	if v.ts < 0 || v.ts > core.MaxTS {
		return v, fmt.Errorf("%w: commit record %s: ts %d out of range", core.ErrCorrupt, v.id, v.ts)
	}
	if np > core.MaxParents || len(b) < 32*np {
		return v, fmt.Errorf("%w: commit record %s: %d parents", core.ErrCorrupt, v.id, np)
	}
	v.parents = b[:32*np]
	b = b[32*np:]
	if v.flags&flagDelta != 0 {
		if len(b) < 32 {
			return v, fmt.Errorf("%w: commit record %s: truncated base", core.ErrCorrupt, v.id)
		}
		v.base = core.CommitID(b)
		b = b[32:]
	}
	if len(b) < 1 || b[0] == 0 || len(b) < 1+int(b[0]) {
		return v, fmt.Errorf("%w: commit record %s: bad key", core.ErrCorrupt, v.id)
	}
	kl := int(b[0])
	v.key = b[1 : 1+kl]
	v.json = b[1+kl:]
	if len(v.json) < 2 || v.json[0] != '{' || v.json[len(v.json)-1] != '}' {
		return v, fmt.Errorf("%w: commit record %s: body is not a JSON object", core.ErrCorrupt, v.id)
	}
	return v, nil
}

// isZero reports whether b is all zero bytes.
func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
