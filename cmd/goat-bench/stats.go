package main

import (
	"math"
	"slices"
	"time"
)

// Summary describes a sample of measurements in one unit (the field names
// say which): order statistics by the nearest-rank method, so that every
// reported percentile is a value that was actually observed.
type Summary struct {
	N    int     `json:"n"`
	Min  float64 `json:"min"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// Summarize returns the summary of xs; the zero Summary for no values. xs
// is not modified.
func Summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	sum := 0.0
	for _, x := range s {
		sum += x
	}
	return Summary{
		N:    len(s),
		Min:  s[0],
		P50:  rank(s, 0.50),
		P90:  rank(s, 0.90),
		P99:  rank(s, 0.99),
		Max:  s[len(s)-1],
		Mean: sum / float64(len(s)),
	}
}

// rank is the nearest-rank percentile of sorted s: the smallest value with
// at least q of the sample at or below it.
func rank(s []float64, q float64) float64 {
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// Median returns the median of xs (nearest rank, so an observed value).
func Median(xs []float64) float64 { return Summarize(xs).P50 }

// ms converts a duration to float milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// LinearFit returns the least-squares slope and intercept of y over x; ok
// is false with fewer than two distinct x.
func LinearFit(x, y []float64) (slope, intercept float64, ok bool) {
	n := float64(len(x))
	if len(x) != len(y) || len(x) < 2 {
		return 0, 0, false
	}
	var sx, sy, sxx, sxy float64
	for i := range x {
		sx += x[i]
		sy += y[i]
		sxx += x[i] * x[i]
		sxy += x[i] * y[i]
	}
	den := n*sxx - sx*sx
	if den == 0 {
		return 0, 0, false
	}
	slope = (n*sxy - sx*sy) / den
	return slope, (sy - slope*sx) / n, true
}
