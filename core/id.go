package core

import (
	"encoding/hex"
	"fmt"
)

// CommitID is the SHA-256 of a commit's canonical JSON without "id" and
// "sig" (DESIGN section 3). On the wire it is 64 lowercase hex characters.
type CommitID [32]byte

// ZeroID is the all-zero id; no real commit has it.
var ZeroID CommitID

// String returns the lowercase hex form.
func (id CommitID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is the zero value.
func (id CommitID) IsZero() bool { return id == ZeroID }

// Compare orders ids by their bytes, which is also the order of their hex
// strings.
func (id CommitID) Compare(o CommitID) int {
	for i := range id {
		if id[i] != o[i] {
			if id[i] < o[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// MarshalText implements encoding.TextMarshaler.
func (id CommitID) MarshalText() ([]byte, error) {
	b := make([]byte, 64)
	hex.Encode(b, id[:])
	return b, nil
}

// UnmarshalText accepts exactly 64 lowercase hex characters.
func (id *CommitID) UnmarshalText(b []byte) error {
	p, err := ParseCommitID(string(b))
	if err != nil {
		return err
	}
	*id = p
	return nil
}

// ParseCommitID parses 64 lowercase hex characters. Upper case is refused so
// that every id has exactly one spelling.
func ParseCommitID(s string) (CommitID, error) {
	var id CommitID
	if len(s) != 64 {
		return id, fmt.Errorf("%w: commit id must be 64 hex characters, got %d", ErrInvalid, len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return id, fmt.Errorf("%w: commit id has a character that is not lowercase hex at %d", ErrInvalid, i)
		}
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("%w: commit id: %v", ErrInvalid, err)
	}
	return id, nil
}
