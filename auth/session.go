package auth

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
)

// Session refusals; both wrap core.ErrUnauthenticated.
var (
	ErrSessionExpired = fmt.Errorf("%w: session expired", core.ErrUnauthenticated)
	ErrSessionRevoked = fmt.Errorf("%w: session revoked", core.ErrUnauthenticated)
)

// SessionsRepo is the system repository holding session records, one item
// per session (key = session id, schema SessionSchemaRef).
const SessionsRepo = "sys.sessions"

// SessionSchemaRef is the schema of a session record item.
const SessionSchemaRef = "sys.session/1"

// SessionSchema returns the schema of session records. Every field but
// revoked is fixed at registration and covered by rootSig, so concurrent
// writes of one record (a client retrying on another node) carry equal
// values and merge into a record whose signature still verifies.
func SessionSchema() *core.Schema {
	return &core.Schema{NS: "sys.session", Version: 1, Fields: map[string]core.Field{
		"owner":     {Type: core.TypeString, Required: true},
		"issuer":    {Type: core.TypeString},
		"roles":     {Type: core.TypeSet},
		"publicKey": {Type: core.TypeString, Required: true},
		"expires":   {Type: core.TypeDate, Required: true},
		"custodial": {Type: core.TypeBoolean},
		"revoked":   {Type: core.TypeDate},
		"revokeSig": {Type: core.TypeString},
		"rootSig":   {Type: core.TypeString, Required: true},
	}}
}

// Session is a registered Ed25519 key: the identity behind a commit's
// author field.
type Session struct {
	ID        string // SessionID(PublicKey)
	Owner     string // the registering token's sub
	Issuer    string // the registering token's iss, for audit
	Roles     []string
	PublicKey ed25519.PublicKey
	Expires   time.Time
	// Revoked is when the session was revoked; zero if it was not.
	// RevokeSig is the root key's signature of the revocation
	// (SignRevocation), so that a record relayed by anyone proves it.
	Revoked   time.Time
	RevokeSig []byte
	// Custodial sessions hold a key the gateway derived (CustodialSession)
	// to sign server-authored commits for Owner.
	Custodial bool
	// RootSig is the gateway root key's signature (SignRecord).
	RootSig []byte
	// Node marks the implicit session of a trusted root key (NewSessions);
	// it is never encoded.
	Node bool

	// key decodes PublicKey for verification once, at the first commit
	// it verifies: the Sessions directory attaches one to each record it
	// stores (the live sessions), so that their keys are decoded once,
	// not once per commit, and not all at start (verifyingKey).
	key *lazyKey
}

// lazyKey is a public key decoded on first use.
type lazyKey struct {
	raw  [ed25519.PublicKeySize]byte
	once sync.Once
	k    *core.VerifyingKey
}

// get returns the decoded key, nil if raw is not a valid key.
func (l *lazyKey) get() *core.VerifyingKey {
	l.once.Do(func() { l.k, _ = core.NewVerifyingKey(l.raw[:]) })
	return l.k
}

// verifyingKey returns s's public key decoded for verification: the one
// the directory attached to s when it still matches PublicKey, else
// decoded now. Nil if PublicKey is not a valid key.
func (s Session) verifyingKey() *core.VerifyingKey {
	if s.key != nil && bytes.Equal(s.key.raw[:], s.PublicKey) {
		return s.key.get()
	}
	k, _ := core.NewVerifyingKey(s.PublicKey)
	return k
}

// withKey returns s with a key of its own to decode on first use
// (verifyingKey); a record whose PublicKey is not a key gets none.
func (s Session) withKey() Session {
	s.key = nil
	if len(s.PublicKey) == ed25519.PublicKeySize {
		s.key = &lazyKey{}
		copy(s.key.raw[:], s.PublicKey)
	}
	return s
}

// SessionID derives a session id from its public key (core.SessionID, which
// clients use too).
func SessionID(pub ed25519.PublicKey) string { return core.SessionID(pub) }

// Principal is the identity a session's commits act as.
func (s Session) Principal() Principal {
	return Principal{Sub: s.Owner, Roles: slices.Clone(s.Roles), Expires: s.Expires, Issuer: s.Issuer, Node: s.Node}
}

// ValidAt returns nil if s may sign at t: before it expires and before it
// was revoked. Errors wrap ErrSessionExpired or ErrSessionRevoked.
func (s Session) ValidAt(t time.Time) error {
	if s.Node {
		return nil
	}
	if !s.Revoked.IsZero() && !t.Before(s.Revoked) {
		return fmt.Errorf("session %s: %w at %s", s.ID, ErrSessionRevoked, formatDate(s.Revoked))
	}
	if !t.Before(s.Expires) {
		return fmt.Errorf("session %s: %w at %s", s.ID, ErrSessionExpired, formatDate(s.Expires))
	}
	return nil
}

// RevokeAt returns s revoked at t (kept at an earlier revocation: once
// revoked, a session never signs again). Revocation is not covered by
// rootSig: a revocation that moves is unsigned until SignRevocation.
func (s Session) RevokeAt(t time.Time) Session {
	t = t.Truncate(time.Millisecond)
	if s.Revoked.IsZero() || t.Before(s.Revoked) {
		s.Revoked, s.RevokeSig = t, nil
	}
	return s
}

// SignRevocation sets s.RevokeSig: the root key's signature of
// core.RevocationSigningBytes(s.ID, s.Revoked). A no-op if s is not revoked.
func (s *Session) SignRevocation(root ed25519.PrivateKey) error {
	if s.Revoked.IsZero() {
		return nil
	}
	b, err := core.RevocationSigningBytes(s.ID, s.Revoked)
	if err != nil {
		return err
	}
	s.RevokeSig = ed25519.Sign(root, b)
	return nil
}

// RevocationValid reports whether s's revocation carries one of roots'
// signature.
func (s Session) RevocationValid(roots ...ed25519.PublicKey) bool {
	return s.Record().RevocationValid(roots)
}

// Record returns s as the public record that GET /v1/sessions/{id} answers
// and sync requests carry (core.SessionRecord).
func (s Session) Record() core.SessionRecord {
	return core.SessionRecord{
		ID: s.ID, Owner: s.Owner, Issuer: s.Issuer, Roles: slices.Clone(s.Roles), PublicKey: s.PublicKey,
		Expires: s.Expires, Custodial: s.Custodial, RootSig: s.RootSig, Revoked: s.Revoked, RevokeSig: s.RevokeSig,
	}
}

// SessionFromRecord is the inverse of Session.Record; it checks the shape
// (as SessionFromData does), not the signatures.
func SessionFromRecord(r core.SessionRecord) (Session, error) {
	s := Session{
		ID: r.ID, Owner: r.Owner, Issuer: r.Issuer, Roles: slices.Clone(r.Roles), PublicKey: r.PublicKey,
		Expires: r.Expires.UTC(), Custodial: r.Custodial, RootSig: r.RootSig, Revoked: r.Revoked, RevokeSig: r.RevokeSig,
	}
	if s.Roles == nil {
		s.Roles = []string{}
	}
	if !s.Revoked.IsZero() {
		s.Revoked = s.Revoked.UTC()
	}
	if err := s.check(); err != nil {
		return Session{}, err
	}
	return s, nil
}

const dateLayout = "2006-01-02T15:04:05.000Z"

// formatDate writes t as a core date: RFC 3339 UTC with milliseconds.
func formatDate(t time.Time) string { return t.UTC().Format(dateLayout) }

func parseDate(s string) (time.Time, error) {
	t, err := time.Parse(dateLayout, s)
	if err != nil || formatDate(t) != s {
		return time.Time{}, fmt.Errorf("%w: date %q must look like 2026-11-22T10:00:00.000Z", core.ErrInvalid, s)
	}
	return t, nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func unb64(name, s string, size int) ([]byte, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != size {
		return nil, fmt.Errorf("%w: %s: want %d bytes of unpadded base64url", core.ErrInvalid, name, size)
	}
	return b, nil
}

// Data encodes s as the data of its sys.sessions item (the item key is
// s.ID). custodial and revoked are present only when set.
func (s Session) Data() map[string]any {
	d := s.signedData()
	delete(d, "id")
	if !s.Revoked.IsZero() {
		d["revoked"] = formatDate(s.Revoked)
		if len(s.RevokeSig) > 0 {
			d["revokeSig"] = b64(s.RevokeSig)
		}
	}
	d["rootSig"] = b64(s.RootSig)
	return d
}

// signedData is what rootSig covers: everything fixed at registration,
// including the id, so a record cannot be filed under another key
// (core.SessionRecord.SignedFields, the one definition).
func (s Session) signedData() map[string]any {
	return s.Record().SignedFields()
}

// RecordSigningBytes returns what a record's rootSig signs:
// core.RecordContext followed by the RFC 8785 canonical JSON of the
// record's data with "id" added and "rootSig", "revoked" and "revokeSig"
// removed (core.SessionRecord.SigningBytes, which clients use too).
func (s Session) RecordSigningBytes() ([]byte, error) {
	return s.Record().SigningBytes()
}

// SignRecord sets s.RootSig with the gateway root key.
func (s *Session) SignRecord(root ed25519.PrivateKey) error {
	if err := s.check(); err != nil {
		return err
	}
	b, err := s.RecordSigningBytes()
	if err != nil {
		return err
	}
	s.RootSig = ed25519.Sign(root, b)
	return nil
}

// VerifyRecord checks that one of roots signed s.
func (s Session) VerifyRecord(roots ...ed25519.PublicKey) error {
	if err := s.check(); err != nil {
		return err
	}
	b, err := s.RecordSigningBytes()
	if err != nil {
		return err
	}
	for _, r := range roots {
		if len(r) == ed25519.PublicKeySize && ed25519.Verify(r, b, s.RootSig) {
			return nil
		}
	}
	return fmt.Errorf("%w: session %s: rootSig is not a trusted root key's signature", core.ErrBadSignature, s.ID)
}

// check validates the fields every record needs.
func (s Session) check() error {
	if len(s.PublicKey) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: session: publicKey must be %d bytes", core.ErrInvalid, ed25519.PublicKeySize)
	}
	if s.ID != SessionID(s.PublicKey) {
		return fmt.Errorf("%w: session id %q is not derived from its public key (want %s)", core.ErrInvalid, s.ID, SessionID(s.PublicKey))
	}
	if !validLabel(s.Owner, MaxSubBytes) {
		return fmt.Errorf("%w: session %s: owner must be 1 to %d bytes without control characters", core.ErrInvalid, s.ID, MaxSubBytes)
	}
	if s.Issuer != "" && !validLabel(s.Issuer, MaxSubBytes) {
		return fmt.Errorf("%w: session %s: issuer has control characters or is too long", core.ErrInvalid, s.ID)
	}
	if s.Expires.IsZero() || s.Expires.UnixMilli() < 0 || !s.Expires.Equal(s.Expires.Truncate(time.Millisecond)) {
		return fmt.Errorf("%w: session %s: expires must be a time in whole milliseconds", core.ErrInvalid, s.ID)
	}
	roles, err := normalizeRoles(s.Roles)
	if err != nil {
		return fmt.Errorf("%w: session %s: %v", core.ErrInvalid, s.ID, err)
	}
	if !slices.Equal(roles, s.Roles) {
		return fmt.Errorf("%w: session %s: roles must be sorted and unique", core.ErrInvalid, s.ID)
	}
	return nil
}

var sessionFields = []string{"owner", "issuer", "roles", "publicKey", "expires", "custodial", "revoked", "revokeSig", "rootSig"}

// SessionFromData decodes the sys.sessions item id. It checks the shape and
// that id derives from the public key, not rootSig (Sessions.Put does, with
// the trusted roots). A tombstone is refused: sessions are revoked, never
// deleted, so that their past commits stay verifiable.
func SessionFromData(id string, data map[string]any) (Session, error) {
	for k := range data {
		if !slices.Contains(sessionFields, k) {
			if k == core.DeletedField {
				return Session{}, fmt.Errorf("%w: session %s: records are revoked, never deleted", core.ErrInvalid, id)
			}
			return Session{}, fmt.Errorf("%w: session %s: unknown field %q", core.ErrInvalid, id, k)
		}
	}
	str := func(name string, required bool) (string, error) {
		v, ok := data[name]
		if !ok && !required {
			return "", nil
		}
		s, isStr := v.(string)
		if !isStr {
			return "", fmt.Errorf("%w: session %s: %s must be a string", core.ErrInvalid, id, name)
		}
		return s, nil
	}
	s := Session{ID: id}
	var err error
	if s.Owner, err = str("owner", true); err != nil {
		return Session{}, err
	}
	if s.Issuer, err = str("issuer", false); err != nil {
		return Session{}, err
	}
	pk, err := str("publicKey", true)
	if err != nil {
		return Session{}, err
	}
	if s.PublicKey, err = unb64("publicKey", pk, ed25519.PublicKeySize); err != nil {
		return Session{}, err
	}
	exp, err := str("expires", true)
	if err != nil {
		return Session{}, err
	}
	if s.Expires, err = parseDate(exp); err != nil {
		return Session{}, fmt.Errorf("expires: %w", err)
	}
	if rv, err := str("revoked", false); err != nil {
		return Session{}, err
	} else if rv != "" {
		if s.Revoked, err = parseDate(rv); err != nil {
			return Session{}, fmt.Errorf("revoked: %w", err)
		}
	}
	if rs, err := str("revokeSig", false); err != nil {
		return Session{}, err
	} else if rs != "" && !s.Revoked.IsZero() {
		if s.RevokeSig, err = unb64("revokeSig", rs, ed25519.SignatureSize); err != nil {
			return Session{}, err
		}
	}
	sig, err := str("rootSig", true)
	if err != nil {
		return Session{}, err
	}
	if s.RootSig, err = unb64("rootSig", sig, ed25519.SignatureSize); err != nil {
		return Session{}, err
	}
	if v, ok := data["custodial"]; ok {
		if b, isBool := v.(bool); !isBool || !b {
			return Session{}, fmt.Errorf("%w: session %s: custodial must be true when present", core.ErrInvalid, id)
		}
		s.Custodial = true
	}
	if v, ok := data["roles"]; ok {
		arr, isArr := v.([]any)
		if !isArr {
			return Session{}, fmt.Errorf("%w: session %s: roles must be an array of strings", core.ErrInvalid, id)
		}
		for _, r := range arr {
			rs, isStr := r.(string)
			if !isStr {
				return Session{}, fmt.Errorf("%w: session %s: roles must be an array of strings", core.ErrInvalid, id)
			}
			s.Roles = append(s.Roles, rs)
		}
	}
	if s.Roles == nil {
		s.Roles = []string{}
	}
	if err := s.check(); err != nil {
		return Session{}, err
	}
	return s, nil
}

// SessionChallenge returns the bytes a client signs with its new session key
// (core.SessionChallenge: clients build the same bytes).
func SessionChallenge(audience, owner string, pub ed25519.PublicKey, expires time.Time) ([]byte, error) {
	return core.SessionChallenge(audience, owner, pub, expires)
}

// SessionRequest is a registration request as the proof signs it (expires
// as a date).
type SessionRequest = core.SessionRequest

// NewSessionRequest builds a registration request for priv's public key
// (core.NewSessionRequest, the client side).
func NewSessionRequest(priv ed25519.PrivateKey, audience, owner string, expires time.Time) (SessionRequest, error) {
	return core.NewSessionRequest(priv, audience, owner, expires)
}

// DefaultMaxSessionTTL bounds how far ahead a session may expire.
const DefaultMaxSessionTTL = 30 * 24 * time.Hour

// Registrar turns registration requests into signed session records.
type Registrar struct {
	// Audience names this deployment in proofs (the tokens' audience,
	// e.g. DevAudience).
	Audience string
	// Root signs the records.
	Root ed25519.PrivateKey
	// MaxTTL bounds expires - now (default DefaultMaxSessionTTL). The
	// record keeps the token's roles until it expires, so this is also
	// how long a role change can take to reach commit authorization.
	MaxTTL time.Duration
}

// Register checks req for caller p at now and returns the signed record.
// Errors wrap core.ErrInvalid (malformed request), core.ErrBadSignature (the
// proof does not verify), core.ErrUnauthenticated (anonymous caller) or
// core.ErrForbidden (a node token: nodes sign with their root key).
func (r Registrar) Register(req SessionRequest, p Principal, now time.Time) (Session, error) {
	if !p.Authenticated() {
		return Session{}, fmt.Errorf("%w: registering a session needs a token", core.ErrUnauthenticated)
	}
	if p.Node {
		return Session{}, fmt.Errorf("%w: node tokens do not register sessions", core.ErrForbidden)
	}
	pubb, err := unb64("publicKey", req.PublicKey, ed25519.PublicKeySize)
	if err != nil {
		return Session{}, err
	}
	pub := ed25519.PublicKey(pubb)
	if weakEd25519Key(pub) {
		return Session{}, fmt.Errorf("%w: publicKey is not a valid Ed25519 key of full order", core.ErrInvalid)
	}
	expires, err := parseDate(req.Expires)
	if err != nil {
		return Session{}, fmt.Errorf("expires: %w", err)
	}
	maxTTL := r.MaxTTL
	if maxTTL <= 0 {
		maxTTL = DefaultMaxSessionTTL
	}
	if !expires.After(now) {
		return Session{}, fmt.Errorf("%w: expires %s is not in the future", core.ErrInvalid, req.Expires)
	}
	if expires.Sub(now) > maxTTL {
		return Session{}, fmt.Errorf("%w: expires %s is more than %s ahead", core.ErrInvalid, req.Expires, maxTTL)
	}
	proof, err := unb64("proof", req.Proof, ed25519.SignatureSize)
	if err != nil {
		return Session{}, err
	}
	ch, err := SessionChallenge(r.Audience, p.Sub, pub, expires)
	if err != nil {
		return Session{}, err
	}
	if !ed25519.Verify(pub, ch, proof) {
		return Session{}, fmt.Errorf("%w: proof must be the session key's signature of %q", core.ErrBadSignature, ch)
	}
	roles, err := normalizeRoles(p.Roles)
	if err != nil {
		return Session{}, fmt.Errorf("%w: %v", core.ErrInvalid, err)
	}
	s := Session{
		ID: SessionID(pub), Owner: p.Sub, Issuer: p.Issuer, Roles: roles,
		PublicKey: pub, Expires: expires,
	}
	if err := s.SignRecord(r.Root); err != nil {
		return Session{}, err
	}
	return s, nil
}

// custodialSalt separates custodial key derivation from every other use of
// the root key's seed.
const custodialSalt = "goat-gateway custodial v1"

// CustodialSession returns the session and key with which the gateway signs
// server-authored commits (REST item writes) on p's behalf, expiring at
// expires. The key is derived from the root key, p's issuer, subject and
// roles, and expires (HKDF-SHA256), so every node sharing the root key
// derives the same session: registering it is idempotent, and a change of
// roles or a new expiry period yields a new session.
func CustodialSession(root ed25519.PrivateKey, p Principal, expires time.Time) (Session, ed25519.PrivateKey, error) {
	if !p.Authenticated() || p.Node {
		return Session{}, nil, fmt.Errorf("%w: custodial sessions are for authenticated callers", core.ErrInvalid)
	}
	expires = expires.Truncate(time.Millisecond)
	roles, err := normalizeRoles(p.Roles)
	if err != nil {
		return Session{}, nil, fmt.Errorf("%w: %v", core.ErrInvalid, err)
	}
	info := strings.Join(append([]string{p.Issuer, p.Sub, formatDate(expires)}, roles...), "\n")
	seed, err := hkdf.Key(sha256.New, root.Seed(), []byte(custodialSalt), info, ed25519.SeedSize)
	if err != nil {
		return Session{}, nil, err
	}
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	s := Session{
		ID: SessionID(pub), Owner: p.Sub, Issuer: p.Issuer, Roles: roles,
		PublicKey: pub, Expires: expires, Custodial: true,
	}
	if err := s.SignRecord(root); err != nil {
		return Session{}, nil, err
	}
	return s, priv, nil
}
