package api

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	stdsync "sync"
	"time"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/gen/apiserver"
	"github.com/goat-gateway/goat-gateway/gen/models"
	"github.com/goat-gateway/goat-gateway/storage"
)

func errorsIs(err, target error) bool { return errors.Is(err, target) }

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// The REST item endpoints write commits on the caller's behalf. They are
// signed with a custodial session: a key the gateway derives from its root
// key for the caller (auth.CustodialSession), registered in sys.sessions
// with the caller as owner. So a server-authored commit is attributed and
// authorized exactly like one the caller signed, on every peer.

// itemEdit computes an item's new schema and data from its current state.
// cur is nil when the item has no commits; base is the value the edit
// applies to (the If-Match version, or the current value).
type itemEdit func(cur *storage.Value, base map[string]any, baseSchema string) (schema string, data map[string]any, err error)

// writeItem runs one REST write: it resolves the version edited, builds
// the new value, signs it with the caller's custodial session and appends
// it; the storage merges it with anything newer. It returns the item after
// the write and whether the key was new.
func (h handlers) writeItem(ctx context.Context, repo, key string, ifMatch *string, edit itemEdit) (models.Item, bool, error) {
	if err := core.ValidateKey(key); err != nil {
		return models.Item{}, false, err
	}
	r, release, err := h.repo(ctx, repo, true)
	if err != nil {
		return models.Item{}, false, err
	}
	defer release()
	var cur *storage.Value
	if v, err := r.Value(key); err == nil {
		cur = &v
	} else if !errors.Is(err, core.ErrNotFound) {
		return models.Item{}, false, err
	}
	parents := r.Heads(key)
	var base map[string]any
	var baseSchema string
	if cur != nil {
		base, baseSchema = cur.Data, cur.Schema
	}
	if ifMatch != nil {
		id, err := parseETag(*ifMatch)
		if err != nil {
			return models.Item{}, false, err
		}
		m, ok := r.Meta(id)
		if !ok || m.Key != key {
			return models.Item{}, false, fmt.Errorf("%w: If-Match: %s is not a version of %q", core.ErrConflict, id, key)
		}
		c, err := r.Get(id)
		if err != nil {
			return models.Item{}, false, err
		}
		if base, err = r.Data(id); err != nil {
			return models.Item{}, false, err
		}
		parents, baseSchema = []core.CommitID{id}, c.Schema
	}
	schema, data, err := edit(cur, core.CloneObject(base), baseSchema)
	if err != nil {
		return models.Item{}, false, err
	}
	if err := h.s.validate(schema, data); err != nil {
		return models.Item{}, false, err
	}
	created := cur == nil
	if cur != nil && cur.Heads == 1 && ifMatch == nil && cur.Schema == schema && core.EqualJSON(cur.Data, data) {
		return h.item(*cur), false, nil // nothing changed: no commit
	}
	sess, priv, err := h.s.custody.signer(ctx, principalFrom(ctx))
	if err != nil {
		return models.Item{}, false, err
	}
	c := &core.Commit{Repo: repo, Key: key, Parents: parents, Author: sess, TS: h.s.now().UnixMilli(), Schema: schema, Data: data}
	for _, p := range parents {
		if m, ok := r.Meta(p); ok && m.TS > c.TS {
			c.TS = m.TS // never older than what it replaces
		}
	}
	if len(parents) == 1 {
		if m, ok := r.Meta(parents[0]); ok && !m.Delta {
			sc, _ := h.s.reg.Get(schema)
			c.Data, c.Delta = core.Encode(sc, parents[0], base, data)
		}
	}
	if err := c.Sign(priv); err != nil {
		return models.Item{}, false, err
	}
	if err := appendOne(ctx, r, c); err != nil {
		return models.Item{}, false, err
	}
	v, err := r.Value(key)
	if err != nil {
		return models.Item{}, false, err
	}
	return h.item(v), created, nil
}

// appendOne appends c and turns a rejection into its error.
func appendOne(ctx context.Context, r *storage.Repo, c *core.Commit) error {
	res, err := r.Append(ctx, []*core.Commit{c})
	if err != nil {
		return err
	}
	if res[0].Status == storage.Rejected {
		return res[0].Err
	}
	return nil
}

// parseETag reads If-Match's single strong "<id>".
func parseETag(s string) (core.CommitID, error) {
	s = strings.TrimSpace(s)
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return core.CommitID{}, fmt.Errorf("%w: If-Match must be one strong ETag, \"<head id>\"", core.ErrInvalid)
	}
	return core.ParseCommitID(s[1 : len(s)-1])
}

func bodyObject(ctx context.Context) (map[string]any, error) {
	v, err := core.ParseJSON(rawBody(ctx))
	if err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: body must be a JSON object", core.ErrInvalid)
	}
	return m, nil
}

func (h handlers) PutItem(ctx context.Context, req apiserver.PutItemRequestObject) (apiserver.PutItemResponseObject, error) {
	body, err := bodyObject(ctx)
	if err != nil {
		return nil, err
	}
	schema, _ := body["schema"].(string)
	data, _ := body["data"].(map[string]any)
	if data == nil {
		return nil, fmt.Errorf("%w: data: must be an object", core.ErrInvalid)
	}
	it, created, err := h.writeItem(ctx, req.Repo, req.Key, req.Params.IfMatch, func(_ *storage.Value, _ map[string]any, _ string) (string, map[string]any, error) {
		return schema, data, nil
	})
	if err != nil {
		return nil, err
	}
	etag := `"` + it.Head + `"`
	if created {
		return apiserver.PutItem201JSONResponse{Body: it, Headers: apiserver.PutItem201ResponseHeaders{ETag: etag}}, nil
	}
	return apiserver.PutItem200JSONResponse{Body: it, Headers: apiserver.PutItem200ResponseHeaders{ETag: etag}}, nil
}

// applyMergePatch implements RFC 7396.
func applyMergePatch(target, patch any) any {
	pm, ok := patch.(map[string]any)
	if !ok {
		return core.Clone(patch)
	}
	tm, ok := target.(map[string]any)
	if !ok {
		tm = map[string]any{}
	}
	for k, v := range pm {
		if v == nil {
			delete(tm, k)
		} else {
			tm[k] = applyMergePatch(tm[k], v)
		}
	}
	return tm
}

func (h handlers) PatchItem(ctx context.Context, req apiserver.PatchItemRequestObject) (apiserver.PatchItemResponseObject, error) {
	patch, err := bodyObject(ctx)
	if err != nil {
		return nil, err
	}
	it, _, err := h.writeItem(ctx, req.Repo, req.Key, req.Params.IfMatch, func(cur *storage.Value, base map[string]any, schema string) (string, map[string]any, error) {
		if cur == nil || cur.Deleted {
			return "", nil, fmt.Errorf("%w: item %q", core.ErrNotFound, req.Key)
		}
		return schema, applyMergePatch(base, patch).(map[string]any), nil
	})
	if err != nil {
		return nil, err
	}
	return apiserver.PatchItem200JSONResponse{Body: it, Headers: apiserver.PatchItem200ResponseHeaders{ETag: `"` + it.Head + `"`}}, nil
}

func (h handlers) DeleteItem(ctx context.Context, req apiserver.DeleteItemRequestObject) (apiserver.DeleteItemResponseObject, error) {
	it, _, err := h.writeItem(ctx, req.Repo, req.Key, req.Params.IfMatch, func(cur *storage.Value, base map[string]any, schema string) (string, map[string]any, error) {
		if cur == nil {
			return "", nil, fmt.Errorf("%w: item %q", core.ErrNotFound, req.Key)
		}
		base[core.DeletedField] = true
		return schema, base, nil
	})
	if err != nil {
		return nil, err
	}
	return apiserver.DeleteItem200JSONResponse{Body: it, Headers: apiserver.DeleteItem200ResponseHeaders{ETag: `"` + it.Head + `"`}}, nil
}

// writeAsNode writes data to a system repository as this node (signed by
// its root key), replacing the key's current value.
func (s *Server) writeAsNode(ctx context.Context, repo, key, schema string, data map[string]any) error {
	r, release, err := s.store.Ensure(repo)
	if err != nil {
		return err
	}
	defer release()
	c := &core.Commit{Repo: repo, Key: key, Parents: r.Heads(key), Author: s.rootID, TS: s.now().UnixMilli(), Schema: schema, Data: data}
	if err := c.Sign(s.root); err != nil {
		return err
	}
	return appendOne(ctx, r, c)
}

// custody hands out custodial sessions, registering each once.
type custody struct {
	s  *Server
	mu stdsync.Mutex
	// by principal identity; entries are replaced when their period ends
	keys map[string]custodial
}

type custodial struct {
	id      string
	priv    ed25519.PrivateKey
	expires time.Time
}

func newCustody(s *Server) *custody { return &custody{s: s, keys: map[string]custodial{}} }

// custodyPeriod is how long one custodial session serves; it is valid for
// two periods so that a write at the end of one never races its expiry.
const custodyPeriod = 24 * time.Hour

func (c *custody) signer(ctx context.Context, p auth.Principal) (string, ed25519.PrivateKey, error) {
	if !p.Authenticated() {
		return "", nil, fmt.Errorf("%w: writing needs a token", core.ErrUnauthenticated)
	}
	now := c.s.now()
	expires := now.UTC().Truncate(custodyPeriod).Add(2 * custodyPeriod)
	ident := p.Issuer + "\x00" + p.Sub + "\x00" + strings.Join(p.Roles, ",")
	c.mu.Lock()
	k, ok := c.keys[ident]
	c.mu.Unlock()
	if ok && k.expires.Equal(expires) {
		return k.id, k.priv, nil
	}
	sess, priv, err := auth.CustodialSession(c.s.root, p, expires)
	if err != nil {
		return "", nil, err
	}
	if _, err := c.s.sessions.Session(sess.ID); err != nil {
		if err := c.s.writeAsNode(ctx, auth.SessionsRepo, sess.ID, auth.SessionSchemaRef, sess.Data()); err != nil {
			return "", nil, fmt.Errorf("register custodial session: %w", err)
		}
		if err := c.s.sessions.Put(sess); err != nil {
			return "", nil, err
		}
	}
	c.mu.Lock()
	c.keys[ident] = custodial{id: sess.ID, priv: priv, expires: expires}
	c.mu.Unlock()
	return sess.ID, priv, nil
}

// forget drops a cached custodial session (after it was revoked), so the
// next write derives and registers a fresh one.
func (c *custody) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range c.keys {
		if v.id == id {
			delete(c.keys, k)
		}
	}
}

// streamLimiter bounds concurrent SSE streams per caller.
type streamLimiter struct {
	mu    stdsync.Mutex
	max   int
	count map[string]int
}

func newStreamLimiter(max int) *streamLimiter {
	return &streamLimiter{max: max, count: map[string]int{}}
}

func (l *streamLimiter) acquire(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.count[key] >= l.max {
		return false
	}
	l.count[key]++
	return true
}

func (l *streamLimiter) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.count[key]--; l.count[key] <= 0 {
		delete(l.count, key)
	}
}
