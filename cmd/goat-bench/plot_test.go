package main

import (
	"bytes"
	"image"
	"image/png"
	"math"
	"testing"
)

func decodePNG(tb testing.TB, b []byte) image.Image {
	tb.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		tb.Fatalf("not a PNG: %v", err)
	}
	if got, want := img.Bounds().Size(), (image.Point{plotWidth, plotHeight}); got != want {
		tb.Fatalf("size %v, want %v", got, want)
	}
	return img
}

// countColor counts pixels of exactly col.
func countColor(img image.Image, col [3]uint8) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bb, _ := img.At(x, y).RGBA()
			if uint8(r>>8) == col[0] && uint8(g>>8) == col[1] && uint8(bb>>8) == col[2] {
				n++
			}
		}
	}
	return n
}

func rgb(i int) [3]uint8 { c := palette[i]; return [3]uint8{c.R, c.G, c.B} }

func TestLineChart_Render(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    LineChart
	}{
		{"Linear", LineChart{Title: "t", XLabel: "x", YLabel: "y", Series: []Series{{Name: "a", Points: []Point{{1, 1}, {2, 4}, {3, 9}}}, {Name: "b", Points: []Point{{1, 2}, {3, 3}}, Dashed: true}}, HLines: []HLine{{5, "target"}}}},
		{"Log", LineChart{Title: "t", LogX: true, LogY: true, Series: []Series{{Name: "a", Points: []Point{{1, 0.5}, {100, 3}, {1000, 40}}}, {Name: "b", Points: []Point{{1, 5}, {1000, 400}}}}, HLines: []HLine{{10, "10 ms"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.c.Render()
			if err != nil {
				t.Fatal(err)
			}
			img := decodePNG(t, b)
			for i := range tc.c.Series {
				if n := countColor(img, rgb(i)); n < 100 {
					t.Errorf("series %d has %d pixels of its colour", i, n)
				}
			}
			if n := countColor(img, [3]uint8{colTarget.R, colTarget.G, colTarget.B}); n < 100 {
				t.Errorf("target line has %d pixels", n)
			}
		})
	}
}

// A bar's height is proportional to its value on a linear axis.
func TestBarChart_Render(t *testing.T) {
	bc := BarChart{Title: "bars", YLabel: "s", Categories: []string{"a", "b"}, Groups: []BarGroup{{Name: "g", Values: []float64{10, 20}}, {Name: "h", Values: []float64{math.NaN(), 5}}}}
	b, err := bc.Render()
	if err != nil {
		t.Fatal(err)
	}
	img := decodePNG(t, b)
	heights := map[int]int{} // column -> inked height of group 0's colour
	bnd := img.Bounds()
	for x := bnd.Min.X; x < bnd.Max.X; x++ {
		for y := bnd.Min.Y; y < bnd.Max.Y; y++ {
			r, g, bb, _ := img.At(x, y).RGBA()
			if [3]uint8{uint8(r >> 8), uint8(g >> 8), uint8(bb >> 8)} == rgb(0) && y > 80 {
				heights[x]++
			}
		}
	}
	var hs []int
	for _, h := range heights {
		if h > 20 {
			hs = append(hs, h)
		}
	}
	lo, hi := math.MaxInt, 0
	for _, h := range hs {
		lo, hi = min(lo, h), max(hi, h)
	}
	if len(hs) == 0 || math.Abs(float64(hi)/float64(lo)-2) > 0.05 {
		t.Fatalf("bar heights %d and %d, want a ratio of 2", lo, hi)
	}
	if n := countColor(img, rgb(1)); n < 100 {
		t.Errorf("second group has %d pixels", n)
	}
}

func TestNiceStep(t *testing.T) {
	for in, want := range map[float64]float64{0.7: 1, 1: 1, 1.1: 2, 3: 5, 7: 10, 12: 20, 450: 500, 0: 1} {
		if got := niceStep(in); math.Abs(got-want) > 1e-9 {
			t.Errorf("niceStep(%v)=%v, want %v", in, got, want)
		}
	}
}

func TestTickLabel(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 0.5: "0.5", 20: "20", 1500: "1500", 20000: "20k", 2.5e6: "2.5M", 1e9: "1G"} {
		if got := tickLabel(in); got != want {
			t.Errorf("tickLabel(%v)=%q, want %q", in, got, want)
		}
	}
}

func TestGlyphs_Shape(t *testing.T) {
	for r, g := range glyphs {
		for y, row := range g {
			if len(row) != glyphW {
				t.Fatalf("glyph %q row %d is %q, want %d columns", r, y, row, glyphW)
			}
		}
	}
	for _, r := range "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz .,:;/%-_()[]=<>+*'\"!?#&~|" {
		if _, ok := glyphs[r]; !ok {
			t.Errorf("no glyph for %q", r)
		}
	}
}
