package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/storage"
)

// Schemas returns every schema the node knows, for p.
func (n *Node) Schemas(p auth.Principal) ([]*core.Schema, error) {
	if !n.cfg.Rules.CanRead(p, auth.SchemasRepo) {
		return nil, fmt.Errorf("%w: reading schemas needs a token", core.ErrUnauthenticated)
	}
	return n.reg.List(), nil
}

// PutSchema publishes a schema for p (in dev mode any authenticated
// caller, otherwise who may write sys.schemas). def is the definition as
// the caller sent it, a JSON object; ns and version come from the path and
// override any in def. Publishing the same definition again returns the
// existing schema and created false; a different one under the same
// version is core.ErrConflict; version v needs v-1 first.
func (n *Node) PutSchema(ctx context.Context, p auth.Principal, ns string, version int, def map[string]any) (*core.Schema, bool, error) {
	if err := n.AuthorizeSchemaWrite(p); err != nil {
		return nil, false, err
	}
	def = core.CloneObject(def)
	def["ns"], def["version"] = ns, version
	b, err := json.Marshal(def)
	if err != nil {
		return nil, false, fmt.Errorf("%w: schema: %v", core.ErrInvalid, err)
	}
	sc, err := core.DecodeSchema(b)
	if err != nil {
		return nil, false, err
	}
	if old, err := n.reg.Get(sc.Ref()); err == nil {
		if err := n.reg.Add(sc); err != nil {
			return nil, false, err
		}
		if !n.reg.Retired(sc.Ref()) {
			return old, false, nil
		}
		// Republishing a retired version restores it (rollback undone).
		if n.reg.Retired(core.SchemaRef(sc.NS, sc.Version-1)) {
			return nil, false, fmt.Errorf("%w: %s is retired too: republish it first", core.ErrConflict, core.SchemaRef(sc.NS, sc.Version-1))
		}
	} else if n.reg.Retired(core.SchemaRef(sc.NS, sc.Version-1)) {
		return nil, false, fmt.Errorf("%w: %s is retired: republish it before publishing %s", core.ErrConflict, core.SchemaRef(sc.NS, sc.Version-1), sc.Ref())
	}
	if sc.Version > 1 {
		if _, err := n.reg.Get(core.SchemaRef(sc.NS, sc.Version-1)); err != nil {
			return nil, false, fmt.Errorf("%w: publish %s first: upgrades go one version at a time", core.ErrSchema, core.SchemaRef(sc.NS, sc.Version-1))
		}
	}
	data, err := core.Normalize(def)
	if err != nil {
		return nil, false, err
	}
	if err := n.writeSystem(ctx, auth.SchemasRepo, schemaKey(sc.NS, sc.Version), core.AnySchema, data.(map[string]any)); err != nil {
		return nil, false, err
	}
	if err := n.reg.Add(sc); err != nil {
		return nil, false, err
	}
	return sc, true, nil
}

// RetireSchema retires ns/version for p, who needs role admin (DESIGN
// section 2, rollback): every reader then sees items through the branch
// below it, and writes at it are refused (core.ErrRetired). Its commits
// stay; PutSchema of the same definition restores it. The retirement is
// a tombstone of the schema's record in sys.schemas that keeps the
// definition (commits at it still verify and merge), so it syncs like any
// commit. Versions retire from the newest down: a version with a newer
// one still in use is core.ErrConflict, and so is version 1 (there is no
// branch below it). It returns whether anything changed.
func (n *Node) RetireSchema(ctx context.Context, p auth.Principal, ns string, version int) (*core.Schema, bool, error) {
	if err := n.AuthorizeSchemaWrite(p); err != nil {
		return nil, false, err
	}
	if !p.Node && !p.HasRole(auth.AdminRole) {
		return nil, false, fmt.Errorf("%w: retiring a schema version needs role %s", core.ErrForbidden, auth.AdminRole)
	}
	ref := core.SchemaRef(ns, version)
	sc, err := n.reg.Get(ref)
	if err != nil {
		return nil, false, fmt.Errorf("%w: schema %s is not published", core.ErrNotFound, ref)
	}
	if n.reg.Retired(ref) {
		return sc, false, nil
	}
	switch next := core.SchemaRef(ns, version+1); {
	case ns == "any":
		return nil, false, fmt.Errorf("%w: %s is built in", core.ErrConflict, ref)
	case version == 1:
		return nil, false, fmt.Errorf("%w: %s is the first version: there is no branch below it to roll back to", core.ErrConflict, ref)
	case !n.reg.Retired(next) && n.knows(next):
		return nil, false, fmt.Errorf("%w: %s is newer and still in use: retire it first", core.ErrConflict, next)
	}
	b, err := json.Marshal(sc)
	if err != nil {
		return nil, false, err
	}
	v, err := core.ParseJSON(b)
	if err != nil {
		return nil, false, err
	}
	data := v.(map[string]any)
	data[core.DeletedField] = true
	if err := n.writeSystem(ctx, auth.SchemasRepo, schemaKey(ns, version), core.AnySchema, data); err != nil {
		return nil, false, err
	}
	return sc, true, nil
}

func (n *Node) knows(ref string) bool {
	_, err := n.reg.Get(ref)
	return err == nil
}

// Retired reports whether schema version ref is retired.
func (n *Node) Retired(ref string) bool { return n.reg.Retired(ref) }

// applySchemaRecord puts a record of sys.schemas in effect in reg: the
// definition is known either way; a tombstone retires it, a live record
// restores it.
func applySchemaRecord(reg *core.Registry, data map[string]any, deleted bool) error {
	def := core.CloneObject(data)
	delete(def, core.DeletedField)
	b, err := json.Marshal(def)
	if err != nil {
		return err
	}
	sc, err := core.DecodeSchema(b)
	if err != nil {
		return err
	}
	if err := reg.Add(sc); err != nil {
		return err
	}
	return reg.Retire(sc.Ref(), deleted)
}

// LoadRegistry reads the schemas of a store's sys.schemas (retirements
// included), for tools that open storage without a node (export).
func LoadRegistry(st *storage.Store) (*core.Registry, error) {
	reg := core.NewRegistry()
	r, release, err := st.Repo(auth.SchemasRepo)
	if errors.Is(err, core.ErrNotFound) {
		return reg, nil
	}
	if err != nil {
		return nil, err
	}
	defer release()
	for after := ""; ; {
		vals, err := r.Items(after, 1000, true)
		if err != nil {
			return nil, err
		}
		for _, v := range vals {
			if err := applySchemaRecord(reg, v.Data, v.Deleted); err != nil {
				return nil, fmt.Errorf("schema %s: %w", v.Key, err)
			}
		}
		if len(vals) < 1000 {
			return reg, nil
		}
		after = vals[len(vals)-1].Key
	}
}
