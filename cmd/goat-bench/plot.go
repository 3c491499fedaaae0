package main

import (
	"bytes"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"strconv"
	"strings"
)

// Plots are drawn with the standard library alone (image, image/png and
// the bitmap font in font.go): a benchmark report should not pull a
// plotting stack into the module.

// Point is one (x, y) value of a line series.
type Point struct{ X, Y float64 }

// Series is one line of a LineChart.
type Series struct {
	Name   string
	Points []Point
	Dashed bool
}

// HLine is a horizontal reference line, such as a target.
type HLine struct {
	Y     float64
	Label string
}

// LineChart plots series against a numeric x axis.
type LineChart struct {
	Title, XLabel, YLabel string
	LogX, LogY            bool
	Series                []Series
	HLines                []HLine
}

// BarGroup is one series of a BarChart: a value per category (NaN for
// none).
type BarGroup struct {
	Name   string
	Values []float64
}

// BarChart plots grouped bars over categories.
type BarChart struct {
	Title, YLabel string
	Categories    []string
	Groups        []BarGroup
	HLines        []HLine
	LogY          bool
}

var (
	colWhite  = color.RGBA{255, 255, 255, 255}
	colInk    = color.RGBA{30, 30, 30, 255}
	colGrid   = color.RGBA{225, 225, 225, 255}
	colTarget = color.RGBA{200, 30, 30, 255}
	palette   = []color.RGBA{
		{31, 119, 180, 255},  // blue: goat-gateway
		{255, 127, 14, 255},  // orange: the peer
		{44, 160, 44, 255},   // green
		{148, 103, 189, 255}, // purple
		{140, 86, 75, 255},   // brown
		{23, 190, 207, 255},  // cyan
	}
)

const (
	textScale  = 2
	charW      = (glyphW + 1) * textScale
	lineH      = (glyphH + 2) * textScale
	plotWidth  = 1000
	plotHeight = 600
)

type canvas struct{ *image.RGBA }

func newCanvas(w, h int) canvas {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), &image.Uniform{colWhite}, image.Point{}, draw.Src)
	return canvas{img}
}

func (c canvas) rect(x0, y0, x1, y1 int, col color.RGBA) {
	if x0 > x1 {
		x0, x1 = x1, x0
	}
	if y0 > y1 {
		y0, y1 = y1, y0
	}
	draw.Draw(c.RGBA, image.Rect(x0, y0, x1, y1), &image.Uniform{col}, image.Point{}, draw.Src)
}

// line draws a line of width w (Bresenham, thickened by a square pen);
// dashed lines skip every other 8 pixels.
func (c canvas) line(x0, y0, x1, y1, w int, col color.RGBA, dashed bool) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := 1, 1
	if x0 > x1 {
		sx = -1
	}
	if y0 > y1 {
		sy = -1
	}
	err := dx + dy
	step := 0
	for {
		if !dashed || (step/8)%2 == 0 {
			c.rect(x0-w/2, y0-w/2, x0-w/2+w, y0-w/2+w, col)
		}
		step++
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * err
		if e2 >= dy {
			err += dy
			x0 += sx
		}
		if e2 <= dx {
			err += dx
			y0 += sy
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// text draws s with its top-left corner at (x, y).
func (c canvas) text(x, y int, s string, col color.RGBA) {
	for _, r := range s {
		for gy := range glyphH {
			for gx := range glyphW {
				if glyphInk(r, gx, gy) {
					c.rect(x+gx*textScale, y+gy*textScale, x+(gx+1)*textScale, y+(gy+1)*textScale, col)
				}
			}
		}
		x += charW
	}
}

// textUp draws s rotated a quarter turn counter-clockwise, reading
// upwards, with its bottom-left corner at (x, y).
func (c canvas) textUp(x, y int, s string, col color.RGBA) {
	for _, r := range s {
		for gy := range glyphH {
			for gx := range glyphW {
				if glyphInk(r, gx, gy) {
					px, py := x+gy*textScale, y-(gx+1)*textScale
					c.rect(px, py, px+textScale, py+textScale, col)
				}
			}
		}
		y -= charW
	}
}

func textWidth(s string) int { return len([]rune(s)) * charW }

func (c canvas) png() ([]byte, error) {
	var b bytes.Buffer
	if err := png.Encode(&b, c.RGBA); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// axis maps values to pixels, linearly or by decades.
type axis struct {
	lo, hi float64 // in value space (log10 of it for a log axis)
	log    bool
	p0, p1 int // pixels of lo and hi
}

func newAxis(lo, hi float64, log bool, p0, p1 int) axis {
	if log {
		lo = math.Floor(math.Log10(math.Max(lo, 1e-12)))
		hi = math.Ceil(math.Log10(math.Max(hi, 1e-12)))
		if hi <= lo {
			hi = lo + 1
		}
	} else {
		if hi <= lo {
			hi = lo + 1
		}
		step := niceStep((hi - lo) / 5)
		lo = math.Floor(lo/step) * step
		hi = math.Ceil(hi/step) * step
	}
	return axis{lo: lo, hi: hi, log: log, p0: p0, p1: p1}
}

func (a axis) px(v float64) int {
	if a.log {
		v = math.Log10(math.Max(v, 1e-12))
	}
	return a.p0 + int(math.Round((v-a.lo)/(a.hi-a.lo)*float64(a.p1-a.p0)))
}

func (a axis) ticks() []float64 {
	var out []float64
	if a.log {
		for e := a.lo; e <= a.hi+1e-9; e++ {
			out = append(out, math.Pow(10, e))
		}
		return out
	}
	step := niceStep((a.hi - a.lo) / 5)
	for v := a.lo; v <= a.hi+step*1e-6; v += step {
		out = append(out, math.Round(v/step)*step)
	}
	return out
}

// niceStep rounds x up to 1, 2 or 5 times a power of ten.
func niceStep(x float64) float64 {
	if x <= 0 || math.IsNaN(x) || math.IsInf(x, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= x*(1-1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// tickLabel formats an axis value briefly: 0.5, 20, 1.5k, 2M.
func tickLabel(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e9:
		return trimFloat(v/1e9) + "G"
	case a >= 1e6:
		return trimFloat(v/1e6) + "M"
	case a >= 1e4:
		return trimFloat(v/1e3) + "k"
	}
	return trimFloat(v)
}

func trimFloat(v float64) string {
	s := strconv.FormatFloat(v, 'f', 3, 64)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// frame is the common layout: title, legend, plot area, axis labels.
type frame struct {
	c                      canvas
	left, top, right, bott int
}

func newFrame(title, ylabel, xlabel string, legend []string, hlines []HLine) frame {
	c := newCanvas(plotWidth, plotHeight)
	f := frame{c: c, left: 100, top: 50, right: plotWidth - 30, bott: plotHeight - 70}
	c.text((plotWidth-textWidth(title))/2, 12, title, colInk)
	// The legend flows left to right and wraps: series first, then the
	// reference lines (red, dashed), so no label covers data or another.
	type entry struct {
		name string
		col  int // palette index, or -1 for a reference line
	}
	var entries []entry
	for i, name := range legend {
		entries = append(entries, entry{name, i % len(palette)})
	}
	for _, h := range hlines {
		entries = append(entries, entry{h.Label, -1})
	}
	x, y := f.left, 50
	for _, e := range entries {
		w := 24 + textWidth(e.name)
		if x > f.left && x+w > f.right {
			x, y = f.left, y+lineH
		}
		if e.col >= 0 {
			c.rect(x, y+4, x+18, y+16, palette[e.col])
			c.text(x+24, y, e.name, colInk)
		} else {
			c.line(x, y+9, x+18, y+9, 2, colTarget, true)
			c.text(x+24, y, e.name, colTarget)
		}
		x += w + 30
	}
	if len(entries) > 0 {
		f.top = y + lineH + 8
	}
	if ylabel != "" {
		c.textUp(12, (f.top+f.bott)/2+textWidth(ylabel)/2, ylabel, colInk)
	}
	if xlabel != "" {
		c.text((f.left+f.right-textWidth(xlabel))/2, plotHeight-lineH-4, xlabel, colInk)
	}
	return f
}

func (f frame) yAxis(a axis, hlines []HLine) {
	for _, t := range a.ticks() {
		y := a.px(t)
		if y < f.top-1 || y > f.bott+1 {
			continue
		}
		f.c.line(f.left, y, f.right, y, 1, colGrid, false)
		l := tickLabel(t)
		f.c.text(f.left-8-textWidth(l), y-glyphH*textScale/2+2, l, colInk)
	}
	for _, h := range hlines {
		if y := a.px(h.Y); y >= f.top && y <= f.bott {
			f.c.line(f.left, y, f.right, y, 2, colTarget, true)
		}
	}
	f.c.line(f.left, f.top, f.left, f.bott, 2, colInk, false)
	f.c.line(f.left, f.bott, f.right, f.bott, 2, colInk, false)
}

func valueRange(vals []float64, log bool) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, v := range vals {
		if math.IsNaN(v) || (log && v <= 0) {
			continue
		}
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	if math.IsInf(lo, 1) {
		return 0, 1
	}
	if !log {
		lo = math.Min(lo, 0)
	}
	return lo, hi
}

// Render draws the chart as a PNG.
func (lc LineChart) Render() ([]byte, error) {
	var names []string
	var xs, ys []float64
	for _, s := range lc.Series {
		names = append(names, s.Name)
		for _, p := range s.Points {
			xs = append(xs, p.X)
			ys = append(ys, p.Y)
		}
	}
	for _, h := range lc.HLines {
		ys = append(ys, h.Y)
	}
	f := newFrame(lc.Title, lc.YLabel, lc.XLabel, names, lc.HLines)
	xlo, xhi := valueRange(xs, lc.LogX)
	if !lc.LogX && len(xs) > 0 {
		xlo = xs[0]
		for _, x := range xs {
			xlo = math.Min(xlo, x)
		}
	}
	ylo, yhi := valueRange(ys, lc.LogY)
	xa := newAxis(xlo, xhi, lc.LogX, f.left+20, f.right-20)
	ya := newAxis(ylo, yhi*1.05, lc.LogY, f.bott, f.top)
	f.yAxis(ya, lc.HLines)
	for _, t := range xa.ticks() {
		x := xa.px(t)
		f.c.line(x, f.bott, x, f.bott+6, 2, colInk, false)
		l := tickLabel(t)
		f.c.text(x-textWidth(l)/2, f.bott+10, l, colInk)
	}
	for i, s := range lc.Series {
		col := palette[i%len(palette)]
		var px, py int
		for j, p := range s.Points {
			if (lc.LogY && p.Y <= 0) || math.IsNaN(p.Y) {
				continue
			}
			x, y := xa.px(p.X), ya.px(p.Y)
			if j > 0 {
				f.c.line(px, py, x, y, 3, col, s.Dashed)
			}
			f.c.rect(x-5, y-5, x+5, y+5, col)
			px, py = x, y
		}
	}
	return f.c.png()
}

// Render draws the chart as a PNG, each bar labelled with its value.
func (bc BarChart) Render() ([]byte, error) {
	var names []string
	var vals []float64
	for _, g := range bc.Groups {
		names = append(names, g.Name)
		vals = append(vals, g.Values...)
	}
	for _, h := range bc.HLines {
		vals = append(vals, h.Y)
	}
	f := newFrame(bc.Title, bc.YLabel, "", names, bc.HLines)
	lo, hi := valueRange(vals, bc.LogY)
	ya := newAxis(lo, hi*1.12, bc.LogY, f.bott, f.top)
	f.yAxis(ya, bc.HLines)
	n := max(len(bc.Categories), 1)
	slot := (f.right - f.left) / n
	groups := max(len(bc.Groups), 1)
	barW := min(90, (slot-30)/groups)
	for ci, cat := range bc.Categories {
		// Only the groups with a value here take room, centred in the slot.
		var present []int
		for gi, g := range bc.Groups {
			if ci < len(g.Values) && !math.IsNaN(g.Values[ci]) {
				present = append(present, gi)
			}
		}
		x0 := f.left + ci*slot + (slot-barW*len(present))/2
		for pi, gi := range present {
			g := bc.Groups[gi]
			v := g.Values[ci]
			base := f.bott
			if bc.LogY {
				base = ya.px(math.Pow(10, ya.lo))
			}
			y := ya.px(v)
			x := x0 + pi*barW
			f.c.rect(x+2, y, x+barW-2, base, palette[gi%len(palette)])
			l := tickLabel(roundSig(v, 3))
			f.c.text(x+barW/2-textWidth(l)/2, y-lineH+2, l, colInk)
		}
		f.c.text(f.left+ci*slot+slot/2-textWidth(cat)/2, f.bott+10, cat, colInk)
	}
	return f.c.png()
}

// roundSig rounds v to n significant digits.
func roundSig(v float64, n int) float64 {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	p := math.Pow(10, float64(n)-math.Ceil(math.Log10(math.Abs(v))))
	return math.Round(v*p) / p
}
