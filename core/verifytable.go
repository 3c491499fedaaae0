package core

import (
	"sync"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// Fixed-base tables for VerifyingKey (docs/decisions.md, "Fixed-base
// tables for a session key's verifications (issue 19)").
//
// crypto/ed25519 computes R' = [k](-A) + [S]B with about 256 point
// doublings shared by both scalars, rebuilding a table of -A on every
// call. Both bases are fixed for a key that verifies many signatures, so
// the multiples the doublings would produce are computed once instead:
// [S]B from a process-wide table of B, [k](-A) from a table of the key
// built after its first verifications. A verification is then sums of
// looked-up points and four doublings. Nothing here is constant time:
// every input of a verification is public.
//
// The arithmetic is the complete addition and doubling of extended
// twisted Edwards coordinates for a = -1 (Hisil, Wong, Carter, Dawson,
// "Twisted Edwards curves revisited", 2008: add-2008-hwcd-3 and
// dbl-2008-hwcd), the formulas filippo.io/edwards25519 uses. Complete
// means they hold for every pair of points of the curve, small-order and
// mixed-order ones and the identity included, so the sum is the same
// group element the library's VarTimeDoubleScalarBaseMult gives, and
// Point.Bytes encodes it the same way.

// extPoint is (X:Y:Z:T) with x = X/Z, y = Y/Z, xy = T/Z.
type extPoint struct{ X, Y, Z, T field.Element }

// completedPoint is a sum or double before its last four
// multiplications: x = X/Z, y = Y/T.
type completedPoint struct{ X, Y, Z, T field.Element }

// nielsPoint is an affine point as y+x, y-x and 2dxy, which makes adding
// it to an extPoint seven multiplications.
type nielsPoint struct{ YplusX, YminusX, T2d field.Element }

// d2 is 2d, d = -121665/121666 the curve constant.
var d2 = func() field.Element {
	var num, den, d field.Element
	num.Mult32(new(field.Element).One(), 121665)
	num.Negate(&num)
	den.Mult32(new(field.Element).One(), 121666)
	d.Multiply(&num, den.Invert(&den))
	d.Add(&d, &d)
	return d
}()

func (v *extPoint) setIdentity() *extPoint {
	v.X.Zero()
	v.Y.One()
	v.Z.One()
	v.T.Zero()
	return v
}

func (v *extPoint) fromPoint(p *edwards25519.Point) *extPoint {
	X, Y, Z, T := p.ExtendedCoordinates()
	v.X.Set(X)
	v.Y.Set(Y)
	v.Z.Set(Z)
	v.T.Set(T)
	return v
}

// point returns v as the library's Point (which checks it is on the
// curve: a failure here is a bug in this file, and the caller refuses
// the signature).
func (v *extPoint) point() (*edwards25519.Point, error) {
	return new(edwards25519.Point).SetExtendedCoordinates(&v.X, &v.Y, &v.Z, &v.T)
}

func (v *extPoint) fromCompleted(c *completedPoint) *extPoint {
	v.X.Multiply(&c.X, &c.T)
	v.Y.Multiply(&c.Y, &c.Z)
	v.Z.Multiply(&c.Z, &c.T)
	v.T.Multiply(&c.X, &c.Y)
	return v
}

// add sets c = p + q (add-2008-hwcd-3 with k = 2d).
func (c *completedPoint) add(p, q *extPoint) *completedPoint {
	var a, b, t, pa, pb, cc, dd field.Element
	a.Subtract(&p.Y, &p.X)
	t.Subtract(&q.Y, &q.X)
	pa.Multiply(&a, &t)
	b.Add(&p.Y, &p.X)
	t.Add(&q.Y, &q.X)
	pb.Multiply(&b, &t)
	cc.Multiply(&p.T, &q.T)
	cc.Multiply(&cc, &d2)
	dd.Multiply(&p.Z, &q.Z)
	dd.Add(&dd, &dd)
	c.X.Subtract(&pb, &pa) // E
	c.Y.Add(&pb, &pa)      // H
	c.Z.Add(&dd, &cc)      // G
	c.T.Subtract(&dd, &cc) // F
	return c
}

// addNiels sets c = p + q for an affine q (the same formula with Z2 = 1).
func (c *completedPoint) addNiels(p *extPoint, q *nielsPoint) *completedPoint {
	var ypx, ymx, pp, mm, tt2d, z2 field.Element
	ypx.Add(&p.Y, &p.X)
	ymx.Subtract(&p.Y, &p.X)
	pp.Multiply(&ypx, &q.YplusX)
	mm.Multiply(&ymx, &q.YminusX)
	tt2d.Multiply(&p.T, &q.T2d)
	z2.Add(&p.Z, &p.Z)
	c.X.Subtract(&pp, &mm)
	c.Y.Add(&pp, &mm)
	c.Z.Add(&z2, &tt2d)
	c.T.Subtract(&z2, &tt2d)
	return c
}

// subNiels sets c = p - q: -(x, y) is (-x, y), so y+x and y-x trade
// places and 2dxy changes sign.
func (c *completedPoint) subNiels(p *extPoint, q *nielsPoint) *completedPoint {
	var ypx, ymx, pp, mm, tt2d, z2 field.Element
	ypx.Add(&p.Y, &p.X)
	ymx.Subtract(&p.Y, &p.X)
	pp.Multiply(&ypx, &q.YminusX)
	mm.Multiply(&ymx, &q.YplusX)
	tt2d.Multiply(&p.T, &q.T2d)
	z2.Add(&p.Z, &p.Z)
	c.X.Subtract(&pp, &mm)
	c.Y.Add(&pp, &mm)
	c.Z.Subtract(&z2, &tt2d)
	c.T.Add(&z2, &tt2d)
	return c
}

// double sets c = 2p (dbl-2008-hwcd; T is not read).
func (c *completedPoint) double(p *extPoint) *completedPoint {
	var xx, yy, zz2, xy2 field.Element
	xx.Square(&p.X)
	yy.Square(&p.Y)
	zz2.Square(&p.Z)
	zz2.Add(&zz2, &zz2)
	xy2.Add(&p.X, &p.Y)
	xy2.Square(&xy2)
	c.Y.Add(&yy, &xx)
	c.Z.Subtract(&yy, &xx)
	c.X.Subtract(&xy2, &c.Y)
	c.T.Subtract(&zz2, &c.Z)
	return c
}

// addDigit adds [d]q to acc, where tab[j] = [j+1]q, |d| <= len(tab).
func addDigit(acc *extPoint, tab []nielsPoint, d int32) {
	var c completedPoint
	switch {
	case d > 0:
		acc.fromCompleted(c.addNiels(acc, &tab[d-1]))
	case d < 0:
		acc.fromCompleted(c.subNiels(acc, &tab[-d-1]))
	}
}

// toNiels converts pts to affine Niels form with one field inversion
// (Montgomery's trick). Every Z is nonzero: the complete formulas never
// produce Z = 0 for a point of the curve.
func toNiels(pts []extPoint, out []nielsPoint) {
	prod := make([]field.Element, len(pts))
	var acc field.Element
	acc.One()
	for i := range pts {
		acc.Multiply(&acc, &pts[i].Z)
		prod[i].Set(&acc)
	}
	var inv, zinv, x, y field.Element
	inv.Invert(&acc)
	for i := len(pts) - 1; i >= 0; i-- {
		if i > 0 {
			zinv.Multiply(&inv, &prod[i-1])
			inv.Multiply(&inv, &pts[i].Z)
		} else {
			zinv.Set(&inv)
		}
		x.Multiply(&pts[i].X, &zinv)
		y.Multiply(&pts[i].Y, &zinv)
		out[i].YplusX.Add(&y, &x)
		out[i].YminusX.Subtract(&y, &x)
		out[i].T2d.Multiply(&x, &y)
		out[i].T2d.Multiply(&out[i].T2d, &d2)
	}
}

// signedDigits writes s (32 bytes, little-endian, s < 2^253 as every
// canonical scalar is) as len(out) digits of radix 2^w, s = sum out[i] *
// 2^(w*i), each digit in [-2^(w-1), 2^(w-1)). The last takes the final
// carry unreduced; len(out)*w >= 254 keeps it within [0, 2^(w-1)].
func signedDigits(s []byte, w uint, out []int32) {
	var carry int32
	for i := range out {
		bit := uint(i) * w
		var v uint32
		if j := bit / 8; j < 32 {
			v = uint32(s[j])
			if j+1 < 32 {
				v |= uint32(s[j+1]) << 8
			}
		}
		d := int32((v>>(bit%8))&(1<<w-1)) + carry
		if i == len(out)-1 {
			out[i] = d
			break
		}
		carry = (d + 1<<(w-1)) >> w
		out[i] = d - carry<<w
	}
}

// The table of B: baseW-bit signed digits, baseDigits positions of
// baseHalf points each. w = 8 measured fastest
// (BenchmarkVerifyingKey_Verify, docs/decisions.md): 32 additions for
// [S]B against 64 at w = 4, for a table of 480 KiB built once per
// process (about 2 ms).
const (
	baseW      = 8
	baseDigits = (254 + baseW - 1) / baseW
	baseHalf   = 1 << (baseW - 1)
)

var (
	baseOnce  sync.Once
	baseTable []nielsPoint // [i*baseHalf + j] = [(j+1) * 2^(baseW*i)]B
)

func basepointTable() []nielsPoint {
	baseOnce.Do(func() {
		pts := make([]extPoint, baseDigits*baseHalf)
		var p extPoint
		var c completedPoint
		p.fromPoint(edwards25519.NewGeneratorPoint())
		for i := range baseDigits {
			row := pts[i*baseHalf : (i+1)*baseHalf]
			row[0] = p
			for j := 1; j < baseHalf; j++ {
				row[j].fromCompleted(c.add(&row[j-1], &p))
			}
			// 2^baseW p = 2 * (baseHalf p).
			p.fromCompleted(c.double(&row[baseHalf-1]))
		}
		t := make([]nielsPoint, len(pts))
		toNiels(pts, t)
		baseTable = t
	})
	return baseTable
}

// keyTable holds [j * 256^i]P for i < 32, j = 1..8: a scalar in 64
// signed radix-16 digits e is sum of e[2i+1] 16 * 256^i + e[2i] 256^i,
// so the odd digits are summed, multiplied by 16 (four doublings), and
// the even ones added (the split filippo.io/edwards25519's base point
// table uses): 30 KiB instead of 60 for four doublings.
type keyTable [32 * 8]nielsPoint // [i*8 + j] = [(j+1) * 256^i]P

func newKeyTable(p *edwards25519.Point) *keyTable {
	var pts [32 * 8]extPoint
	var q extPoint
	var c completedPoint
	q.fromPoint(p)
	for i := range 32 {
		row := pts[i*8 : (i+1)*8]
		row[0] = q
		for j := 1; j < 8; j++ {
			row[j].fromCompleted(c.add(&row[j-1], &q))
		}
		if i < 31 {
			// 256 q = 32 * (8 q).
			q = row[7]
			for range 5 {
				q.fromCompleted(c.double(&q))
			}
		}
	}
	t := new(keyTable)
	toNiels(pts[:], t[:])
	return t
}

// mulAdd returns [k]P + [s]B with t P's table; t nil leaves out [k]P and
// s nil leaves out [s]B.
func mulAdd(t *keyTable, k, s *edwards25519.Scalar) extPoint {
	var acc extPoint
	acc.setIdentity()
	if t != nil {
		var e [64]int32
		signedDigits(k.Bytes(), 4, e[:])
		for i := range 32 {
			addDigit(&acc, t[i*8:(i+1)*8], e[2*i+1])
		}
		var c completedPoint
		for range 4 {
			acc.fromCompleted(c.double(&acc))
		}
		for i := range 32 {
			addDigit(&acc, t[i*8:(i+1)*8], e[2*i])
		}
	}
	if s != nil {
		base := basepointTable()
		var e [baseDigits]int32
		signedDigits(s.Bytes(), baseW, e[:])
		for i := range baseDigits {
			addDigit(&acc, base[i*baseHalf:(i+1)*baseHalf], e[i])
		}
	}
	return acc
}
