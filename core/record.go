package core

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// A session record is the public certificate of a session: the gateway's
// root key signs what was fixed at registration (rootSig), and, once the
// session is revoked, the time of revocation (revokeSig). Any peer that
// knows the root public keys (GET /v1/info, rootKeys) can check a record
// and, through it, every commit the session signed; docs/security.md
// describes the format for third-party clients. auth builds and signs
// records; the SDKs and auth check them with these functions.

// Signing contexts: the first line of the bytes each root signature covers,
// so that a signature made for one purpose is useless for another.
const (
	RecordContext     = "goat-gateway session-record v1\n"
	RevocationContext = "goat-gateway session-revocation v1\n"
)

// SessionRecord is a session record as GET /v1/sessions/{id} answers it.
type SessionRecord struct {
	ID        string
	Owner     string
	Issuer    string // "" when unset
	Roles     []string
	PublicKey ed25519.PublicKey
	Expires   time.Time
	Custodial bool
	RootSig   []byte
	// Revoked is zero unless the session was revoked; RevokeSig is the
	// root key's signature of the revocation (RevocationSigningBytes).
	Revoked   time.Time
	RevokeSig []byte
}

// SigningBytes returns what RootSig signs: RecordContext followed by the
// RFC 8785 canonical JSON of SignedFields. revoked is not covered: it is
// added later, under its own signature.
func (s SessionRecord) SigningBytes() ([]byte, error) {
	return AppendCanonical([]byte(RecordContext), s.SignedFields())
}

// SignedFields returns the fields RootSig covers, as JSON values: {id,
// owner, roles, publicKey, expires, issuer (when set), custodial (true,
// when set)}, publicKey as unpadded base64url and expires as a DateLayout
// string. The one definition of a record's signed part (the gateway's
// sys.sessions item holds the same fields).
func (s SessionRecord) SignedFields() map[string]any {
	roles := make([]any, len(s.Roles))
	for i, r := range s.Roles {
		roles[i] = r
	}
	d := map[string]any{
		"id":        s.ID,
		"owner":     s.Owner,
		"roles":     roles,
		"publicKey": base64.RawURLEncoding.EncodeToString(s.PublicKey),
		"expires":   s.Expires.UTC().Format(DateLayout),
	}
	if s.Issuer != "" {
		d["issuer"] = s.Issuer
	}
	if s.Custodial {
		d["custodial"] = true
	}
	return d
}

// RevocationSigningBytes returns what RevokeSig signs: RevocationContext
// followed by the canonical JSON of {id, revoked}, revoked as a DateLayout
// string.
func RevocationSigningBytes(id string, revoked time.Time) ([]byte, error) {
	return AppendCanonical([]byte(RevocationContext), map[string]any{"id": id, "revoked": revoked.UTC().Format(DateLayout)})
}

// VerifyRoot checks the shape of s (the id derives from the public key,
// roles sorted and unique) and that one of roots made RootSig. Errors wrap
// ErrInvalid or ErrBadSignature.
func (s SessionRecord) VerifyRoot(roots []ed25519.PublicKey) error {
	if len(s.PublicKey) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: session %s: publicKey must be %d bytes", ErrInvalid, s.ID, ed25519.PublicKeySize)
	}
	if s.ID != SessionID(s.PublicKey) {
		return fmt.Errorf("%w: session id %q is not derived from its public key", ErrInvalid, s.ID)
	}
	if !slices.IsSorted(s.Roles) || len(slices.Compact(slices.Clone(s.Roles))) != len(s.Roles) {
		return fmt.Errorf("%w: session %s: roles must be sorted and unique", ErrInvalid, s.ID)
	}
	b, err := s.SigningBytes()
	if err != nil {
		return err
	}
	if verifyAny(roots, b, s.RootSig) {
		return nil
	}
	return fmt.Errorf("%w: session %s: rootSig is not a root key's signature of the record", ErrBadSignature, s.ID)
}

// RevocationValid reports whether s carries a revocation that one of
// roots signed. A revocation without it proves nothing: whoever relays a
// record could have added it.
func (s SessionRecord) RevocationValid(roots []ed25519.PublicKey) bool {
	if s.Revoked.IsZero() || len(s.RevokeSig) != ed25519.SignatureSize {
		return false
	}
	b, err := RevocationSigningBytes(s.ID, s.Revoked)
	return err == nil && verifyAny(roots, b, s.RevokeSig)
}

// SignedAt checks that a commit with timestamp ts may carry the session's
// signature: ts before Expires and, if revoked, before Revoked. The caller
// has checked the revocation (RevocationValid) or trusts where it came
// from. Errors wrap ErrUnauthenticated.
func (s SessionRecord) SignedAt(ts int64) error {
	t := time.UnixMilli(ts)
	if !s.Revoked.IsZero() && !t.Before(s.Revoked) {
		return fmt.Errorf("%w: session %s was revoked at %s, before ts %d", ErrUnauthenticated, s.ID, s.Revoked.UTC().Format(DateLayout), ts)
	}
	if !t.Before(s.Expires) {
		return fmt.Errorf("%w: session %s expired at %s, before ts %d", ErrUnauthenticated, s.ID, s.Expires.UTC().Format(DateLayout), ts)
	}
	return nil
}

func verifyAny(roots []ed25519.PublicKey, msg, sig []byte) bool {
	if len(sig) != ed25519.SignatureSize {
		return false
	}
	for _, r := range roots {
		if len(r) == ed25519.PublicKeySize && ed25519.Verify(r, msg, sig) {
			return true
		}
	}
	return false
}

// sessionRecordWire is the JSON form: expires and revoked as unix
// milliseconds, keys and signatures as unpadded base64url.
type sessionRecordWire struct {
	ID        string   `json:"id"`
	Owner     string   `json:"owner"`
	Roles     []string `json:"roles"`
	Issuer    string   `json:"issuer,omitempty"`
	Custodial bool     `json:"custodial,omitempty"`
	PublicKey string   `json:"publicKey"`
	Expires   int64    `json:"expires"`
	Revoked   *int64   `json:"revoked,omitempty"`
	RootSig   string   `json:"rootSig"`
	RevokeSig string   `json:"revokeSig,omitempty"`
}

// MarshalJSON writes the record as GET /v1/sessions/{id} answers it.
func (s SessionRecord) MarshalJSON() ([]byte, error) {
	w := sessionRecordWire{
		ID: s.ID, Owner: s.Owner, Roles: s.Roles, Issuer: s.Issuer, Custodial: s.Custodial,
		PublicKey: base64.RawURLEncoding.EncodeToString(s.PublicKey), Expires: s.Expires.UnixMilli(),
		RootSig: base64.RawURLEncoding.EncodeToString(s.RootSig),
	}
	if w.Roles == nil {
		w.Roles = []string{}
	}
	if !s.Revoked.IsZero() {
		ms := s.Revoked.UnixMilli()
		w.Revoked = &ms
		if len(s.RevokeSig) > 0 {
			w.RevokeSig = base64.RawURLEncoding.EncodeToString(s.RevokeSig)
		}
	}
	return json.Marshal(w)
}

// MaxRecordBytes bounds the JSON of one session record.
const MaxRecordBytes = 4096

// DecodeSessionRecord parses a record's JSON strictly (unknown fields,
// missing fields and malformed keys are ErrInvalid). It checks the shape,
// not the signatures (VerifyRoot, RevocationValid).
func DecodeSessionRecord(b []byte) (SessionRecord, error) {
	if len(b) > MaxRecordBytes {
		return SessionRecord{}, fmt.Errorf("%w: session record of %d bytes, more than %d", ErrInvalid, len(b), MaxRecordBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var w sessionRecordWire
	err := dec.Decode(&w)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("data after the record")
		}
	}
	if err != nil {
		return SessionRecord{}, fmt.Errorf("%w: session record: %v", ErrInvalid, err)
	}
	bad := func(what string) (SessionRecord, error) {
		return SessionRecord{}, fmt.Errorf("%w: session record %q: %s", ErrInvalid, w.ID, what)
	}
	if w.ID == "" || w.Roles == nil || w.Expires <= 0 {
		return bad("id, owner, roles, publicKey, expires and rootSig are required")
	}
	if !ValidLabel(w.Owner, MaxLabelBytes) || (w.Issuer != "" && !ValidLabel(w.Issuer, MaxLabelBytes)) {
		return bad("owner and issuer must be 1 to 256 bytes without control characters")
	}
	for _, r := range w.Roles {
		if !ValidLabel(r, MaxLabelBytes) {
			return bad("roles must be labels")
		}
	}
	s := SessionRecord{ID: w.ID, Owner: w.Owner, Issuer: w.Issuer, Roles: w.Roles, Custodial: w.Custodial, Expires: time.UnixMilli(w.Expires).UTC()}
	dec64 := base64.RawURLEncoding.Strict()
	pk, err := dec64.DecodeString(w.PublicKey)
	if err != nil || len(pk) != ed25519.PublicKeySize {
		return bad("publicKey must be 32 bytes of unpadded base64url")
	}
	s.PublicKey = pk
	if s.RootSig, err = dec64.DecodeString(w.RootSig); err != nil || len(s.RootSig) != ed25519.SignatureSize {
		return bad("rootSig must be 64 bytes of unpadded base64url")
	}
	if w.Revoked != nil {
		if *w.Revoked <= 0 {
			return bad("revoked must be a positive unix millisecond time")
		}
		s.Revoked = time.UnixMilli(*w.Revoked).UTC()
	}
	if w.RevokeSig != "" {
		if w.Revoked == nil {
			return bad("revokeSig without revoked")
		}
		if s.RevokeSig, err = dec64.DecodeString(w.RevokeSig); err != nil || len(s.RevokeSig) != ed25519.SignatureSize {
			return bad("revokeSig must be 64 bytes of unpadded base64url")
		}
	}
	return s, nil
}
