package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
	"github.com/goat-gateway/goat-gateway/node"
	"github.com/goat-gateway/goat-gateway/storage"
)

// deletedLogs returns the logs of repo moved into dir's deleted/
// directory, oldest first.
func deletedLogs(tb testing.TB, dir, repo string) []string {
	tb.Helper()
	out, err := filepath.Glob(filepath.Join(dir, storage.DeletedDir, "*."+repo, repo+".log"))
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func TestNode_DeleteRepo(t *testing.T) {
	ctx := context.Background()
	admin, alice, bob := user("root", "admin"), user("alice"), user("bob")

	t.Run("Authorization", func(t *testing.T) {
		e := openWithRules(t)
		e.createRepo(t, alice, "user.alice.notes")
		wantErr(t, "a reader without role admin", e.n.DeleteRepo(ctx, alice, "user.alice.notes"), core.ErrForbidden)
		wantErr(t, "a caller who may not read it", e.n.DeleteRepo(ctx, bob, "user.alice.notes"), core.ErrNotFound)
		wantErr(t, "an anonymous caller", e.n.DeleteRepo(ctx, auth.Anonymous(), "user.alice.notes"), core.ErrNotFound)
		wantErr(t, "a repository that does not exist", e.n.DeleteRepo(ctx, alice, "user.alice.nothing"), core.ErrNotFound)
		wantErr(t, "a system repository", e.n.DeleteRepo(ctx, admin, node.ReposRepo), core.ErrForbidden)
		wantErr(t, "a bad name", e.n.DeleteRepo(ctx, admin, "Bad Name"), core.ErrInvalid)
		if _, err := e.n.State("user.alice.notes"); err != nil {
			t.Fatalf("a refused deletion touched the repository: %v", err)
		}
	})

	t.Run("MovesTheLogAsideAndStaysDeleted", func(t *testing.T) {
		dir := t.TempDir()
		e := open(t, node.Config{DataDir: dir, Dev: true})
		a := e.newAuthor(t, alice)
		e.createRepo(t, alice, "notes")
		c1 := a.commit(t, 1, "notes", "k", core.AnySchema, map[string]any{"v": "1"})
		e.mustAppend(t, "notes", node.OriginClient, c1, a.commit(t, 2, "notes", "k", core.AnySchema, map[string]any{"v": "2"}, c1.ID))
		if err := e.n.Close(); err != nil {
			t.Fatal(err)
		}
		before, err := os.ReadFile(filepath.Join(dir, "notes.log"))
		if err != nil {
			t.Fatal(err)
		}

		e = open(t, node.Config{DataDir: dir, Dev: true})
		sub, err := e.n.Subscribe(alice, []string{"notes"}, 8)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		if err := e.n.DeleteRepo(ctx, admin, "notes"); err != nil {
			t.Fatalf("DeleteRepo: %v", err)
		}
		goattest.Recv(t, sub.Ready(), "the live stream to be told")
		ev, ok := sub.Next()
		if !ok || ev.Name != "reset" {
			t.Fatalf("live event=%+v, want a reset", ev)
		}
		var data struct{ Code, Repo, Reason string }
		if err := json.Unmarshal(ev.Data, &data); err != nil || data.Code != "deleted" || data.Repo != "notes" {
			t.Fatalf("reset data %s: %v", ev.Data, err)
		}
		for what, err := range map[string]error{
			"State":  func() error { _, err := e.n.State("notes"); return err }(),
			"Open":   func() error { _, err := e.n.Open(alice, "notes", false); return err }(),
			"Push":   func() error { _, err := e.n.Push(ctx, alice, "notes", nil); return err }(),
			"Delete": e.n.DeleteRepo(ctx, admin, "notes"),
		} {
			wantErr(t, what+" after the deletion", err, core.ErrNotFound)
		}
		if names, _, _ := e.n.ListRepos(alice, "notes", "", 100); len(names) != 0 {
			t.Fatalf("ListRepos after the deletion=%v", names)
		}
		logs := deletedLogs(t, dir, "notes")
		if len(logs) != 1 {
			t.Fatalf("deleted logs=%v, want one", logs)
		}
		moved, err := os.ReadFile(logs[0])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(moved, before) {
			t.Fatalf("the moved log (%d bytes) differs from the log before the deletion (%d bytes)", len(moved), len(before))
		}
		// Another node's replication cannot bring it back.
		_, err = e.n.Ensure(ctx, "notes", node.OriginReplica)
		wantErr(t, "a replica's creation", err, core.ErrNotFound)
		_, _, err = e.n.Local("notes", node.OriginReplica)
		wantErr(t, "a heal's creation", err, core.ErrNotFound)
		_, _, err = e.n.CreateRepo(ctx, nodePrincipal, "notes")
		wantErr(t, "a peer's createRepo", err, core.ErrNotFound)
		_, err = e.n.Ingest(ctx, "notes", []*core.Commit{c1}, node.OriginReplica)
		wantErr(t, "a replica's commits", err, core.ErrNotFound)

		if err := e.n.Close(); err != nil {
			t.Fatal(err)
		}
		e = open(t, node.Config{DataDir: dir, Dev: true})
		if _, err := e.n.State("notes"); !errors.Is(err, core.ErrNotFound) {
			t.Fatalf("after a restart the repository is back: %v", err)
		}
		_, err = e.n.Ensure(ctx, "notes", node.OriginReplica)
		wantErr(t, "a replica's creation after a restart", err, core.ErrNotFound)
	})

	t.Run("RestoredByMovingTheLogBack", func(t *testing.T) {
		dir := t.TempDir()
		e := open(t, node.Config{DataDir: dir, Dev: true})
		a := e.newAuthor(t, alice)
		e.createRepo(t, alice, "notes")
		c1 := a.commit(t, 1, "notes", "k", core.AnySchema, map[string]any{"v": "1"})
		e.mustAppend(t, "notes", node.OriginClient, c1)
		if err := e.n.DeleteRepo(ctx, admin, "notes"); err != nil {
			t.Fatal(err)
		}
		if err := e.n.Close(); err != nil {
			t.Fatal(err)
		}
		// What docs/reliability.md tells an operator to do, gateway
		// stopped: move the deleted directory's files back.
		moved := filepath.Dir(deletedLogs(t, dir, "notes")[0])
		files, err := os.ReadDir(moved)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if err := os.Rename(filepath.Join(moved, f.Name()), filepath.Join(dir, f.Name())); err != nil {
				t.Fatal(err)
			}
		}
		e = open(t, node.Config{DataDir: dir, Dev: true})
		if !e.n.Has("notes", c1.ID) {
			t.Fatal("the restored repository lacks its commit")
		}
		if _, created, err := e.n.CreateRepo(ctx, alice, "notes"); err != nil || created {
			t.Fatalf("CreateRepo of the restored repository: created=%v, %v", created, err)
		}
		if _, err := e.n.Ensure(ctx, "notes", node.OriginReplica); err != nil {
			t.Fatalf("the restored repository is still deleted for replicas: %v", err)
		}
		if got := e.n.ReposCreatedBy("alice"); got != 1 {
			t.Fatalf("ReposCreatedBy(alice)=%d after the restore, want 1", got)
		}
		// And it stays restored.
		if err := e.n.Close(); err != nil {
			t.Fatal(err)
		}
		e = open(t, node.Config{DataDir: dir, Dev: true})
		if !e.n.Has("notes", c1.ID) {
			t.Fatal("the restored repository is gone after another restart")
		}
	})

	t.Run("CreatedAgainStartsEmpty", func(t *testing.T) {
		dir := t.TempDir()
		e := open(t, node.Config{DataDir: dir, Dev: true})
		a := e.newAuthor(t, alice)
		e.createRepo(t, alice, "notes")
		c1 := a.commit(t, 1, "notes", "k", core.AnySchema, map[string]any{"v": "1"})
		e.mustAppend(t, "notes", node.OriginClient, c1)
		if err := e.n.DeleteRepo(ctx, admin, "notes"); err != nil {
			t.Fatal(err)
		}
		info, created, err := e.n.CreateRepo(ctx, alice, "notes")
		if err != nil || !created {
			t.Fatalf("CreateRepo after the deletion: created=%v, %v", created, err)
		}
		if info.Count != 0 {
			t.Fatalf("count=%d after re-creation, want 0", info.Count)
		}
		c2 := a.commit(t, 2, "notes", "j", core.AnySchema, map[string]any{"v": "2"})
		e.mustAppend(t, "notes", node.OriginClient, c2)
		// The old life's commits are not the new one's, even from a peer.
		if e.n.Has("notes", c1.ID) {
			t.Fatal("the re-created repository holds a commit of the deleted one")
		}
		if err := e.n.Close(); err != nil {
			t.Fatal(err)
		}
		e = open(t, node.Config{DataDir: dir, Dev: true})
		st, err := e.n.State("notes")
		if err != nil || st.Count != 1 || !e.n.Has("notes", c2.ID) {
			t.Fatalf("the re-created repository after a restart: %+v, %v", st, err)
		}
		// Deleting the second life moves a second log aside.
		if err := e.n.DeleteRepo(ctx, admin, "notes"); err != nil {
			t.Fatal(err)
		}
		if logs := deletedLogs(t, dir, "notes"); len(logs) != 2 {
			t.Fatalf("deleted logs=%v, want two", logs)
		}
	})

	t.Run("QuotaCountsDown", func(t *testing.T) {
		e := open(t, node.Config{Dev: true, MaxReposPerOwner: 1})
		e.createRepo(t, alice, "a0")
		if _, _, err := e.n.CreateRepo(ctx, alice, "a1"); !errors.Is(err, core.ErrRateLimited) {
			t.Fatalf("second repository: %v, want ErrRateLimited", err)
		}
		if err := e.n.DeleteRepo(ctx, admin, "a0"); err != nil {
			t.Fatal(err)
		}
		if got := e.n.ReposCreatedBy("alice"); got != 0 {
			t.Fatalf("ReposCreatedBy(alice)=%d after the deletion, want 0", got)
		}
		e.createRepo(t, alice, "a1")
	})

	t.Run("APeerAppliesTheDeletion", func(t *testing.T) {
		// Two nodes with one root key, as a cluster's are; the second
		// receives the first's sys.repos as a replica would.
		keys := t.TempDir()
		a := open(t, node.Config{Dev: true, KeysDir: keys})
		b := open(t, node.Config{Dev: true, KeysDir: keys})
		au := a.newAuthor(t, alice)
		a.createRepo(t, alice, "notes")
		c1 := au.commit(t, 1, "notes", "k", core.AnySchema, map[string]any{"v": "1"})
		a.mustAppend(t, "notes", node.OriginClient, c1)
		replicate(t, a, b, "sys.sessions")
		replicate(t, a, b, node.ReposRepo)
		b.mustAppend(t, "notes", node.OriginReplica, c1)
		sub, err := b.n.Subscribe(alice, []string{"notes"}, 8)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()

		if err := a.n.DeleteRepo(ctx, admin, "notes"); err != nil {
			t.Fatal(err)
		}
		replicate(t, a, b, node.ReposRepo)
		goattest.Recv(t, sub.Ready(), "the peer's live stream to be told")
		if ev, ok := sub.Next(); !ok || ev.Name != "reset" {
			t.Fatalf("peer's live event=%+v, want a reset", ev)
		}
		if _, err := b.n.State("notes"); !errors.Is(err, core.ErrNotFound) {
			t.Fatalf("the peer still has the repository: %v", err)
		}
		_, err = b.n.Ingest(ctx, "notes", []*core.Commit{c1}, node.OriginReplica)
		wantErr(t, "the peer ingesting the deleted repository's commits", err, core.ErrNotFound)

		// Re-created on the first node, the name starts a new life on the
		// peer too.
		a.createRepo(t, alice, "notes")
		replicate(t, a, b, node.ReposRepo)
		goattest.WaitFor(t, "the peer to accept the new life", func() bool {
			_, err := b.n.Ensure(ctx, "notes", node.OriginReplica)
			return err == nil
		})
		if b.n.Has("notes", c1.ID) {
			t.Fatal("the peer's new life holds the old one's commit")
		}
	})
}

// replicate ingests every record of from's repo into to, as a replica's.
func replicate(tb testing.TB, from, to *env, repo string) {
	tb.Helper()
	r, err := from.n.Peek(repo)
	if err != nil {
		tb.Fatal(err)
	}
	recs, err := r.ReadLog(0, 10000)
	r.Release()
	if err != nil {
		tb.Fatal(err)
	}
	var cs []*core.Commit
	for _, rec := range recs {
		c, err := rec.Commit()
		if err != nil {
			tb.Fatal(err)
		}
		cs = append(cs, c)
	}
	for _, x := range to.ingest(tb, repo, node.OriginReplica, cs...) {
		if x.Status == node.Rejected {
			tb.Fatalf("replicating %s: %v", repo, x.Err)
		}
	}
}
