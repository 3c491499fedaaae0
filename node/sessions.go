package node

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
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
	if err := n.refuseAtSessionQuota(p, req); err != nil {
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

// refuseAtSessionQuota refuses a registration by an owner already at the
// session quota before Register checks the proof and the root key signs
// the record: a flood of registrations past the quota then costs a count
// each, not two signature operations (the soak's session flood was 8% of
// the node's CPU, most of it this crypto). A key the owner already holds
// is not a new session and goes on to Register as before. The check is
// repeated under sessMu before the write, where it is exact.
func (n *Node) refuseAtSessionQuota(p auth.Principal, req auth.SessionRequest) error {
	if n.cfg.MaxSessionsPerOwner <= 0 || !p.Authenticated() || p.Node {
		return nil // Register gives these their own answers
	}
	if pub, err := base64.RawURLEncoding.Strict().DecodeString(req.PublicKey); err == nil && len(pub) == ed25519.PublicKeySize {
		if old, err := n.sessions.Session(auth.SessionID(pub)); err == nil && old.Owner == p.Sub {
			return nil
		}
	}
	return n.checkSessionQuota(p.Sub)
}

// Session returns a session record. Any caller may read one, anonymous
// callers included: records are public certificates that whoever verifies
// a commit needs (docs/security.md). The implicit sessions of root keys
// are not records.
func (n *Node) Session(ctx context.Context, p auth.Principal, id string) (auth.Session, error) {
	sess, err := n.sessions.Session(id)
	if err != nil && p.Authenticated() && !p.Node {
		// A session registered on another node may not have replicated
		// here yet: a client that asks through a load balancer is
		// answered as the node that served it the session's commits
		// would answer. Peers ask each other as nodes, so this asks once,
		// never around the cluster; anonymous callers are answered from
		// this node alone, so that a flood of made-up ids by nobody in
		// particular does not become requests to every peer (a miss is
		// not asked again for a while either: Cluster.LookupSession).
		sess, err = n.resolveSession(ctx, id)
	}
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
		if err := sess.SignRevocation(n.root); err != nil {
			return auth.Session{}, err
		}
		if err := n.writeSystem(ctx, auth.SessionsRepo, sess.ID, auth.SessionSchemaRef, sess.Data()); err != nil {
			return auth.Session{}, err
		}
		n.custody.forget(sess.ID)
	}
	return sess, nil
}

// MaxRelayedSessions bounds the session records of one sync request.
const MaxRelayedSessions = 1000

// AcceptSessions takes session records relayed by a peer (a sync
// request's sessions): each must decode and verify against the root keys,
// or the whole call fails with core.ErrInvalid naming it. Records this
// node lacks, and revocations earlier than the one it holds (signed:
// an unsigned revocation is dropped), are written to sys.sessions, so
// that commits signed by those sessions verify and the records replicate.
func (n *Node) AcceptSessions(ctx context.Context, raw []json.RawMessage) error {
	if len(raw) > MaxRelayedSessions {
		return fmt.Errorf("%w: %d session records, more than %d", core.ErrTooLarge, len(raw), MaxRelayedSessions)
	}
	roots := n.sessions.Roots()
	recs := make([]auth.Session, 0, len(raw))
	for i, b := range raw {
		r, err := core.DecodeSessionRecord(b)
		if err != nil {
			return fmt.Errorf("%w: sessions[%d]: %w", core.ErrInvalid, i, err)
		}
		s, err := auth.SessionFromRecord(r)
		if err == nil {
			err = s.VerifyRecord(roots...)
		}
		if err != nil {
			return fmt.Errorf("%w: sessions[%d] (%s): %w", core.ErrInvalid, i, r.ID, err)
		}
		recs = append(recs, s)
	}
	for _, s := range recs {
		if err := n.acceptSession(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// acceptSession puts one verified relayed record in effect and, when it
// changed what this node holds, writes it to sys.sessions.
func (n *Node) acceptSession(ctx context.Context, s auth.Session) error {
	if old, err := n.sessions.Session(s.ID); err == nil {
		earlier := !s.Revoked.IsZero() && s.RevocationValid(n.sessions.Roots()...) && (old.Revoked.IsZero() || s.Revoked.Before(old.Revoked))
		if old.Node || !earlier {
			return nil // known, and nothing to add: the common case, no write
		}
	}
	n.sessMu.Lock()
	defer n.sessMu.Unlock()
	held, changed, err := n.sessions.PutRelayed(s)
	if errors.Is(err, core.ErrConflict) {
		// Another record for the same key (re-registered with another
		// expiry after a data loss): both are root-signed; keep ours.
		return nil
	}
	if err != nil || !changed {
		return err
	}
	return n.writeSystem(ctx, auth.SessionsRepo, held.ID, auth.SessionSchemaRef, held.Data())
}

// SessionSource finds session records this node lacks (the cluster asks
// its peers). It returns a record as GET /v1/sessions/{id} answers it, or
// an error wrapping core.ErrNotFound.
type SessionSource interface {
	LookupSession(ctx context.Context, id string) (core.SessionRecord, error)
}

// maxLookupsPerCall bounds the distinct unknown authors one ingest asks
// the SessionSource about: a push of commits by made-up sessions must not
// cost a request to every peer per commit.
const maxLookupsPerCall = 16

// resolveSession asks the SessionSource for the record of a session this
// node does not know, and keeps it as a relayed record.
func (n *Node) resolveSession(ctx context.Context, id string) (auth.Session, error) {
	src := n.cfg.SessionSource
	if src == nil {
		return auth.Session{}, fmt.Errorf("%w: session %q", core.ErrNotFound, id)
	}
	rec, err := src.LookupSession(ctx, id)
	if err != nil {
		return auth.Session{}, err
	}
	s, err := auth.SessionFromRecord(rec)
	if err == nil {
		_, _, err = n.sessions.PutRelayed(s)
	}
	if err != nil {
		n.log.Warn("session record from a peer refused", "session", id, "err", err)
		return auth.Session{}, fmt.Errorf("%w: session %q", core.ErrNotFound, id)
	}
	return n.sessions.Session(id)
}

// resolveAuthors asks the SessionSource for the records of the authors of
// commits that this node does not know, so that verification finds them;
// what it cannot find is left for verification to reject.
func (n *Node) resolveAuthors(ctx context.Context, commits []*core.Commit) {
	src := n.cfg.SessionSource
	if src == nil {
		return
	}
	var asked map[string]bool
	for _, c := range commits {
		if c.IsMerge() || asked[c.Author] {
			continue
		}
		if _, err := n.sessions.Session(c.Author); err == nil {
			continue
		}
		if asked == nil {
			asked = map[string]bool{}
		}
		if len(asked) == maxLookupsPerCall {
			return
		}
		asked[c.Author] = true
		if _, err := n.resolveSession(ctx, c.Author); err != nil {
			n.log.Debug("session not found on peers", "session", c.Author, "err", err)
		}
	}
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
	if err := s.VerifyRecord(d.Roots()...); err != nil {
		return auth.Session{}, err
	}
	if !s.Revoked.IsZero() && !s.RevocationValid(d.Roots()...) {
		// Recorded before revocations were signed (putSessionData signs
		// the ones loaded at start; this one was not loaded): sign it, so
		// the record this node serves proves its revocation to any peer.
		if err := s.SignRevocation(d.n.root); err != nil {
			return auth.Session{}, err
		}
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
