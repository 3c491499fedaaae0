package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strconv"
	"strings"
	stdsync "sync"
	"time"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/merge"
	"github.com/goat-gateway/goat-gateway/storage"
)

// The REST item endpoints write commits on the caller's behalf. They are
// signed with a custodial session: a key the gateway derives from its root
// key for the caller (auth.CustodialSession), registered in sys.sessions
// with the caller as owner. So a server-authored commit is attributed and
// authorized exactly like one the caller signed, on every peer.

// Edit computes an item's new schema and data from its current state. cur
// is nil when the item has no commits; base is the value the edit applies
// to (the If-Match version, or the current value), a copy the edit may
// modify, and baseSchema its schema.
type Edit func(cur *Value, base map[string]any, baseSchema string) (schema string, data map[string]any, err error)

// WriteItem runs one write on p's behalf on the newest branch: WriteItemAt
// with no schema.
func (n *Node) WriteItem(ctx context.Context, p auth.Principal, repo, key string, ifMatch *core.CommitID, edit Edit) (Value, bool, error) {
	return n.WriteItemAt(ctx, p, repo, key, "", ifMatch, edit)
}

// WriteItemAt runs one write on p's behalf on the branch of schema ("" for
// the newest; DESIGN section 2): it resolves the version edited (ifMatch,
// or the heads that branch sees), builds the new value with edit,
// validates it, signs it with p's custodial session and ingests it; the
// storage merges it with anything newer, on other branches too. It
// returns the item after the write as that branch sees it, and whether the
// key was new. A write that changes nothing makes no commit. A write at a
// retired version is core.ErrRetired; a write at a version older than a
// parent's is upgraded to the parent's first, so no writer moves an item
// back to an older version.
func (n *Node) WriteItemAt(ctx context.Context, p auth.Principal, repo, key, schema string, ifMatch *core.CommitID, edit Edit) (Value, bool, error) {
	if err := core.ValidateKey(key); err != nil {
		return Value{}, false, err
	}
	if err := n.Authorize(p, repo, true); err != nil {
		return Value{}, false, err
	}
	if schema != "" {
		if _, err := n.reg.Get(schema); err != nil {
			return Value{}, false, err
		}
	}
	branch := schema
	view, err := n.Branch(branch)
	if err != nil {
		return Value{}, false, err
	}
	r, release, err := n.repoFor(p, repo)
	if err != nil {
		return Value{}, false, err
	}
	defer release()
	// An item left with more heads than a commit may have parents (stored
	// before they were merged in groups) is merged first, or it could never
	// be written again.
	if err := n.collapse(ctx, r, key); err != nil {
		return Value{}, false, err
	}
	var cur *Value
	var parents []core.CommitID
	if v, heads, err := readValue(r, n.reg, key, view); err == nil {
		v = n.readable(v)
		cur, parents = &v, heads
	} else if !errors.Is(err, core.ErrNotFound) {
		return Value{}, false, err
	}
	var base map[string]any
	var baseSchema string
	if cur != nil {
		base, baseSchema = cur.Data, cur.Schema
	}
	if ifMatch != nil && (cur == nil || *ifMatch != cur.Head) {
		// The head a read of this branch returned is the branch's heads
		// (merged or not); any other version is that one commit.
		id := *ifMatch
		m, ok := r.Meta(id)
		if !ok || m.Key != key {
			return Value{}, false, fmt.Errorf("%w: If-Match: %s is not a version of %q", core.ErrConflict, id, key)
		}
		c, err := r.Get(id)
		if err != nil {
			return Value{}, false, err
		}
		if base, err = r.Data(id); err != nil {
			return Value{}, false, err
		}
		parents, baseSchema = []core.CommitID{id}, c.Schema
	}
	schema, data, err := edit(cur, core.CloneObject(base), baseSchema)
	if err != nil {
		return Value{}, false, err
	}
	if schema, data, err = n.writable(r, schema, data, parents); err != nil {
		return Value{}, false, err
	}
	sc, err := n.reg.Get(schema)
	if err != nil {
		return Value{}, false, err
	}
	if err := sc.Validate(data); err != nil {
		return Value{}, false, err
	}
	created := cur == nil
	if cur != nil && cur.Heads == 1 && ifMatch == nil && cur.Schema == schema && core.EqualJSON(cur.Data, data) {
		return *cur, false, nil // nothing changed: no commit
	}
	sess, priv, err := n.custody.signer(ctx, p)
	if err != nil {
		return Value{}, false, err
	}
	c := &core.Commit{Repo: repo, Key: key, Parents: parents, Author: sess, TS: n.now().UnixMilli(), Schema: schema, Data: data}
	for _, par := range parents {
		if m, ok := r.Meta(par); ok && m.TS > c.TS {
			c.TS = m.TS // never older than what it replaces
		}
	}
	if len(parents) == 1 {
		// A delta applies to the parent's stored data, so only when that
		// is data of the same version.
		if m, ok := r.Meta(parents[0]); ok && !m.Delta {
			if pc, err := r.Get(parents[0]); err == nil && pc.Schema == schema {
				c.Data, c.Delta = core.Encode(sc, parents[0], pc.Data, data)
			}
		}
	}
	res, err := n.ingestSigned(ctx, r, c, priv)
	if err != nil {
		return Value{}, false, err
	}
	if res[0].Status == storage.Rejected {
		return Value{}, false, res[0].Err
	}
	n.barrier(ctx, repo, res, false)
	if branch != "" && c.Schema != branch {
		// Upgraded to its parent's version: answer with that branch, where
		// the write is.
		if view, err = n.Branch(c.Schema); err != nil {
			return Value{}, false, err
		}
	}
	if res[0].Status == storage.Appended && view.Unrestricted(n.reg) {
		if heads := r.Heads(key); len(heads) == 1 && heads[0] == c.ID {
			// Nothing was merged in: the item is what was just written
			// (upgraded as every reader of the newest branch sees it),
			// without reading it back from the log.
			v := Value{Key: key, Schema: schema, Data: data, Head: c.ID, TS: c.TS, Deleted: core.IsDeleted(data), Heads: 1}
			return n.readable(upgradeValue(n.reg, v)), created, nil
		}
	}
	v, _, err := readValue(r, n.reg, key, view)
	if err != nil {
		return Value{}, false, err
	}
	return n.readable(v), created, nil
}

// ingestSigned signs c with priv and ingests it through ingestInto as a
// commit of OriginGateway (nothing to verify: built from validated values
// and signed here), from one encoding: the one its id hashes is the record
// stored (core.Commit.SignJSON, storage.Repo.AppendEncoded).
func (n *Node) ingestSigned(ctx context.Context, r *storage.Repo, c *core.Commit, priv ed25519.PrivateKey) ([]Result, error) {
	js, err := c.SignJSON(priv)
	if err != nil {
		return nil, err
	}
	return n.ingestInto(ctx, r, []*core.Commit{c}, [][]byte{js}, OriginGateway)
}

// writable checks that schema may be written (published, not retired) and
// upgrades data to the newest version of schema's namespace among parents:
// a write never moves an item back to an older version.
func (n *Node) writable(r *storage.Repo, schema string, data map[string]any, parents []core.CommitID) (string, map[string]any, error) {
	ns, ver, err := core.ParseSchemaRef(schema)
	if err != nil {
		return "", nil, err
	}
	if _, err := n.reg.Get(schema); err != nil {
		return "", nil, err
	}
	if c, ok := n.reg.Cap(ns); ok && ver > c {
		return "", nil, fmt.Errorf("%w: %s was retired (rolled back); write at %s, or republish %s with PUT /v1/schemas/%s/%d", core.ErrRetired, schema, core.SchemaRef(ns, c), schema, ns, ver)
	}
	to := ver
	for _, p := range parents {
		if pc, err := r.Get(p); err == nil {
			if pns, pv, err := core.ParseSchemaRef(pc.Schema); err == nil && pns == ns && pv > to {
				to = pv
			}
		}
	}
	if to == ver {
		return schema, data, nil
	}
	if c, _ := n.reg.Cap(ns); to > c {
		return "", nil, fmt.Errorf("%w: the version edited is at %s, which was retired; edit the item as GET returns it now", core.ErrRetired, core.SchemaRef(ns, to))
	}
	up, err := n.reg.Upgrade(data, schema, core.SchemaRef(ns, to))
	if err != nil {
		return "", nil, err
	}
	return core.SchemaRef(ns, to), up, nil
}

// custody hands out custodial sessions, registering each once.
type custody struct {
	n  *Node
	mu stdsync.Mutex
	// by principal identity; entries are replaced when their period ends
	keys map[string]custodial
}

type custodial struct {
	id      string
	priv    ed25519.PrivateKey
	expires time.Time
}

func newCustody(n *Node) *custody { return &custody{n: n, keys: map[string]custodial{}} }

// custodyPeriod is how long one custodial session serves; it is valid for
// two periods so that a write at the end of one never races its expiry.
const custodyPeriod = 24 * time.Hour

func (c *custody) signer(ctx context.Context, p auth.Principal) (string, ed25519.PrivateKey, error) {
	if !p.Authenticated() {
		return "", nil, fmt.Errorf("%w: writing needs a token", core.ErrUnauthenticated)
	}
	now := c.n.now()
	expires := now.UTC().Truncate(custodyPeriod).Add(2 * custodyPeriod)
	ident := p.Issuer + "\x00" + p.Sub + "\x00" + strings.Join(p.Roles, ",")
	c.mu.Lock()
	k, ok := c.keys[ident]
	c.mu.Unlock()
	if !ok || !k.expires.Equal(expires) {
		sess, priv, err := auth.CustodialSession(c.n.root, p, expires)
		if err != nil {
			return "", nil, err
		}
		if _, err := c.n.sessions.Session(sess.ID); err != nil {
			if err := c.n.writeSystem(ctx, auth.SessionsRepo, sess.ID, auth.SessionSchemaRef, sess.Data()); err != nil {
				return "", nil, fmt.Errorf("register custodial session: %w", err)
			}
		}
		k = custodial{id: sess.ID, priv: priv, expires: expires}
		c.mu.Lock()
		c.keys[ident] = k
		c.mu.Unlock()
	}
	// The commits signed here are not verified again (OriginGateway), so
	// this is where a revoked custodial session is refused. Its key is
	// derived deterministically per period, so deriving it again after a
	// revocation (here or on another node) yields the same revoked session:
	// the caller's REST writes stay blocked until the next period
	// (docs/security.md).
	sess, err := c.n.sessions.Session(k.id)
	if err != nil {
		return "", nil, fmt.Errorf("custodial session: %w", err)
	}
	if err := sess.ValidAt(now); err != nil {
		return "", nil, fmt.Errorf("custodial session: %w", err)
	}
	return k.id, k.priv, nil
}

// forget drops a cached custodial session after it was revoked. The next
// write derives the same session again until the period ends, and signer
// refuses it.
func (c *custody) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range c.keys {
		if v.id == id {
			delete(c.keys, k)
		}
	}
}

// ---- reads through a view (DESIGN section 2: schema branches, time travel) ----

// Branch returns the view of a reader that names schema: "" is the
// newest readable version of every namespace, "ns/v" the branch of a
// reader that knows ns up to version v (capped by retirement like every
// reader). An unknown or malformed schema is core.ErrInvalid: it is the
// reader's query that is wrong.
func (n *Node) Branch(schema string) (merge.View, error) {
	if schema == "" {
		return merge.View{}, nil
	}
	ns, v, err := core.ParseSchemaRef(schema)
	if err != nil {
		return merge.View{}, fmt.Errorf("%w: schema: %q is not ns/version", core.ErrInvalid, schema)
	}
	if _, err := n.reg.Get(schema); err != nil {
		return merge.View{}, fmt.Errorf("%w: schema: %s is not a published schema version", core.ErrInvalid, schema)
	}
	return merge.View{Versions: map[string]int{ns: v}}, nil
}

// ParseAsOf reads a time travel instant: RFC 3339 (any offset) or unix
// milliseconds. It returns unix ms.
func ParseAsOf(s string) (int64, error) {
	if s != "" && strings.Trim(s, "0123456789") == "" && len(s) <= 15 {
		ms, err := strconv.ParseInt(s, 10, 64)
		if err == nil {
			return ms, nil
		}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Errorf("%w: asOf: %q is neither an RFC 3339 time (2026-11-22T10:00:00Z) nor unix milliseconds", core.ErrInvalid, s)
	}
	return t.UnixMilli(), nil
}

// ValueIn returns an item as a reader with view v sees it (core.ErrNotFound
// if that reader sees no commit of it): the merge of its visible heads,
// upgraded to the reader's version, schema defaults applied.
func (r *Repo) ValueIn(key string, v merge.View) (Value, error) {
	if err := core.ValidateKey(key); err != nil {
		return Value{}, err
	}
	val, _, err := readValue(r.r, r.n.reg, key, v)
	if err != nil {
		return Value{}, err
	}
	return r.readable(val), nil
}

// ValueAt returns the item key as of commit id (time travel): that
// commit's value, upgraded to v's version. A commit of another item is
// core.ErrNotFound; one newer than v's branch is core.ErrSchema.
func (r *Repo) ValueAt(key string, id core.CommitID, v merge.View) (Value, error) {
	if err := core.ValidateKey(key); err != nil {
		return Value{}, err
	}
	m, ok := r.r.Meta(id)
	if !ok || m.Key != key {
		return Value{}, fmt.Errorf("%w: commit %s is not a version of %q", core.ErrNotFound, id, key)
	}
	schema, data, err := merge.ValueAt(r.r, r.n.reg, id, v)
	if err != nil {
		return Value{}, err
	}
	return r.readable(Value{Key: key, Schema: schema, Data: data, Head: id, TS: m.TS, Deleted: core.IsDeleted(data), Heads: 1}), nil
}

// ItemsIn returns up to limit items with keys after after, sorted by key,
// as a reader with view v sees them; ns, if not empty, keeps the items of
// that namespace (their version is the reader's, after the upgrade).
func (r *Repo) ItemsIn(after string, limit int, withDeleted bool, ns string, v merge.View) (items []Value, more bool, err error) {
	fast := v.Unrestricted(r.n.reg)
	for len(items) < limit {
		// A restricted view may see a tombstone where the stored value is
		// none, or the reverse: it reads every item and decides itself.
		vals, err := r.r.Items(after, limit, withDeleted || !fast)
		if err != nil {
			return nil, false, err
		}
		for _, sv := range vals {
			val := upgradeValue(r.n.reg, sv)
			if !fast {
				if val, _, err = readValue(r.r, r.n.reg, sv.Key, v); errors.Is(err, core.ErrNotFound) {
					continue
				} else if err != nil {
					return nil, false, err
				}
				if val.Deleted && !withDeleted {
					continue
				}
			}
			val = r.readable(val)
			if n, _, _ := strings.Cut(val.Schema, "/"); ns != "" && n != ns {
				continue
			}
			if len(items) == limit {
				return items, true, nil
			}
			items = append(items, val)
		}
		if len(vals) < limit {
			return items, false, nil
		}
		after = vals[len(vals)-1].Key
	}
	return items, true, nil
}

// readValue reads item key of st through v, with the visible heads; the
// value is upgraded to the reader's version, without defaults. An
// unrestricted view reads the stored value, with no walk of the history.
func readValue(st *storage.Repo, reg *core.Registry, key string, v merge.View) (Value, []core.CommitID, error) {
	heads := st.Heads(key)
	if len(heads) == 0 {
		return Value{}, nil, fmt.Errorf("%w: item %q in %q", core.ErrNotFound, key, st.Name())
	}
	if v.Unrestricted(reg) {
		val, err := st.Value(key)
		if err != nil {
			return Value{}, nil, err
		}
		return upgradeValue(reg, val), heads, nil
	}
	res, err := merge.Resolve(st, reg, st.Name(), key, heads, v)
	if err != nil {
		return Value{}, nil, err
	}
	return Value{Key: key, Schema: res.Schema, Data: res.Data, Head: res.Head, TS: res.TS, Deleted: core.IsDeleted(res.Data), Heads: len(res.Heads)}, res.Heads, nil
}

// upgradeValue upgrades a stored value to the newest readable version of
// its namespace.
func upgradeValue(reg *core.Registry, v Value) Value {
	ns, ver, err := core.ParseSchemaRef(v.Schema)
	if err != nil {
		return v
	}
	if c, ok := reg.Cap(ns); ok && c > ver {
		to := core.SchemaRef(ns, c)
		if up, err := reg.Upgrade(v.Data, v.Schema, to); err == nil {
			v.Schema, v.Data = to, up
		}
	}
	return v
}

// ReadValue reads item key of a repository opened from storage directly
// (the export tool) as a reader with view v sees it, schema defaults
// applied, with reg holding the schemas (LoadRegistry).
func ReadValue(st *storage.Repo, reg *core.Registry, key string, v merge.View) (Value, error) {
	val, _, err := readValue(st, reg, key, v)
	if err != nil {
		return Value{}, err
	}
	if sc, err := reg.Get(val.Schema); err == nil && !val.Deleted {
		val.Data = sc.WithDefaults(val.Data)
	}
	return val, nil
}
