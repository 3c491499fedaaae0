package merge

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkDiffText measures a typical edit of a long text and the worst
// case, two unrelated texts, which MaxDiffWork bounds.
func BenchmarkDiffText(b *testing.B) {
	rng := rand.New(rand.NewPCG(11, 12))
	alpha := []rune("abcdefghijklmnopqrstuvwxyz ,.😀")
	doc := randString(rng, alpha, 10000)
	edited := doc
	for i := 0; i < 50; i++ {
		edited = mutate(rng, alpha, edited)
	}
	other := randString(rng, alpha, 10000)
	for _, bc := range []struct{ name, a, b string }{
		{"Typical10k", doc, edited},
		{"Unrelated10k", doc, other},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				DiffText(bc.a, bc.b)
			}
		})
	}
}

func BenchmarkMergeText(b *testing.B) {
	rng := rand.New(rand.NewPCG(13, 14))
	alpha := []rune("abcdefghijklmnopqrstuvwxyz ,.😀")
	base := randString(rng, alpha, 10000)
	heads := make([]string, 3)
	for i := range heads {
		heads[i] = base
		for j := 0; j < 20; j++ {
			heads[i] = mutate(rng, alpha, heads[i])
		}
	}
	for b.Loop() {
		MergeText(base, heads)
	}
}
