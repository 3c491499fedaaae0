package sync

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestReduceLayout checks the version 3 echo: every id of a differing
// partition lands, under the reduced layout, in that partition's
// renumbered index, every other id outside the renumbered indexes, and
// only cuts bounding a differing window remain.
func TestReduceLayout(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	ids := randomIDs(r, 400)
	for trial := range 300 {
		n := r.IntN(8)
		l := Layout{Cuts: make([]int64, n), Bits: make([]uint8, n+1)}
		c := int64(r.IntN(100)) - 50
		for i := range l.Cuts {
			c += 1 + int64(r.IntN(20))
			l.Cuts[i] = c
		}
		for i := range l.Bits {
			l.Bits[i] = uint8(r.IntN(3))
		}
		inDiff := make([]bool, l.Parts())
		var diff []PartDigest
		for p := range inDiff {
			if r.IntN(4) == 0 {
				inDiff[p] = true
				diff = append(diff, PartDigest{Index: p})
			}
		}
		orig := slices.Clone(diff)
		red := reduceLayout(&l, inDiff, diff)
		if err := red.Validate(); err != nil {
			t.Fatalf("trial %d: reduced layout invalid: %v", trial, err)
		}
		renum := map[int]int{} // full index -> reduced index
		for k := range diff {
			renum[orig[k].Index] = diff[k].Index
			if k > 0 && diff[k].Index <= diff[k-1].Index {
				t.Fatalf("trial %d: renumbered indexes do not ascend", trial)
			}
		}
		reduced := map[int]bool{}
		for _, x := range diff {
			reduced[x.Index] = true
		}
		for i, id := range ids {
			tsv := int64(r.IntN(250)) - 75
			if i%7 == 0 && len(l.Cuts) > 0 {
				tsv = l.Cuts[r.IntN(len(l.Cuts))] // exactly on a cut
			}
			p, q := l.Index(id, tsv), red.Index(id, tsv)
			if want, ok := renum[p]; ok && q != want {
				t.Fatalf("trial %d: id in differing partition %d lands in %d, want %d", trial, p, q, want)
			}
			if _, ok := renum[p]; !ok && reduced[q] {
				t.Fatalf("trial %d: id of partition %d (not differing) lands in differing %d", trial, p, q)
			}
		}
		if len(diff) == 0 && len(red.Cuts) != 0 {
			t.Fatalf("trial %d: nothing differs, %d cuts echoed", trial, len(red.Cuts))
		}
	}
}
