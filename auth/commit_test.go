package auth

import (
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
)

const exampleRules = `
rules:
  - repos: "user.{sub}.*"
    read: ["{sub}"]
    write: ["{sub}"]
  - repos: "public.*"
    read: ["*"]
    write: ["role:editor"]
`

type commitWorld struct {
	root     ed25519.PrivateKey
	sessions *Sessions
	rules    *Rules
	keys     map[string]ed25519.PrivateKey // owner -> session key
	ids      map[string]string             // owner -> session id
}

func newCommitWorld(tb testing.TB) *commitWorld {
	tb.Helper()
	reg, root := newRegistrar(tb)
	rules, err := ParseRules([]byte(exampleRules))
	if err != nil {
		tb.Fatal(err)
	}
	w := &commitWorld{root: root, sessions: NewSessions(root.Public().(ed25519.PublicKey)), rules: rules,
		keys: map[string]ed25519.PrivateKey{}, ids: map[string]string{}}
	for _, u := range []struct {
		owner string
		roles []string
	}{{"alice", nil}, {"bob", nil}, {"ed", []string{"editor"}}, {"carol", nil}} {
		key := newEd25519(tb)
		r, err := NewSessionRequest(key, testAud, u.owner, t0.Add(time.Hour))
		if err != nil {
			tb.Fatal(err)
		}
		s, err := reg.Register(r, Principal{Sub: u.owner, Roles: u.roles}, t0)
		if err != nil {
			tb.Fatal(err)
		}
		if u.owner == "carol" {
			s = s.RevokeAt(t0.Add(10 * time.Minute))
		}
		if err := w.sessions.Put(s); err != nil {
			tb.Fatal(err)
		}
		w.keys[u.owner], w.ids[u.owner] = key, s.ID
	}
	return w
}

// commit returns a commit to repo by owner's session at ts, signed by signer
// (owner's own key if signer is "").
func (w *commitWorld) commit(tb testing.TB, repo, owner string, ts time.Time, signer string) *core.Commit {
	tb.Helper()
	if signer == "" {
		signer = owner
	}
	c := &core.Commit{Repo: repo, Key: "k1", Author: w.ids[owner], TS: ts.UnixMilli(), Schema: core.AnySchema, Data: map[string]any{"title": "hi"}}
	if err := c.Sign(w.keys[signer]); err != nil {
		tb.Fatal(err)
	}
	return c
}

func TestVerifyCommit(t *testing.T) {
	w := newCommitWorld(t)
	now := t0.Add(20 * time.Minute)
	ts := t0.Add(5 * time.Minute)
	custodial, custodialKey, err := CustodialSession(w.root, Principal{Sub: "alice"}, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.sessions.Put(custodial); err != nil {
		t.Fatal(err)
	}
	byKey := func(repo, author string, key ed25519.PrivateKey) *core.Commit {
		c := &core.Commit{Repo: repo, Key: "k1", Author: author, TS: ts.UnixMilli(), Schema: core.AnySchema, Data: map[string]any{"a": 1.0}}
		if err := c.Sign(key); err != nil {
			t.Fatal(err)
		}
		return c
	}
	nodeID := NodeSessionID(w.root.Public().(ed25519.PublicKey))

	tests := []struct {
		name     string
		c        func() *core.Commit
		now      time.Time
		mayWrite func(Principal, string) bool
		wantErr  []error // nil: accepted
	}{
		{name: "OwnerWritesOwnNamespace", c: func() *core.Commit { return w.commit(t, "user.alice.notes", "alice", ts, "") }},
		{name: "RoleFromSessionRecord", c: func() *core.Commit { return w.commit(t, "public.news", "ed", ts, "") }},
		{name: "CustodialSessionActsAsCaller", c: func() *core.Commit { return byKey("user.alice.notes", custodial.ID, custodialKey) }},
		{name: "NodeSessionWritesSysSessions", c: func() *core.Commit { return byKey(SessionsRepo, nodeID, w.root) }},

		{name: "BadSignature", c: func() *core.Commit {
			c := w.commit(t, "user.alice.notes", "alice", ts, "")
			c.Sig[0] ^= 1
			return c
		}, wantErr: []error{core.ErrBadSignature}},
		{name: "SignedByAnotherSessionThanItsAuthor", c: func() *core.Commit { return w.commit(t, "user.alice.notes", "alice", ts, "bob") },
			wantErr: []error{core.ErrBadSignature}},
		{name: "ReplayedIntoAnotherRepo", c: func() *core.Commit {
			c := w.commit(t, "user.alice.notes", "alice", ts, "")
			c.Repo = "user.alice.other"
			return c
		}, wantErr: []error{core.ErrInvalid}},
		{name: "ReplayedIntoAnotherRepoResealed", c: func() *core.Commit {
			c := w.commit(t, "user.alice.notes", "alice", ts, "")
			c.Repo = "user.alice.other"
			if err := c.Seal(); err != nil {
				t.Fatal(err)
			}
			return c
		}, wantErr: []error{core.ErrBadSignature}},
		{name: "RevokedSessionBackdated", c: func() *core.Commit { return w.commit(t, "user.carol.notes", "carol", ts, "") },
			wantErr: []error{ErrSessionRevoked, core.ErrUnauthenticated}},
		{name: "RevokedSessionAfterRevocation", c: func() *core.Commit { return w.commit(t, "user.carol.notes", "carol", t0.Add(15*time.Minute), "") },
			wantErr: []error{ErrSessionRevoked}},
		{name: "ExpiredSession", c: func() *core.Commit { return w.commit(t, "user.alice.notes", "alice", ts, "") }, now: t0.Add(2 * time.Hour),
			wantErr: []error{ErrSessionExpired, core.ErrUnauthenticated}},
		{name: "TSAfterSessionExpiry", c: func() *core.Commit { return w.commit(t, "user.alice.notes", "alice", t0.Add(time.Hour), "") }, now: t0.Add(59 * time.Minute),
			wantErr: []error{ErrSessionExpired}},
		{name: "UnknownSession", c: func() *core.Commit {
			return byKey("user.alice.notes", SessionID(newEd25519(t).Public().(ed25519.PublicKey)), newEd25519(t))
		}, wantErr: []error{core.ErrUnauthenticated, core.ErrNotFound}},
		{name: "TSTooFarAhead", c: func() *core.Commit {
			return w.commit(t, "user.alice.notes", "alice", now.Add(MaxFutureSkew+time.Second), "")
		},
			wantErr: []error{core.ErrInvalid}},
		{name: "OwnerMayNotWrite", c: func() *core.Commit { return w.commit(t, "user.bob.notes", "alice", ts, "") },
			wantErr: []error{core.ErrForbidden}},
		{name: "ReadableButNotWritable", c: func() *core.Commit { return w.commit(t, "public.news", "alice", ts, "") },
			wantErr: []error{core.ErrForbidden}},
		{name: "CustodialSessionHasOnlyCallersRights", c: func() *core.Commit { return byKey("user.bob.notes", custodial.ID, custodialKey) },
			wantErr: []error{core.ErrForbidden}},
		{name: "UserWritesSysSessions", c: func() *core.Commit { return w.commit(t, SessionsRepo, "alice", ts, "") },
			wantErr: []error{core.ErrForbidden}},
		{name: "MayWriteSaysNo", c: func() *core.Commit { return w.commit(t, "user.alice.notes", "alice", ts, "") },
			mayWrite: func(Principal, string) bool { return false }, wantErr: []error{core.ErrForbidden}},
		{name: "MergeCommit", c: func() *core.Commit {
			a, b := core.CommitID{1}, core.CommitID{2}
			return &core.Commit{Repo: "user.alice.notes", Key: "k1", Author: core.MergeAuthor, Parents: []core.CommitID{a, b}, TS: ts.UnixMilli(), Schema: core.AnySchema, Data: map[string]any{}}
		}, wantErr: []error{core.ErrInvalid}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := now
			if !tt.now.IsZero() {
				at = tt.now
			}
			mayWrite := w.rules.CanWrite
			if tt.mayWrite != nil {
				mayWrite = tt.mayWrite
			}
			err := VerifyCommit(tt.c(), w.sessions, at, mayWrite)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("VerifyCommit: %v", err)
				}
				return
			}
			for _, want := range tt.wantErr {
				if !errors.Is(err, want) {
					t.Fatalf("err=%v, want it to wrap %v", err, want)
				}
			}
		})
	}
	t.Run("NilMayWrite", func(t *testing.T) {
		if err := VerifyCommit(w.commit(t, "user.alice.notes", "alice", ts, ""), w.sessions, now, nil); !errors.Is(err, core.ErrForbidden) {
			t.Fatalf("err=%v, want ErrForbidden", err)
		}
	})
}

func TestVerifyReplicatedCommit(t *testing.T) {
	w := newCommitWorld(t)
	tests := []struct {
		name    string
		c       *core.Commit
		wantErr error
	}{
		// carol's session was revoked at t0+10m; what she signed before
		// keeps replicating, long after.
		{"RevokedSessionsEarlierCommit", w.commit(t, "user.carol.notes", "carol", t0.Add(5*time.Minute), ""), nil},
		{"RevokedSessionsLaterCommit", w.commit(t, "user.carol.notes", "carol", t0.Add(10*time.Minute), ""), ErrSessionRevoked},
		{"ExpiredSessionsEarlierCommit", w.commit(t, "user.alice.notes", "alice", t0.Add(59*time.Minute), ""), nil},
		{"CommitAfterExpiry", w.commit(t, "user.alice.notes", "alice", t0.Add(time.Hour), ""), ErrSessionExpired},
		{"SignedByAnotherSession", w.commit(t, "user.alice.notes", "alice", t0, "bob"), core.ErrBadSignature},
		// Authorization happened at ingestion; a rules change is not
		// retroactive, so it is not rechecked here.
		{"NotRecheckedAgainstRules", w.commit(t, "user.bob.notes", "alice", t0, ""), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyReplicatedCommit(tt.c, w.sessions)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err=%v, want %v", err, tt.wantErr)
			}
		})
	}
}
