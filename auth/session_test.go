package auth

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
)

const testAud = "goat-gateway"

func TestSessionID(t *testing.T) {
	k := newEd25519(t).Public().(ed25519.PublicKey)
	id := SessionID(k)
	if err := core.ValidateAuthor(id); err != nil {
		t.Fatalf("SessionID=%q is not a valid author: %v", id, err)
	}
	if got, want := len(id), 26; got != want {
		t.Fatalf("len(SessionID)=%d, want %d", got, want)
	}
	if !strings.HasPrefix(id, "s_") || SessionID(k) != id {
		t.Fatalf("SessionID=%q: want a deterministic s_ id", id)
	}
	if SessionID(newEd25519(t).Public().(ed25519.PublicKey)) == id {
		t.Fatal("two keys gave one id")
	}
}

// TestSessionChallenge pins the exact bytes a client signs; docs/security.md
// shows the same example.
func TestSessionChallenge(t *testing.T) {
	seed, _ := hex.DecodeString("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	got, err := SessionChallenge("goat-gateway", "alice", pub, time.Date(2026, 12, 22, 10, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	want := "goat-gateway session v1\ngoat-gateway\nalice\n11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\n2026-12-22T10:00:00.000Z"
	if string(got) != want {
		t.Fatalf("challenge=%q, want %q", got, want)
	}
	req, err := NewSessionRequest(priv, "goat-gateway", "alice", time.Date(2026, 12, 22, 10, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := req, (SessionRequest{
		PublicKey: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
		Expires:   "2026-12-22T10:00:00.000Z",
		Proof:     "JFUfX4TJMARvW61lYJZjFkcru9rb5k8nOD6aGaI60UzLijdmuH3fBhVLB2WiH5yxuuC3skZ3xX763Y935QPpAA",
	}); got != want {
		t.Fatalf("request=%+v, want %+v", got, want)
	}
	if got, want := SessionID(pub), "s_If4x36FUomFia_hUBG_SJxt7"; got != want {
		t.Fatalf("SessionID=%s, want %s", got, want)
	}
	for _, bad := range [][2]string{{"", "alice"}, {"aud", ""}, {"aud\nx", "alice"}, {"aud", "alice\nbob"}} {
		if _, err := SessionChallenge(bad[0], bad[1], pub, t0); !errors.Is(err, core.ErrInvalid) {
			t.Fatalf("SessionChallenge(%q, %q) err=%v, want ErrInvalid", bad[0], bad[1], err)
		}
	}
}

func newRegistrar(tb testing.TB) (Registrar, ed25519.PrivateKey) {
	tb.Helper()
	root := newEd25519(tb)
	return Registrar{Audience: testAud, Root: root, MaxTTL: 7 * 24 * time.Hour}, root
}

var alice = Principal{Sub: "alice", Roles: []string{"editor"}, Issuer: DevIssuerName, Expires: t0.Add(time.Hour)}

func TestRegistrar_Register(t *testing.T) {
	reg, root := newRegistrar(t)
	key := newEd25519(t)
	exp := t0.Add(24 * time.Hour)
	good, err := NewSessionRequest(key, testAud, "alice", exp)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("Accepted", func(t *testing.T) {
		s, err := reg.Register(good, alice, t0)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := s.ID, SessionID(key.Public().(ed25519.PublicKey)); got != want {
			t.Fatalf("ID=%s, want %s", got, want)
		}
		if s.Owner != "alice" || s.Issuer != DevIssuerName || !slices.Equal(s.Roles, []string{"editor"}) || !s.Expires.Equal(exp) || s.Custodial {
			t.Fatalf("record=%+v", s)
		}
		if err := s.VerifyRecord(root.Public().(ed25519.PublicKey)); err != nil {
			t.Fatalf("root signature: %v", err)
		}
	})
	identity, _ := hex.DecodeString("0100000000000000000000000000000000000000000000000000000000000000")
	forgedForIdentity := SessionRequest{
		PublicKey: b64(identity), Expires: good.Expires,
		// R = identity, S = 0 "signs" anything under the identity key.
		Proof: b64(append(slices.Clone(identity), make([]byte, 32)...)),
	}
	other := newEd25519(t)
	mallory := Principal{Sub: "mallory", Issuer: DevIssuerName}
	req := func(edit func(*SessionRequest)) SessionRequest { r := good; edit(&r); return r }
	mustReq := func(priv ed25519.PrivateKey, aud, owner string, exp time.Time) SessionRequest {
		r, err := NewSessionRequest(priv, aud, owner, exp)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	tests := []struct {
		name    string
		req     SessionRequest
		p       Principal
		wantErr error
	}{
		{"ProofReplayedByAnotherOwner", good, mallory, core.ErrBadSignature},
		{"ProofForAnotherAudience", mustReq(key, "other-gateway", "alice", exp), alice, core.ErrBadSignature},
		{"ProofByAnotherKey", req(func(r *SessionRequest) { r.Proof = mustReq(other, testAud, "alice", exp).Proof }), alice, core.ErrBadSignature},
		{"ExpiresChangedAfterSigning", req(func(r *SessionRequest) { r.Expires = formatDate(exp.Add(time.Hour)) }), alice, core.ErrBadSignature},
		{"ExpiresInThePast", mustReq(key, testAud, "alice", t0.Add(-time.Second)), alice, core.ErrInvalid},
		{"ExpiresTooFarAhead", mustReq(key, testAud, "alice", t0.Add(8*24*time.Hour)), alice, core.ErrInvalid},
		{"ExpiresNotADate", req(func(r *SessionRequest) { r.Expires = "tomorrow" }), alice, core.ErrInvalid},
		{"ExpiresNotUTC", req(func(r *SessionRequest) { r.Expires = "2026-11-23T10:00:00.000+01:00" }), alice, core.ErrInvalid},
		{"PublicKeyNotBase64url", req(func(r *SessionRequest) { r.PublicKey = "!!" }), alice, core.ErrInvalid},
		{"PublicKeyPadded", req(func(r *SessionRequest) { r.PublicKey += "=" }), alice, core.ErrInvalid},
		{"ProofTruncated", req(func(r *SessionRequest) { r.Proof = r.Proof[:10] }), alice, core.ErrInvalid},
		{"SmallOrderKeyWithForgedProof", forgedForIdentity, alice, core.ErrInvalid},
		{"Anonymous", good, Anonymous(), core.ErrUnauthenticated},
		{"ZeroPrincipal", good, Principal{}, core.ErrUnauthenticated},
		{"NodeToken", good, Principal{Sub: "alice", Node: true}, core.ErrForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := reg.Register(tt.req, tt.p, t0)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Register err=%v (record %+v), want %v", err, s, tt.wantErr)
			}
		})
	}
}

func TestSession_Data(t *testing.T) {
	reg, root := newRegistrar(t)
	r, err := NewSessionRequest(newEd25519(t), testAud, "alice", t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	s, err := reg.Register(r, Principal{Sub: "alice", Roles: []string{"z", "editor"}, Issuer: "https://idp.example"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	custodial, _, err := CustodialSession(root, alice, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	schemas := core.NewRegistry()
	if err := schemas.Add(SessionSchema()); err != nil {
		t.Fatal(err)
	}
	schema, err := schemas.Get(SessionSchemaRef)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]Session{"Plain": s, "Revoked": s.RevokeAt(t0.Add(time.Minute)), "Custodial": custodial} {
		t.Run(name, func(t *testing.T) {
			// Through a real commit and back, as replication does it.
			c := &core.Commit{Repo: SessionsRepo, Key: s.ID, Author: NodeSessionID(root.Public().(ed25519.PublicKey)), TS: t0.UnixMilli(), Schema: SessionSchemaRef, Data: s.Data()}
			if err := schema.Validate(c.Data); err != nil {
				t.Fatalf("record does not fit its schema: %v", err)
			}
			if err := c.Sign(root); err != nil {
				t.Fatal(err)
			}
			b, err := c.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			dc, err := core.DecodeCommit(b)
			if err != nil {
				t.Fatal(err)
			}
			got, err := SessionFromData(dc.Key, dc.Data)
			if err != nil {
				t.Fatal(err)
			}
			a, _ := got.RecordSigningBytes()
			want, _ := s.RecordSigningBytes()
			if string(a) != string(want) || !got.Revoked.Equal(s.Revoked) || string(got.RootSig) != string(s.RootSig) {
				t.Fatalf("round trip: got %+v, want %+v", got, s)
			}
			if err := got.VerifyRecord(root.Public().(ed25519.PublicKey)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSessionFromData(t *testing.T) {
	reg, _ := newRegistrar(t)
	r, _ := NewSessionRequest(newEd25519(t), testAud, "alice", t0.Add(time.Hour))
	s, err := reg.Register(r, alice, t0)
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(d map[string]any)) map[string]any { d := s.Data(); f(d); return d }
	tests := []struct {
		name string
		id   string
		data map[string]any
	}{
		{"IDNotDerivedFromKey", "s_AAAAAAAAAAAAAAAAAAAAAAAA", s.Data()},
		{"Tombstone", s.ID, edit(func(d map[string]any) { d["isDeleted"] = true })},
		{"UnknownField", s.ID, edit(func(d map[string]any) { d["admin"] = true })},
		{"NoOwner", s.ID, edit(func(d map[string]any) { delete(d, "owner") })},
		{"OwnerNotString", s.ID, edit(func(d map[string]any) { d["owner"] = 1.0 })},
		{"NoRootSig", s.ID, edit(func(d map[string]any) { delete(d, "rootSig") })},
		{"ShortKey", s.ID, edit(func(d map[string]any) { d["publicKey"] = "AAAA" })},
		{"BadExpires", s.ID, edit(func(d map[string]any) { d["expires"] = "2026-11-22" })},
		{"BadRevoked", s.ID, edit(func(d map[string]any) { d["revoked"] = "yesterday" })},
		{"CustodialFalse", s.ID, edit(func(d map[string]any) { d["custodial"] = false })},
		{"RolesNotStrings", s.ID, edit(func(d map[string]any) { d["roles"] = []any{1.0} })},
		{"RolesUnsorted", s.ID, edit(func(d map[string]any) { d["roles"] = []any{"b", "a"} })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := SessionFromData(tt.id, tt.data); !errors.Is(err, core.ErrInvalid) {
				t.Fatalf("err=%v, want ErrInvalid", err)
			}
		})
	}
}

func TestSessions(t *testing.T) {
	reg, root := newRegistrar(t)
	rootPub := root.Public().(ed25519.PublicKey)
	d := NewSessions(rootPub)
	register := func(owner string, exp time.Time) Session {
		t.Helper()
		r, err := NewSessionRequest(newEd25519(t), testAud, owner, exp)
		if err != nil {
			t.Fatal(err)
		}
		s, err := reg.Register(r, Principal{Sub: owner}, t0)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := register("alice", t0.Add(time.Hour))
	if err := d.Put(s); err != nil {
		t.Fatal(err)
	}
	t.Run("LookupValid", func(t *testing.T) {
		got, err := d.Lookup(s.ID, t0)
		if err != nil || got.Owner != "alice" {
			t.Fatalf("Lookup=%+v, %v", got, err)
		}
	})
	t.Run("LookupUnknown", func(t *testing.T) {
		if _, err := d.Lookup("s_nope", t0); !errors.Is(err, core.ErrNotFound) {
			t.Fatalf("err=%v, want ErrNotFound", err)
		}
	})
	t.Run("LookupExpired", func(t *testing.T) {
		if _, err := d.Lookup(s.ID, t0.Add(time.Hour)); !errors.Is(err, ErrSessionExpired) || !errors.Is(err, core.ErrUnauthenticated) {
			t.Fatalf("err=%v, want ErrSessionExpired", err)
		}
	})
	t.Run("UntrustedRoot", func(t *testing.T) {
		other, _ := newRegistrar(t)
		r, _ := NewSessionRequest(newEd25519(t), testAud, "alice", t0.Add(time.Hour))
		foreign, err := other.Register(r, alice, t0)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Put(foreign); !errors.Is(err, core.ErrBadSignature) {
			t.Fatalf("err=%v, want ErrBadSignature", err)
		}
	})
	t.Run("TamperedOwner", func(t *testing.T) {
		bad := register("bob", t0.Add(time.Hour))
		bad.Owner = "alice"
		if err := d.Put(bad); !errors.Is(err, core.ErrBadSignature) {
			t.Fatalf("err=%v, want ErrBadSignature", err)
		}
	})
	t.Run("TamperedRoles", func(t *testing.T) {
		bad := register("bob", t0.Add(time.Hour))
		bad.Roles = []string{AdminRole}
		if err := d.Put(bad); !errors.Is(err, core.ErrBadSignature) {
			t.Fatalf("err=%v, want ErrBadSignature", err)
		}
	})
	t.Run("ClaimedNodeSession", func(t *testing.T) {
		bad := register("bob", t0.Add(time.Hour))
		bad.Node = true
		if err := d.Put(bad); !errors.Is(err, core.ErrInvalid) {
			t.Fatalf("err=%v, want ErrInvalid", err)
		}
	})
	t.Run("ConflictingRecord", func(t *testing.T) {
		dup := s
		dup.Expires = s.Expires.Add(time.Hour)
		if err := dup.SignRecord(root); err != nil {
			t.Fatal(err)
		}
		if err := d.Put(dup); !errors.Is(err, core.ErrConflict) {
			t.Fatalf("err=%v, want ErrConflict", err)
		}
	})
	t.Run("RevocationIsFinal", func(t *testing.T) {
		r := register("carol", t0.Add(time.Hour))
		if err := d.Put(r.RevokeAt(t0.Add(10 * time.Minute))); err != nil {
			t.Fatal(err)
		}
		if err := d.Put(r); err != nil { // the unrevoked record again
			t.Fatal(err)
		}
		if err := d.Put(r.RevokeAt(t0.Add(20 * time.Minute))); err != nil {
			t.Fatal(err)
		}
		got, err := d.Session(r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if want := t0.Add(10 * time.Minute); !got.Revoked.Equal(want) {
			t.Fatalf("Revoked=%v, want the earliest revocation %v", got.Revoked, want)
		}
		if _, err := d.Lookup(r.ID, t0.Add(9*time.Minute)); err != nil {
			t.Fatalf("before revocation: %v", err)
		}
		if _, err := d.Lookup(r.ID, t0.Add(10*time.Minute)); !errors.Is(err, ErrSessionRevoked) {
			t.Fatalf("err=%v, want ErrSessionRevoked", err)
		}
	})
	t.Run("NodeSessionOfRoot", func(t *testing.T) {
		n, err := d.Lookup(NodeSessionID(rootPub), t0.Add(100*365*24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if !n.Node || !n.Principal().Node {
			t.Fatalf("root session=%+v, want a node session", n)
		}
	})
	t.Run("PutData", func(t *testing.T) {
		r := register("dave", t0.Add(time.Hour))
		if err := d.PutData(r.ID, r.Data()); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Lookup(r.ID, t0); err != nil {
			t.Fatal(err)
		}
	})
}

func TestCustodialSession(t *testing.T) {
	root := newEd25519(t)
	exp := t0.Add(24 * time.Hour)
	s, key, err := CustodialSession(root, alice, exp)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Custodial || s.Owner != alice.Sub || s.ID != SessionID(key.Public().(ed25519.PublicKey)) {
		t.Fatalf("custodial session=%+v", s)
	}
	if err := NewSessions(root.Public().(ed25519.PublicKey)).Put(s); err != nil {
		t.Fatalf("Put: %v", err)
	}
	again, _, err := CustodialSession(root, alice, exp)
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != s.ID {
		t.Fatal("custodial session is not deterministic: nodes sharing a root would disagree")
	}
	for name, p := range map[string]Principal{
		"OtherSub":    {Sub: "bob", Roles: alice.Roles, Issuer: alice.Issuer},
		"OtherRoles":  {Sub: alice.Sub, Roles: []string{"admin"}, Issuer: alice.Issuer},
		"OtherIssuer": {Sub: alice.Sub, Roles: alice.Roles, Issuer: "https://idp.example"},
	} {
		other, _, err := CustodialSession(root, p, exp)
		if err != nil {
			t.Fatal(err)
		}
		if other.ID == s.ID {
			t.Fatalf("%s: same session as alice's", name)
		}
	}
	if other, _, _ := CustodialSession(root, alice, exp.Add(time.Hour)); other.ID == s.ID {
		t.Fatal("another expiry gave the same session")
	}
	if other, _, _ := CustodialSession(newEd25519(t), alice, exp); other.ID == s.ID {
		t.Fatal("another root gave the same session")
	}
	if _, _, err := CustodialSession(root, Anonymous(), exp); !errors.Is(err, core.ErrInvalid) {
		t.Fatalf("anonymous: err=%v, want ErrInvalid", err)
	}
}

func FuzzSessionFromData(f *testing.F) {
	reg, _ := newRegistrar(f)
	r, _ := NewSessionRequest(newEd25519(f), testAud, "alice", t0.Add(time.Hour))
	s, err := reg.Register(r, alice, t0)
	if err != nil {
		f.Fatal(err)
	}
	good, _ := core.AppendCanonical(nil, s.RevokeAt(t0).Data())
	f.Add(s.ID, string(good))
	f.Add("s_x", `{"owner":"a"}`)
	f.Add("", `{}`)
	f.Fuzz(func(t *testing.T, id, data string) {
		v, err := core.ParseJSON([]byte(data))
		if err != nil {
			return
		}
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		got, err := SessionFromData(id, m)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to the same record.
		back, err := SessionFromData(id, got.Data())
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		a, _ := core.AppendCanonical(nil, got.Data())
		b, _ := core.AppendCanonical(nil, back.Data())
		if string(a) != string(b) {
			t.Fatalf("not stable: %s vs %s", a, b)
		}
	})
}
