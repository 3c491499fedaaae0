package merge

import (
	"slices"

	"github.com/goat-gateway/goat-gateway/core"
)

// MergeValues merges item values field by field (DESIGN section 4, step 4).
// heads must already be in head order ((ts, id) ascending) and upgraded to
// schema; base nil is the empty item. A field absent from a value is a value
// of its own: a head that removed a field changed it.
//
// For each field, C is the list of heads whose value differs from base's
// (core.EqualJSON; absent differs from present). With C empty the base
// value stays; with one changed head its value is taken; otherwise the
// field's type decides:
//
//   - set: MergeSet, when base is absent or a set and every head in C holds
//     a set (core.AsSet: sorted, unique strings);
//   - map: MergeMap, when base is absent or a map and every head in C holds
//     a map (core.AsMap: scalar values);
//   - text: MergeText over the heads in C, when base is absent or a string
//     and every head in C holds a string; an absent base is "". All the
//     text fields of one call share one MaxDiffWork budget, spent in
//     field-name order (core.CompareStrings);
//   - anything else, including string, number, boolean, date, json, the
//     tombstone flag, fields the schema does not know, and set, map or text
//     fields whose values do not fit the type: register, the value of the
//     last head in C (absent if it removed the field).
//
// The result is a new map; it may share nested values with the inputs, which
// are not modified.
func MergeValues(schema *core.Schema, base map[string]any, heads []map[string]any) map[string]any {
	names := make([]string, 0, len(base))
	seen := make(map[string]bool, len(base))
	add := func(m map[string]any) {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				names = append(names, k)
			}
		}
	}
	add(base)
	for _, h := range heads {
		add(h)
	}
	slices.SortFunc(names, core.CompareStrings) // the order text fields spend the budget in
	work := 0
	out := make(map[string]any, len(names))
	var vals []any
	for _, name := range names {
		b, inB := base[name]
		vals = vals[:0]
		changed := 0
		var last any
		lastIn := false
		for _, h := range heads {
			v, in := h[name]
			if in == inB && (!in || core.EqualJSON(v, b)) {
				continue
			}
			changed++
			last, lastIn = v, in
			if in {
				vals = append(vals, v)
			}
		}
		v, in := b, inB
		switch {
		case changed == 0:
		case changed == 1 || len(vals) < changed: // one change, or a removal among them
			v, in = last, lastIn
		default:
			ft := core.TypeJSON
			if schema != nil {
				ft = schema.FieldType(name)
			}
			if m, ok := mergeTyped(ft, b, inB, vals, &work); ok {
				v, in = m, true
			} else {
				v, in = last, lastIn
			}
		}
		if in {
			out[name] = v
		}
	}
	return out
}

// mergeTyped merges the present values vals of the changed heads of a set,
// map or text field; ok is false when the rule does not apply and the field
// is a register.
func mergeTyped(ft core.FieldType, b any, inB bool, vals []any, work *int) (any, bool) {
	switch ft {
	case core.TypeSet:
		var bs []string
		if inB {
			s, ok := core.AsSet(b)
			if !ok {
				return nil, false
			}
			bs = s
		}
		hs := make([][]string, len(vals))
		for i, v := range vals {
			s, ok := core.AsSet(v)
			if !ok {
				return nil, false
			}
			hs[i] = s
		}
		return core.SetValue(MergeSet(bs, hs)), true
	case core.TypeMap:
		var bm map[string]any
		if inB {
			m, ok := core.AsMap(b)
			if !ok {
				return nil, false
			}
			bm = m
		}
		hm := make([]map[string]any, len(vals))
		for i, v := range vals {
			m, ok := core.AsMap(v)
			if !ok {
				return nil, false
			}
			hm[i] = m
		}
		return MergeMap(bm, hm), true
	case core.TypeText:
		bt := ""
		if inB {
			s, ok := b.(string)
			if !ok {
				return nil, false
			}
			bt = s
		}
		ht := make([]string, len(vals))
		for i, v := range vals {
			s, ok := v.(string)
			if !ok {
				return nil, false
			}
			ht[i] = s
		}
		return mergeText(bt, ht, work), true
	}
	return nil, false
}

// MergeSet merges sets of strings: an element of base stays unless some head
// removed it, and an element some head added is present:
// (b - union(b - v_i)) + union(v_i - b). Inputs need not be sorted or
// unique; the result is sorted by core.CompareStrings, unique, and does not
// depend on the order of heads. A nil base is the empty set.
func MergeSet(base []string, heads [][]string) []string {
	inBase := make(map[string]bool, len(base))
	for _, e := range base {
		inBase[e] = true
	}
	removed := map[string]bool{}
	added := map[string]bool{}
	for _, h := range heads {
		inHead := make(map[string]bool, len(h))
		for _, e := range h {
			inHead[e] = true
			if !inBase[e] {
				added[e] = true
			}
		}
		for e := range inBase {
			if !inHead[e] {
				removed[e] = true
			}
		}
	}
	out := make([]string, 0, len(inBase)+len(added))
	for e := range inBase {
		if !removed[e] {
			out = append(out, e)
		}
	}
	for e := range added {
		out = append(out, e)
	}
	slices.SortFunc(out, core.CompareStrings)
	return out
}

// MergeMap merges maps key by key with the register rule, absence being a
// value: for each key, the value of the last head (in head order) whose
// entry differs from base's (core.EqualJSON; absent differs from present),
// else base's. A nil base is the empty map. The result is a new, non-nil map.
func MergeMap(base map[string]any, heads []map[string]any) map[string]any {
	out := make(map[string]any, len(base))
	for k, v := range base {
		out[k] = v
	}
	keys := make(map[string]bool, len(base))
	for k := range base {
		keys[k] = true
	}
	for _, h := range heads {
		for k := range h {
			keys[k] = true
		}
	}
	for k := range keys {
		b, inB := base[k]
		for i := len(heads) - 1; i >= 0; i-- {
			v, in := heads[i][k]
			if in == inB && (!in || core.EqualJSON(v, b)) {
				continue
			}
			if in {
				out[k] = v
			} else {
				delete(out, k)
			}
			break
		}
	}
	return out
}
