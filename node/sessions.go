package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
)

// RegisterSession registers the session key of req for p (POST
// /v1/sessions): the record, signed by the root key, is written to
// sys.sessions. Registering a key again for the same owner returns the
// existing record and created false; for another owner it is
// core.ErrConflict.
func (n *Node) RegisterSession(ctx context.Context, p auth.Principal, req auth.SessionRequest) (auth.Session, bool, error) {
	if err := n.AuthorizeSessions(p); err != nil {
		return auth.Session{}, false, err
	}
	reg := auth.Registrar{Audience: n.cfg.Audience, Root: n.root}
	sess, err := reg.Register(req, p, n.now())
	if err != nil {
		return auth.Session{}, false, err
	}
	// One registration or revocation at a time: the check and the write
	// below must not interleave with another's (two owners racing for one
	// key would both be told "created").
	n.sessMu.Lock()
	defer n.sessMu.Unlock()
	if old, err := n.sessions.Session(sess.ID); err == nil {
		if old.Owner != sess.Owner {
			return auth.Session{}, false, fmt.Errorf("%w: this key is registered to another owner", core.ErrConflict)
		}
		return old, false, nil
	}
	if err := n.checkSessionQuota(sess.Owner); err != nil {
		return auth.Session{}, false, err
	}
	if err := n.writeSystem(ctx, auth.SessionsRepo, sess.ID, auth.SessionSchemaRef, sess.Data()); err != nil {
		return auth.Session{}, false, err
	}
	return sess, true, nil
}

// Session returns a session record for p (any authenticated caller may
// read one; the implicit sessions of root keys are not records).
func (n *Node) Session(p auth.Principal, id string) (auth.Session, error) {
	if !p.Authenticated() {
		return auth.Session{}, fmt.Errorf("%w: reading sessions needs a token", core.ErrUnauthenticated)
	}
	sess, err := n.sessions.Session(id)
	if err != nil || sess.Node {
		return auth.Session{}, fmt.Errorf("%w: session %q", core.ErrNotFound, id)
	}
	return sess, nil
}

// RevokeSession revokes one of p's sessions (an admin may revoke any).
// Commits the session signed before stay valid; new ones are refused
// everywhere the revocation has replicated.
func (n *Node) RevokeSession(ctx context.Context, p auth.Principal, id string) (auth.Session, error) {
	if !p.Authenticated() {
		return auth.Session{}, fmt.Errorf("%w: revoking a session needs a token", core.ErrUnauthenticated)
	}
	n.sessMu.Lock()
	defer n.sessMu.Unlock()
	sess, err := n.sessions.Session(id)
	if err != nil || sess.Node || (sess.Owner != p.Sub && !p.HasRole(auth.AdminRole)) {
		return auth.Session{}, fmt.Errorf("%w: session %q", core.ErrNotFound, id)
	}
	if sess.Revoked.IsZero() {
		sess = sess.RevokeAt(n.now())
		if err := n.writeSystem(ctx, auth.SessionsRepo, sess.ID, auth.SessionSchemaRef, sess.Data()); err != nil {
			return auth.Session{}, err
		}
		n.custody.forget(sess.ID)
	}
	return sess, nil
}

// sessionDir is the node's session directory. Memory holds the sessions
// that were live when the node started and every record written or
// received since; a record that was already expired or revoked at start
// stays on disk in sys.sessions and is read from there when asked for
// (verifying an old commit, registering a key again). So memory follows
// the live sessions, not every session ever registered, and a commit an
// expired session signed stays verifiable.
type sessionDir struct {
	*auth.Sessions
	n *Node
}

var _ auth.SessionLookup = sessionDir{}

// Session returns the record of id in any state, or core.ErrNotFound.
func (d sessionDir) Session(id string) (auth.Session, error) {
	s, err := d.Sessions.Session(id)
	if !errors.Is(err, core.ErrNotFound) {
		return s, err
	}
	return d.stored(id)
}

// Lookup returns the record of id if it is valid at at, as
// auth.Sessions.Lookup does.
func (d sessionDir) Lookup(id string, at time.Time) (auth.Session, error) {
	s, err := d.Session(id)
	if err != nil {
		return auth.Session{}, err
	}
	if err := s.ValidAt(at); err != nil {
		return auth.Session{}, err
	}
	return s, nil
}

// stored reads the record of id from sys.sessions and checks its root
// signature. It is not kept in memory: records left out at start are
// expired or revoked, and asked for rarely.
func (d sessionDir) stored(id string) (auth.Session, error) {
	notFound := fmt.Errorf("session %q: %w", id, core.ErrNotFound)
	r, release, err := d.n.store.Repo(auth.SessionsRepo)
	if err != nil {
		return auth.Session{}, notFound
	}
	defer release()
	v, err := r.Value(id)
	if err != nil || v.Deleted {
		return auth.Session{}, notFound
	}
	s, err := auth.SessionFromData(id, v.Data)
	if err != nil || s.Node {
		return auth.Session{}, notFound
	}
	if err := s.VerifyRecord(d.n.RootPublicKey()); err != nil {
		return auth.Session{}, err
	}
	return s, nil
}

// liveAtStart reports whether the sys.sessions value data of id is a
// session valid now, the ones loadSystemRepos keeps in memory.
func (n *Node) liveAtStart(id string, data map[string]any, deleted bool) bool {
	if deleted {
		return false
	}
	s, err := auth.SessionFromData(id, data)
	return err == nil && s.ValidAt(n.now()) == nil
}

// SessionsInMemory returns how many session records the node holds in
// memory, its own implicit session included (for operators and tests).
func (n *Node) SessionsInMemory() int { return n.sessions.Len() }
