package merge

import (
	"slices"
	"unicode/utf8"
)

// MergeText merges text heads edited concurrently from base. heads must be
// in head order ((ts, id) ascending). Each head is diffed against base with
// DiffText; then every base code point that some head deletes is deleted,
// every insertion is kept, and insertions anchored at the same base position
// (a hunk's insertion is anchored at At+Del, after the code points it
// replaces) are concatenated in head order. A head equal to base or to an
// earlier head contributes nothing, so a change merged twice applies once.
//
// The diffs (only made when two or more distinct heads changed) share one
// work budget (MaxDiffWork), spent in head order.
// Invalid UTF-8 bytes count as U+FFFD each; the result is valid UTF-8.
func MergeText(base string, heads []string) string {
	var work int
	return mergeText(base, heads, &work)
}

func mergeText(base string, heads []string, work *int) string {
	base = validUTF8(base)
	var changed []string // distinct, in head order
	for _, h := range heads {
		if h = validUTF8(h); h != base && !slices.Contains(changed, h) {
			changed = append(changed, h)
		}
	}
	switch len(changed) {
	case 0:
		return base
	case 1:
		return changed[0] // no diff needed: its script applied to base is itself
	}
	b := []rune(base)
	deleted := make([]bool, len(b))
	inserts := make([][]rune, len(b)+1) // by anchor
	for _, h := range changed {
		for _, sp := range diffRunes(b, []rune(h), work) {
			for p := sp.At; p < sp.At+sp.Del; p++ {
				deleted[p] = true
			}
			inserts[sp.At+sp.Del] = append(inserts[sp.At+sp.Del], []rune(sp.Ins)...)
		}
	}
	out := make([]rune, 0, len(b))
	for g := 0; g <= len(b); g++ {
		out = append(out, inserts[g]...)
		if g < len(b) && !deleted[g] {
			out = append(out, b[g])
		}
	}
	return string(out)
}

// validUTF8 replaces each invalid byte by U+FFFD, so that strings compare
// as the code point sequences the diff sees.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return string([]rune(s))
}
