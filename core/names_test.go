package core

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// TestNames_MatchPatterns holds the hand-written name checks to the
// regular expressions they stand for, on random strings over an alphabet
// of every class's edges, at lengths around every limit.
func TestNames_MatchPatterns(t *testing.T) {
	checks := []struct {
		pattern string
		match   func(string) bool
	}{
		{repoPattern, matchRepoName},
		{keyPattern, matchKey},
		{authorPattern, matchAuthor},
		{nsPattern, matchNS},
	}
	const alphabet = "aAzZ09_.-~:@/ \x00\xffé`{[" + "mQ5"
	rng := rand.New(rand.NewPCG(19, 1))
	for _, c := range checks {
		re := regexp.MustCompile(c.pattern)
		for i := range 200_000 {
			n := rng.IntN(8)
			if i%10 == 0 {
				n = []int{63, 64, 65, 127, 128, 129, 199, 200, 201}[rng.IntN(9)]
			}
			var b strings.Builder
			for range n {
				if i%10 == 0 && rng.IntN(20) != 0 {
					b.WriteByte("abc0"[rng.IntN(4)])
					continue
				}
				b.WriteByte(alphabet[rng.IntN(len(alphabet))])
			}
			s := b.String()
			if got, want := c.match(s), re.MatchString(s); got != want {
				t.Fatalf("%s: %q: %v, want %v", c.pattern, s, got, want)
			}
		}
	}
}
