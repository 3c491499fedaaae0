package merge

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDiffText(t *testing.T) {
	tests := []struct {
		name       string
		base, head string
		want       []Splice
	}{
		{"Equal", "abc", "abc", nil},
		{"Empty", "", "", nil},
		{"InsertIntoEmpty", "", "xy", []Splice{{0, 0, "xy"}}},
		{"DeleteAll", "xy", "", []Splice{{0, 2, ""}}},
		{"Append", "ab", "abc", []Splice{{2, 0, "c"}}},
		{"Prepend", "bc", "abc", []Splice{{0, 0, "a"}}},
		// An ambiguous insertion goes after the longest common prefix.
		{"RepeatedRun", "aa", "aaa", []Splice{{2, 0, "a"}}},
		{"Replace", "abc", "axc", []Splice{{1, 1, "x"}}},
		{"TwoHunks", "abcdef", "aXcdeY", []Splice{{1, 1, "X"}, {5, 1, "Y"}}},
		// Swap: both scripts have cost 2; the insertion tie-break keeps "b".
		{"Swap", "ab", "ba", []Splice{{0, 1, ""}, {2, 0, "a"}}},
		{"Astral", "a😀b", "a😀🎉b", []Splice{{2, 0, "🎉"}}},
		{"AstralReplace", "😀", "😁", []Splice{{0, 1, "😁"}}},
		{"Words", "the cat sat", "the dog sat", []Splice{{4, 3, "dog"}}},
		// The example of Myers 1986: one of its several 5-edit scripts.
		{"Myers", "ABCABBA", "CBABAC", []Splice{{0, 1, "C"}, {2, 1, ""}, {5, 1, ""}, {7, 0, "C"}}},
		{"InvalidUTF8", "a\xffb", "ab", []Splice{{1, 1, ""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DiffText(tt.base, tt.head)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("DiffText(%q, %q) = %v, want %v", tt.base, tt.head, got, tt.want)
			}
			if got, want := applySplices(tt.base, got), strings.ToValidUTF8(tt.head, "\uFFFD"); got != want {
				t.Fatalf("applying the script gives %q, want %q", got, want)
			}
		})
	}
}

// TestDiffText_Oracle checks random diffs against a dynamic-programming
// LCS: the script must turn base into head, be minimal, and be well formed.
func TestDiffText_Oracle(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabets := []string{"ab", "abc", "abcdefgh", "a😀b🎉"}
	for i := 0; i < 3000; i++ {
		alpha := []rune(alphabets[i%len(alphabets)])
		base := randString(rng, alpha, rng.IntN(30))
		head := randString(rng, alpha, rng.IntN(30))
		if rng.IntN(2) == 0 {
			head = mutate(rng, alpha, base)
		}
		checkDiff(t, base, head)
	}
}

func TestDiffText_Budget(t *testing.T) {
	t.Run("Exhausted", func(t *testing.T) {
		// Unrelated texts need far more than MaxDiffWork: the middle is
		// replaced whole, and the script is still correct.
		rng := rand.New(rand.NewPCG(3, 4))
		alpha := []rune("abcdefghijklmnopqrstuvwxyz")
		base := "<" + randString(rng, alpha, 5000) + ">"
		head := "<" + randString(rng, alpha, 5000) + ">"
		s := DiffText(base, head)
		if got, want := applySplices(base, s), head; got != want {
			t.Fatalf("applying the script does not give head")
		}
		if want := []Splice{{1, 5000, head[1 : len(head)-1]}}; !reflect.DeepEqual(s, want) {
			t.Fatalf("diff has %d hunks, want one replacing the middle", len(s))
		}
	})
	t.Run("LargeTextStaysExact", func(t *testing.T) {
		// 300 scattered one-character replacements in 100,000 code points
		// are well within the budget: the script is exact.
		rng := rand.New(rand.NewPCG(5, 6))
		base := []rune(randString(rng, []rune("abcdefghijklmnopqrstuvwxyz ,."), 100000))
		head := slices.Clone(base)
		for i := 0; i < 300; i++ {
			head[rng.IntN(len(head))] = '😀'
		}
		s := DiffText(string(base), string(head))
		if got, want := applySplices(string(base), s), string(head); got != want {
			t.Fatalf("applying the script does not give head")
		}
		cost := 0
		for _, sp := range s {
			cost += sp.Del + utf8.RuneCountInString(sp.Ins)
		}
		if cost > 600 {
			t.Fatalf("script costs %d for 300 replacements: the budget cut it short", cost)
		}
	})
}

func FuzzDiffText(f *testing.F) {
	f.Add("", "")
	f.Add("abc", "axc")
	f.Add("ABCABBA", "CBABAC")
	f.Add("a😀b", "😀a\xffb")
	f.Add("hello world", "hello, brave new world")
	f.Fuzz(func(t *testing.T, base, head string) {
		if len(base) > 200 || len(head) > 200 {
			return // keeps the O(N·M) oracle fast
		}
		checkDiff(t, base, head)
	})
}

func checkDiff(t *testing.T, base, head string) {
	t.Helper()
	s := DiffText(base, head)
	if got, want := applySplices(base, s), strings.ToValidUTF8(head, "\uFFFD"); got != want {
		// ToValidUTF8 folds runs of bad bytes; compare as runes instead.
		if string([]rune(head)) != got {
			t.Fatalf("DiffText(%q, %q) = %v applies to %q", base, head, s, got)
		}
	}
	a, b := []rune(base), []rune(head)
	cost := 0
	end := -1
	for _, sp := range s {
		if sp.Del == 0 && sp.Ins == "" {
			t.Fatalf("DiffText(%q, %q) has an empty hunk: %v", base, head, s)
		}
		if sp.At <= end {
			t.Fatalf("DiffText(%q, %q): hunks not separated by an equal code point: %v", base, head, s)
		}
		end = sp.At + sp.Del
		cost += sp.Del + utf8.RuneCountInString(sp.Ins)
	}
	if want := len(a) + len(b) - 2*lcs(a, b); cost != want {
		t.Fatalf("DiffText(%q, %q) = %v costs %d, want the minimum %d", base, head, s, cost, want)
	}
}

// applySplices applies a script in base coordinates.
func applySplices(base string, s []Splice) string {
	a := []rune(base)
	var out []rune
	pos := 0
	for _, sp := range s {
		out = append(out, a[pos:sp.At]...)
		out = append(out, []rune(sp.Ins)...)
		pos = sp.At + sp.Del
	}
	return string(append(out, a[pos:]...))
}

func lcs(a, b []rune) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			switch {
			case a[i-1] == b[j-1]:
				cur[j] = prev[j-1] + 1
			case prev[j] >= cur[j-1]:
				cur[j] = prev[j]
			default:
				cur[j] = cur[j-1]
			}
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func randString(rng *rand.Rand, alpha []rune, n int) string {
	r := make([]rune, n)
	for i := range r {
		r[i] = alpha[rng.IntN(len(alpha))]
	}
	return string(r)
}

// mutate makes a few random edits, so that the diff has long snakes.
func mutate(rng *rand.Rand, alpha []rune, s string) string {
	r := []rune(s)
	for n := rng.IntN(4); n >= 0; n-- {
		at := rng.IntN(len(r) + 1)
		del := rng.IntN(len(r) - at + 1)
		if del > 3 {
			del = 3
		}
		ins := []rune(randString(rng, alpha, rng.IntN(4)))
		r = append(r[:at:at], append(ins, r[at+del:]...)...)
	}
	return string(r)
}
