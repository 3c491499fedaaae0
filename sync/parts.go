package sync

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"

	"github.com/goat-gateway/goat-gateway/core"
)

// Partitions (protocol version 2, docs/sync.md "Version 2"): a Layout cuts
// a set into partitions by time windows and, inside large windows, by id
// prefix, so that peers compare small per-partition digests first and send
// Bloom filters and id lists only for the partitions that differ.

// Limits of version 2, checked by the decoders before allocating.
const (
	// Version2 is the value of a request's "v" that asks for partitioned
	// rounds.
	Version2 = 2
	// Version3 is version 2's rounds with a smaller encoding: layouts as
	// gaps between cuts, the request's layout reduced to the differing
	// windows, and 13-byte table cells (docs/sync.md "Version 3").
	Version3 = 3
	// MaxWindows bounds the cuts of a layout (so windows number at most
	// MaxWindows+1).
	MaxWindows = 64
	// MaxPrefixBits bounds the id-prefix bits of one window.
	MaxPrefixBits = 12
	// MaxParts bounds the partitions of a layout.
	MaxParts = 1 << 14
	// MaxStream is the largest limit a version 2 request may ask for, and
	// the most commits it may push: a large divergence moves as one stream
	// of commits each way, not as many capped rounds.
	MaxStream = 10000
	// StreamMaxBytes caps the commit bytes of a version 2 response (when
	// the server sets no MaxBytes).
	StreamMaxBytes = 16 << 20
	// StreamPushBytes caps the commit bytes a version 2 request pushes
	// (when the client sets no PushBytes); with the filter of round 2 the
	// request stays under MaxRequestBytes.
	StreamPushBytes = 8 << 20
	// MaxRequestBytes is the API's limit on a request body (maxBodyBytes).
	MaxRequestBytes = 16 << 20
	// MaxIDList bounds the short ids of one list (need, rest, a partition
	// list): 16 MiB of ids.
	MaxIDList = 1 << 21
	// ShortIDSize is the length of a short id: the first bytes of an id.
	ShortIDSize = 8
)

// ShortID is the first 8 bytes of a commit id. Version 2 names commits by
// short id in id lists (need, rest, partition lists); a peer matches them
// against the ids it holds. Two different ids of the same partition share a
// short id with probability about n^2/2^65, and the final digest check would
// catch it (the driver then restarts, see Client).
type ShortID [ShortIDSize]byte

// ShortOf returns id's short id.
func ShortOf(id core.CommitID) ShortID {
	var s ShortID
	copy(s[:], id[:ShortIDSize])
	return s
}

// TSWalker is an optional interface of a Set that knows each commit's ts
// without reading it (a repository index does). Version 2 partitions by ts;
// a Set without it is walked with Get, which is slower.
type TSWalker interface {
	// WalkTS is Walk with each id's ts.
	WalkTS(fn func(id core.CommitID, ts int64) bool)
}

// walkTS walks set with ts, by WalkTS when set has it, else by Get. An id
// Get cannot find has ts 0 (it still lands in a partition, the oldest).
func walkTS(set Set, fn func(id core.CommitID, ts int64) bool) {
	if w, ok := set.(TSWalker); ok {
		w.WalkTS(fn)
		return
	}
	set.Walk(func(id core.CommitID) bool {
		var ts int64
		if c, ok := set.Get(id); ok {
			ts = c.TS
		}
		return fn(id, ts)
	})
}

// Layout cuts a set into partitions. Cuts are ascending ts values: window 0
// holds the ids with ts < Cuts[0], window i the ids with Cuts[i-1] <= ts <
// Cuts[i], and window len(Cuts) those with ts >= the last cut. Bits has one
// entry per window: window w is split into 2^Bits[w] partitions by the
// first Bits[w] bits of the id (big-endian, most significant bit first).
// Partitions are numbered window by window, oldest first, and by prefix
// inside a window.
//
// The server chooses the layout (see BuildLayout) and sends it; the client
// only applies it, so the choice can change without a protocol change.
type Layout struct {
	Cuts []int64
	Bits []uint8

	offs []int // offs[w] = index of window w's first partition; len = windows+1
}

// Validate checks the limits above.
func (l *Layout) Validate() error {
	if len(l.Cuts) > MaxWindows {
		return fmt.Errorf("%w: layout: %d cuts, more than %d", core.ErrInvalid, len(l.Cuts), MaxWindows)
	}
	if len(l.Bits) != len(l.Cuts)+1 {
		return fmt.Errorf("%w: layout: %d bits for %d windows", core.ErrInvalid, len(l.Bits), len(l.Cuts)+1)
	}
	for i := 1; i < len(l.Cuts); i++ {
		if l.Cuts[i] <= l.Cuts[i-1] {
			return fmt.Errorf("%w: layout: cuts must be strictly ascending", core.ErrInvalid)
		}
	}
	n := 0
	for _, b := range l.Bits {
		if b > MaxPrefixBits {
			return fmt.Errorf("%w: layout: %d prefix bits, more than %d", core.ErrInvalid, b, MaxPrefixBits)
		}
		n += 1 << b
	}
	if n > MaxParts {
		return fmt.Errorf("%w: layout: %d partitions, more than %d", core.ErrInvalid, n, MaxParts)
	}
	return nil
}

func (l *Layout) init() {
	if l.offs != nil {
		return
	}
	l.offs = make([]int, len(l.Bits)+1)
	for w, b := range l.Bits {
		l.offs[w+1] = l.offs[w] + 1<<b
	}
}

// Parts returns the number of partitions.
func (l *Layout) Parts() int {
	l.init()
	return l.offs[len(l.offs)-1]
}

// Index returns the partition of the commit with the given id and ts.
func (l *Layout) Index(id core.CommitID, ts int64) int {
	l.init()
	w := sort.Search(len(l.Cuts), func(i int) bool { return l.Cuts[i] > ts })
	b := l.Bits[w]
	if b == 0 {
		return l.offs[w]
	}
	return l.offs[w] + int(binary.BigEndian.Uint32(id[:4])>>(32-b))
}

// LayoutPolicy chooses a server's layout (see BuildLayout).
type LayoutPolicy struct {
	// Newest is the size of the newest window; each older window is twice
	// the size of the next newer one. Zero means 16.
	Newest int
	// Bucket is the largest partition a window is cut to by id prefix.
	// Zero means max(1024, 16*sqrt(n)).
	Bucket int
}

// BuildLayout returns the layout a server with the given ts values (any
// order; the slice is sorted in place) sends: windows of Newest, 2*Newest,
// 4*Newest, ... ids from the newest back (finer towards now, where
// divergence happens), a last window from the newest ts + 1 on (empty on the
// server, so a client's new commits land there and are pushed without a
// filter), and windows larger than Bucket split by id prefix. The number of
// partitions is about log2(n/Newest) + 2n/Bucket.
func (p LayoutPolicy) BuildLayout(ts []int64) Layout {
	slices.Sort(ts)
	n := len(ts)
	newest := p.Newest
	if newest <= 0 {
		newest = 16
	}
	bucket := p.Bucket
	if bucket <= 0 {
		bucket = max(1024, int(16*math.Sqrt(float64(n))))
	}
	if n == 0 {
		return Layout{Cuts: nil, Bits: []uint8{0}}
	}
	var desc []int64 // cuts from the newest back
	top := ts[n-1]
	if top < math.MaxInt64 {
		desc = append(desc, top+1)
	}
	end, size := n, newest
	for end > 0 && len(desc) < MaxWindows {
		start := end - size
		if start <= 0 {
			break
		}
		c := ts[start]
		if len(desc) == 0 || c < desc[len(desc)-1] {
			desc = append(desc, c)
		}
		end, size = start, size*2
	}
	slices.Reverse(desc)
	l := Layout{Cuts: desc, Bits: make([]uint8, len(desc)+1)}
	lo := 0
	for w := range l.Bits {
		hi := n
		if w < len(desc) {
			hi = sort.Search(n, func(i int) bool { return ts[i] >= desc[w] })
		}
		if c := hi - lo; c > bucket {
			b := uint8(math.Ceil(math.Log2(float64(c) / float64(bucket))))
			l.Bits[w] = min(b, MaxPrefixBits)
		}
		lo = hi
	}
	for l.Parts() > MaxParts { // cannot happen with the default policy; keep the limit anyway
		l.offs = nil
		for w := range l.Bits {
			if l.Bits[w] > 0 {
				l.Bits[w]--
			}
		}
	}
	return l
}

// PartSum is one partition's count and the first 8 bytes of its XOR, as a
// Summary carries it.
type PartSum struct {
	Count uint32
	XOR8  [8]byte
}

// Summary is the server's answer to a differing version 2 digest round:
// its layout and every partition's PartSum. Wire form:
//
//	{"cuts": [ts, ...], "bits": [b, ...], "sums": "base64"}
//
// sums is the standard padded base64 of, per partition in index order, the
// count (uint32, big-endian) followed by the first 8 bytes of the XOR of the
// partition's ids: 12 bytes per partition.
type Summary struct {
	Layout
	Sums []PartSum
	// V is the wire version: 3 writes the layout as gaps (see Layout's
	// wire form); 0 or 2 writes cuts. Decoding sets it from the form.
	V int
}

// PartDigest is one partition's full digest, as a PartDiff carries it.
type PartDigest struct {
	Index  int
	Digest Digest
}

// PartDiff is the client's second version 2 request's view of the
// partitions that differ: the layout it was given (echoed, so the server
// keeps no state) and its own full digest of each differing partition.
// Wire form:
//
//	{"cuts": [...], "bits": [...], "diff": "base64"}
//
// diff is the standard padded base64 of, per differing partition in
// ascending index order, the index (uint32 BE), the count (uint32 BE) and
// the 32-byte XOR: 40 bytes per partition.
type PartDiff struct {
	Layout
	Diff []PartDigest
	// Tables, when present, has one entry per Diff record: the client's
	// table of short ids of that partition, or nil (wire: "cells", see
	// Table).
	Tables []*Table
	// V is the wire version: 3 writes the layout as gaps and 13-byte
	// cells (its tables must be Narrow); 0 or 2 writes cuts and 20-byte
	// cells. Decoding sets it from the form.
	V int
}

// PartList is the server's exact list of its ids in one partition that
// still differs after the filter round. Wire form: {"part": index, "ids":
// "base64 of 8-byte short ids"}.
type PartList struct {
	Part int
	IDs  []ShortID
}

// partSums computes per-partition digests of set under l.
func partSums(set Set, l *Layout) []Digest {
	out := make([]Digest, l.Parts())
	walkTS(set, func(id core.CommitID, ts int64) bool {
		out[l.Index(id, ts)].Add(id)
		return true
	})
	return out
}

func xor8(s Sum) (b [8]byte) {
	copy(b[:], s[:8])
	return b
}

// --- wire encoding ---

// layoutWire decodes bits as numbers (a []uint8 field would also take a
// base64 string, a second spelling the wire does not have). A layout is
// spelt with cuts (version 2) or gaps (version 3), never both: gaps[0] is
// the first cut, gaps[i] the (positive) difference between cut i and cut
// i-1.
type layoutWire struct {
	Cuts []int64 `json:"cuts"`
	Gaps []int64 `json:"gaps"`
	Bits []int   `json:"bits"`
}

// layout returns the layout and its wire version (2: cuts, 3: gaps).
func (w *layoutWire) layout() (Layout, int, error) {
	l := Layout{Cuts: w.Cuts, Bits: make([]uint8, len(w.Bits))}
	v := Version2
	if (w.Cuts == nil) == (w.Gaps == nil) || w.Bits == nil {
		return l, v, fmt.Errorf("%w: layout: bits and either cuts or gaps are required", core.ErrInvalid)
	}
	if w.Gaps != nil {
		v = Version3
		if len(w.Gaps) > MaxWindows {
			return l, v, fmt.Errorf("%w: layout: %d gaps, more than %d", core.ErrInvalid, len(w.Gaps), MaxWindows)
		}
		l.Cuts = make([]int64, len(w.Gaps))
		for i, g := range w.Gaps {
			if i == 0 {
				l.Cuts[0] = g
				continue
			}
			if g <= 0 || l.Cuts[i-1] > math.MaxInt64-g {
				return l, v, fmt.Errorf("%w: layout: gap %d must be positive and keep cuts within int64", core.ErrInvalid, i)
			}
			l.Cuts[i] = l.Cuts[i-1] + g
		}
	}
	for i, b := range w.Bits {
		if b < 0 || b > MaxPrefixBits {
			return l, v, fmt.Errorf("%w: layout: %d prefix bits, want 0..%d", core.ErrInvalid, b, MaxPrefixBits)
		}
		l.Bits[i] = uint8(b)
	}
	return l, v, l.Validate()
}

// appendLayout writes {"cuts":[...],"bits":[...] (version 2) or
// {"gaps":[...],"bits":[...] (version 3), without the closing brace.
func appendLayout(b []byte, l *Layout, v int) []byte {
	if v == Version3 {
		b = append(b, `{"gaps":[`...)
	} else {
		b = append(b, `{"cuts":[`...)
	}
	for i, c := range l.Cuts {
		if i > 0 {
			b = append(b, ',')
			if v == Version3 {
				c -= l.Cuts[i-1]
			}
		}
		b = strconv.AppendInt(b, c, 10)
	}
	b = append(b, `],"bits":[`...)
	for i, x := range l.Bits {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, uint64(x), 10)
	}
	return append(b, ']')
}

func layoutLen(l *Layout, v int) int {
	n := len(`{"cuts":[],"bits":[]`) + max(len(l.Cuts)-1, 0) + max(len(l.Bits)-1, 0)
	for i, c := range l.Cuts {
		if i > 0 && v == Version3 {
			c -= l.Cuts[i-1]
		}
		n += len(strconv.FormatInt(c, 10))
	}
	for _, x := range l.Bits {
		n += decimalLen(uint64(x))
	}
	return n
}

// MarshalJSON writes the wire form.
func (s Summary) MarshalJSON() ([]byte, error) {
	b := appendLayout(nil, &s.Layout, s.V)
	raw := make([]byte, 12*len(s.Sums))
	for i, x := range s.Sums {
		binary.BigEndian.PutUint32(raw[12*i:], x.Count)
		copy(raw[12*i+4:], x.XOR8[:])
	}
	b = append(b, `,"sums":"`...)
	b = base64.StdEncoding.AppendEncode(b, raw)
	return append(b, `"}`...), nil
}

func (s *Summary) encodedLen() int {
	return layoutLen(&s.Layout, s.V) + len(`,"sums":""}`) + base64.StdEncoding.EncodedLen(12*len(s.Sums))
}

// UnmarshalJSON decodes and validates the wire form.
func (s *Summary) UnmarshalJSON(b []byte) error {
	var w struct {
		layoutWire
		Sums string `json:"sums"`
	}
	if err := decodeStrict(b, &w, true); err != nil {
		return fmt.Errorf("parts: %w", err)
	}
	l, ver, err := w.layout()
	if err != nil {
		return err
	}
	raw, err := decodeB64(w.Sums, 12*l.Parts(), 12*l.Parts())
	if err != nil {
		return fmt.Errorf("parts: sums: %w", err)
	}
	v := Summary{Layout: l, Sums: make([]PartSum, l.Parts()), V: ver}
	for i := range v.Sums {
		v.Sums[i].Count = binary.BigEndian.Uint32(raw[12*i:])
		copy(v.Sums[i].XOR8[:], raw[12*i+4:])
		if v.Sums[i].Count == 0 && v.Sums[i].XOR8 != [8]byte{} {
			return fmt.Errorf("%w: parts: partition %d: digest of an empty partition must be zero", core.ErrInvalid, i)
		}
	}
	*s = v
	return nil
}

// MarshalJSON writes the wire form.
func (d PartDiff) MarshalJSON() ([]byte, error) {
	b := appendLayout(nil, &d.Layout, d.V)
	raw := make([]byte, 40*len(d.Diff))
	for i, x := range d.Diff {
		binary.BigEndian.PutUint32(raw[40*i:], uint32(x.Index))
		binary.BigEndian.PutUint32(raw[40*i+4:], uint32(x.Digest.Count))
		copy(raw[40*i+8:], x.Digest.XOR[:])
	}
	b = append(b, `,"diff":"`...)
	b = base64.StdEncoding.AppendEncode(b, raw)
	b = append(b, '"')
	if d.Tables != nil {
		b = append(b, `,"cells":"`...)
		b = base64.StdEncoding.AppendEncode(b, appendTables(nil, d.Tables, d.V == Version3))
		b = append(b, '"')
	}
	return append(b, '}'), nil
}

func (d *PartDiff) encodedLen() int {
	n := layoutLen(&d.Layout, d.V) + len(`,"diff":""}`) + base64.StdEncoding.EncodedLen(40*len(d.Diff))
	if d.Tables != nil {
		n += len(`,"cells":""`) + base64.StdEncoding.EncodedLen(tablesLen(d.Tables, d.V == Version3))
	}
	return n
}

// UnmarshalJSON decodes and validates the wire form: indexes ascending and
// inside the layout, digests valid.
func (d *PartDiff) UnmarshalJSON(b []byte) error {
	var w struct {
		layoutWire
		Diff  string  `json:"diff"`
		Cells *string `json:"cells"`
	}
	if err := decodeStrict(b, &w, true); err != nil {
		return fmt.Errorf("parts: %w", err)
	}
	l, ver, err := w.layout()
	if err != nil {
		return err
	}
	raw, err := decodeB64(w.Diff, 0, 40*l.Parts())
	if err != nil || len(raw)%40 != 0 {
		return fmt.Errorf("%w: parts: diff: not base64 of 40-byte records", core.ErrInvalid)
	}
	v := PartDiff{Layout: l, Diff: make([]PartDigest, len(raw)/40), V: ver}
	for i := range v.Diff {
		x := &v.Diff[i]
		x.Index = int(binary.BigEndian.Uint32(raw[40*i:]))
		x.Digest.Count = int64(binary.BigEndian.Uint32(raw[40*i+4:]))
		copy(x.Digest.XOR[:], raw[40*i+8:])
		if x.Index >= l.Parts() || (i > 0 && x.Index <= v.Diff[i-1].Index) {
			return fmt.Errorf("%w: parts: diff indexes must ascend inside the layout", core.ErrInvalid)
		}
		if err := x.Digest.Validate(); err != nil {
			return fmt.Errorf("parts: diff %d: %w", x.Index, err)
		}
	}
	if w.Cells != nil {
		narrow := ver == Version3
		raw, err := decodeB64(*w.Cells, 2*len(v.Diff), 2*len(v.Diff)+len(v.Diff)*3*MaxCellsPerTable*cellBytes(narrow))
		if err != nil {
			return fmt.Errorf("parts: cells: %w", err)
		}
		if v.Tables, err = parseTables(raw, len(v.Diff), narrow); err != nil {
			return err
		}
	}
	*d = v
	return nil
}

// MarshalJSON writes {"part": n, "ids": "base64"}.
func (p PartList) MarshalJSON() ([]byte, error) {
	b := append([]byte(`{"part":`), strconv.Itoa(p.Part)...)
	b = append(b, `,"ids":`...)
	b = appendIDs(b, p.IDs)
	return append(b, '}'), nil
}

func (p *PartList) encodedLen() int {
	return len(`{"part":,"ids":}`) + decimalLen(uint64(p.Part)) + idsLen(p.IDs)
}

// UnmarshalJSON decodes the wire form.
func (p *PartList) UnmarshalJSON(b []byte) error {
	var w struct {
		Part *int    `json:"part"`
		IDs  *string `json:"ids"`
	}
	if err := decodeStrict(b, &w, false); err != nil {
		return fmt.Errorf("list: %w", err)
	}
	if w.Part == nil || w.IDs == nil || *w.Part < 0 || *w.Part >= MaxParts {
		return fmt.Errorf("%w: list: part (0..%d) and ids are required", core.ErrInvalid, MaxParts-1)
	}
	ids, err := parseIDs(*w.IDs)
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	*p = PartList{Part: *w.Part, IDs: ids}
	return nil
}

// appendIDs appends the JSON string of the standard padded base64 of ids.
func appendIDs(b []byte, ids []ShortID) []byte {
	raw := make([]byte, 0, ShortIDSize*len(ids))
	for _, s := range ids {
		raw = append(raw, s[:]...)
	}
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, raw)
	return append(b, '"')
}

func idsLen(ids []ShortID) int { return 2 + base64.StdEncoding.EncodedLen(ShortIDSize*len(ids)) }

// idList is a []ShortID with the JSON form of a base64 string.
type idList []ShortID

func (l *idList) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%w: id list: %v", core.ErrInvalid, err)
	}
	ids, err := parseIDs(s)
	if err != nil {
		return err
	}
	*l = ids
	return nil
}

func parseIDs(s string) ([]ShortID, error) {
	raw, err := decodeB64(s, 0, ShortIDSize*MaxIDList)
	if err != nil || len(raw)%ShortIDSize != 0 {
		return nil, fmt.Errorf("%w: id list: not base64 of %d-byte ids (at most %d)", core.ErrInvalid, ShortIDSize, MaxIDList)
	}
	ids := make([]ShortID, len(raw)/ShortIDSize)
	for i := range ids {
		copy(ids[i][:], raw[ShortIDSize*i:])
	}
	return ids, nil
}

// decodeB64 decodes standard padded base64 whose decoded length must be in
// [lo, hi], checking the encoded length before decoding.
func decodeB64(s string, lo, hi int) ([]byte, error) {
	if len(s)%4 != 0 || len(s) > base64.StdEncoding.EncodedLen(hi) || len(s) < base64.StdEncoding.EncodedLen(lo) {
		return nil, fmt.Errorf("%w: base64 of %d characters, want %d..%d bytes", core.ErrInvalid, len(s), lo, hi)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(raw) < lo || len(raw) > hi {
		return nil, fmt.Errorf("%w: not standard padded base64 of %d..%d bytes", core.ErrInvalid, lo, hi)
	}
	return raw, nil
}

// Cells (version 2, round 2): for each differing partition the server holds
// ids of, the client sends an invertible Bloom lookup table of its short
// ids there, so that the server can name the few ids the client holds and
// it lacks (and find its own ids a filter false positive hid) without
// listing the partition. A partition's table has 3 subtables of m cells;
// short id s goes to cell idx_i(s) of subtable i. Each cell holds the
// count of its ids, the XOR of their short ids and the XOR of their check
// values. With h1, h2 = MurmurHash3 x64-128 (seed 0) of the 8 bytes of s:
// idx_0 = uint32(h1) mod m, idx_1 = uint32(h1 >> 32) mod m,
// idx_2 = uint32(h2) mod m, check = h2.
//
// Wire ("cells" in the request's parts): standard padded base64 of, per
// record of diff in order, m (uint16 BE, 0: no table) then 3m cells of
// count (uint32 BE), XOR of short ids (8 bytes), XOR of checks (uint64 BE):
// 20 bytes per cell. Version 3 tables are Narrow: the check is the high 32
// bits of h2 (idx_2 uses the low ones), and a cell goes on the wire as
// count modulo 256 (1 byte), XOR of short ids (8 bytes), XOR of checks
// (uint32 BE): 13 bytes.

// MaxCellsPerTable bounds m.
const MaxCellsPerTable = 4096

// cellSize and narrowCellSize are the wire sizes of one cell in version 2
// and version 3.
const (
	cellSize       = 20
	narrowCellSize = 13
)

func cellBytes(narrow bool) int {
	if narrow {
		return narrowCellSize
	}
	return cellSize
}

// Cell is one cell of a Table.
type Cell struct {
	Count int64
	XOR   ShortID
	Check uint64
}

// Table is one partition's invertible Bloom lookup table (see above).
type Table struct {
	M     int
	Cells []Cell // 3*M
	// Only marks a partition the request's filter does not cover: the
	// table alone reconciles it, both ways (wire: bit 15 of m).
	Only bool
	// Narrow (version 3) keeps 32-bit checks and compares counts modulo
	// 256, as the 13-byte wire cell carries them.
	Narrow bool
}

// tableOnlyBit marks Table.Only in the wire's m.
const tableOnlyBit = 1 << 15

// cellHash returns the three cell indexes and the check of a short id
// (the high 32 bits of h2 when narrow).
func cellHash(s ShortID, m int, narrow bool) (idx [3]int, check uint64) {
	h1, h2 := murmur3x64Short(s)
	mm := uint64(m)
	idx[0] = int(uint64(uint32(h1)) % mm)
	idx[1] = m + int(uint64(uint32(h1>>32))%mm)
	idx[2] = 2*m + int(uint64(uint32(h2))%mm)
	if narrow {
		return idx, h2 >> 32
	}
	return idx, h2
}

// NewTable returns an empty table of 3m cells.
func NewTable(m int) *Table { return &Table{M: m, Cells: make([]Cell, 3*m)} }

// Add folds s in with sign +1 (or -1 to take it out).
func (t *Table) Add(s ShortID, sign int64) {
	idx, check := cellHash(s, t.M, t.Narrow)
	for _, i := range idx {
		c := &t.Cells[i]
		c.Count += sign
		for j := range c.XOR {
			c.XOR[j] ^= s[j]
		}
		c.Check ^= check
	}
}

// Decode peels t, the difference (client table minus server table): it
// returns the short ids with count +1 (the client's) and -1 (the
// server's), or ok false when the table does not peel to empty.
func (t *Table) Decode() (plus, minus []ShortID, ok bool) {
	cells := slices.Clone(t.Cells)
	d := &Table{M: t.M, Cells: cells, Narrow: t.Narrow}
	count := func(c Cell) int64 {
		if t.Narrow {
			return int64(int8(c.Count)) // modulo 256, as the wire carries it
		}
		return c.Count
	}
	for progress := true; progress; {
		progress = false
		for i := range cells {
			c := cells[i]
			n := count(c)
			if n != 1 && n != -1 {
				continue
			}
			if _, check := cellHash(c.XOR, t.M, t.Narrow); check != c.Check {
				continue
			}
			if n == 1 {
				plus = append(plus, c.XOR)
			} else {
				minus = append(minus, c.XOR)
			}
			d.Add(c.XOR, -n)
			progress = true
		}
	}
	for _, c := range cells {
		if count(c) != 0 || c.XOR != (ShortID{}) || c.Check != 0 {
			return nil, nil, false
		}
	}
	return plus, minus, true
}

// tableSize is the m a client uses for a partition where it holds c ids
// and the server s, for a table beside the filter (only: false) or
// instead of it (only: true). Beside the filter the table must find the
// client's extras, at least d = c-s of them; alone, both sides' extras, at
// least d = |c-s|. m allows for d + 2 ids at about 2 cells per id (so a
// divergence on both sides of one partition still usually peels), and
// m^3 >= 50 d^2, so that two ids sharing all three cells (probability
// about d^2 / 2m^3, the usual way small tables fail to peel) stay under 1%.
func tableSize(c, s int64, only bool) int {
	d := max(c-s, 0)
	if only {
		d = max(c-s, s-c)
	}
	m := (d+3)/2 + 2
	for m*m*m < 50*d*d && m < MaxCellsPerTable {
		m++
	}
	return int(min(m, MaxCellsPerTable))
}

// tableOnly reports whether a table alone (of cells of the given wire
// size) is cheaper than covering the partition's c client ids with the
// filter (about 10 bits each): when the counts show a divergence that is
// small against the partition. Version 3 (narrow) also counts the table
// that goes beside the filter, which is as large as the table alone when
// the client holds more (both must find the client's extras), so that a
// client ahead in a partition sends no filter over it.
func tableOnly(c, s int64, narrow bool) bool {
	cell := int64(cellBytes(narrow))
	alone := 3 * int64(tableSize(c, s, true)) * cell
	if narrow {
		return alone < c*10/8+3*int64(tableSize(c, s, false))*cell
	}
	return alone < c*10/8
}

func appendTables(raw []byte, ts []*Table, narrow bool) []byte {
	for _, t := range ts {
		if t == nil {
			raw = binary.BigEndian.AppendUint16(raw, 0)
			continue
		}
		m := uint16(t.M)
		if t.Only {
			m |= tableOnlyBit
		}
		raw = binary.BigEndian.AppendUint16(raw, m)
		for _, c := range t.Cells {
			if narrow {
				raw = append(raw, byte(c.Count))
				raw = append(raw, c.XOR[:]...)
				raw = binary.BigEndian.AppendUint32(raw, uint32(c.Check))
				continue
			}
			raw = binary.BigEndian.AppendUint32(raw, uint32(c.Count))
			raw = append(raw, c.XOR[:]...)
			raw = binary.BigEndian.AppendUint64(raw, c.Check)
		}
	}
	return raw
}

func tablesLen(ts []*Table, narrow bool) int {
	n := 0
	for _, t := range ts {
		n += 2
		if t != nil {
			n += cellBytes(narrow) * len(t.Cells)
		}
	}
	return n
}

func parseTables(raw []byte, n int, narrow bool) ([]*Table, error) {
	size := cellBytes(narrow)
	out := make([]*Table, n)
	for i := range out {
		if len(raw) < 2 {
			return nil, fmt.Errorf("%w: parts: cells: short", core.ErrInvalid)
		}
		m := int(binary.BigEndian.Uint16(raw))
		raw = raw[2:]
		only := m&tableOnlyBit != 0
		m &^= tableOnlyBit
		if m == 0 {
			if only {
				return nil, fmt.Errorf("%w: parts: cells: empty table marked only", core.ErrInvalid)
			}
			continue
		}
		if m > MaxCellsPerTable || len(raw) < 3*m*size {
			return nil, fmt.Errorf("%w: parts: cells: table of %d cells", core.ErrInvalid, 3*m)
		}
		t := NewTable(m)
		t.Only, t.Narrow = only, narrow
		for j := range t.Cells {
			c := &t.Cells[j]
			if narrow {
				c.Count = int64(raw[0])
				copy(c.XOR[:], raw[1:9])
				c.Check = uint64(binary.BigEndian.Uint32(raw[9:13]))
			} else {
				c.Count = int64(binary.BigEndian.Uint32(raw))
				copy(c.XOR[:], raw[4:12])
				c.Check = binary.BigEndian.Uint64(raw[12:20])
			}
			raw = raw[size:]
		}
		out[i] = t
	}
	if len(raw) != 0 {
		return nil, fmt.Errorf("%w: parts: cells: %d bytes left over", core.ErrInvalid, len(raw))
	}
	return out, nil
}

// murmur3x64Short is MurmurHash3 x64-128 (seed 0) of exactly 8 bytes: no
// full block, an 8-byte tail.
func murmur3x64Short(s ShortID) (uint64, uint64) {
	const c1, c2 = 0x87c37b91114253d5, 0x4cf5ad432745937f
	k1 := binary.LittleEndian.Uint64(s[:])
	k1 *= c1
	k1 = k1<<31 | k1>>33
	k1 *= c2
	h1, h2 := k1, uint64(0)
	h1 ^= 8
	h2 ^= 8
	h1 += h2
	h2 += h1
	h1, h2 = cellMix(h1), cellMix(h2)
	h1 += h2
	h2 += h1
	return h1, h2
}

func cellMix(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	k ^= k >> 33
	return k
}
