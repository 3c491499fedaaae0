package sync

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/goat-gateway/goat-gateway/core"
)

// LogID identifies one node's log of one repository. A log that is rebuilt
// (restored, re-imported, compacted) gets a new identity, so that offsets
// into the old one are never misread against the new one.
type LogID [16]byte

// Cursor is a position in a node's log: Offset records of log Log have been
// consumed, and the next record to read is the one with ordinal Offset
// (0-based). The zero offset is the start of the log.
//
// On the wire a cursor is opaque: base64url without padding (39 characters)
// of 29 bytes:
//
//	version (1 byte, 1) | log id (16) | offset (8, big-endian) | CRC-32C (4, big-endian) of the 25 bytes before it
//
// The checksum catches cursors mangled by hand or by truncation; it is not
// a signature, a cursor grants nothing.
type Cursor struct {
	Log    LogID
	Offset uint64
}

const (
	cursorVersion = 1
	cursorBytes   = 1 + 16 + 8 + 4
)

// CursorLen is the length of an encoded cursor: base64 without padding
// takes 6 bits per character.
const CursorLen = (cursorBytes*8 + 5) / 6

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// EncodeCursor returns the wire form of (logID, offset).
func EncodeCursor(logID LogID, offset uint64) string {
	return encodeCursor(cursorVersion, logID, offset)
}

func encodeCursor(version byte, logID LogID, offset uint64) string {
	var b [cursorBytes]byte
	b[0] = version
	copy(b[1:17], logID[:])
	binary.BigEndian.PutUint64(b[17:25], offset)
	binary.BigEndian.PutUint32(b[25:], crc32.Checksum(b[:25], castagnoli))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// String returns the wire form.
func (c Cursor) String() string { return EncodeCursor(c.Log, c.Offset) }

// DecodeCursor parses the wire form. A malformed cursor is core.ErrInvalid.
// Whether the cursor belongs to the log being read is the caller's check
// (see Cursor.For): a cursor of another log is core.ErrMustReconcile.
func DecodeCursor(s string) (Cursor, error) {
	var c Cursor
	if len(s) != CursorLen {
		return c, fmt.Errorf("%w: cursor must be %d characters, got %d", core.ErrInvalid, CursorLen, len(s))
	}
	var b [cursorBytes]byte
	n, err := base64.RawURLEncoding.Strict().Decode(b[:], []byte(s))
	if err != nil || n != cursorBytes {
		return c, fmt.Errorf("%w: cursor is not base64url", core.ErrInvalid)
	}
	if b[0] != cursorVersion {
		return c, fmt.Errorf("%w: cursor version %d, want %d", core.ErrInvalid, b[0], cursorVersion)
	}
	if crc32.Checksum(b[:25], castagnoli) != binary.BigEndian.Uint32(b[25:]) {
		return c, fmt.Errorf("%w: cursor checksum mismatch", core.ErrInvalid)
	}
	copy(c.Log[:], b[1:17])
	c.Offset = binary.BigEndian.Uint64(b[17:25])
	return c, nil
}

// For checks that c points into the log identified by log, whose length is
// end records. A cursor of another log, or beyond the end of this one (which
// can only come from an older log that happened to share the identity), is
// core.ErrMustReconcile: the holder has to reconcile instead.
func (c Cursor) For(log LogID, end uint64) error {
	if c.Log != log {
		return fmt.Errorf("%w: cursor of another log", core.ErrMustReconcile)
	}
	if c.Offset > end {
		return fmt.Errorf("%w: cursor offset %d beyond the log end %d", core.ErrMustReconcile, c.Offset, end)
	}
	return nil
}
