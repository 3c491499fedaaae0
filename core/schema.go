package core

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	stdsync "sync"
	"time"
)

// FieldType is the type of a schema field; it fixes the field's canonical
// JSON and its merge rule (DESIGN section 2).
type FieldType string

// Field types.
const (
	TypeString  FieldType = "string"
	TypeNumber  FieldType = "number"
	TypeBoolean FieldType = "boolean"
	TypeDate    FieldType = "date"
	TypeJSON    FieldType = "json"
	TypeSet     FieldType = "set"
	TypeMap     FieldType = "map"
	TypeText    FieldType = "text"
)

var fieldTypes = []FieldType{TypeString, TypeNumber, TypeBoolean, TypeDate, TypeJSON, TypeSet, TypeMap, TypeText}

// DeletedField is the tombstone flag, a boolean register in every schema.
const DeletedField = "isDeleted"

// AnySchema is the built-in free-form schema: every top-level field is a
// json register.
const AnySchema = "any/1"

// Field describes one field of a schema.
type Field struct {
	Type     FieldType `json:"type"`
	Required bool      `json:"required,omitempty"`
	Default  any       `json:"default,omitempty"`
}

// Upgrade is one declarative step from version N-1 to N of a schema,
// applied in order. Kinds:
//
//	{"op":"add","field":F,"default":V}            F = V where F is absent
//	{"op":"rename","from":A,"to":B}               A moves to B (B replaced)
//	{"op":"remove","field":F}                     F dropped
//	{"op":"convert","field":F,"conversion":C}     F converted by the named
//	                                              conversion C; a value C
//	                                              cannot convert is dropped
//
// Conversions: "toString" (numbers in canonical JSON form, booleans as
// "true"/"false", strings kept), "toNumber" (a string that is a JSON text
// holding a number, surrounding JSON white space allowed; booleans as 0/1), "toBoolean" ("true"/"false", numbers as != 0),
// "toSet" (a string becomes a one-element set; an array of strings is
// sorted and deduplicated), "identity" (a type change with no value change,
// such as string to text).
type Upgrade struct {
	Op         string `json:"op"`
	Field      string `json:"field,omitempty"`
	From       string `json:"from,omitempty"`
	To         string `json:"to,omitempty"`
	Default    any    `json:"default,omitempty"`
	Conversion string `json:"conversion,omitempty"`
}

// Schema is one version of a namespace's item type.
type Schema struct {
	NS      string           `json:"ns"`
	Version int              `json:"version"`
	Fields  map[string]Field `json:"fields"`
	// Upgrade turns a value of version Version-1 into this version.
	Upgrade []Upgrade `json:"upgrade,omitempty"`
	// Open schemas accept any top-level field as a json register (any/1).
	Open bool `json:"open,omitempty"`
}

// Ref returns "ns/version".
func (s *Schema) Ref() string { return SchemaRef(s.NS, s.Version) }

// FieldType returns the type of field name: TypeBoolean for the tombstone
// flag, TypeJSON for any field of an open schema, "" for an unknown field.
func (s *Schema) FieldType(name string) FieldType {
	if name == DeletedField {
		return TypeBoolean
	}
	if f, ok := s.Fields[name]; ok {
		return f.Type
	}
	if s.Open {
		return TypeJSON
	}
	return ""
}

var fieldNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// DecodeSchema parses and checks a schema definition.
func DecodeSchema(b []byte) (*Schema, error) {
	if _, err := ParseJSON(b); err != nil { // duplicate keys, bad UTF-8
		return nil, fmt.Errorf("schema: %w", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	var s Schema
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%w: schema: %v", ErrInvalid, err)
	}
	if err := normalizeSchemaValues(&s); err != nil {
		return nil, err
	}
	return &s, s.Check()
}

func normalizeSchemaValues(s *Schema) error {
	for name, f := range s.Fields {
		if f.Default != nil {
			v, err := Normalize(numbersToFloat(f.Default))
			if err != nil {
				return fmt.Errorf("fields.%s.default: %w", name, err)
			}
			f.Default = v
			s.Fields[name] = f
		}
	}
	for i := range s.Upgrade {
		if s.Upgrade[i].Default != nil {
			v, err := Normalize(numbersToFloat(s.Upgrade[i].Default))
			if err != nil {
				return fmt.Errorf("upgrade[%d].default: %w", i, err)
			}
			s.Upgrade[i].Default = v
		}
	}
	return nil
}

func numbersToFloat(v any) any {
	switch x := v.(type) {
	case json.Number:
		f, _ := strconv.ParseFloat(string(x), 64)
		return f
	case []any:
		for i := range x {
			x[i] = numbersToFloat(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = numbersToFloat(x[k])
		}
	}
	return v
}

// Check validates the definition itself: names, types, defaults that fit
// their field, upgrade steps that are well formed.
func (s *Schema) Check() error {
	if _, _, err := ParseSchemaRef(s.Ref()); err != nil {
		return err
	}
	if len(s.Fields) > 256 {
		return fmt.Errorf("%w: schema %s: more than 256 fields", ErrTooLarge, s.Ref())
	}
	for name, f := range s.Fields {
		if !fieldNamePattern.MatchString(name) || name == DeletedField {
			return fmt.Errorf("%w: schema %s: field name %q must match %s and not be %q", ErrSchema, s.Ref(), name, fieldNamePattern, DeletedField)
		}
		if !slices.Contains(fieldTypes, f.Type) {
			return fmt.Errorf("%w: schema %s: field %s: unknown type %q", ErrSchema, s.Ref(), name, f.Type)
		}
		if f.Default != nil {
			if err := checkType(f.Type, f.Default); err != nil {
				return fmt.Errorf("%w: schema %s: field %s: default: %v", ErrSchema, s.Ref(), name, err)
			}
		}
	}
	for i, u := range s.Upgrade {
		var ok bool
		switch u.Op {
		case "add":
			ok = u.Field != "" && u.Default != nil && u.From == "" && u.To == "" && u.Conversion == ""
		case "rename":
			ok = u.From != "" && u.To != "" && u.From != u.To && u.Field == "" && u.Default == nil && u.Conversion == ""
		case "remove":
			ok = u.Field != "" && u.From == "" && u.To == "" && u.Default == nil && u.Conversion == ""
		case "convert":
			_, known := conversions[u.Conversion]
			ok = u.Field != "" && known && u.From == "" && u.To == "" && u.Default == nil
		}
		if !ok {
			return fmt.Errorf("%w: schema %s: upgrade[%d]: malformed %q step", ErrSchema, s.Ref(), i, u.Op)
		}
	}
	return nil
}

// Validate checks data against s: every field known (unless s is open) and
// of its type, every required field present. A tombstone (isDeleted true)
// needs no required fields.
func (s *Schema) Validate(data map[string]any) error {
	if data == nil {
		return fmt.Errorf("%w: data: must be an object", ErrSchema)
	}
	if v, ok := data[DeletedField]; ok {
		if _, isBool := v.(bool); !isBool {
			return fmt.Errorf("%w: %s: must be a boolean", ErrSchema, DeletedField)
		}
	}
	names := make([]string, 0, len(data))
	for k := range data {
		names = append(names, k)
	}
	sort.Strings(names) // report the same field first every time
	for _, k := range names {
		if k == DeletedField {
			continue
		}
		ft := s.FieldType(k)
		if ft == "" {
			return fmt.Errorf("%w: %s: not a field of %s", ErrSchema, k, s.Ref())
		}
		if err := checkType(ft, data[k]); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrSchema, k, err)
		}
	}
	if IsDeleted(data) {
		return nil
	}
	required := make([]string, 0)
	for name, f := range s.Fields {
		if _, ok := data[name]; !ok && f.Required && f.Default == nil {
			required = append(required, name)
		}
	}
	if len(required) > 0 {
		sort.Strings(required)
		return fmt.Errorf("%w: %s: required by %s", ErrSchema, strings.Join(required, ", "), s.Ref())
	}
	return nil
}

// WithDefaults returns a copy of data with every absent field that has a
// default set to it: what readers see.
func (s *Schema) WithDefaults(data map[string]any) map[string]any {
	out := CloneObject(data)
	if out == nil {
		out = map[string]any{}
	}
	for name, f := range s.Fields {
		if _, ok := out[name]; !ok && f.Default != nil {
			out[name] = Clone(f.Default)
		}
	}
	return out
}

// DateLayout is the one canonical spelling of a date field.
const DateLayout = "2006-01-02T15:04:05.000Z"

var datePattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$`)

func checkType(ft FieldType, v any) error {
	switch ft {
	case TypeString, TypeText:
		if _, ok := v.(string); !ok {
			return fmt.Errorf("got %s, want a string", jsonKind(v))
		}
	case TypeNumber:
		if _, ok := v.(float64); !ok {
			return fmt.Errorf("got %s, want a number", jsonKind(v))
		}
	case TypeBoolean:
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("got %s, want a boolean", jsonKind(v))
		}
	case TypeDate:
		s, ok := v.(string)
		if !ok || !datePattern.MatchString(s) {
			return fmt.Errorf("want a UTC date like 2026-11-22T10:00:00.000Z")
		}
		if t, err := time.Parse(DateLayout, s); err != nil || t.Format(DateLayout) != s {
			return fmt.Errorf("%q is not a valid date", s)
		}
	case TypeJSON:
	case TypeSet:
		if _, ok := AsSet(v); !ok {
			return fmt.Errorf("want an array of strings, sorted and unique")
		}
	case TypeMap:
		if _, ok := AsMap(v); !ok {
			return fmt.Errorf("want an object of strings, numbers and booleans")
		}
	default:
		return fmt.Errorf("unknown type %q", ft)
	}
	return nil
}

var conversions = map[string]func(any) (any, bool){
	"identity": func(v any) (any, bool) { return v, true },
	"toString": func(v any) (any, bool) {
		switch x := v.(type) {
		case string:
			return x, true
		case bool:
			return strconv.FormatBool(x), true
		case float64:
			b, err := appendNumber(nil, x)
			return string(b), err == nil
		}
		return nil, false
	},
	"toNumber": func(v any) (any, bool) {
		switch x := v.(type) {
		case float64:
			return x, true
		case bool:
			if x {
				return 1.0, true
			}
			return 0.0, true
		case string:
			n, err := ParseJSON([]byte(x))
			f, ok := n.(float64)
			return f, err == nil && ok && !math.IsInf(f, 0)
		}
		return nil, false
	},
	"toBoolean": func(v any) (any, bool) {
		switch x := v.(type) {
		case bool:
			return x, true
		case float64:
			return x != 0, true
		case string:
			switch x {
			case "true":
				return true, true
			case "false":
				return false, true
			}
		}
		return nil, false
	},
	"toSet": func(v any) (any, bool) {
		switch x := v.(type) {
		case string:
			return []any{x}, true
		case []any:
			var out []string
			for _, e := range x {
				s, ok := e.(string)
				if !ok {
					return nil, false
				}
				out = append(out, s)
			}
			slices.SortFunc(out, CompareStrings)
			return SetValue(slices.Compact(out)), true
		}
		return nil, false
	},
}

func (s *Schema) upgrade(data map[string]any) map[string]any {
	for _, u := range s.Upgrade {
		switch u.Op {
		case "add":
			if _, ok := data[u.Field]; !ok {
				data[u.Field] = Clone(u.Default)
			}
		case "rename":
			if v, ok := data[u.From]; ok {
				delete(data, u.From)
				data[u.To] = v
			}
		case "remove":
			delete(data, u.Field)
		case "convert":
			if v, ok := data[u.Field]; ok {
				if c, ok := conversions[u.Conversion](v); ok {
					data[u.Field] = c
				} else {
					delete(data, u.Field)
				}
			}
		}
	}
	return data
}

// Registry holds known schemas. It is safe for concurrent use. A new
// registry knows the built-in any/1.
type Registry struct {
	mu      stdsync.RWMutex
	schemas map[string]*Schema
	latest  map[string]int
	// retired holds the refs of retired versions (DESIGN section 2,
	// rollback): still known, so their commits verify, merge and stay in
	// the history, but readers see items through the branch below them.
	retired map[string]bool
}

// NewRegistry returns a registry with any/1.
func NewRegistry() *Registry {
	r := &Registry{schemas: map[string]*Schema{}, latest: map[string]int{}, retired: map[string]bool{}}
	r.schemas[AnySchema] = &Schema{NS: "any", Version: 1, Fields: map[string]Field{}, Open: true}
	r.latest["any"] = 1
	return r
}

// Add registers s. Re-adding an identical definition is a no-op; a
// different definition under a known ref is ErrConflict, because items
// already written against it would change meaning.
func (r *Registry) Add(s *Schema) error {
	if err := s.Check(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.schemas[s.Ref()]; ok {
		a, _ := json.Marshal(old)
		b, _ := json.Marshal(s)
		if ca, cb := mustCanonicalJSON(a), mustCanonicalJSON(b); ca != cb {
			return fmt.Errorf("%w: schema %s is already defined differently", ErrConflict, s.Ref())
		}
		return nil
	}
	r.schemas[s.Ref()] = s
	if s.Version > r.latest[s.NS] {
		r.latest[s.NS] = s.Version
	}
	return nil
}

func mustCanonicalJSON(b []byte) string {
	c, err := Canonicalize(b)
	if err != nil {
		return string(b)
	}
	return string(c)
}

// Get returns the schema ref names, or ErrSchema if it is unknown.
func (r *Registry) Get(ref string) (*Schema, error) {
	r.mu.RLock()
	s, ok := r.schemas[ref]
	r.mu.RUnlock()
	if !ok {
		if _, _, err := ParseSchemaRef(ref); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: unknown schema %s", ErrSchema, ref)
	}
	return s, nil
}

// Latest returns the newest readable version of namespace ns: the newest
// known version below the lowest retired one (Cap).
func (r *Registry) Latest(ns string) (*Schema, error) {
	v, ok := r.Cap(ns)
	if !ok {
		return nil, fmt.Errorf("%w: unknown schema namespace %q", ErrSchema, ns)
	}
	if v == 0 {
		return nil, fmt.Errorf("%w: every version of %q is retired", ErrRetired, ns)
	}
	return r.Get(SchemaRef(ns, v))
}

// Cap returns the newest version of ns that readers see: the newest known
// version, or the one below the lowest retired version. ok is false for a
// namespace the registry does not know.
func (r *Registry) Cap(ns string) (version int, ok bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	v, ok := r.latest[ns]
	if !ok {
		return 0, false
	}
	if len(r.retired) == 0 {
		return v, true
	}
	for i := 1; i <= v; i++ {
		if r.retired[SchemaRef(ns, i)] {
			return i - 1, true
		}
	}
	return v, true
}

// Retire marks a known version retired (DESIGN section 2, rollback), or
// restores it with retired false. The definition stays known.
func (r *Registry) Retire(ref string, retired bool) error {
	if _, err := r.Get(ref); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if retired {
		r.retired[ref] = true
	} else {
		delete(r.retired, ref)
	}
	return nil
}

// Retired reports whether version ref is retired.
func (r *Registry) Retired(ref string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.retired[ref]
}

// AnyRetired reports whether some version is retired: while none is, every
// reader without a cap of its own sees every commit.
func (r *Registry) AnyRetired() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.retired) > 0
}

// List returns every schema, ordered by namespace then version.
func (r *Registry) List() []*Schema {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*Schema, 0, len(r.schemas))
	for _, s := range r.schemas {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].NS != out[j].NS {
			return out[i].NS < out[j].NS
		}
		return out[i].Version < out[j].Version
	})
	return out
}

// Upgrade returns data (of schema from) upgraded to schema to, applying the
// upgrade steps of every version in between. Both must be in one namespace
// with from <= to, and every version in between must be known. data is not
// modified.
func (r *Registry) Upgrade(data map[string]any, from, to string) (map[string]any, error) {
	ns1, v1, err := ParseSchemaRef(from)
	if err != nil {
		return nil, err
	}
	ns2, v2, err := ParseSchemaRef(to)
	if err != nil {
		return nil, err
	}
	if ns1 != ns2 || v1 > v2 {
		return nil, fmt.Errorf("%w: cannot upgrade %s to %s", ErrSchema, from, to)
	}
	out := CloneObject(data)
	if out == nil {
		out = map[string]any{}
	}
	for v := v1 + 1; v <= v2; v++ {
		s, err := r.Get(SchemaRef(ns1, v))
		if err != nil {
			return nil, fmt.Errorf("upgrade %s to %s: %w", from, to, err)
		}
		out = s.upgrade(out)
	}
	return out, nil
}
