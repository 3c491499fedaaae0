package sync

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
)

func TestFilterPolicy_Params(t *testing.T) {
	tests := []struct {
		name  string
		p     FilterPolicy
		n, d  int64
		wantM uint64
		wantK uint32
	}{
		{"Empty", FilterPolicy{}, 0, 5, 64, 1},
		// p = 0.1: 4.79 bits per id.
		{"OneExtra", FilterPolicy{}, 1000, 1, 4800, 3},
		{"ZeroExtraIsOne", FilterPolicy{}, 1000, 0, 4800, 3},
		// p = 0.1/1000 = 1e-4: 19.2 bits per id.
		{"ThousandExtras", FilterPolicy{}, 1000, 1000, 19200, 13},
		// p is clamped at 0.5: 1.44 bits per id.
		{"LooseMisses", FilterPolicy{Misses: 10}, 1000, 1, 1472, 1},
		// p is clamped at 1e-9: 43.1 bits per id, k = 30 <= 32.
		{"TightClamp", FilterPolicy{}, 1000, 1 << 40, 43136, 30},
		{"CappedAtMax", FilterPolicy{}, 10_000_000, 1000, MaxFilterBits, 5},
		{"Tiny", FilterPolicy{}, 1, 1, 64, 32},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, k := tt.p.Params(tt.n, tt.d)
			if m != tt.wantM || k != tt.wantK {
				t.Fatalf("Params(%d,%d)=(%d,%d), want (%d,%d)", tt.n, tt.d, m, k, tt.wantM, tt.wantK)
			}
			if m%64 != 0 {
				t.Fatalf("m=%d is not whole words", m)
			}
			if err := checkFilterParams(m, k); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestFilterPolicy_Rate(t *testing.T) {
	tests := []struct {
		name      string
		p         FilterPolicy
		d, window int64
		want      float64
	}{
		{"One", FilterPolicy{}, 1, 0, 0.1},
		{"NoneIsOne", FilterPolicy{}, 0, 0, 0.1},
		{"Hundred", FilterPolicy{}, 100, 0, 0.001},
		{"WithinWindow", FilterPolicy{}, 100, 1000, 0.001},
		{"AtWindow", FilterPolicy{}, 1000, 1000, 0.0001},
		// Past the window only the window counts.
		{"PastWindow", FilterPolicy{}, 10_000, 1000, 0.0001},
		{"ClampedHigh", FilterPolicy{Misses: 5}, 1, 0, MaxRate},
		{"ClampedLow", FilterPolicy{}, 1 << 40, 0, MinRate},
		{"CustomMisses", FilterPolicy{Misses: 0.01}, 10, 0, 0.001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Rate(tt.d, tt.window); math.Abs(got-tt.want) > 1e-12 {
				t.Fatalf("Rate(%d, %d)=%g, want %g", tt.d, tt.window, got, tt.want)
			}
		})
	}
}

// TestFilter_Rate checks the filter against the policy's promise: no false
// negatives and a false-positive rate near Misses/d.
func TestFilter_Rate(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	members := randomIDs(r, 10_000)
	for _, d := range []int64{1, 100} {
		t.Run(fmt.Sprintf("d=%d", d), func(t *testing.T) {
			f, err := BuildFilter(func(fn func(core.CommitID) bool) {
				for _, id := range members {
					fn(id)
				}
			}, int64(len(members)), FilterPolicy{}.Rate(d, 0), seededRand(uint64(d)))
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range members {
				if !f.Test(id) {
					t.Fatalf("false negative for %s", id)
				}
			}
			const trials = 100_000
			fp := 0
			for _, id := range randomIDs(r, trials) {
				if f.Test(id) {
					fp++
				}
			}
			want := DefaultMisses / float64(d) * trials
			if got := float64(fp); got < want/3 || got > want*3 {
				t.Fatalf("false positives=%d in %d, want about %.0f", fp, trials, want)
			}
		})
	}
}

func TestFilter_SaltChangesBits(t *testing.T) {
	ids := randomIDs(rand.New(rand.NewPCG(5, 6)), 50)
	build := func(salt [SaltSize]byte) string {
		f, err := NewFilter(512, 4, salt)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			f.Add(id)
		}
		b, _ := f.MarshalJSON()
		var w filterJSON
		if err := json.Unmarshal(b, &w); err != nil {
			t.Fatal(err)
		}
		return w.Bits
	}
	if build([SaltSize]byte{1}) == build([SaltSize]byte{2}) {
		t.Fatal("two salts gave the same bits")
	}
	if a, b := build([SaltSize]byte{1}), build([SaltSize]byte{1}); a != b {
		t.Fatal("the same salt gave different bits")
	}
}

func TestFilter_JSONRoundTrip(t *testing.T) {
	ids := randomIDs(rand.New(rand.NewPCG(7, 8)), 300)
	for _, m := range []uint64{1, 63, 64, 65, 1000, 4096} {
		t.Run(fmt.Sprint(m), func(t *testing.T) {
			f, err := NewFilter(m, 3, [SaltSize]byte{0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3})
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range ids[:min(m/10+1, 200)] {
				f.Add(id)
			}
			b, err := json.Marshal(f)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := len(b), f.EncodedLen(); got != want {
				t.Fatalf("len=%d, EncodedLen=%d", got, want)
			}
			var back Filter
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatalf("%v: %s", err, b)
			}
			if back.M() != m || back.K() != 3 || back.Salt() != f.Salt() {
				t.Fatalf("decoded m=%d k=%d salt=%x", back.M(), back.K(), back.Salt())
			}
			for _, id := range ids {
				if got, want := back.Test(id), f.Test(id); got != want {
					t.Fatalf("Test(%s)=%v after round trip, want %v", id, got, want)
				}
			}
			b2, _ := json.Marshal(&back)
			if string(b2) != string(b) {
				t.Fatalf("re-encoding differs:\n%s\n%s", b, b2)
			}
		})
	}
}

// TestFilter_BitLayout pins the wire layout independently of the hashing:
// bit i is bit i&63 of big-endian word i>>6.
func TestFilter_BitLayout(t *testing.T) {
	for _, i := range []uint{0, 1, 7, 8, 63, 64, 100, 191} {
		raw := make([]byte, 24) // m = 192
		raw[(i>>6)*8+7-(i&63)>>3] = 1 << (i & 7)
		in := fmt.Sprintf(`{"m":192,"k":1,"salt":"0000000000000000","bits":%q}`, base64.StdEncoding.EncodeToString(raw))
		var f Filter
		if err := json.Unmarshal([]byte(in), &f); err != nil {
			t.Fatal(err)
		}
		bs := f.bf.BitSet()
		if !bs.Test(i) || bs.Count() != 1 {
			t.Fatalf("bit %d: set=%v count=%d", i, bs.Test(i), bs.Count())
		}
	}
}

func TestFilter_UnmarshalRejects(t *testing.T) {
	salt := `"0011223344556677"`
	bits := func(words int) string { return `"` + base64.StdEncoding.EncodeToString(make([]byte, 8*words)) + `"` }
	obj := func(m, k, salt, bits string) string {
		return `{"m":` + m + `,"k":` + k + `,"salt":` + salt + `,"bits":` + bits + `}`
	}
	lastBitBeyondM := make([]byte, 8)
	lastBitBeyondM[0] = 0x80 // bit 63 with m = 10
	tests := []struct{ name, in string }{
		{"NotJSON", `{`},
		{"NotObject", `[]`},
		{"ZeroM", obj("0", "1", salt, `""`)},
		{"NegativeM", obj("-64", "1", salt, bits(1))},
		{"FractionalM", obj("64.5", "1", salt, bits(1))},
		{"HugeM", obj("18446744073709551615", "1", salt, `""`)},
		{"MAboveLimit", obj(fmt.Sprint(MaxFilterBits+64), "1", salt, `""`)},
		{"ZeroK", obj("64", "0", salt, bits(1))},
		{"BigK", obj("64", "33", salt, bits(1))},
		{"ShortSalt", obj("64", "1", `"00112233"`, bits(1))},
		{"UpperSalt", obj("64", "1", `"00112233445566AA"`, bits(1))},
		{"SaltNotString", obj("64", "1", `7`, bits(1))},
		{"TooFewWords", obj("128", "1", salt, bits(1))},
		{"TooManyWords", obj("64", "1", salt, bits(2))},
		{"Unpadded", obj("8", "1", salt, `"AAAAAAAAAAA"`)},
		{"URLAlphabet", obj("64", "1", salt, `"______________8="`)},
		{"BitBeyondM", obj("10", "1", salt, `"`+base64.StdEncoding.EncodeToString(lastBitBeyondM)+`"`)},
		{"UnknownField", `{"m":64,"k":1,"salt":` + salt + `,"bits":` + bits(1) + `,"x":1}`},
		{"Missing", `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f Filter
			err := f.UnmarshalJSON([]byte(tt.in))
			if !errors.Is(err, core.ErrInvalid) {
				t.Fatalf("UnmarshalJSON(%s)=%v, want ErrInvalid", tt.in, err)
			}
		})
	}
}

// TestFilter_UnmarshalHostileAllocatesLittle: a few bytes claiming a huge
// filter must not make the decoder allocate for it (the library's own
// decoder allocates 1 GiB for a 24-byte input).
func TestFilter_UnmarshalHostileAllocatesLittle(t *testing.T) {
	inputs := []string{
		`{"m":18446744073709551615,"k":1,"salt":"0000000000000000","bits":"AAAAAAAAAAA="}`,
		`{"m":67108864,"k":1,"salt":"0000000000000000","bits":"AAAAAAAAAAA="}`,
		`{"m":8589934592,"k":4294967295,"salt":"0000000000000000","bits":""}`,
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, in := range inputs {
		var f Filter
		if err := f.UnmarshalJSON([]byte(in)); err == nil {
			t.Fatalf("accepted %s", in)
		}
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Fatalf("decoding %d hostile filters allocated %d bytes", len(inputs), got)
	}
}

func TestFilter_Limits(t *testing.T) {
	if _, err := NewFilter(MaxFilterBits+1, 1, [SaltSize]byte{}); !errors.Is(err, core.ErrInvalid) {
		t.Fatalf("m above limit: err=%v", err)
	}
	// The largest filter's base64 stays within what the docs promise.
	if got := base64.StdEncoding.EncodedLen(MaxFilterBits / 8); got > 11_200_000 {
		t.Fatalf("max bits is %d base64 characters", got)
	}
	if got := math.Ceil(-math.Log(1e-9) / (math.Ln2 * math.Ln2) * math.Ln2); got > MaxFilterHashes {
		t.Fatalf("the tightest rate needs k=%v > %d", got, MaxFilterHashes)
	}
	if _, err := BuildFilter(func(func(core.CommitID) bool) {}, 0, 0.1, strings.NewReader("short")); err == nil {
		t.Fatal("BuildFilter accepted a salt source of 5 bytes")
	}
}
