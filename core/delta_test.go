package core

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

func taskSchema() *Schema {
	return &Schema{NS: "task", Version: 1, Fields: map[string]Field{
		"title": {Type: TypeString, Required: true},
		"notes": {Type: TypeText},
		"tags":  {Type: TypeSet},
		"attrs": {Type: TypeMap},
		"n":     {Type: TypeNumber},
		"extra": {Type: TypeJSON},
	}}
}

func TestApplyDelta_Ops(t *testing.T) {
	base := map[string]any{
		"title": "a", "notes": "h😀llo", "tags": []any{"x", "y"},
		"attrs": map[string]any{"k": "v"}, "n": 1.0,
	}
	cases := []struct {
		name string
		op   Op
		want any // the edited field's value; nil means removed
	}{
		{"set", Op{Op: OpSet, Field: "title", Value: "b"}, "b"},
		{"unset", Op{Op: OpUnset, Field: "n"}, nil},
		{"add", Op{Op: OpAdd, Field: "tags", Values: []string{"a", "y"}}, []any{"a", "x", "y"}},
		{"remove", Op{Op: OpRemove, Field: "tags", Values: []string{"x", "z"}}, []any{"y"}},
		{"put", Op{Op: OpPut, Field: "attrs", Key: "j", Value: true}, map[string]any{"j": true, "k": "v"}},
		{"del", Op{Op: OpDel, Field: "attrs", Key: "k"}, map[string]any{}},
		{"splice astral", Op{Op: OpSplice, Field: "notes", At: 1, Del: 1, Ins: "e"}, "hello"},
		{"splice append", Op{Op: OpSplice, Field: "notes", At: 5, Ins: "!"}, "h😀llo!"},
		{"add to absent", Op{Op: OpAdd, Field: "new", Values: []string{"q"}}, []any{"q"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ApplyDelta(base, &Delta{Ops: []Op{c.op}})
			if err != nil {
				t.Fatal(err)
			}
			v, present := got[c.op.Field]
			if c.want == nil {
				if present {
					t.Fatalf("%s still present: %v", c.op.Field, v)
				}
				return
			}
			if !EqualJSON(v, c.want) {
				t.Fatalf("%s=%v, want %v", c.op.Field, v, c.want)
			}
		})
	}
	if base["title"] != "a" || len(base["tags"].([]any)) != 2 {
		t.Fatal("ApplyDelta modified its base")
	}
}

func TestApplyDelta_Rejects(t *testing.T) {
	base := map[string]any{"s": "abc", "n": 1.0}
	for name, op := range map[string]Op{
		"splice past end": {Op: OpSplice, Field: "s", At: 2, Del: 2},
		"splice a number": {Op: OpSplice, Field: "n", At: 0, Ins: "x"},
		"add to a string": {Op: OpAdd, Field: "s", Values: []string{"x"}},
		"put into number": {Op: OpPut, Field: "n", Key: "k", Value: "v"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ApplyDelta(base, &Delta{Ops: []Op{op}}); !errors.Is(err, ErrInvalid) {
				t.Fatalf("err=%v, want ErrInvalid", err)
			}
		})
	}
}

func TestEncode_ChoosesDeltaWhenClearlySmaller(t *testing.T) {
	s := taskSchema()
	long := strings.Repeat("the quick brown fox jumps over the lazy dog. ", 10)
	base := map[string]any{"title": "t", "notes": long}
	next := map[string]any{"title": "t", "notes": long + "!"}
	data, d := Encode(s, CommitID{1}, base, next)
	if d == nil || data != nil {
		t.Fatalf("got full data for a one-character edit")
	}
	if len(d.Ops) != 1 || d.Ops[0].Op != OpSplice {
		t.Fatalf("ops=%+v, want one splice", d.Ops)
	}
	data, d = Encode(s, CommitID{1}, map[string]any{"title": "a"}, map[string]any{"title": "b"})
	if d != nil || data == nil {
		t.Fatalf("got a delta for a tiny value")
	}
}

// randomValue builds values that exercise every op kind.
func randomValue(r *rand.Rand) map[string]any {
	m := map[string]any{}
	words := []string{"a", "b", "ä", "😀", "z", "\u2028"}
	pick := func() string { return words[r.IntN(len(words))] }
	if r.IntN(4) > 0 {
		m["title"] = pick() + pick()
	}
	if r.IntN(4) > 0 {
		s := ""
		for i := r.IntN(12); i > 0; i-- {
			s += pick()
		}
		m["notes"] = s
	}
	if r.IntN(4) > 0 {
		var tags []string
		for _, w := range words {
			if r.IntN(2) == 0 {
				tags = append(tags, w)
			}
		}
		set, _ := Normalize(tags)
		if tags == nil {
			set = []any{}
		}
		m["tags"] = set
	}
	if r.IntN(4) > 0 {
		attrs := map[string]any{}
		for _, w := range words {
			switch r.IntN(4) {
			case 0:
				attrs[w] = w
			case 1:
				attrs[w] = float64(r.IntN(3))
			case 2:
				attrs[w] = r.IntN(2) == 0
			}
		}
		m["attrs"] = attrs
	}
	if r.IntN(3) == 0 {
		m["n"] = "not a number" // a value that does not fit its type
	}
	return m
}

func TestDiff_ApplyRoundTripRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	s := taskSchema()
	for i := 0; i < 3000; i++ {
		a, b := randomValue(r), randomValue(r)
		checkDiffApply(t, s, a, b)
	}
}

func checkDiffApply(tb testing.TB, s *Schema, a, b map[string]any) {
	tb.Helper()
	ops := Diff(s, a, b)
	if len(ops) == 0 {
		if !EqualJSON(a, b) {
			tb.Fatalf("no ops for different values\na=%v\nb=%v", a, b)
		}
		return
	}
	d := &Delta{Base: CommitID{1}, Ops: ops}
	if d.check() == nil {
		// A valid delta must survive the wire.
		c := &Commit{Repo: "r", Key: "k", Author: "s1", Schema: "task/1", Delta: d, Sig: make([]byte, 64)}
		if err := c.Seal(); err != nil {
			tb.Fatalf("delta does not encode: %v (%+v)", err, ops)
		}
		raw, _ := c.MarshalJSON()
		back, err := DecodeCommit(raw)
		if err != nil {
			tb.Fatalf("delta does not decode: %v\n%s", err, raw)
		}
		d = back.Delta
	} else if data, delta := Encode(s, CommitID{1}, a, b); delta != nil || !EqualJSON(data, b) {
		// Ops that cannot be sent (a field named "") make Encode send
		// the full value instead.
		tb.Fatalf("Encode chose an invalid delta: %+v", delta)
	}
	got, err := ApplyDelta(a, d)
	if err != nil {
		tb.Fatalf("apply: %v", err)
	}
	if !EqualJSON(got, b) {
		tb.Fatalf("apply(diff(a,b), a) != b\na=%v\nb=%v\ngot=%v", a, b, got)
	}
}

// FuzzApplyDiff: for any two JSON objects, applying their diff to the first
// gives the second, and ApplyDelta never panics on any delta.
func FuzzApplyDiff(f *testing.F) {
	f.Add([]byte(`{"title":"a","tags":["x"]}`), []byte(`{"title":"b","tags":["x","y"],"notes":"😀"}`))
	f.Add([]byte(`{"notes":"h😀llo","attrs":{"k":1}}`), []byte(`{"notes":"hello","attrs":{"k":true,"j":"v"}}`))
	f.Add([]byte(`{}`), []byte(`{"tags":"not a set","extra":[1,{"a":null}]}`))
	s := taskSchema()
	f.Fuzz(func(t *testing.T, ab, bb []byte) {
		av, err1 := ParseJSON(ab)
		bv, err2 := ParseJSON(bb)
		a, ok1 := av.(map[string]any)
		b, ok2 := bv.(map[string]any)
		if err1 != nil || err2 != nil || !ok1 || !ok2 {
			return
		}
		// ops from arbitrary input never panic
		if d, err := deltaFromValue(map[string]any{"base": CommitID{}.String(), "ops": []any{bv}}); err == nil {
			_, _ = ApplyDelta(a, d)
		}
		checkDiffApply(t, s, a, b)
	})
}
