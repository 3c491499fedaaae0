package goat

import (
	"encoding/json"
	"fmt"

	"github.com/goat-gateway/goat-gateway/core"
)

// GetAs reads an item into a Go value of type T, decoded from the item's
// data with encoding/json (use struct tags to name fields).
func GetAs[T any](r *Repo, key string) (T, error) {
	var v T
	it, err := r.Get(key)
	if err != nil {
		return v, err
	}
	return v, DecodeItem(it, &v)
}

// SetAs writes a Go value as an item of schema: v is encoded with
// encoding/json and must encode to a JSON object.
func SetAs[T any](r *Repo, key, schema string, v T) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("%w: %v", core.ErrInvalid, err)
	}
	val, err := core.ParseJSON(b)
	if err != nil {
		return err
	}
	m, ok := val.(map[string]any)
	if !ok {
		return fmt.Errorf("%w: %T does not encode to a JSON object", core.ErrInvalid, v)
	}
	return r.Set(key, schema, m)
}

// DecodeItem decodes an item's data into v (a pointer) with
// encoding/json, for query results.
func DecodeItem(it Item, v any) error {
	b, err := json.Marshal(it.Data)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: item %q: %v", core.ErrSchema, it.Key, err)
	}
	return nil
}
