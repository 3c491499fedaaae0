package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/node"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

// twins opens two dev nodes that share one keys directory (one deployment)
// but not their data: a session registered on a is unknown to b, as it is
// to a node that lost its data.
func twins(t *testing.T) (a, b *env) {
	t.Helper()
	keys := filepath.Join(t.TempDir(), "keys")
	a = open(t, node.Config{Dev: true, KeysDir: keys})
	b = open(t, node.Config{Dev: true, KeysDir: keys})
	return a, b
}

func recordJSON(t *testing.T, s auth.Session) json.RawMessage {
	t.Helper()
	b, err := s.Record().MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// syncPush runs one round on e that pushes commits with sessions.
func syncPush(e *env, p auth.Principal, repo string, sessions []json.RawMessage, commits ...*core.Commit) ([]node.Result, error) {
	req := &gsync.Request{Sessions: sessions}
	for _, c := range commits {
		b, _ := c.MarshalJSON()
		req.Commits = append(req.Commits, b)
	}
	_, res, err := e.n.SyncRound(context.Background(), p, repo, req, commits)
	return res, err
}

func TestNode_AcceptSessions(t *testing.T) {
	alice, bob := user("alice"), user("bob")
	const repo = "shared.notes"

	t.Run("RestoresAnAuthorTheNodeLacks", func(t *testing.T) {
		a, b := twins(t)
		au := a.newAuthor(t, alice)
		sess, err := a.n.Session(context.Background(), alice, au.id)
		if err != nil {
			t.Fatal(err)
		}
		b.createRepo(t, bob, repo)
		c := au.commit(t, b.clock.UnixMilli(), repo, "k", "", map[string]any{"v": 1.0})
		// Without the record, bob relaying alice's commit is refused...
		res, err := syncPush(b, bob, repo, nil, c)
		if err != nil {
			t.Fatal(err)
		}
		wantRejected(t, "commit of an unknown session", res[0], core.ErrUnauthenticated)
		// ...with it, the record is taken first and the commit verifies.
		res, err = syncPush(b, bob, repo, []json.RawMessage{recordJSON(t, sess)}, c)
		if err != nil {
			t.Fatalf("sync with alice's record: %v", err)
		}
		if res[0].Status != node.Appended {
			t.Fatalf("status=%v (%v), want appended", res[0].Status, res[0].Err)
		}
		got, err := b.n.Session(context.Background(), auth.Anonymous(), au.id)
		if err != nil || got.Owner != "alice" {
			t.Fatalf("b's record of alice's session: %+v, %v", got, err)
		}
	})

	t.Run("RefusesARecordOfAnotherRoot", func(t *testing.T) {
		_, b := twins(t)
		other := openDev(t) // its own keys: another deployment
		au := other.newAuthor(t, alice)
		sess, _ := other.n.Session(context.Background(), alice, au.id)
		b.createRepo(t, bob, repo)
		_, err := syncPush(b, bob, repo, []json.RawMessage{recordJSON(t, sess)})
		if !errors.Is(err, core.ErrInvalid) || !strings.Contains(err.Error(), au.id) || !strings.Contains(err.Error(), "sessions[0]") {
			t.Fatalf("err=%v, want ErrInvalid naming sessions[0] (%s)", err, au.id)
		}
		if _, err := b.n.Session(context.Background(), alice, au.id); !errors.Is(err, core.ErrNotFound) {
			t.Fatalf("a refused record was kept: %v", err)
		}
	})

	t.Run("RefusesATamperedRecord", func(t *testing.T) {
		a, b := twins(t)
		au := a.newAuthor(t, alice)
		sess, _ := a.n.Session(context.Background(), alice, au.id)
		sess.Roles = []string{"admin"}
		b.createRepo(t, bob, repo)
		_, err := syncPush(b, bob, repo, []json.RawMessage{recordJSON(t, sess)})
		wantErr(t, "record with roles added", err, core.ErrInvalid)
	})

	t.Run("TooMany", func(t *testing.T) {
		_, b := twins(t)
		b.createRepo(t, bob, repo)
		many := make([]json.RawMessage, node.MaxRelayedSessions+1)
		for i := range many {
			many[i] = json.RawMessage(`{}`)
		}
		_, err := syncPush(b, bob, repo, many)
		wantErr(t, "too many records", err, core.ErrTooLarge)
	})

	t.Run("RevocationNeedsItsSignature", func(t *testing.T) {
		a, b := twins(t)
		au := a.newAuthor(t, alice)
		sess, _ := a.n.Session(context.Background(), alice, au.id)
		b.createRepo(t, bob, repo)
		// A relayed revocation without revokeSig: anyone could have
		// added it, so it is ignored and the session stays valid.
		forged := sess.RevokeAt(b.clock.Now().Add(-time.Minute))
		if _, err := syncPush(b, bob, repo, []json.RawMessage{recordJSON(t, forged)}); err != nil {
			t.Fatal(err)
		}
		if got, _ := b.n.Session(context.Background(), alice, au.id); !got.Revoked.IsZero() {
			t.Fatalf("an unsigned revocation was taken: %v", got.Revoked)
		}
		// The real one, signed by a, is taken, and then refuses commits
		// from after it.
		a.clock.Add(time.Second)
		revoked, err := a.n.RevokeSession(context.Background(), alice, au.id)
		if err != nil {
			t.Fatal(err)
		}
		if !revoked.RevocationValid(a.n.RootKeys()...) {
			t.Fatal("RevokeSession's record has no valid revokeSig")
		}
		if _, err := syncPush(b, bob, repo, []json.RawMessage{recordJSON(t, revoked)}); err != nil {
			t.Fatal(err)
		}
		got, _ := b.n.Session(context.Background(), alice, au.id)
		if !got.Revoked.Equal(revoked.Revoked) {
			t.Fatalf("b's revoked=%v, want %v", got.Revoked, revoked.Revoked)
		}
		b.clock.Add(time.Minute)
		late := au.commit(t, b.clock.UnixMilli(), repo, "k", "", map[string]any{"v": 2.0})
		res, err := syncPush(b, bob, repo, nil, late)
		if err != nil {
			t.Fatal(err)
		}
		wantRejected(t, "commit after the relayed revocation", res[0], auth.ErrSessionRevoked)
	})
}
