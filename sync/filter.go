package sync

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/bits-and-blooms/bloom/v3"

	"github.com/goat-gateway/goat-gateway/core"
)

// Limits on filters, checked before anything is allocated for them.
const (
	// SaltSize is the length of a filter's salt in bytes.
	SaltSize = 8
	// MaxFilterBits bounds m: 64 Mbit is 8 MiB of bits (about 11.2 MB of
	// base64), enough for about 2.8 million ids at the densest filter the
	// default policy builds (24 bits per id) and 6 million at 10 bits.
	MaxFilterBits = 1 << 26
	// MaxFilterHashes bounds k. The sizing formula never needs more than 30.
	MaxFilterHashes = 32
)

// elementSize is len(salt || id).
const elementSize = SaltSize + len(core.CommitID{})

// Filter is a Bloom filter over a set of commit ids with a per-filter salt:
// the element for id is salt || id (8 + 32 bytes), hashed by
// github.com/bits-and-blooms/bloom/v3 (MurmurHash3 x64-128 of the element
// and of the element followed by 0x01, combined per probe, modulo m).
// Because every filter has a fresh salt, an id that one filter wrongly
// reports as present is unlikely to be wrongly reported by the next.
//
// Wire form (JSON):
//
//	{"m": 9600, "k": 7, "salt": "0011223344556677", "bits": "base64..."}
//
// m is the number of bits (1..MaxFilterBits), k the number of probes
// (1..MaxFilterHashes), salt 16 lowercase hex characters, and bits the
// standard padded base64 of ceil(m/64) words of 8 bytes, each word a
// big-endian uint64, where bit i of the filter is bit i&63 (counting from the
// least significant) of word i>>6. Bits at positions >= m in the last word
// are zero. This is the layout of bloom.FromWithM and bitset.BitSet.Words.
// Filters built here always have m a multiple of 64, since the wire carries
// whole words anyway; decoders accept any m.
//
// A Filter is not safe for concurrent Add; concurrent Test is fine.
type Filter struct {
	salt [SaltSize]byte
	bf   *bloom.BloomFilter
}

// NewFilter returns an empty filter with m bits, k probes and the given salt.
func NewFilter(m uint64, k uint32, salt [SaltSize]byte) (*Filter, error) {
	if err := checkFilterParams(m, k); err != nil {
		return nil, err
	}
	return &Filter{salt: salt, bf: bloom.New(uint(m), uint(k))}, nil
}

func checkFilterParams(m uint64, k uint32) error {
	if m < 1 || m > MaxFilterBits {
		return fmt.Errorf("%w: filter m=%d outside 1..%d", core.ErrInvalid, m, MaxFilterBits)
	}
	if k < 1 || k > MaxFilterHashes {
		return fmt.Errorf("%w: filter k=%d outside 1..%d", core.ErrInvalid, k, MaxFilterHashes)
	}
	return nil
}

// M returns the number of bits.
func (f *Filter) M() uint64 { return uint64(f.bf.Cap()) }

// K returns the number of probes per element.
func (f *Filter) K() uint32 { return uint32(f.bf.K()) }

// Salt returns the salt prepended to every id.
func (f *Filter) Salt() [SaltSize]byte { return f.salt }

// Add inserts id.
func (f *Filter) Add(id core.CommitID) {
	e := f.element(id)
	f.bf.Add(e[:])
}

// Test reports whether id may be in the set. false is certain; true is wrong
// with the filter's false-positive probability.
func (f *Filter) Test(id core.CommitID) bool {
	e := f.element(id)
	return f.bf.Test(e[:])
}

func (f *Filter) element(id core.CommitID) [elementSize]byte {
	var e [elementSize]byte
	copy(e[:SaltSize], f.salt[:])
	copy(e[SaltSize:], id[:])
	return e
}

func wordsFor(m uint64) int { return int((m + 63) / 64) }

// EncodedLen returns len of MarshalJSON's output without building it.
func (f *Filter) EncodedLen() int {
	m, k := f.M(), f.K()
	return len(`{"m":,"k":,"salt":"","bits":""}`) + decimalLen(m) + decimalLen(uint64(k)) +
		2*SaltSize + base64.StdEncoding.EncodedLen(8*wordsFor(m))
}

func decimalLen(v uint64) int {
	n := 1
	for v >= 10 {
		v /= 10
		n++
	}
	return n
}

// MarshalJSON writes the wire form described on Filter.
func (f *Filter) MarshalJSON() ([]byte, error) {
	m := f.M()
	words := f.bf.BitSet().Words()
	raw := make([]byte, 8*wordsFor(m))
	for i := range wordsFor(m) {
		if i < len(words) {
			binary.BigEndian.PutUint64(raw[8*i:], words[i])
		}
	}
	b := make([]byte, 0, f.EncodedLen())
	b = append(b, `{"m":`...)
	b = strconv.AppendUint(b, m, 10)
	b = append(b, `,"k":`...)
	b = strconv.AppendUint(b, uint64(f.K()), 10)
	b = append(b, `,"salt":"`...)
	b = hex.AppendEncode(b, f.salt[:])
	b = append(b, `","bits":"`...)
	b = base64.StdEncoding.AppendEncode(b, raw)
	b = append(b, `"}`...)
	return b, nil
}

type filterJSON struct {
	M    uint64 `json:"m"`
	K    uint32 `json:"k"`
	Salt string `json:"salt"`
	Bits string `json:"bits"`
}

// UnmarshalJSON decodes the wire form. It checks m, k, the salt and the
// length of bits against the limits before decoding bits, so the memory it
// allocates is bounded by the size of its input (unlike the library's own
// decoders, which trust m and the word count they read).
func (f *Filter) UnmarshalJSON(b []byte) error {
	var w filterJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return fmt.Errorf("%w: filter: %v", core.ErrInvalid, err)
	}
	if err := checkFilterParams(w.M, w.K); err != nil {
		return err
	}
	if len(w.Salt) != 2*SaltSize || notLowerHex(w.Salt) >= 0 {
		return fmt.Errorf("%w: filter salt must be %d lowercase hex characters", core.ErrInvalid, 2*SaltSize)
	}
	n := wordsFor(w.M)
	if got, want := len(w.Bits), base64.StdEncoding.EncodedLen(8*n); got != want {
		return fmt.Errorf("%w: filter bits: %d base64 characters for m=%d, want %d", core.ErrInvalid, got, w.M, want)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(w.Bits)
	if err != nil || len(raw) != 8*n {
		return fmt.Errorf("%w: filter bits: not standard padded base64 of %d bytes", core.ErrInvalid, 8*n)
	}
	words := make([]uint64, n)
	for i := range words {
		words[i] = binary.BigEndian.Uint64(raw[8*i:])
	}
	if r := w.M % 64; r != 0 && words[n-1]>>r != 0 {
		return fmt.Errorf("%w: filter bits: bits set at or beyond m=%d", core.ErrInvalid, w.M)
	}
	hex.Decode(f.salt[:], []byte(w.Salt)) // checked above
	f.bf = bloom.FromWithM(words, uint(w.M), uint(w.K))
	return nil
}

// FilterPolicy sizes filters. A filter is sent so that its receiver can find
// the ids it holds and the builder lacks (the receiver's extras, d of them).
// Each extra is wrongly reported present with probability p, and is then
// missed for one round (the next filter has a fresh salt, so it is found
// then). The expected number of misses is d*p, so the policy picks
//
//	p = Misses / max(d, 1)
//
// With Misses = 0.1 a divergence is fully exchanged in the first filter of
// each direction with probability about 90%, which is what makes the typical
// heal take two round trips; lowering Misses further buys little, since a
// miss costs one more round while every halving of p costs 1.44 bits per id
// in every filter.
//
// When the receiver can move only window ids in its next message (the
// response limit, or MaxCommits for a push) and d > window, the round will
// be cut anyway and later rounds, each with a fresh filter, follow; an extra
// hidden now is found then. Only the last round needs the full rate, and
// there d <= window, so the policy uses min(d, window) for d:
//
//	p = Misses / min(d, window)
//
// It does not go further and hide more in paging rounds (say half of what
// cannot fit): extras come in chains (parents before children), a hidden
// parent makes the receiver reject every descendant sent in the same round,
// and in the simulation that doubled the rounds of a 10 000-commit
// divergence while saving only part of the bytes.
//
// p is clamped to [MinRate, MaxRate]; m and k follow from n and p by
// FilterParams.
//
// d is rarely known exactly. The answering side of a digest-only first round
// only knows both counts: d >= count difference, and Prior is added for the
// part of a divergence that counts cannot show (both sides gaining commits).
// Later filters estimate d from the previous filter of the other side, which
// is accurate up to its own few misses (an underestimate, the safe side).
type FilterPolicy struct {
	// Misses is the target expected number of missed extras per filter.
	// Zero means 0.1.
	Misses float64
	// Prior is the divergence assumed on top of what the counts show when
	// nothing better is known. Zero means 16.
	Prior int64
}

// Default policy values and bounds of the false-positive rate.
const (
	DefaultMisses = 0.1
	DefaultPrior  = 16
	MinRate       = 1e-9 // 43 bits per id, k = 30
	MaxRate       = 0.5  // 1.44 bits per id, k = 1
)

func (p FilterPolicy) misses() float64 {
	if p.Misses > 0 {
		return p.Misses
	}
	return DefaultMisses
}

func (p FilterPolicy) prior() int64 {
	if p.Prior > 0 {
		return p.Prior
	}
	return DefaultPrior
}

// Rate returns the false-positive rate for a filter whose receiver holds
// about d ids the builder lacks and can move at most window of them in its
// next message (window <= 0: no cap).
func (p FilterPolicy) Rate(d, window int64) float64 {
	if window > 0 {
		d = min(d, window)
	}
	return min(max(p.misses()/float64(max(d, 1)), MinRate), MaxRate)
}

// Params returns m and k for a filter of n ids whose receiver is expected to
// hold d ids the builder lacks, with no window.
func (p FilterPolicy) Params(n, d int64) (m uint64, k uint32) {
	return FilterParams(n, p.Rate(d, 0))
}

// FilterParams returns the standard optimum for n elements at
// false-positive rate fp:
//
//	m = ceil(n * -ln(fp) / ln(2)^2), rounded up to a multiple of 64, in [64, MaxFilterBits]
//	k = round(ln(2) * m / n), in [1, MaxFilterHashes]
//
// (m = 64, k = 1 for n = 0). Once m is capped, the rate is what it is.
func FilterParams(n int64, fp float64) (m uint64, k uint32) {
	if n <= 0 {
		return 64, 1
	}
	fp = min(max(fp, MinRate), MaxRate)
	bits := math.Ceil(float64(n) * -math.Log(fp) / (math.Ln2 * math.Ln2))
	if bits >= MaxFilterBits {
		m = MaxFilterBits
	} else {
		m = max(64, (uint64(bits)+63)/64*64)
	}
	kf := math.Round(math.Ln2 * float64(m) / float64(n))
	k = uint32(min(max(kf, 1), MaxFilterHashes))
	return m, k
}

// BuildFilter builds a filter over the ids that walk yields (n of them, used
// for sizing) at false-positive rate fp (see FilterPolicy.Rate). The salt is
// read from rand.
func BuildFilter(walk func(func(core.CommitID) bool), n int64, fp float64, rand io.Reader) (*Filter, error) {
	if rand == nil {
		return nil, fmt.Errorf("sync: BuildFilter: nil rand")
	}
	var salt [SaltSize]byte
	if _, err := io.ReadFull(rand, salt[:]); err != nil {
		return nil, fmt.Errorf("sync: read salt: %w", err)
	}
	m, k := FilterParams(n, fp)
	f, err := NewFilter(m, k, salt)
	if err != nil {
		return nil, err
	}
	walk(func(id core.CommitID) bool {
		f.Add(id)
		return true
	})
	return f, nil
}
