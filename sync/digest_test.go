package sync

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
)

func TestDigest_AddRemove(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	ids := randomIDs(r, 100)
	var d Digest
	for _, id := range ids {
		d.Add(id)
	}
	if got, want := d, DigestOf(ids...); got != want {
		t.Fatalf("incremental=%v, want %v", got, want)
	}
	// Order does not matter.
	r.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	if got, want := DigestOf(ids...), d; !got.Equal(want) {
		t.Fatalf("shuffled=%v, want %v", got, want)
	}
	for _, id := range ids[50:] {
		d.Remove(id)
	}
	if got, want := d, DigestOf(ids[:50]...); got != want {
		t.Fatalf("after remove=%v, want %v", got, want)
	}
	for _, id := range ids[:50] {
		d.Remove(id)
	}
	if got, want := d, (Digest{}); got != want {
		t.Fatalf("empty=%v, want zero", got)
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestDigest_Validate(t *testing.T) {
	one := DigestOf(core.CommitID{1})
	tests := []struct {
		name string
		d    Digest
		ok   bool
	}{
		{"Empty", Digest{}, true},
		{"One", one, true},
		{"Negative", Digest{Count: -1}, false},
		{"EmptyWithSum", Digest{Count: 0, XOR: one.XOR}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.d.Validate()
			if got, want := err == nil, tt.ok; got != want {
				t.Fatalf("Validate()=%v, want ok=%v", err, want)
			}
			if err != nil && !errors.Is(err, core.ErrInvalid) {
				t.Fatalf("err=%v, want ErrInvalid", err)
			}
		})
	}
}

func TestSum_Text(t *testing.T) {
	s := DigestOf(core.CommitID{0xab, 0x01}).XOR
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `"ab01`+strings.Repeat("0", 60)+`"`; got != want {
		t.Fatalf("json=%s, want %s", got, want)
	}
	var back Sum
	if err := json.Unmarshal(b, &back); err != nil || back != s {
		t.Fatalf("round trip=%v,%v, want %v", back, err, s)
	}
	for _, bad := range []string{"", "ab", strings.Repeat("A", 64), strings.Repeat("0", 63) + "g", strings.Repeat("0", 66)} {
		if _, err := ParseSum(bad); !errors.Is(err, core.ErrInvalid) {
			t.Fatalf("ParseSum(%q)=%v, want ErrInvalid", bad, err)
		}
	}
}
