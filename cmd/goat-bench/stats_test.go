package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []float64
		want Summary
	}{
		{"Empty", nil, Summary{}},
		{"One", []float64{7}, Summary{N: 1, Min: 7, P50: 7, P90: 7, P99: 7, Max: 7, Mean: 7}},
		{"Two", []float64{2, 1}, Summary{N: 2, Min: 1, P50: 1, P90: 2, P99: 2, Max: 2, Mean: 1.5}},
		{"Ten", []float64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, Summary{N: 10, Min: 1, P50: 5, P90: 9, P99: 10, Max: 10, Mean: 5.5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Summarize(tc.in); got != tc.want {
				t.Fatalf("Summarize(%v)=%+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

// Percentiles are nearest-rank: the smallest observed value with at least
// q of the sample at or below it. The oracle counts instead of indexing.
func TestSummarize_NearestRankOracle(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		n := 1 + rng.IntN(300)
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = math.Round(rng.Float64()*50) / 2 // ties on purpose
		}
		orig := slices.Clone(xs)
		s := Summarize(xs)
		if !slices.Equal(xs, orig) {
			t.Fatal("Summarize modified its input")
		}
		for _, c := range []struct {
			q   float64
			got float64
		}{{0.5, s.P50}, {0.9, s.P90}, {0.99, s.P99}} {
			if got, want := c.got, oraclePercentile(xs, c.q); got != want {
				t.Fatalf("n=%d q=%v: got %v, want %v", n, c.q, got, want)
			}
		}
	}
}

func oraclePercentile(xs []float64, q float64) float64 {
	best := math.Inf(1)
	for _, v := range xs {
		at := 0
		for _, w := range xs {
			if w <= v {
				at++
			}
		}
		if float64(at) >= q*float64(len(xs))-1e-9 && v < best {
			best = v
		}
	}
	return best
}

func TestLinearFit(t *testing.T) {
	slope, icpt, ok := LinearFit([]float64{1000, 2000, 4000}, []float64{50e6 + 40e3*1000, 50e6 + 40e3*2000, 50e6 + 40e3*4000})
	if !ok {
		t.Fatal("LinearFit failed on three points")
	}
	if math.Abs(slope-40e3) > 1e-6 || math.Abs(icpt-50e6) > 1e-3 {
		t.Fatalf("slope=%v intercept=%v, want 40000 and 5e7", slope, icpt)
	}
	if _, _, ok := LinearFit([]float64{3, 3}, []float64{1, 2}); ok {
		t.Fatal("LinearFit of one distinct x reported ok")
	}
}

func TestCommas(t *testing.T) {
	for in, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -20000: "-20,000"} {
		if got := commas(in); got != want {
			t.Errorf("commas(%d)=%q, want %q", in, got, want)
		}
	}
}
