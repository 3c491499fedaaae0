package merge

import "math"

// Splice is one hunk of an edit script over Unicode code points: delete Del
// code points of the base starting at At, and insert Ins in their place.
// Positions are in the base's coordinates (the hunks of one script do not
// shift each other), hunks are in ascending At order, and two hunks of one
// script are separated by at least one unchanged code point. The JSON form
// is the one of a delta's splice op without "op" and "field".
type Splice struct {
	At  int    `json:"at"`
	Del int    `json:"del"`
	Ins string `json:"ins"`
}

// MaxDiffWork bounds the work of one DiffText, and of all the text diffs of
// one MergeText or MergeValues together, so that no input can make a merge
// slow: every diagonal a bisect search visits costs 1 plus the length of the
// snake it follows. Once the sum exceeds MaxDiffWork, the bisect that
// exceeded it and every later one give up, and their subproblems are
// replaced whole (all deleted, all inserted). Typical edits of up to a few
// thousand code points stay exact; the worst case costs about 0.1 s of CPU
// (BenchmarkDiffText). It is part of the merge contract: every port must
// count the same way, in the same order, and use the same value.
const MaxDiffWork = 1 << 23

// maxSteps bounds the arrays of one bisect: step d costs at least 2(d+1)
// units, so the budget runs out before step sqrt(MaxDiffWork)+1. It only
// saves memory; the budget alone decides.
var maxSteps = int(math.Sqrt(MaxDiffWork)) + 2

// DiffText returns the edit script that turns base into head, computed by
// the deterministic Myers diff over code points described in the package
// comment. Invalid UTF-8 bytes count as U+FFFD each, as in a Go range loop.
func DiffText(base, head string) []Splice {
	var work int
	return diffRunes([]rune(base), []rune(head), &work)
}

// diffRunes diffs a against b, adding its work to *work.
func diffRunes(a, b []rune, work *int) []Splice {
	s := script{work: work}
	s.diff(a, b)
	s.flush()
	return s.hunks
}

// script accumulates edit operations in base order and groups them into
// hunks: every maximal run of deletions and insertions between two equal
// code points becomes one Splice, whatever order the diff emitted them in.
type script struct {
	work  *int // spent so far, see MaxDiffWork
	hunks []Splice
	pos   int    // base code points consumed so far
	open  bool   // a hunk is being built
	at    int    // its start
	del   int    // its deletions
	ins   []rune // its insertions, in order
}

func (s *script) equal(n int) {
	if n == 0 {
		return // an empty equality separates nothing
	}
	s.flush()
	s.pos += n
}

func (s *script) start() {
	if !s.open {
		s.open, s.at, s.del, s.ins = true, s.pos, 0, s.ins[:0]
	}
}

func (s *script) delete(n int) {
	if n == 0 {
		return
	}
	s.start()
	s.del += n
	s.pos += n
}

func (s *script) insert(r []rune) {
	if len(r) == 0 {
		return
	}
	s.start()
	s.ins = append(s.ins, r...)
}

func (s *script) flush() {
	if s.open {
		s.hunks = append(s.hunks, Splice{At: s.at, Del: s.del, Ins: string(s.ins)})
		s.open = false
	}
}

// diff emits the edit script of a to b: common prefix, then the middle, then
// common suffix; the middle is trivial when one side is empty, else split at
// the point bisect finds and each half diffed the same way.
func (s *script) diff(a, b []rune) {
	p := 0
	for p < len(a) && p < len(b) && a[p] == b[p] {
		p++
	}
	s.equal(p)
	a, b = a[p:], b[p:]
	q := 0
	for q < len(a) && q < len(b) && a[len(a)-1-q] == b[len(b)-1-q] {
		q++
	}
	a, b = a[:len(a)-q], b[:len(b)-q]
	switch {
	case len(a) == 0:
		s.insert(b)
	case len(b) == 0:
		s.delete(len(a))
	default:
		if x, y, ok := s.bisect(a, b); ok {
			s.diff(a[:x], b[:y])
			s.diff(a[x:], b[y:])
		} else {
			s.delete(len(a))
			s.insert(b)
		}
	}
	s.equal(q)
}

// bisect finds a point (x, y) on a shortest edit path from (0, 0) to
// (len(a), len(b)) by running Myers' greedy search from both ends until the
// paths overlap (Myers 1986, section 4b). a and b are non-empty and differ
// in their first and in their last code point, so the point is never (0, 0)
// nor the end, and both halves are strictly smaller problems.
//
// The search stays inside the edit grid: a move that would leave it is not a
// candidate, and a diagonal with no candidate holds no path (-1). Of the two
// candidate moves onto diagonal k, the one reaching the larger x wins; on a
// tie the insertion (coming from diagonal k+1) wins. The reverse search is
// the same search on the reversed sequences. ok is false when the work
// budget ran out first (see MaxDiffWork): after each diagonal, its overlap
// is checked first, then the budget.
func (s *script) bisect(a, b []rune) (x, y int, ok bool) {
	n, m := len(a), len(b)
	maxD := min((n+m+1)/2, maxSteps)
	off := maxD + 1
	vf := make([]int, 2*off+1) // forward: furthest x on diagonal k = x-y, at index off+k
	vr := make([]int, 2*off+1) // reverse: furthest x' on diagonal c = x'-y' of the reversed grid
	for i := range vf {
		vf[i], vr[i] = -1, -1
	}
	delta := n - m
	odd := delta&1 != 0
	for d := 0; d <= maxD; d++ {
		for k := -d; k <= d; k += 2 {
			x := step(vf, off, d, k, n, m)
			*s.work++
			if x >= 0 {
				x0, y := x, x-k
				for x < n && y < m && a[x] == b[y] {
					x, y = x+1, y+1
				}
				*s.work += x - x0
			}
			vf[off+k] = x
			if x >= 0 && odd {
				if c := delta - k; c >= -(d-1) && c <= d-1 {
					if xr := vr[off+c]; xr >= 0 && x+xr >= n {
						return x, x - k, true
					}
				}
			}
			if *s.work > MaxDiffWork {
				return 0, 0, false
			}
		}
		for c := -d; c <= d; c += 2 {
			x := step(vr, off, d, c, n, m)
			*s.work++
			if x >= 0 {
				x0, y := x, x-c
				for x < n && y < m && a[n-1-x] == b[m-1-y] {
					x, y = x+1, y+1
				}
				*s.work += x - x0
			}
			vr[off+c] = x
			if x >= 0 && !odd {
				if k := delta - c; k >= -d && k <= d {
					if xf := vf[off+k]; xf >= 0 && xf+x >= n {
						return xf, xf - k, true
					}
				}
			}
			if *s.work > MaxDiffWork {
				return 0, 0, false
			}
		}
	}
	return 0, 0, false
}

// step returns the x reached on diagonal k by the one move that starts step
// d of a greedy search (before its snake), or -1 when no move stays in the
// n×m grid. v holds step d-1's furthest points.
func step(v []int, off, d, k, n, m int) int {
	if d == 0 {
		return 0
	}
	ins, del := -1, -1
	if k+1 <= d-1 {
		if x := v[off+k+1]; x >= 0 && x-k <= m {
			ins = x
		}
	}
	if k-1 >= -(d - 1) {
		if x := v[off+k-1]; x >= 0 && x+1 <= n {
			del = x + 1
		}
	}
	if del > ins {
		return del
	}
	return ins
}
