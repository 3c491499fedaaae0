package core

import (
	"fmt"
	"math"
	"slices"
	"unicode/utf8"
)

// A Delta describes a commit's value as edits of an ancestor commit of the
// same key that carries full data. Deltas never chain: Base always has Data.
//
// Wire form: {"base": id, "ops": [op, ...]}, ops applied in order. Each op is
// an object with "op" and "field" and, by kind:
//
//	set     value            field = value (any JSON)
//	unset                    field removed
//	add     values           set field: add elements (sorted, unique strings)
//	remove  values           set field: remove elements
//	put     key, value       map field: key = value (string, number, boolean)
//	del     key              map field: key removed
//	splice  at, del, ins     text field: delete del code points at code
//	                         point offset at, then insert ins there
//
// Any other member is an error, so every op has exactly one spelling.
type Delta struct {
	Base CommitID
	Ops  []Op
}

// Op kinds.
const (
	OpSet    = "set"
	OpUnset  = "unset"
	OpAdd    = "add"
	OpRemove = "remove"
	OpPut    = "put"
	OpDel    = "del"
	OpSplice = "splice"
)

// Op is one edit of one field. Only the members its kind uses are set.
type Op struct {
	Op     string
	Field  string
	Value  any
	Values []string
	Key    string
	At     int
	Del    int
	Ins    string
}

// MaxOps bounds the ops in one delta.
const MaxOps = 10000

var opMembers = map[string][]string{
	OpSet:    {"field", "op", "value"},
	OpUnset:  {"field", "op"},
	OpAdd:    {"field", "op", "values"},
	OpRemove: {"field", "op", "values"},
	OpPut:    {"field", "key", "op", "value"},
	OpDel:    {"field", "key", "op"},
	OpSplice: {"at", "del", "field", "ins", "op"},
}

func (d *Delta) check() error {
	if len(d.Ops) == 0 {
		return fmt.Errorf("%w: ops: empty", ErrInvalid)
	}
	if len(d.Ops) > MaxOps {
		return fmt.Errorf("%w: ops: more than %d", ErrTooLarge, MaxOps)
	}
	for i := range d.Ops {
		if err := d.Ops[i].check(); err != nil {
			return fmt.Errorf("ops[%d]: %w", i, err)
		}
	}
	return nil
}

func (o *Op) check() error {
	if _, ok := opMembers[o.Op]; !ok {
		return fmt.Errorf("%w: op: unknown kind %q", ErrInvalid, o.Op)
	}
	if o.Field == "" {
		return fmt.Errorf("%w: field: empty", ErrInvalid)
	}
	switch o.Op {
	case OpAdd, OpRemove:
		if len(o.Values) == 0 {
			return fmt.Errorf("%w: values: empty", ErrInvalid)
		}
		if !isSortedUnique(o.Values) {
			return fmt.Errorf("%w: values: must be sorted and unique", ErrInvalid)
		}
	case OpPut:
		if !isScalar(o.Value) {
			return fmt.Errorf("%w: value: a map value is a string, number or boolean", ErrInvalid)
		}
	case OpSplice:
		if o.At < 0 || o.Del < 0 || o.At > MaxCommitBytes || o.Del > MaxCommitBytes {
			return fmt.Errorf("%w: at, del: must be small non-negative integers", ErrInvalid)
		}
		if o.Del == 0 && o.Ins == "" {
			return fmt.Errorf("%w: splice: deletes and inserts nothing", ErrInvalid)
		}
	}
	return nil
}

func (d *Delta) appendJSON(dst []byte) ([]byte, error) {
	dst = append(dst, `{"base":"`...)
	dst = append(dst, d.Base.String()...)
	dst = append(dst, `","ops":[`...)
	for i := range d.Ops {
		if i > 0 {
			dst = append(dst, ',')
		}
		var err error
		if dst, err = AppendCanonical(dst, d.Ops[i].value()); err != nil {
			return nil, fmt.Errorf("ops[%d]: %w", i, err)
		}
	}
	return append(dst, "]}"...), nil
}

// value returns the op as a JSON object with exactly its kind's members.
func (o *Op) value() map[string]any {
	m := map[string]any{"op": o.Op, "field": o.Field}
	switch o.Op {
	case OpSet, OpPut:
		m["value"] = o.Value
	}
	switch o.Op {
	case OpAdd, OpRemove:
		vs := make([]any, len(o.Values))
		for i, v := range o.Values {
			vs[i] = v
		}
		m["values"] = vs
	case OpPut, OpDel:
		m["key"] = o.Key
	case OpSplice:
		m["at"], m["del"], m["ins"] = float64(o.At), float64(o.Del), o.Ins
	}
	return m
}

func deltaFromValue(v any) (*Delta, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fieldErr("delta", v, "an object")
	}
	for k := range m {
		if k != "base" && k != "ops" {
			return nil, fmt.Errorf("%w: %s: unknown field", ErrInvalid, k)
		}
	}
	d := &Delta{}
	var err error
	if d.Base, err = idField(m, "base"); err != nil {
		return nil, err
	}
	ops, ok := m["ops"].([]any)
	if !ok {
		return nil, fieldErr("ops", m["ops"], "an array")
	}
	if len(ops) > MaxOps {
		return nil, fmt.Errorf("%w: ops: more than %d", ErrTooLarge, MaxOps)
	}
	d.Ops = make([]Op, len(ops))
	for i, ov := range ops {
		if d.Ops[i], err = opFromValue(ov); err != nil {
			return nil, fmt.Errorf("ops[%d]: %w", i, err)
		}
	}
	return d, d.check()
}

func opFromValue(v any) (Op, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return Op{}, fieldErr("op", v, "an object")
	}
	var o Op
	var err error
	if o.Op, err = stringField(m, "op"); err != nil {
		return o, err
	}
	members, ok := opMembers[o.Op]
	if !ok {
		return o, fmt.Errorf("%w: op: unknown kind %q", ErrInvalid, o.Op)
	}
	for k := range m {
		if !slices.Contains(members, k) {
			return o, fmt.Errorf("%w: %s: not a member of a %q op", ErrInvalid, k, o.Op)
		}
	}
	for _, k := range members {
		if _, ok := m[k]; !ok {
			return o, fmt.Errorf("%w: %s: missing", ErrInvalid, k)
		}
	}
	if o.Field, err = stringField(m, "field"); err != nil {
		return o, err
	}
	switch o.Op {
	case OpSet, OpPut:
		o.Value = m["value"]
	}
	switch o.Op {
	case OpAdd, OpRemove:
		arr, ok := m["values"].([]any)
		if !ok {
			return o, fieldErr("values", m["values"], "an array of strings")
		}
		o.Values = make([]string, len(arr))
		for i, e := range arr {
			if o.Values[i], ok = e.(string); !ok {
				return o, fieldErr(fmt.Sprintf("values[%d]", i), e, "a string")
			}
		}
	case OpPut, OpDel:
		if o.Key, err = stringField(m, "key"); err != nil {
			return o, err
		}
	case OpSplice:
		if o.At, err = intField(m, "at"); err != nil {
			return o, err
		}
		if o.Del, err = intField(m, "del"); err != nil {
			return o, err
		}
		if o.Ins, err = stringField(m, "ins"); err != nil {
			return o, err
		}
	}
	return o, o.check()
}

func intField(m map[string]any, name string) (int, error) {
	f, ok := m[name].(float64)
	if !ok || f != math.Trunc(f) || f < 0 || f > MaxCommitBytes {
		return 0, fmt.Errorf("%w: %s: must be a non-negative integer", ErrInvalid, name)
	}
	return int(f), nil
}

// ApplyDelta returns base edited by d's ops. base is not modified. An op
// that does not fit the value it edits (add to a number, splice past the
// end) is an error wrapping ErrInvalid: a peer refuses such a commit.
func ApplyDelta(base map[string]any, d *Delta) (map[string]any, error) {
	out := CloneObject(base)
	if out == nil {
		out = map[string]any{}
	}
	for i := range d.Ops {
		if err := applyOp(out, &d.Ops[i]); err != nil {
			return nil, fmt.Errorf("ops[%d] (%s %s): %w", i, d.Ops[i].Op, d.Ops[i].Field, err)
		}
	}
	return out, nil
}

func applyOp(m map[string]any, o *Op) error {
	cur, present := m[o.Field]
	switch o.Op {
	case OpSet:
		m[o.Field] = Clone(o.Value)
	case OpUnset:
		delete(m, o.Field)
	case OpAdd, OpRemove:
		var set []string
		if present {
			s, ok := AsSet(cur)
			if !ok {
				return fmt.Errorf("%w: field is not a set", ErrInvalid)
			}
			set = s
		}
		if o.Op == OpAdd {
			set = SetUnion(set, o.Values)
		} else {
			set = SetMinus(set, o.Values)
		}
		m[o.Field] = SetValue(set)
	case OpPut, OpDel:
		var obj map[string]any
		if present {
			mm, ok := cur.(map[string]any)
			if !ok {
				return fmt.Errorf("%w: field is not a map", ErrInvalid)
			}
			obj = mm
		} else {
			obj = map[string]any{}
		}
		if o.Op == OpPut {
			obj[o.Key] = o.Value
		} else {
			delete(obj, o.Key)
		}
		m[o.Field] = obj
	case OpSplice:
		s := ""
		if present {
			str, ok := cur.(string)
			if !ok {
				return fmt.Errorf("%w: field is not text", ErrInvalid)
			}
			s = str
		}
		r := []rune(s)
		if o.At > len(r) || o.Del > len(r)-o.At {
			return fmt.Errorf("%w: splice at %d del %d past the end of %d code points", ErrInvalid, o.At, o.Del, len(r))
		}
		out := make([]rune, 0, len(r)-o.Del+utf8.RuneCountInString(o.Ins))
		out = append(out, r[:o.At]...)
		out = append(out, []rune(o.Ins)...)
		out = append(out, r[o.At+o.Del:]...)
		m[o.Field] = string(out)
	}
	return nil
}

// Diff returns ops that turn a into b. s (may be nil) tells which fields are
// sets, maps and text, so the ops are small; a field whose actual values do
// not fit its type is simply set. ApplyDelta(a, {ops: Diff(s, a, b)}) equals
// b for every a and b.
func Diff(s *Schema, a, b map[string]any) []Op {
	fields := make([]string, 0, len(a)+len(b))
	for k := range a {
		fields = append(fields, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			fields = append(fields, k)
		}
	}
	slices.SortFunc(fields, CompareStrings)
	var ops []Op
	for _, f := range fields {
		av, inA := a[f]
		bv, inB := b[f]
		switch {
		case !inB:
			ops = append(ops, Op{Op: OpUnset, Field: f})
			continue
		case inA && EqualJSON(av, bv):
			continue
		}
		ft := TypeJSON
		if s != nil {
			ft = s.FieldType(f)
		}
		ops = append(ops, diffField(ft, f, av, bv, inA)...)
	}
	return ops
}

func diffField(ft FieldType, f string, av, bv any, inA bool) []Op {
	set := []Op{{Op: OpSet, Field: f, Value: Clone(bv)}}
	if !inA {
		return set
	}
	switch ft {
	case TypeSet:
		as, okA := AsSet(av)
		bs, okB := AsSet(bv)
		if !okA || !okB {
			return set
		}
		var ops []Op
		if rm := SetMinus(as, bs); len(rm) > 0 {
			ops = append(ops, Op{Op: OpRemove, Field: f, Values: rm})
		}
		if add := SetMinus(bs, as); len(add) > 0 {
			ops = append(ops, Op{Op: OpAdd, Field: f, Values: add})
		}
		return ops
	case TypeMap:
		am, okA := AsMap(av)
		bm, okB := AsMap(bv)
		if !okA || !okB {
			return set
		}
		keys := make([]string, 0, len(am)+len(bm))
		for k := range am {
			keys = append(keys, k)
		}
		for k := range bm {
			if _, ok := am[k]; !ok {
				keys = append(keys, k)
			}
		}
		slices.SortFunc(keys, CompareStrings)
		var ops []Op
		for _, k := range keys {
			x, inX := am[k]
			y, inY := bm[k]
			switch {
			case !inY:
				ops = append(ops, Op{Op: OpDel, Field: f, Key: k})
			case !inX || !EqualJSON(x, y):
				ops = append(ops, Op{Op: OpPut, Field: f, Key: k, Value: y})
			}
		}
		return ops
	case TypeText:
		as, okA := av.(string)
		bs, okB := bv.(string)
		if !okA || !okB {
			return set
		}
		ar, br := []rune(as), []rune(bs)
		p := 0
		for p < len(ar) && p < len(br) && ar[p] == br[p] {
			p++
		}
		q := 0
		for q < len(ar)-p && q < len(br)-p && ar[len(ar)-1-q] == br[len(br)-1-q] {
			q++
		}
		return []Op{{Op: OpSplice, Field: f, At: p, Del: len(ar) - p - q, Ins: string(br[p : len(br)-q])}}
	}
	return set
}

// Encode chooses how a writer sends next, a new value of an item whose
// current value base (carrying full data) has id baseID: a delta when its
// canonical JSON is at most half the size of the full data, else the full
// data. Exactly one result is non-nil.
func Encode(s *Schema, baseID CommitID, base, next map[string]any) (map[string]any, *Delta) {
	if base == nil || baseID.IsZero() {
		return next, nil
	}
	ops := Diff(s, base, next)
	if len(ops) == 0 || len(ops) > MaxOps {
		return next, nil
	}
	d := &Delta{Base: baseID, Ops: ops}
	db, err1 := d.appendJSON(nil)
	fb, err2 := AppendCanonical(nil, next)
	if err1 != nil || err2 != nil || d.check() != nil || 2*len(db) > len(fb) {
		return next, nil
	}
	return nil, d
}

// AsSet returns v as a set (sorted, unique strings) if it is one.
func AsSet(v any) ([]string, bool) {
	arr, ok := v.([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, len(arr))
	for i, e := range arr {
		s, ok := e.(string)
		if !ok {
			return nil, false
		}
		out[i] = s
	}
	return out, isSortedUnique(out)
}

// SetValue converts a set to its JSON value.
func SetValue(s []string) []any {
	out := make([]any, len(s))
	for i, e := range s {
		out[i] = e
	}
	return out
}

// AsMap returns v as a map field value (string keys, scalar values) if it is one.
func AsMap(v any) (map[string]any, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, false
	}
	for _, e := range m {
		if !isScalar(e) {
			return nil, false
		}
	}
	return m, true
}

// SetUnion returns the sorted union of two sorted sets.
func SetUnion(a, b []string) []string {
	out := make([]string, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && CompareStrings(a[i], b[j]) < 0):
			out = append(out, a[i])
			i++
		case i == len(a) || CompareStrings(a[i], b[j]) > 0:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i, j = i+1, j+1
		}
	}
	return out
}

// SetMinus returns the elements of sorted set a not in sorted set b.
func SetMinus(a, b []string) []string {
	out := make([]string, 0, len(a))
	j := 0
	for _, x := range a {
		for j < len(b) && CompareStrings(b[j], x) < 0 {
			j++
		}
		if j < len(b) && b[j] == x {
			continue
		}
		out = append(out, x)
	}
	return out
}

func isSortedUnique(s []string) bool {
	for i := 1; i < len(s); i++ {
		if CompareStrings(s[i-1], s[i]) >= 0 {
			return false
		}
	}
	return true
}

func isScalar(v any) bool {
	switch v.(type) {
	case string, float64, bool:
		return true
	}
	return false
}
