package core

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Sessions are the identities behind a commit's author field. What a client
// computes on its own side lives here, so that every client of the HTTP API
// derives the same session id and signs the same proof as the gateway checks
// (auth registers and verifies sessions with these same functions).

// MaxLabelBytes bounds a label: a token's subject, a deployment's audience,
// a session's owner.
const MaxLabelBytes = 256

// ValidLabel reports whether s is usable as a subject, audience or role:
// non-empty, at most max bytes of UTF-8 without control characters. Session
// proofs are line-based, so a newline in a subject must be impossible.
func ValidLabel(s string, max int) bool {
	if s == "" || len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' {
			return false
		}
	}
	return true
}

// SessionID derives a session id from its public key: "s_" and the unpadded
// base64url of the first 18 bytes of SHA-256(publicKey), 26 characters that
// match the author pattern. 144 bits keep collisions out of reach, and a
// derived id cannot be claimed for someone else's key.
func SessionID(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	return "s_" + base64.RawURLEncoding.EncodeToString(h[:18])
}

// sessionProofContext is the first line of every session proof.
const sessionProofContext = "goat-gateway session v1"

// SessionChallenge returns the bytes a client signs with its new session key
// to prove it holds the key and asks for this session (docs/security.md):
//
//	goat-gateway session v1 LF audience LF owner LF publicKey LF expires
//
// publicKey is the unpadded base64url of the 32-byte key, expires an
// RFC 3339 UTC date with milliseconds (DateLayout), LF a single 0x0A, with
// no trailing newline. Binding owner means a captured proof cannot register
// the key under another account; binding audience means a proof for one
// deployment is useless at another.
func SessionChallenge(audience, owner string, pub ed25519.PublicKey, expires time.Time) ([]byte, error) {
	if !ValidLabel(audience, MaxLabelBytes) || !ValidLabel(owner, MaxLabelBytes) {
		return nil, fmt.Errorf("%w: audience and owner must be 1 to %d bytes without control characters", ErrInvalid, MaxLabelBytes)
	}
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: publicKey must be %d bytes", ErrInvalid, ed25519.PublicKeySize)
	}
	return []byte(strings.Join([]string{sessionProofContext, audience, owner, base64.RawURLEncoding.EncodeToString(pub), expires.UTC().Format(DateLayout)}, "\n")), nil
}

// SessionRequest is a session registration: the key, its end, and the
// proof of possession. The HTTP body (POST /v1/sessions) carries expires as
// unix milliseconds; this form is the one the proof signs.
type SessionRequest struct {
	PublicKey string `json:"publicKey"` // unpadded base64url, 32 bytes
	Expires   string `json:"expires"`   // 2026-11-22T10:00:00.000Z
	Proof     string `json:"proof"`     // unpadded base64url Ed25519 signature of SessionChallenge
}

// NewSessionRequest builds a registration request for priv's public key, to
// be registered by owner (the sub of the token that sends it) at the
// deployment named audience. expires is cut to milliseconds, as the wire
// carries it.
func NewSessionRequest(priv ed25519.PrivateKey, audience, owner string, expires time.Time) (SessionRequest, error) {
	pub := priv.Public().(ed25519.PublicKey)
	expires = expires.Truncate(time.Millisecond)
	ch, err := SessionChallenge(audience, owner, pub, expires)
	if err != nil {
		return SessionRequest{}, err
	}
	return SessionRequest{
		PublicKey: base64.RawURLEncoding.EncodeToString(pub),
		Expires:   expires.UTC().Format(DateLayout),
		Proof:     base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, ch)),
	}, nil
}
