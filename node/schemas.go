package node

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
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
		return old, false, nil
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
