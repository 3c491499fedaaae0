package merge

import (
	"math/rand/v2"
	"testing"
	"unicode/utf8"
)

func TestMergeText(t *testing.T) {
	tests := []struct {
		name  string
		base  string
		heads []string
		want  string
	}{
		{"NoHeads", "abc", nil, "abc"},
		{"Unchanged", "abc", []string{"abc", "abc"}, "abc"},
		{"OneChanged", "abc", []string{"abc", "abXc"}, "abXc"},
		{"DisjointEdits", "hello world", []string{"Hello world", "hello world!"}, "Hello world!"},
		{"SameAnchorHeadOrder", "ac", []string{"abc", "aXc"}, "abXc"},
		{"SameAnchorHeadOrderReversed", "ac", []string{"aXc", "abc"}, "aXbc"},
		{"BothDeleteSame", "abc", []string{"ac", "ac"}, "ac"},
		{"DeleteAndDeleteOverlap", "abcd", []string{"ad", "abd"}, "ad"},
		// The replacement is anchored after the run it replaces, so the
		// other head's insertion inside that run comes first.
		{"InsertInsideDeletedRun", "abcde", []string{"aXe", "abcYde"}, "aYXe"},
		{"ReplaceSameWord", "the cat", []string{"the dog", "the cow"}, "the dogow"},
		{"SameEditTwice", "abc", []string{"abXc", "abXc"}, "abXc"},
		{"SameEditTwiceAroundOther", "abc", []string{"abXc", "Yabc", "abXc"}, "YabXc"},
		{"EmptyBase", "", []string{"foo", "bar"}, "foobar"},
		{"DeleteEverything", "abc", []string{"", "abcd"}, "d"},
		{"Astral", "a😀b", []string{"a😀🎉b", "😁a😀b"}, "😁a😀🎉b"},
		{"AstralDelete", "😀🎉😁", []string{"😀😁", "😀🎉😁🙂"}, "😀😁🙂"},
		{"InvalidUTF8", "a\xffb", []string{"a\xffbc", "xa\xffb"}, "xa\uFFFDbc"},
		{"ThreeHeads", "1 2 3", []string{"0 1 2 3", "1 2.5 3", "1 2 3 4"}, "0 1 2.5 3 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MergeText(tt.base, tt.heads); got != tt.want {
				t.Fatalf("MergeText(%q, %q) = %q, want %q", tt.base, tt.heads, got, tt.want)
			}
		})
	}
}

// TestMergeText_Properties checks random merges, with astral characters,
// against the properties of the merge rule.
func TestMergeText_Properties(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	alpha := []rune("ab c😀🎉\U0010FFFF")
	for i := 0; i < 2000; i++ {
		base := randString(rng, alpha, rng.IntN(20))
		heads := make([]string, 1+rng.IntN(4))
		for j := range heads {
			heads[j] = mutate(rng, alpha, base)
		}
		checkMergeText(t, base, heads)
	}
}

func FuzzMergeText(f *testing.F) {
	f.Add("", "", "", "")
	f.Add("hello world", "Hello world", "hello world!", "hello, world")
	f.Add("ac", "abc", "aXc", "ac")
	f.Add("a😀b", "a😀🎉b", "😁a😀b", "ab")
	f.Add("a\xffb", "a\xfe", "\xed\xa0\x80", "b")
	f.Fuzz(func(t *testing.T, base, h1, h2, h3 string) {
		if len(base)+len(h1)+len(h2)+len(h3) > 1000 {
			return
		}
		checkMergeText(t, base, []string{h1, h2, h3})
	})
}

// checkMergeText asserts, for heads merged from base: the result is valid
// UTF-8; it has exactly the base code points no head deleted plus every
// insertion of every distinct changed head (so nothing is duplicated or
// lost); each of those sequences appears in order; a lone change, the same
// change twice, and unchanged heads merge to the obvious value.
func checkMergeText(t *testing.T, base string, heads []string) {
	t.Helper()
	got := MergeText(base, heads)
	if !utf8.ValidString(got) {
		t.Fatalf("MergeText(%q, %q) = %q, not valid UTF-8", base, heads, got)
	}
	b := []rune(base)
	deleted := make([]bool, len(b))
	var inserted [][]rune
	seen := map[string]bool{string(b): true}
	for _, h := range heads {
		h = string([]rune(h))
		if seen[h] {
			continue
		}
		seen[h] = true
		var ins []rune
		for _, sp := range DiffText(base, h) {
			for p := sp.At; p < sp.At+sp.Del; p++ {
				deleted[p] = true
			}
			ins = append(ins, []rune(sp.Ins)...)
		}
		inserted = append(inserted, ins)
	}
	var kept []rune
	for p, r := range b {
		if !deleted[p] {
			kept = append(kept, r)
		}
	}
	want := len(kept)
	for _, ins := range inserted {
		want += len(ins)
	}
	out := []rune(got)
	if len(out) != want {
		t.Fatalf("MergeText(%q, %q) = %q has %d code points, want %d (kept base %d + insertions)", base, heads, got, len(out), want, len(kept))
	}
	if !isSubsequence(kept, out) {
		t.Fatalf("MergeText(%q, %q) = %q lost or reordered kept base code points %q", base, heads, got, string(kept))
	}
	for i, ins := range inserted {
		if !isSubsequence(ins, out) {
			t.Fatalf("MergeText(%q, %q) = %q lost or reordered insertions %q of head %d", base, heads, got, string(ins), i)
		}
	}
	for _, h := range heads {
		clean := string([]rune(h))
		for _, hs := range [][]string{{h}, {h, h}, {base, h}, {h, base}} {
			if got := MergeText(base, hs); got != clean {
				t.Fatalf("MergeText(%q, %q) = %q, want %q", base, hs, got, clean)
			}
		}
	}
}

func isSubsequence(sub, s []rune) bool {
	i := 0
	for _, r := range s {
		if i < len(sub) && sub[i] == r {
			i++
		}
	}
	return i == len(sub)
}
