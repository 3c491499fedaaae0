package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	stdsync "sync"
	"time"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
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

// WriteItem runs one write on p's behalf: it resolves the version edited
// (ifMatch, or the current heads), builds the new value with edit,
// validates it, signs it with p's custodial session and ingests it; the
// storage merges it with anything newer. It returns the item after the
// write, as readers see it, and whether the key was new. A write that
// changes nothing makes no commit.
func (n *Node) WriteItem(ctx context.Context, p auth.Principal, repo, key string, ifMatch *core.CommitID, edit Edit) (Value, bool, error) {
	if err := core.ValidateKey(key); err != nil {
		return Value{}, false, err
	}
	if err := n.Authorize(p, repo, true); err != nil {
		return Value{}, false, err
	}
	r, release, err := n.store.Repo(repo)
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
	if v, err := r.Value(key); err == nil {
		cur = &v
	} else if !errors.Is(err, core.ErrNotFound) {
		return Value{}, false, err
	}
	parents := r.Heads(key)
	var base map[string]any
	var baseSchema string
	if cur != nil {
		base, baseSchema = cur.Data, cur.Schema
	}
	if ifMatch != nil {
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
	sc, err := n.reg.Get(schema)
	if err != nil {
		return Value{}, false, err
	}
	if err := sc.Validate(data); err != nil {
		return Value{}, false, err
	}
	created := cur == nil
	if cur != nil && cur.Heads == 1 && ifMatch == nil && cur.Schema == schema && core.EqualJSON(cur.Data, data) {
		return n.readable(*cur), false, nil // nothing changed: no commit
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
		if m, ok := r.Meta(parents[0]); ok && !m.Delta {
			c.Data, c.Delta = core.Encode(sc, parents[0], base, data)
		}
	}
	if err := c.Sign(priv); err != nil {
		return Value{}, false, err
	}
	res, err := n.ingestInto(ctx, r, []*core.Commit{c}, OriginGateway)
	if err != nil {
		return Value{}, false, err
	}
	if res[0].Status == storage.Rejected {
		return Value{}, false, res[0].Err
	}
	n.barrier(ctx, repo, res, false)
	if res[0].Status == storage.Appended {
		if heads := r.Heads(key); len(heads) == 1 && heads[0] == c.ID {
			// Nothing was merged in: the item is what was just written,
			// without reading it back from the log.
			v := Value{Key: key, Schema: schema, Data: data, Head: c.ID, TS: c.TS, Deleted: core.IsDeleted(data), Heads: 1}
			return n.readable(v), created, nil
		}
	}
	v, err := r.Value(key)
	if err != nil {
		return Value{}, false, err
	}
	return n.readable(v), created, nil
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
