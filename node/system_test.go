package node_test

import (
	"context"
	"crypto/ed25519"
	"slices"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
	"github.com/goat-gateway/goat-gateway/node"
)

func TestNode_RegisterSession(t *testing.T) {
	ctx := context.Background()
	alice := user("alice", "editor")

	t.Run("InEffectWhenItReturns", func(t *testing.T) {
		e := openDev(t)
		e.createRepo(t, alice, "notes")
		a := newSigner(t, "alice")
		sess, created := e.register(t, alice, a.key)
		if !created {
			t.Fatal("created=false for a new key")
		}
		got, err := e.n.Session(ctx, alice, a.id)
		if err != nil {
			t.Fatalf("Session right after RegisterSession: %v", err)
		}
		if got.ID != sess.ID || got.Owner != "alice" || !slices.Equal(got.Roles, []string{"editor"}) || got.Custodial {
			t.Fatalf("Session=%+v, want alice's registered session %+v", got, sess)
		}
		// The very next commit by the session is accepted.
		e.mustAppend(t, "notes", node.OriginClient, a.commit(t, e.clock.UnixMilli(), "notes", "k", "", map[string]any{}))
	})

	t.Run("AgainForTheSameOwner", func(t *testing.T) {
		e := openDev(t)
		a := e.newAuthor(t, alice)
		last := e.n.LastSeq()
		sess, created := e.register(t, alice, a.key)
		if created {
			t.Fatal("created=true for a key registered before")
		}
		if got, want := sess.ID, a.id; got != want {
			t.Fatalf("id=%s, want %s", got, want)
		}
		if got, want := e.n.LastSeq(), last; got != want {
			t.Fatalf("LastSeq=%d after registering again, want %d (no new record)", got, want)
		}
	})

	t.Run("SameKeyForAnotherOwnerIsConflict", func(t *testing.T) {
		e := openDev(t)
		a := e.newAuthor(t, alice)
		req, err := auth.NewSessionRequest(a.key, e.n.Audience(), "bob", e.clock.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = e.n.RegisterSession(ctx, user("bob"), req)
		wantErr(t, "bob registers alice's key", err, core.ErrConflict)
	})

	t.Run("Refusals", func(t *testing.T) {
		e := openDev(t)
		_, key, err := ed25519.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		now := e.clock.Now()
		good, err := auth.NewSessionRequest(key, e.n.Audience(), "alice", now.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		otherAudience, err := auth.NewSessionRequest(key, "elsewhere", "alice", now.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		forBob, err := auth.NewSessionRequest(key, e.n.Audience(), "bob", now.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		past, err := auth.NewSessionRequest(key, e.n.Audience(), "alice", now.Add(-time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name string
			p    auth.Principal
			req  auth.SessionRequest
			want error
		}{
			{"Anonymous", auth.Anonymous(), good, core.ErrUnauthenticated},
			{"ZeroPrincipal", auth.Principal{}, good, core.ErrUnauthenticated},
			{"NodeToken", nodePrincipal, good, core.ErrForbidden},
			{"ProofForAnotherAudience", alice, otherAudience, core.ErrBadSignature},
			{"ProofForAnotherOwner", alice, forBob, core.ErrBadSignature},
			{"ExpiredAlready", alice, past, core.ErrInvalid},
		} {
			t.Run(c.name, func(t *testing.T) {
				_, _, err := e.n.RegisterSession(ctx, c.p, c.req)
				wantErr(t, c.name, err, c.want)
			})
		}
		if _, err := e.n.Session(ctx, alice, auth.SessionID(key.Public().(ed25519.PublicKey))); err == nil {
			t.Fatal("a refused registration left a session")
		}
	})
}

func TestNode_Session(t *testing.T) {
	e := openDev(t)
	alice := user("alice")
	a := e.newAuthor(t, alice)
	if _, err := e.n.Session(context.Background(), user("bob"), a.id); err != nil {
		t.Fatalf("another authenticated caller reads alice's session: %v", err)
	}
	// Records are public certificates (issue 18): anonymous callers read
	// them, and they verify against the published root keys.
	rec, err := e.n.Session(context.Background(), auth.Anonymous(), a.id)
	if err != nil {
		t.Fatalf("anonymous read of a session record: %v", err)
	}
	if err := rec.Record().VerifyRoot(e.n.RootKeys()); err != nil {
		t.Fatalf("record does not verify against RootKeys: %v", err)
	}
	_, err = e.n.Session(context.Background(), alice, "s_unknownunknownunknown123")
	wantErr(t, "unknown id", err, core.ErrNotFound)
	_, err = e.n.Session(context.Background(), alice, auth.NodeSessionID(e.n.RootPublicKey()))
	wantErr(t, "the root key's implicit session", err, core.ErrNotFound)
}

func TestNode_RevokeSession(t *testing.T) {
	ctx := context.Background()
	alice := user("alice")

	t.Run("LaterCommitsAreRefused", func(t *testing.T) {
		e := openDev(t)
		a := e.newAuthor(t, alice)
		e.createRepo(t, alice, "notes")
		before := a.commit(t, e.clock.UnixMilli(), "notes", "before", "", map[string]any{})
		backdated := a.commit(t, e.clock.UnixMilli(), "notes", "backdated", "", map[string]any{})
		e.clock.Add(time.Second)
		revokedAt := e.clock.Now()
		sess, err := e.n.RevokeSession(ctx, alice, a.id)
		if err != nil {
			t.Fatal(err)
		}
		if got := sess.Revoked; !got.Equal(revokedAt) {
			t.Fatalf("revoked=%v, want %v", got, revokedAt)
		}
		if got, err := e.n.Session(ctx, alice, a.id); err != nil || !got.Revoked.Equal(revokedAt) {
			t.Fatalf("Session after RevokeSession = %+v, %v; want revoked at %v", got, err, revokedAt)
		}
		e.clock.Add(time.Millisecond)
		after := a.commit(t, e.clock.UnixMilli(), "notes", "after", "", map[string]any{})

		res := e.ingest(t, "notes", node.OriginClient, after)
		wantRejected(t, "client commit after the revocation", res[0], auth.ErrSessionRevoked)
		wantRejected(t, "client commit after the revocation", res[0], core.ErrUnauthenticated)
		res = e.ingest(t, "notes", node.OriginClient, backdated)
		wantRejected(t, "client commit from before the revocation", res[0], auth.ErrSessionRevoked)

		// What the session signed while valid keeps replicating; nothing
		// later does.
		e.mustAppend(t, "notes", node.OriginReplica, before)
		res = e.ingest(t, "notes", node.OriginReplica, after)
		wantRejected(t, "replicated commit after the revocation", res[0], auth.ErrSessionRevoked)
	})

	t.Run("AgainKeepsTheFirstRevocation", func(t *testing.T) {
		e := openDev(t)
		a := e.newAuthor(t, alice)
		first, err := e.n.RevokeSession(ctx, alice, a.id)
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Add(time.Minute)
		last := e.n.LastSeq()
		again, err := e.n.RevokeSession(ctx, alice, a.id)
		if err != nil {
			t.Fatal(err)
		}
		if !again.Revoked.Equal(first.Revoked) {
			t.Fatalf("revoked=%v after revoking again, want the first %v", again.Revoked, first.Revoked)
		}
		if got, want := e.n.LastSeq(), last; got != want {
			t.Fatalf("LastSeq=%d after revoking again, want %d", got, want)
		}
	})

	t.Run("WhoMayRevoke", func(t *testing.T) {
		e := openDev(t)
		a := e.newAuthor(t, alice)
		_, err := e.n.RevokeSession(ctx, user("bob"), a.id)
		wantErr(t, "bob revokes alice's session", err, core.ErrNotFound)
		_, err = e.n.RevokeSession(ctx, auth.Anonymous(), a.id)
		wantErr(t, "anonymous revokes", err, core.ErrUnauthenticated)
		_, err = e.n.RevokeSession(ctx, alice, auth.NodeSessionID(e.n.RootPublicKey()))
		wantErr(t, "revoking the root key's session", err, core.ErrNotFound)
		if got, err := e.n.Session(ctx, alice, a.id); err != nil || !got.Revoked.IsZero() {
			t.Fatalf("session after refused revocations: %+v, %v; want it unrevoked", got, err)
		}
		if _, err := e.n.RevokeSession(ctx, user("carol", auth.AdminRole), a.id); err != nil {
			t.Fatalf("an admin revokes alice's session: %v", err)
		}
	})
}

func TestNode_PutSchema(t *testing.T) {
	ctx := context.Background()
	alice := user("alice")

	t.Run("InEffectWhenItReturns", func(t *testing.T) {
		e := openDev(t)
		a := e.newAuthor(t, alice)
		e.createRepo(t, alice, "notes")
		sc, created, err := e.n.PutSchema(ctx, alice, "task", 1, taskSchema())
		if err != nil {
			t.Fatal(err)
		}
		if !created || sc.Ref() != "task/1" {
			t.Fatalf("PutSchema = %s, created %v; want task/1, true", sc.Ref(), created)
		}
		ts := e.clock.UnixMilli()
		e.mustAppend(t, "notes", node.OriginClient, a.commit(t, ts, "notes", "ok", "task/1", map[string]any{"title": "a"}))
		res := e.ingest(t, "notes", node.OriginClient, a.commit(t, ts, "notes", "bad", "task/1", map[string]any{"title": true}))
		wantRejected(t, "a commit that does not fit the new schema", res[0], core.ErrSchema)
	})

	t.Run("SameDefinitionAgain", func(t *testing.T) {
		e := openDev(t)
		e.putSchema(t, alice, "task", 1, taskSchema())
		last := e.n.LastSeq()
		sc, created, err := e.n.PutSchema(ctx, alice, "task", 1, taskSchema())
		if err != nil {
			t.Fatal(err)
		}
		if created || sc.Ref() != "task/1" {
			t.Fatalf("PutSchema again = %s, created %v; want task/1, false", sc.Ref(), created)
		}
		if got, want := e.n.LastSeq(), last; got != want {
			t.Fatalf("LastSeq=%d after publishing again, want %d", got, want)
		}
	})

	t.Run("Refusals", func(t *testing.T) {
		e := openDev(t)
		e.putSchema(t, alice, "task", 1, taskSchema())
		other := map[string]any{"fields": map[string]any{"name": map[string]any{"type": "string"}}}
		for _, c := range []struct {
			name    string
			ns      string
			version int
			def     map[string]any
			want    error
		}{
			{"V2WithoutV1", "note", 2, taskSchema(), core.ErrSchema},
			{"V3WithoutV2", "task", 3, taskSchema(), core.ErrSchema},
			{"OtherDefinitionSameVersion", "task", 1, other, core.ErrConflict},
			{"UnknownFieldType", "bad", 1, map[string]any{"fields": map[string]any{"x": map[string]any{"type": "color"}}}, core.ErrSchema},
			{"UnknownProperty", "bad", 1, map[string]any{"fields": map[string]any{}, "colour": "red"}, core.ErrInvalid},
		} {
			t.Run(c.name, func(t *testing.T) {
				last := e.n.LastSeq()
				_, _, err := e.n.PutSchema(ctx, alice, c.ns, c.version, c.def)
				wantErr(t, c.name, err, c.want)
				if got, want := e.n.LastSeq(), last; got != want {
					t.Fatalf("LastSeq=%d after a refused schema, want %d", got, want)
				}
			})
		}
		if _, _, err := e.n.PutSchema(ctx, alice, "task", 2, taskSchema()); err != nil {
			t.Fatalf("v2 after v1: %v", err)
		}
	})

	t.Run("NeedsAdminOutsideDev", func(t *testing.T) {
		e := openWithRules(t)
		_, _, err := e.n.PutSchema(ctx, alice, "task", 1, taskSchema())
		wantErr(t, "a user publishes a schema", err, core.ErrForbidden)
		_, _, err = e.n.PutSchema(ctx, auth.Anonymous(), "task", 1, taskSchema())
		wantErr(t, "anonymous publishes a schema", err, core.ErrNotFound)
		if _, created, err := e.n.PutSchema(ctx, user("root", auth.AdminRole), "task", 1, taskSchema()); err != nil || !created {
			t.Fatalf("an admin publishes a schema: created %v, %v", created, err)
		}
		if _, err := e.n.Schemas(auth.Anonymous()); err == nil {
			t.Fatal("anonymous listed the schemas")
		}
		schemas, err := e.n.Schemas(alice)
		if err != nil {
			t.Fatal(err)
		}
		refs := make([]string, len(schemas))
		for i, s := range schemas {
			refs[i] = s.Ref()
		}
		if !slices.Contains(refs, "task/1") || !slices.Contains(refs, core.AnySchema) {
			t.Fatalf("Schemas=%v, want task/1 and %s", refs, core.AnySchema)
		}
	})
}

// TestNode_ReplicatedSystemRecords checks system records that reach a
// node from another one: a session record is in effect as soon as its
// ingest returns, a schema once the node has applied it.
func TestNode_ReplicatedSystemRecords(t *testing.T) {
	keys := t.TempDir() // both nodes share the root key, as a deployment does
	a := open(t, node.Config{Dev: true, KeysDir: keys})
	b := open(t, node.Config{Dev: true, KeysDir: keys})
	alice := user("alice")
	b.createRepo(t, alice, "notes")
	author := a.newAuthor(t, alice)
	a.putSchema(t, alice, "task", 1, taskSchema())

	sessionRecord := latestCommit(t, a, auth.SessionsRepo, author.id)
	b.mustAppend(t, auth.SessionsRepo, node.OriginReplica, sessionRecord)
	c := author.commit(t, b.clock.UnixMilli(), "notes", "k", "", map[string]any{})
	res := b.ingest(t, "notes", node.OriginClient, c)
	if got, want := res[0].Status, node.Appended; got != want {
		t.Fatalf("a commit right after its replicated session record: %v (%v), want %v", got, res[0].Err, want)
	}

	b.mustAppend(t, auth.SchemasRepo, node.OriginReplica, latestCommit(t, a, auth.SchemasRepo, "task:1"))
	goattest.WaitFor(t, "the replicated schema to be known", func() bool {
		schemas, err := b.n.Schemas(alice)
		return err == nil && slices.ContainsFunc(schemas, func(s *core.Schema) bool { return s.Ref() == "task/1" })
	})
}

// latestCommit returns the newest commit of key in repo.
func latestCommit(tb testing.TB, e *env, repo, key string) *core.Commit {
	tb.Helper()
	h := e.history(tb, repo, key)
	if len(h) == 0 {
		tb.Fatalf("%s/%s has no commits", repo, key)
	}
	c, err := h[0].Commit()
	if err != nil {
		tb.Fatal(err)
	}
	return c
}
