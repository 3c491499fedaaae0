package sync

import (
	"encoding/hex"
	"fmt"

	"github.com/goat-gateway/goat-gateway/core"
)

// Sum is the XOR of the 32-byte ids of a set of commits. On the wire it is
// 64 lowercase hex characters, like a commit id, and only that spelling is
// accepted so that equal sums have equal strings.
type Sum [32]byte

// String returns the lowercase hex form.
func (s Sum) String() string { return hex.EncodeToString(s[:]) }

// IsZero reports whether s is the sum of the empty set.
func (s Sum) IsZero() bool { return s == Sum{} }

// MarshalText implements encoding.TextMarshaler.
func (s Sum) MarshalText() ([]byte, error) {
	b := make([]byte, 64)
	hex.Encode(b, s[:])
	return b, nil
}

// UnmarshalText implements encoding.TextUnmarshaler; see ParseSum.
func (s *Sum) UnmarshalText(b []byte) error {
	p, err := ParseSum(string(b))
	if err != nil {
		return err
	}
	*s = p
	return nil
}

// ParseSum parses exactly 64 lowercase hex characters.
func ParseSum(s string) (Sum, error) {
	var sum Sum
	if len(s) != 64 {
		return sum, fmt.Errorf("%w: digest must be 64 hex characters, got %d", core.ErrInvalid, len(s))
	}
	if i := notLowerHex(s); i >= 0 {
		return sum, fmt.Errorf("%w: digest has a character that is not lowercase hex at %d", core.ErrInvalid, i)
	}
	hex.Decode(sum[:], []byte(s)) // cannot fail after the checks above
	return sum, nil
}

// notLowerHex returns the index of the first byte of s outside [0-9a-f], or -1.
func notLowerHex(s string) int {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return i
		}
	}
	return -1
}

// Digest summarizes a set of commits: how many there are and the XOR of their
// ids. Two peers with equal digests hold the same set (up to a collision of
// both the count and the 256-bit XOR), so checking costs one small message
// whatever the size of the set. XOR is its own inverse, so a peer maintains
// its digest incrementally with Add and Remove and never rescans.
//
// The zero Digest is the digest of the empty set.
type Digest struct {
	Count int64
	XOR   Sum
}

// Add folds id into d. Adding an id twice cancels it out of the XOR, so
// callers add each commit exactly once, when it is first stored.
func (d *Digest) Add(id core.CommitID) {
	d.Count++
	xorInto(&d.XOR, id)
}

// Remove takes id back out of d; it is the inverse of Add.
func (d *Digest) Remove(id core.CommitID) {
	d.Count--
	xorInto(&d.XOR, id)
}

// Equal reports whether d and o describe the same set.
func (d Digest) Equal(o Digest) bool { return d == o }

// String returns "count:hex" for logs.
func (d Digest) String() string { return fmt.Sprintf("%d:%s", d.Count, d.XOR) }

// Validate checks what a digest from outside must satisfy: a count that is
// not negative, and the empty sum when the count is zero.
func (d Digest) Validate() error {
	if d.Count < 0 {
		return fmt.Errorf("%w: count %d is negative", core.ErrInvalid, d.Count)
	}
	if d.Count == 0 && !d.XOR.IsZero() {
		return fmt.Errorf("%w: digest of an empty set must be zero", core.ErrInvalid)
	}
	return nil
}

// DigestOf computes the digest of ids from scratch.
func DigestOf(ids ...core.CommitID) Digest {
	var d Digest
	for _, id := range ids {
		d.Add(id)
	}
	return d
}

func xorInto(s *Sum, id core.CommitID) {
	for i := range s {
		s[i] ^= id[i]
	}
}
