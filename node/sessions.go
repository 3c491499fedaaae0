package node

import (
	"context"
	"fmt"

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
