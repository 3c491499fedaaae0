package merge

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
)

// testSchema has a field of every type.
var testSchema = &core.Schema{NS: "note", Version: 1, Fields: map[string]core.Field{
	"title": {Type: core.TypeString},
	"n":     {Type: core.TypeNumber},
	"done":  {Type: core.TypeBoolean},
	"due":   {Type: core.TypeDate},
	"raw":   {Type: core.TypeJSON},
	"tags":  {Type: core.TypeSet},
	"attrs": {Type: core.TypeMap},
	"body":  {Type: core.TypeText},
	"notes": {Type: core.TypeText},
}}

type obj = map[string]any

func set(e ...string) []any { return core.SetValue(e) }

func TestMergeValues(t *testing.T) {
	tests := []struct {
		name  string
		base  obj
		heads []obj
		want  obj
	}{
		{"NoChange", obj{"title": "a"}, []obj{{"title": "a"}, {"title": "a"}}, obj{"title": "a"}},
		{"RegisterLastChangedWins", obj{"title": "a"}, []obj{{"title": "b"}, {"title": "c"}, {"title": "a"}}, obj{"title": "c"}},
		{"RegisterOneChanged", obj{"n": 1.0}, []obj{{"n": 2.0}, {"n": 1.0}}, obj{"n": 2.0}},
		{"RegisterPerField", obj{"title": "a", "n": 1.0}, []obj{{"title": "b", "n": 1.0}, {"title": "a", "n": 2.0}}, obj{"title": "b", "n": 2.0}},
		{"RemovalIsAChange", obj{"title": "a", "n": 1.0}, []obj{{"n": 1.0}, {"title": "a", "n": 1.0}}, obj{"n": 1.0}},
		{"RemovalThenSet", obj{"title": "a"}, []obj{{}, {"title": "b"}}, obj{"title": "b"}},
		{"SetThenRemoval", obj{"title": "a"}, []obj{{"title": "b"}, {}}, obj{}},
		{"AddedField", obj{}, []obj{{"done": true}, {"due": "2026-11-22T10:00:00.000Z"}}, obj{"done": true, "due": "2026-11-22T10:00:00.000Z"}},
		{"JSONWhole", obj{"raw": obj{"a": 1.0}}, []obj{{"raw": obj{"a": 1.0, "b": 2.0}}, {"raw": obj{"c": 3.0}}}, obj{"raw": obj{"c": 3.0}}},
		{"JSONEqualIsUnchanged", obj{"raw": []any{1.0, "x"}}, []obj{{"raw": []any{1.0, "x"}}, {"raw": []any{2.0}}}, obj{"raw": []any{2.0}}},
		{"Set", obj{"tags": set("a", "b", "c")}, []obj{{"tags": set("a", "b", "d")}, {"tags": set("b", "c", "e")}}, obj{"tags": set("b", "d", "e")}},
		{"SetFromAbsentBase", obj{}, []obj{{"tags": set("x")}, {"tags": set("y")}}, obj{"tags": set("x", "y")}},
		{"SetRemovalIsRegister", obj{"tags": set("a")}, []obj{{}, {"tags": set("a", "b")}}, obj{"tags": set("a", "b")}},
		{"SetIllTypedIsRegister", obj{"tags": set("a")}, []obj{{"tags": []any{"b", "a"}}, {"tags": set("a", "c")}}, obj{"tags": set("a", "c")}},
		{"Map", obj{"attrs": obj{"k": "v", "x": 1.0, "gone": true}}, []obj{{"attrs": obj{"k": "v2", "x": 1.0}}, {"attrs": obj{"k": "v", "x": 2.0, "gone": true, "new": false}}},
			obj{"attrs": obj{"k": "v2", "x": 2.0, "new": false}}},
		{"MapSameKeyLastWins", obj{"attrs": obj{"k": "v"}}, []obj{{"attrs": obj{"k": "a"}}, {"attrs": obj{"k": "b"}}}, obj{"attrs": obj{"k": "b"}}},
		{"MapDeleteVersusPut", obj{"attrs": obj{"k": "v"}}, []obj{{"attrs": obj{"k": "a"}}, {"attrs": obj{}}}, obj{"attrs": obj{}}},
		{"MapNonScalarIsRegister", obj{"attrs": obj{"k": "v"}}, []obj{{"attrs": obj{"k": obj{}}}, {"attrs": obj{"j": "w"}}}, obj{"attrs": obj{"j": "w"}}},
		{"Text", obj{"body": "hello world"}, []obj{{"body": "Hello world"}, {"body": "hello world!"}}, obj{"body": "Hello world!"}},
		{"TextFromAbsentBase", obj{}, []obj{{"body": "foo"}, {"body": "bar"}}, obj{"body": "foobar"}},
		{"TextSameValueTwice", obj{}, []obj{{"body": "foo"}, {"body": "foo"}}, obj{"body": "foo"}},
		{"TextWrongTypeIsRegister", obj{"body": "x"}, []obj{{"body": 1.0}, {"body": "xy"}}, obj{"body": "xy"}},
		{"TombstoneIsRegister", obj{"title": "a"}, []obj{{"title": "a", "isDeleted": true}, {"title": "b"}}, obj{"title": "b", "isDeleted": true}},
		{"Resurrect", obj{"title": "a", "isDeleted": true}, []obj{{"title": "a", "isDeleted": false}, {"title": "b", "isDeleted": true}}, obj{"title": "b", "isDeleted": false}},
		{"UnknownFieldIsRegister", obj{"extra": "a"}, []obj{{"extra": "b"}, {"extra": "c"}}, obj{"extra": "c"}},
		{"NilBase", nil, []obj{{"title": "a"}, {"title": "b", "n": 1.0}}, obj{"title": "b", "n": 1.0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := MergeValues(testSchema, tt.base, tt.heads)
			if !core.EqualJSON(got, tt.want) {
				t.Fatalf("MergeValues(%v, %v) = %v, want %v", tt.base, tt.heads, got, tt.want)
			}
		})
	}
}

func TestMergeValues_NilSchemaIsAllRegisters(t *testing.T) {
	base := obj{"tags": set("a")}
	heads := []obj{{"tags": set("a", "b")}, {"tags": set("a", "c")}}
	if got, want := MergeValues(nil, base, heads), (obj{"tags": set("a", "c")}); !core.EqualJSON(got, want) {
		t.Fatalf("MergeValues(nil, ...) = %v, want %v", got, want)
	}
}

func TestMergeValues_DoesNotModifyInputs(t *testing.T) {
	base := obj{"attrs": obj{"k": "v"}, "tags": set("a"), "gone": 1.0}
	heads := []obj{{"attrs": obj{"k": "w"}, "tags": set("a", "b")}, {"attrs": obj{"j": "x", "k": "v"}, "tags": set()}}
	before := core.MustCanonical([]any{base, heads[0], heads[1]})
	got := MergeValues(testSchema, base, heads)
	if after := core.MustCanonical([]any{base, heads[0], heads[1]}); string(after) != string(before) {
		t.Fatalf("inputs changed: %s, was %s", after, before)
	}
	if want := (obj{"attrs": obj{"j": "x", "k": "w"}, "tags": set("b")}); !core.EqualJSON(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestMergeSet(t *testing.T) {
	tests := []struct {
		name  string
		base  []string
		heads [][]string
		want  []string
	}{
		{"NoHeads", []string{"a"}, nil, []string{"a"}},
		{"AddRemove", []string{"a", "b"}, [][]string{{"a", "b", "c"}, {"b"}}, []string{"b", "c"}},
		{"RemoveWinsOverKeep", []string{"a"}, [][]string{{"a"}, {}}, []string{}},
		{"AddWinsOverAbsent", nil, [][]string{{"x"}, {}}, []string{"x"}},
		{"UnsortedInput", []string{"b", "a", "b"}, [][]string{{"c", "a", "b"}}, []string{"a", "b", "c"}},
		// UTF-16 order: U+FF5E sorts after the astral U+1F600 (surrogate D83D).
		{"UTF16Order", nil, [][]string{{"～", "😀", "a"}}, []string{"a", "😀", "～"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MergeSet(tt.base, tt.heads); !slices.Equal(got, tt.want) {
				t.Fatalf("MergeSet(%q, %q) = %q, want %q", tt.base, tt.heads, got, tt.want)
			}
		})
	}
}

func TestMergeMap(t *testing.T) {
	base := obj{"a": 1.0, "b": "x", "c": true}
	heads := []obj{
		{"a": 2.0, "b": "x", "c": true},
		{"a": 1.0, "c": true, "d": "new"},
		{"a": 3.0, "b": "x", "c": true},
	}
	if got, want := MergeMap(base, heads), (obj{"a": 3.0, "c": true, "d": "new"}); !reflect.DeepEqual(got, want) {
		t.Fatalf("MergeMap = %v, want %v", got, want)
	}
	if got := MergeMap(nil, nil); got == nil || len(got) != 0 {
		t.Fatalf("MergeMap(nil, nil) = %#v, want an empty map", got)
	}
}

// TestMergeSet_Oracle compares MergeSet with a brute force over every
// element of a small universe: an element is in the result iff it is in base
// and every head kept it, or it is not in base and some head has it.
func TestMergeSet_Oracle(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	universe := []string{"a", "b", "c", "d", "e", "😀", "～", ""}
	pick := func() []string {
		var s []string
		for _, e := range universe {
			if rng.IntN(2) == 0 {
				s = append(s, e)
			}
		}
		rng.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
		return s
	}
	for i := 0; i < 5000; i++ {
		base := pick()
		heads := make([][]string, rng.IntN(5))
		for j := range heads {
			heads[j] = pick()
		}
		var want []string
		for _, e := range universe {
			inBase := slices.Contains(base, e)
			all, any := true, false
			for _, h := range heads {
				in := slices.Contains(h, e)
				all, any = all && in, any || in
			}
			if inBase && all || !inBase && any {
				want = append(want, e)
			}
		}
		slices.SortFunc(want, core.CompareStrings)
		got := MergeSet(base, heads)
		if !slices.Equal(got, want) && len(got)+len(want) > 0 {
			t.Fatalf("MergeSet(%q, %q) = %q, want %q", base, heads, got, want)
		}
		rng.Shuffle(len(heads), func(i, j int) { heads[i], heads[j] = heads[j], heads[i] })
		if again := MergeSet(base, heads); !slices.Equal(again, got) {
			t.Fatalf("MergeSet depends on head order: %q then %q", got, again)
		}
	}
}

// TestMergeMap_Oracle compares MergeMap with a brute force over every key
// of a small universe, comparing values by their canonical JSON.
func TestMergeMap_Oracle(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	keys := []string{"a", "b", "c", "d"}
	values := []any{"x", "y", 1.0, 0.0, true, false}
	pick := func() obj {
		m := obj{}
		for _, k := range keys {
			if i := rng.IntN(len(values) + 2); i < len(values) {
				m[k] = values[i]
			}
		}
		return m
	}
	const absent = "<absent>"
	str := func(m obj, k string) string {
		if v, ok := m[k]; ok {
			return string(core.MustCanonical(v))
		}
		return absent
	}
	for i := 0; i < 5000; i++ {
		base := pick()
		heads := make([]obj, rng.IntN(5))
		for j := range heads {
			heads[j] = pick()
		}
		var want, got []string
		out := MergeMap(base, heads)
		for _, k := range keys {
			w := str(base, k)
			for _, h := range heads {
				if s := str(h, k); s != str(base, k) {
					w = s
				}
			}
			want = append(want, k+"="+w)
			got = append(got, k+"="+str(out, k))
		}
		if !slices.Equal(got, want) {
			t.Fatalf("MergeMap(%v, %v) = %s, want %s", base, heads, strings.Join(got, " "), strings.Join(want, " "))
		}
	}
}
