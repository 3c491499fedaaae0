package sync

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
)

func TestCursor_RoundTrip(t *testing.T) {
	log := LogID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	for _, off := range []uint64{0, 1, 1000, math.MaxUint64} {
		s := EncodeCursor(log, off)
		if got, want := len(s), CursorLen; got != want {
			t.Fatalf("len=%d, want %d", got, want)
		}
		if strings.ContainsAny(s, "+/=") {
			t.Fatalf("cursor %q is not base64url without padding", s)
		}
		c, err := DecodeCursor(s)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := c, (Cursor{Log: log, Offset: off}); got != want {
			t.Fatalf("decoded=%+v, want %+v", got, want)
		}
		if got, want := c.String(), s; got != want {
			t.Fatalf("String()=%q, want %q", got, want)
		}
	}
}

func TestDecodeCursor_Rejects(t *testing.T) {
	good := EncodeCursor(LogID{9}, 42)
	flip := func(i int) string {
		b := []byte(good)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	tests := []struct{ name, in string }{
		{"Empty", ""},
		{"Short", good[:len(good)-1]},
		{"Long", good + "A"},
		{"Padded", good[:len(good)-1] + "="},
		{"StdAlphabet", strings.Repeat("+", CursorLen)},
		{"TypoInLog", flip(5)},
		{"TypoInOffset", flip(30)},
		{"TypoInChecksum", flip(36)},
		{"NonZeroTrailingBits", good[:len(good)-1] + "B"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeCursor(tt.in); !errors.Is(err, core.ErrInvalid) {
				t.Fatalf("DecodeCursor(%q)=%v, want ErrInvalid", tt.in, err)
			}
		})
	}
	t.Run("Version", func(t *testing.T) {
		// A well-formed cursor of version 2 (checksum correct) is refused.
		s := encodeCursor(2, LogID{}, 0)
		if _, err := DecodeCursor(s); err == nil || !strings.Contains(err.Error(), "version") {
			t.Fatalf("err=%v, want a version error", err)
		}
	})
}

func TestCursor_For(t *testing.T) {
	a, b := LogID{1}, LogID{2}
	c := Cursor{Log: a, Offset: 10}
	tests := []struct {
		name string
		log  LogID
		end  uint64
		want error
	}{
		{"Same", a, 10, nil},
		{"Behind", a, 20, nil},
		{"OtherLog", b, 10, core.ErrMustReconcile},
		{"BeyondEnd", a, 9, core.ErrMustReconcile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := c.For(tt.log, tt.end); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("For=%v, want %v", err, tt.want)
			}
		})
	}
}
