package core

import (
	"errors"
	"testing"
)

func TestSchema_Validate(t *testing.T) {
	s, err := DecodeSchema([]byte(`{"ns":"task","version":1,"fields":{
		"title":{"type":"string","required":true},
		"due":{"type":"date"},
		"done":{"type":"boolean","default":false},
		"n":{"type":"number"},
		"tags":{"type":"set"},
		"attrs":{"type":"map"},
		"notes":{"type":"text"},
		"raw":{"type":"json"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		data string
		ok   bool
	}{
		{"minimal", `{"title":"a"}`, true},
		{"all types", `{"title":"a","due":"2026-11-22T10:00:00.000Z","done":true,"n":1.5,"tags":["a","b"],"attrs":{"k":1,"j":"x","b":false},"notes":"😀","raw":[null,{"x":1}]}`, true},
		{"tombstone needs no required field", `{"isDeleted":true}`, true},
		{"missing required", `{"done":true}`, false},
		{"unknown field", `{"title":"a","other":1}`, false},
		{"wrong type", `{"title":1}`, false},
		{"date without millis", `{"title":"a","due":"2026-11-22T10:00:00Z"}`, false},
		{"date not UTC", `{"title":"a","due":"2026-11-22T10:00:00.000+01:00"}`, false},
		{"impossible date", `{"title":"a","due":"2026-02-30T10:00:00.000Z"}`, false},
		{"unsorted set", `{"title":"a","tags":["b","a"]}`, false},
		{"duplicate in set", `{"title":"a","tags":["a","a"]}`, false},
		{"nested map", `{"title":"a","attrs":{"k":{}}}`, false},
		{"isDeleted not bool", `{"title":"a","isDeleted":1}`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := ParseJSON([]byte(c.data))
			if err != nil {
				t.Fatal(err)
			}
			err = s.Validate(v.(map[string]any))
			if c.ok && err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if !c.ok && !errors.Is(err, ErrSchema) {
				t.Fatalf("err=%v, want ErrSchema", err)
			}
		})
	}
	if got := s.WithDefaults(map[string]any{"title": "a"})["done"]; got != false {
		t.Fatalf("default done=%v, want false", got)
	}
}

func TestDecodeSchema_Rejects(t *testing.T) {
	for name, in := range map[string]string{
		"unknown type":      `{"ns":"a","version":1,"fields":{"x":{"type":"blob"}}}`,
		"bad default":       `{"ns":"a","version":1,"fields":{"x":{"type":"number","default":"1"}}}`,
		"bad field name":    `{"ns":"a","version":1,"fields":{"a b":{"type":"string"}}}`,
		"reserved name":     `{"ns":"a","version":1,"fields":{"isDeleted":{"type":"boolean"}}}`,
		"version zero":      `{"ns":"a","version":0,"fields":{}}`,
		"unknown member":    `{"ns":"a","version":1,"fields":{},"x":1}`,
		"bad conversion":    `{"ns":"a","version":2,"fields":{},"upgrade":[{"op":"convert","field":"x","conversion":"magic"}]}`,
		"rename to itself":  `{"ns":"a","version":2,"fields":{},"upgrade":[{"op":"rename","from":"x","to":"x"}]}`,
		"add with no value": `{"ns":"a","version":2,"fields":{},"upgrade":[{"op":"add","field":"x"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := DecodeSchema([]byte(in)); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestRegistry_Upgrade(t *testing.T) {
	r := NewRegistry()
	for _, def := range []string{
		`{"ns":"task","version":1,"fields":{"title":{"type":"string"},"prio":{"type":"string"},"old":{"type":"string"},"label":{"type":"string"}}}`,
		`{"ns":"task","version":2,"fields":{"name":{"type":"string"},"prio":{"type":"number"},"label":{"type":"string"},"done":{"type":"boolean"}},
		  "upgrade":[{"op":"rename","from":"title","to":"name"},{"op":"convert","field":"prio","conversion":"toNumber"},{"op":"remove","field":"old"},{"op":"add","field":"done","default":false}]}`,
		`{"ns":"task","version":3,"fields":{"name":{"type":"text"},"prio":{"type":"number"},"labels":{"type":"set"},"done":{"type":"boolean"}},
		  "upgrade":[{"op":"convert","field":"name","conversion":"identity"},{"op":"rename","from":"label","to":"labels"},{"op":"convert","field":"labels","conversion":"toSet"}]}`,
	} {
		s, err := DecodeSchema([]byte(def))
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	in := map[string]any{"title": "x", "prio": "2", "old": "gone", "label": "home"}
	got, err := r.Upgrade(in, "task/1", "task/3")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"name": "x", "prio": 2.0, "done": false, "labels": []any{"home"}}
	if !EqualJSON(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if _, ok := in["name"]; ok {
		t.Fatal("Upgrade modified its input")
	}
	unconvertible, _ := r.Upgrade(map[string]any{"prio": "high"}, "task/1", "task/2")
	if _, ok := unconvertible["prio"]; ok {
		t.Fatalf("a value that cannot convert is dropped, got %v", unconvertible)
	}
	if _, err := r.Upgrade(in, "task/3", "task/1"); !errors.Is(err, ErrSchema) {
		t.Fatalf("downgrade: err=%v", err)
	}
	if _, err := r.Upgrade(in, "task/1", "task/4"); !errors.Is(err, ErrSchema) {
		t.Fatalf("unknown version: err=%v", err)
	}
	latest, _ := r.Latest("task")
	if latest.Version != 3 {
		t.Fatalf("latest=%d", latest.Version)
	}
	s2, _ := DecodeSchema([]byte(`{"ns":"task","version":1,"fields":{}}`))
	if err := r.Add(s2); !errors.Is(err, ErrConflict) {
		t.Fatalf("redefining task/1: err=%v", err)
	}
	any1, err := r.Get(AnySchema)
	if err != nil || any1.FieldType("whatever") != TypeJSON {
		t.Fatalf("any/1: %v %v", any1, err)
	}
}

func TestRegistry_Retire(t *testing.T) {
	reg := NewRegistry()
	for v := 1; v <= 3; v++ {
		if err := reg.Add(&Schema{NS: "note", Version: v, Fields: map[string]Field{}}); err != nil {
			t.Fatal(err)
		}
	}
	cap := func() int {
		t.Helper()
		c, ok := reg.Cap("note")
		if !ok {
			t.Fatal("note unknown")
		}
		return c
	}
	if got, want := cap(), 3; got != want || reg.AnyRetired() {
		t.Fatalf("cap=%v, want %v, nothing retired", got, want)
	}
	t.Run("RetireNewest", func(t *testing.T) {
		if err := reg.Retire("note/3", true); err != nil {
			t.Fatal(err)
		}
		if got, want := cap(), 2; got != want {
			t.Fatalf("cap=%v, want %v", got, want)
		}
		if l, err := reg.Latest("note"); err != nil || l.Version != 2 {
			t.Fatalf("Latest=%v %v, want note/2", l, err)
		}
		if _, err := reg.Get("note/3"); err != nil {
			t.Fatalf("a retired version stays known: %v", err)
		}
	})
	t.Run("RetiringBelowCapsLower", func(t *testing.T) {
		if err := reg.Retire("note/2", true); err != nil {
			t.Fatal(err)
		}
		if got, want := cap(), 1; got != want || !reg.Retired("note/2") {
			t.Fatalf("cap=%v, want %v", got, want)
		}
	})
	t.Run("Restore", func(t *testing.T) {
		for _, ref := range []string{"note/2", "note/3"} {
			if err := reg.Retire(ref, false); err != nil {
				t.Fatal(err)
			}
		}
		if got, want := cap(), 3; got != want || reg.AnyRetired() {
			t.Fatalf("cap=%v, want %v", got, want)
		}
	})
	t.Run("Unknown", func(t *testing.T) {
		if err := reg.Retire("note/9", true); !errors.Is(err, ErrSchema) {
			t.Fatalf("err=%v, want ErrSchema", err)
		}
		if _, ok := reg.Cap("nope"); ok {
			t.Fatal("Cap of an unknown namespace is ok")
		}
	})
	t.Run("AllRetired", func(t *testing.T) {
		reg := NewRegistry()
		_ = reg.Add(&Schema{NS: "x", Version: 1, Fields: map[string]Field{}})
		_ = reg.Retire("x/1", true)
		if _, err := reg.Latest("x"); !errors.Is(err, ErrRetired) || !errors.Is(err, ErrSchema) {
			t.Fatalf("err=%v, want ErrRetired, an ErrSchema", err)
		}
	})
}
