package auth

import (
	"crypto/ed25519"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
)

// SessionLookup finds a session record by id, whatever its state: commits
// a session signed before it expired or was revoked stay verifiable. An
// unknown id is core.ErrNotFound.
type SessionLookup interface {
	Session(id string) (Session, error)
}

var _ SessionLookup = (*Sessions)(nil)

// Sessions is the in-memory directory of sessions that the gateway fills
// from sys.sessions (Put, PutData). It is safe for concurrent use.
//
// Each trusted root key is an implicit node session (id SessionID(root)):
// nodes sign sys.sessions commits and their own commits with it, so they
// are verifiable before any record has replicated.
type Sessions struct {
	roots []ed25519.PublicKey
	mu    sync.RWMutex
	byID  map[string]Session
}

// NewSessions returns a directory trusting records signed by roots.
func NewSessions(roots ...ed25519.PublicKey) *Sessions {
	d := &Sessions{roots: slices.Clone(roots), byID: map[string]Session{}}
	for _, r := range roots {
		id := SessionID(r)
		d.byID[id] = Session{ID: id, Owner: "node:" + id, PublicKey: slices.Clone(r), Node: true, Roles: []string{}}.withKey()
	}
	return d
}

// NodeSessionID is the id of the implicit session of root key pub.
func NodeSessionID(pub ed25519.PublicKey) string { return SessionID(pub) }

// Put adds or updates a record after checking its root signature. A record
// may change only by being revoked, and a revocation is never undone: the
// earliest revocation seen is kept (with its signature). A record for a
// root key's own id is ignored: the implicit node session stands. Put
// trusts s.Revoked (records from sys.sessions, which only nodes write);
// records from elsewhere go through PutRelayed.
func (d *Sessions) Put(s Session) error {
	_, _, err := d.put(s)
	return err
}

// PutRelayed adds or updates a record that anyone may have relayed (a sync
// request's sessions): as Put, but a revocation without a valid RevokeSig
// is ignored. It returns the record now held and whether it changed (new,
// or revoked earlier than before).
func (d *Sessions) PutRelayed(s Session) (Session, bool, error) {
	if !s.Revoked.IsZero() && !s.RevocationValid(d.roots...) {
		s.Revoked, s.RevokeSig = time.Time{}, nil
	}
	return d.put(s)
}

func (d *Sessions) put(s Session) (Session, bool, error) {
	if s.Node {
		return Session{}, false, fmt.Errorf("%w: session %s: node sessions come from the trusted roots only", core.ErrInvalid, s.ID)
	}
	if err := s.VerifyRecord(d.roots...); err != nil {
		return Session{}, false, err
	}
	s.Roles = slices.Clone(s.Roles)
	d.mu.Lock()
	defer d.mu.Unlock()
	old, ok := d.byID[s.ID]
	if ok && old.Node {
		return old, false, nil
	}
	if ok {
		a, _ := old.RecordSigningBytes()
		b, _ := s.RecordSigningBytes()
		if string(a) != string(b) {
			return Session{}, false, fmt.Errorf("%w: session %s: a different record is already registered under this id", core.ErrConflict, s.ID)
		}
		if s.Revoked.IsZero() || (!old.Revoked.IsZero() && !s.Revoked.Before(old.Revoked)) {
			// Nothing earlier: keep the old revocation, but take a
			// signature for it if only the new record has one.
			if !old.Revoked.IsZero() && old.Revoked.Equal(s.Revoked) && len(old.RevokeSig) == 0 && len(s.RevokeSig) > 0 {
				old.RevokeSig = s.RevokeSig
				d.byID[s.ID] = old
				return old, true, nil
			}
			return old, false, nil
		}
	}
	s = s.withKey()
	d.byID[s.ID] = s
	return s, true, nil
}

// Roots returns the trusted root public keys.
func (d *Sessions) Roots() []ed25519.PublicKey { return slices.Clone(d.roots) }

// PutData decodes the sys.sessions item id and puts it.
func (d *Sessions) PutData(id string, data map[string]any) error {
	s, err := SessionFromData(id, data)
	if err != nil {
		return err
	}
	return d.Put(s)
}

// Session returns the record of id in any state, or core.ErrNotFound.
func (d *Sessions) Session(id string) (Session, error) {
	d.mu.RLock()
	s, ok := d.byID[id]
	d.mu.RUnlock()
	if !ok {
		return Session{}, fmt.Errorf("session %q: %w", id, core.ErrNotFound)
	}
	s.Roles = slices.Clone(s.Roles)
	return s, nil
}

// Lookup returns the record of id if it is valid at at: core.ErrNotFound if
// unknown, ErrSessionExpired or ErrSessionRevoked otherwise.
func (d *Sessions) Lookup(id string, at time.Time) (Session, error) {
	s, err := d.Session(id)
	if err != nil {
		return Session{}, err
	}
	if err := s.ValidAt(at); err != nil {
		return Session{}, err
	}
	return s, nil
}

// Len returns the number of sessions, the implicit node sessions included.
func (d *Sessions) Len() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return len(d.byID)
}
