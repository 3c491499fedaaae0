package core

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"
)

// RFC 8785 appendix B: IEEE 754 bit patterns and their canonical text.
func TestAppendCanonical_RFC8785Numbers(t *testing.T) {
	cases := []struct {
		bits uint64
		want string
	}{
		{0x0000000000000000, "0"},
		{0x8000000000000000, "0"},
		{0x0000000000000001, "5e-324"},
		{0x8000000000000001, "-5e-324"},
		{0x7fefffffffffffff, "1.7976931348623157e+308"},
		{0xffefffffffffffff, "-1.7976931348623157e+308"},
		{0x4340000000000000, "9007199254740992"},
		{0xc340000000000000, "-9007199254740992"},
		{0x4430000000000000, "295147905179352830000"},
		{0x44b52d02c7e14af5, "9.999999999999997e+22"},
		{0x44b52d02c7e14af6, "1e+23"},
		{0x44b52d02c7e14af7, "1.0000000000000001e+23"},
		{0x444b1ae4d6e2ef4e, "999999999999999700000"},
		{0x444b1ae4d6e2ef4f, "999999999999999900000"},
		{0x444b1ae4d6e2ef50, "1e+21"},
		{0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"},
		{0x3eb0c6f7a0b5ed8d, "0.000001"},
		{0x41b3de4355555553, "333333333.3333332"},
		{0x41b3de4355555554, "333333333.33333325"},
		{0x41b3de4355555555, "333333333.3333333"},
		{0x41b3de4355555556, "333333333.3333334"},
		{0x41b3de4355555557, "333333333.33333343"},
		{0xbecbf647612f3696, "-0.0000033333333333333333"},
		{0x43143ff3c1cb0959, "1424953923781206.2"},
	}
	for _, c := range cases {
		f := math.Float64frombits(c.bits)
		got, err := AppendCanonical(nil, f)
		if err != nil {
			t.Fatalf("%016x: %v", c.bits, err)
		}
		if string(got) != c.want {
			t.Errorf("%016x: got %s, want %s", c.bits, got, c.want)
		}
	}
	for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if _, err := AppendCanonical(nil, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%v: err=%v, want ErrInvalid", bad, err)
		}
	}
}

func TestCanonicalize_RFC8785Examples(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{
			"section 3.2.2",
			`{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}`,
			`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`,
		},
		{
			"section 3.2.3 sorting",
			`{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}`,
			"{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\"😀\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}",
		},
		{"nested", `{"b":[1,{"z":1,"a":[]}],"a":{}}`, `{"a":{},"b":[1,{"a":[],"z":1}]}`},
		{"numbers", `[1e21, 0.1, -0, 5e-324, 1E-7, 100, 1.5e300]`, `[1e+21,0.1,0,5e-324,1e-7,100,1.5e+300]`},
		{"underflow to zero", `[1e-400]`, `[0]`},
		{"line separators stay literal", "\"\u2028\u2029\"", "\"\u2028\u2029\""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Canonicalize([]byte(c.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != c.want {
				t.Fatalf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

func TestParseJSON_Rejects(t *testing.T) {
	deep := ""
	for i := 0; i <= MaxJSONDepth; i++ {
		deep += "["
	}
	cases := map[string]string{
		"duplicate key":       `{"a":1,"a":2}`,
		"trailing data":       `{} {}`,
		"lone high surrogate": `"\ud800"`,
		"lone low surrogate":  `"\udc00x"`,
		"invalid utf-8":       "\"\xff\"",
		"overflow":            `1e400`,
		"leading zero":        `01`,
		"bare dot":            `1.`,
		"control char":        "\"\x01\"",
		"bad escape":          `"\x"`,
		"too deep":            deep,
		"empty":               ``,
		"single quote":        `'a'`,
		"NaN":                 `NaN`,
		"unterminated":        `{"a":`,
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseJSON([]byte(in)); !errors.Is(err, ErrInvalid) {
				t.Fatalf("err=%v, want ErrInvalid", err)
			}
		})
	}
}

func TestCompareStrings(t *testing.T) {
	// U+FB33 sorts after U+1F600 in UTF-16 order but before it in code
	// point order: the case where the two orders disagree.
	if got := CompareStrings("\U0001F600", "\uFB33"); got != -1 {
		t.Fatalf("CompareStrings(emoji, U+FB33)=%d, want -1", got)
	}
	cases := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"", "a", -1}, {"a", "b", -1}, {"ab", "a", 1},
		{"\U0001F600", "\U0001F601", -1}, {"\uE000", "\U00010000", 1},
	}
	for _, c := range cases {
		if got := CompareStrings(c.a, c.b); got != c.want {
			t.Errorf("CompareStrings(%q, %q)=%d, want %d", c.a, c.b, got, c.want)
		}
	}
}

// FuzzCanonicalize: canonicalization never panics, is idempotent, and
// the canonical text parses back to an equal value.
func FuzzCanonicalize(f *testing.F) {
	for _, s := range []string{`{"a":[1,2,{"b":null}]}`, `"\ud83d\ude00"`, `1e21`, `-0`, `[0.1,5e-324]`, `{"\u20ac":1,"\r":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Canonicalize(b)
		if err != nil {
			return
		}
		c2, err := Canonicalize(c)
		if err != nil || string(c2) != string(c) {
			t.Fatalf("not idempotent: %q -> %q (%v)", c, c2, err)
		}
		v1, _ := ParseJSON(b)
		v2, _ := ParseJSON(c)
		if !EqualJSON(v1, v2) {
			t.Fatalf("value changed: %q -> %q", b, c)
		}
	})
}

func TestAppendCanonical_RoundTripsRandomDoubles(t *testing.T) {
	var seed uint64 = 0x9e3779b97f4a7c15
	for i := 0; i < 200000; i++ {
		seed ^= seed << 13
		seed ^= seed >> 7
		seed ^= seed << 17
		f := math.Float64frombits(seed)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		b, err := AppendCanonical(nil, f)
		if err != nil {
			t.Fatal(err)
		}
		v, err := ParseJSON(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if got := v.(float64); got != f && !(f == 0 && got == 0) {
			var raw [8]byte
			binary.BigEndian.PutUint64(raw[:], seed)
			t.Fatalf("%x: %s parses back as %v, want %v", raw, b, got, f)
		}
	}
}
