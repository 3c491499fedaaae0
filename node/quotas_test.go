package node_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/node"
)

func TestNode_RepoQuota(t *testing.T) {
	ctx := context.Background()
	alice, bob := user("alice"), user("bob")

	t.Run("PastTheQuotaIsRefused", func(t *testing.T) {
		dir := t.TempDir()
		e := open(t, node.Config{DataDir: dir, Dev: true, MaxReposPerOwner: 3})
		for i := range 3 {
			e.createRepo(t, alice, fmt.Sprintf("a%d", i))
		}
		_, _, err := e.n.CreateRepo(ctx, alice, "a3")
		wantErr(t, "alice's fourth repository", err, core.ErrRateLimited)
		if !strings.Contains(err.Error(), "3 repositories") {
			t.Fatalf("detail %q does not say how many repositories the caller created", err)
		}
		if _, err := e.n.State("a3"); !errors.Is(err, core.ErrNotFound) {
			t.Fatalf("a refused creation left a repository: %v", err)
		}
		// Reusing an existing repository is not a creation.
		if _, created, err := e.n.CreateRepo(ctx, alice, "a0"); err != nil || created {
			t.Fatalf("CreateRepo of an existing repository past the quota: created=%v, %v", created, err)
		}
		// The quota is per owner.
		e.createRepo(t, bob, "b0")
		if got, want := e.n.ReposCreatedBy("alice"), 3; got != want {
			t.Fatalf("ReposCreatedBy(alice)=%d, want %d", got, want)
		}
	})

	t.Run("SurvivesARestart", func(t *testing.T) {
		dir := t.TempDir()
		e := open(t, node.Config{DataDir: dir, Dev: true, MaxReposPerOwner: 2})
		e.createRepo(t, alice, "a0")
		e.createRepo(t, alice, "a1")
		if err := e.n.Close(); err != nil {
			t.Fatal(err)
		}
		e = open(t, node.Config{DataDir: dir, Dev: true, MaxReposPerOwner: 2})
		_, _, err := e.n.CreateRepo(ctx, alice, "a2")
		wantErr(t, "alice's third repository after a restart", err, core.ErrRateLimited)
	})

	t.Run("ConcurrentCreationsDoNotOvershoot", func(t *testing.T) {
		e := open(t, node.Config{Dev: true, MaxReposPerOwner: 3})
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok, limited := 0, 0
		for i := range 12 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _, err := e.n.CreateRepo(ctx, alice, fmt.Sprintf("c%d", i))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, core.ErrRateLimited):
					limited++
				default:
					t.Errorf("CreateRepo: %v", err)
				}
			}()
		}
		wg.Wait()
		if ok != 3 || limited != 9 {
			t.Fatalf("%d created and %d refused, want 3 and 9", ok, limited)
		}
	})
}

func TestNode_SessionQuota(t *testing.T) {
	ctx := context.Background()
	alice := user("alice")
	newKey := func(tb testing.TB) ed25519.PrivateKey {
		tb.Helper()
		_, key, err := ed25519.GenerateKey(nil)
		if err != nil {
			tb.Fatal(err)
		}
		return key
	}
	registerErr := func(tb testing.TB, e *env, p auth.Principal, key ed25519.PrivateKey) error {
		tb.Helper()
		req, err := auth.NewSessionRequest(key, e.n.Audience(), p.Sub, e.clock.Now().Add(time.Hour))
		if err != nil {
			tb.Fatal(err)
		}
		_, _, err = e.n.RegisterSession(ctx, p, req)
		return err
	}

	t.Run("PastTheQuotaIsRefused", func(t *testing.T) {
		dir := t.TempDir()
		e := open(t, node.Config{DataDir: dir, Dev: true, MaxSessionsPerOwner: 2})
		first := e.newAuthor(t, alice)
		e.newAuthor(t, alice)
		err := registerErr(t, e, alice, newKey(t))
		wantErr(t, "alice's third live session", err, core.ErrRateLimited)
		if !strings.Contains(err.Error(), "2 live sessions") {
			t.Fatalf("detail %q does not say how many sessions the caller holds", err)
		}
		// At the quota a registration is refused before its proof is
		// checked: a forged proof costs no signature verification.
		forged, err := auth.NewSessionRequest(newKey(t), e.n.Audience(), alice.Sub, e.clock.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		forged.Proof = base64.RawURLEncoding.EncodeToString(make([]byte, ed25519.SignatureSize))
		_, _, err = e.n.RegisterSession(ctx, alice, forged)
		wantErr(t, "a forged proof at the quota", err, core.ErrRateLimited)
		// Registering a held key again is not a new session.
		if _, created := e.register(t, alice, first.key); created {
			t.Fatalf("registering a held key again created a session")
		}
		// Another owner is not affected.
		e.newAuthor(t, user("bob"))
		// A revoked session no longer counts.
		if _, err := e.n.RevokeSession(ctx, alice, first.id); err != nil {
			t.Fatal(err)
		}
		e.newAuthor(t, alice)
		if got, want := e.n.LiveSessions("alice"), 2; got != want {
			t.Fatalf("LiveSessions(alice)=%d, want %d", got, want)
		}
		// After a restart the sessions are counted again.
		if err := e.n.Close(); err != nil {
			t.Fatal(err)
		}
		e2 := open(t, node.Config{DataDir: dir, Dev: true, MaxSessionsPerOwner: 2, Now: e.clock.Now})
		wantErr(t, "alice's third live session after a restart", registerErr(t, e2, alice, newKey(t)), core.ErrRateLimited)
	})

	t.Run("ExpiredSessionsDoNotCount", func(t *testing.T) {
		e := open(t, node.Config{Dev: true, MaxSessionsPerOwner: 1})
		e.newAuthor(t, alice)
		wantErr(t, "alice's second live session", registerErr(t, e, alice, newKey(t)), core.ErrRateLimited)
		e.clock.Add(2 * time.Hour)
		if err := registerErr(t, e, alice, newKey(t)); err != nil {
			t.Fatalf("a session once the first expired: %v", err)
		}
	})
}

func TestNode_OpenRepos(t *testing.T) {
	const budget = 16
	e := open(t, node.Config{Dev: true, MaxOpenRepos: budget, MaxReposPerOwner: -1, IdleTimeout: -1})
	alice := user("alice")
	a := e.newAuthor(t, alice)
	for i := range 2000 {
		name := fmt.Sprintf("r%d", i)
		e.createRepo(t, alice, name)
		e.mustAppend(t, name, node.OriginClient, a.commit(t, e.clock.UnixMilli(), name, "k", "", map[string]any{"i": i}))
		if got := e.n.OpenRepos(); got > budget {
			t.Fatalf("after %d repositories: %d open, budget %d", i+1, got, budget)
		}
	}
	if info, err := e.n.State("r0"); err != nil || info.Count != 1 {
		t.Fatalf("r0 after 2000 others: %+v, %v; want its one commit", info, err)
	}
}
