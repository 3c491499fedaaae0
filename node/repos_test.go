package node_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/node"
	"github.com/goat-gateway/goat-gateway/storage"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

func TestNode_Authorize(t *testing.T) {
	e := openWithRules(t)
	alice, editor := user("alice"), user("erin", "editor")
	for _, c := range []struct {
		name  string
		p     auth.Principal
		repo  string
		write bool
		want  error
	}{
		{"OwnNamespaceWrite", alice, "user.alice.notes", true, nil},
		{"OtherNamespaceRead", alice, "user.bob.notes", false, core.ErrNotFound},
		{"OtherNamespaceWrite", alice, "user.bob.notes", true, core.ErrNotFound},
		{"ReadableRead", alice, "public.news", false, nil},
		{"ReadableNotWritable", alice, "public.news", true, core.ErrForbidden},
		{"EditorWrites", editor, "public.news", true, nil},
		{"AnonymousRead", auth.Anonymous(), "public.news", false, core.ErrNotFound},
		{"NoRule", alice, "elsewhere", false, core.ErrNotFound},
		{"UserWritesSysSessions", alice, auth.SessionsRepo, true, core.ErrForbidden},
		{"NodeWritesAnything", nodePrincipal, "user.bob.notes", true, nil},
		{"BadName", alice, "user.alice/notes", false, core.ErrInvalid},
		{"DotDot", alice, "user..alice", false, core.ErrInvalid},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := e.n.Authorize(c.p, c.repo, c.write)
			if !c.write {
				if got, want := e.n.CanRead(c.p, c.repo), c.want == nil; got != want {
					t.Fatalf("CanRead=%v, want %v", got, want)
				}
			}
			if c.want == nil {
				if err != nil {
					t.Fatalf("Authorize(%s, %s, write=%v)=%v, want nil", c.p, c.repo, c.write, err)
				}
				return
			}
			wantErr(t, c.name, err, c.want)
		})
	}
}

func TestNode_Open(t *testing.T) {
	e := openWithRules(t)
	alice, bob := user("alice"), user("bob")
	e.createRepo(t, alice, "user.alice.notes")
	e.createRepo(t, user("erin", "editor"), "public.news")

	t.Run("Readable", func(t *testing.T) {
		r, err := e.n.Open(alice, "public.news", false)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Release()
		if got, want := r.Info().Name, "public.news"; got != want {
			t.Fatalf("Info().Name=%q, want %q", got, want)
		}
	})
	t.Run("UnreadableIsNotFound", func(t *testing.T) {
		_, err := e.n.Open(bob, "user.alice.notes", false)
		wantErr(t, "bob opens alice's repository", err, core.ErrNotFound)
	})
	t.Run("ReadableButNotWritableIsForbiddenOnWrites", func(t *testing.T) {
		_, err := e.n.Open(alice, "public.news", true)
		wantErr(t, "alice opens public.news for writing", err, core.ErrForbidden)
	})
	t.Run("MissingIsNotFound", func(t *testing.T) {
		_, err := e.n.Open(alice, "user.alice.missing", false)
		wantErr(t, "missing repository", err, core.ErrNotFound)
	})
	t.Run("CreateRepoNeedsWrite", func(t *testing.T) {
		_, _, err := e.n.CreateRepo(context.Background(), alice, "public.other")
		wantErr(t, "alice creates public.other", err, core.ErrForbidden)
		_, _, err = e.n.CreateRepo(context.Background(), bob, "user.alice.other")
		wantErr(t, "bob creates in alice's namespace", err, core.ErrNotFound)
		if _, err := e.n.State("public.other"); err == nil {
			t.Fatal("a refused CreateRepo created the repository")
		}
	})
	t.Run("ListReposShowsOnlyReadable", func(t *testing.T) {
		e.createRepo(t, bob, "user.bob.a")
		got, more, err := e.n.ListRepos(alice, "", "", 100)
		if err != nil {
			t.Fatal(err)
		}
		// Authenticated callers read the system repositories (peers need
		// the session keys), not bob's.
		if want := []string{"public.news", auth.SchemasRepo, auth.SessionsRepo, "user.alice.notes"}; more || !slices.Equal(got, want) {
			t.Fatalf("ListRepos(alice)=%v (more %v), want %v", got, more, want)
		}
		got, more, err = e.n.ListRepos(alice, "", "", 1)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"public.news"}; !more || !slices.Equal(got, want) {
			t.Fatalf("ListRepos(alice, limit 1)=%v (more %v), want %v and more", got, more, want)
		}
		got, _, err = e.n.ListRepos(alice, "", auth.SessionsRepo, 100)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"user.alice.notes"}; !slices.Equal(got, want) {
			t.Fatalf("ListRepos(alice, after %s)=%v, want %v", auth.SessionsRepo, got, want)
		}
		got, _, err = e.n.ListRepos(bob, "user.", "", 100)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"user.bob.a"}; !slices.Equal(got, want) {
			t.Fatalf("ListRepos(bob, prefix user.)=%v, want %v", got, want)
		}
	})
}

func TestNode_CreateRepo(t *testing.T) {
	e := openDev(t)
	alice := user("alice")
	info, created, err := e.n.CreateRepo(context.Background(), alice, "notes")
	if err != nil {
		t.Fatal(err)
	}
	if !created || info.Name != "notes" || info.Count != 0 {
		t.Fatalf("CreateRepo = %+v, created %v; want an empty notes, true", info, created)
	}
	a := e.newAuthor(t, alice)
	e.mustAppend(t, "notes", node.OriginClient, a.commit(t, e.clock.UnixMilli(), "notes", "k", "", map[string]any{}))
	info, created, err = e.n.CreateRepo(context.Background(), alice, "notes")
	if err != nil {
		t.Fatal(err)
	}
	if created || info.Count != 1 || info.Items != 1 {
		t.Fatalf("CreateRepo again = %+v, created %v; want the existing repository with one commit", info, created)
	}
}

func TestNode_Push(t *testing.T) {
	ctx := context.Background()
	e := openWithRules(t)
	alice, bob := user("alice"), user("bob")
	a := e.newAuthor(t, alice)
	e.createRepo(t, alice, "user.alice.notes")
	c := a.commit(t, e.clock.UnixMilli(), "user.alice.notes", "k", "", map[string]any{})

	_, err := e.n.Push(ctx, bob, "user.alice.notes", []*core.Commit{c})
	wantErr(t, "bob pushes to alice's repository", err, core.ErrNotFound)
	res, err := e.n.Push(ctx, alice, "user.alice.notes", []*core.Commit{c})
	if err != nil || res[0].Status != node.Appended {
		t.Fatalf("alice pushes: %v, %v; want appended", res, err)
	}
	if res, err := e.n.Push(ctx, alice, "user.alice.notes", nil); err != nil || len(res) != 0 {
		t.Fatalf("empty push = %v, %v; want no results", res, err)
	}
	tooMany := make([]*core.Commit, node.MaxCommitsPerRequest+1)
	for i := range tooMany {
		tooMany[i] = c
	}
	_, err = e.n.Push(ctx, alice, "user.alice.notes", tooMany)
	wantErr(t, "a push of too many commits", err, core.ErrTooLarge)

	// A node principal's push is a replica's: it is not authorized again.
	b := e.newAuthor(t, bob)
	cb := b.commit(t, e.clock.UnixMilli(), "user.alice.notes", "b", "", map[string]any{})
	res, err = e.n.Push(ctx, nodePrincipal, "user.alice.notes", []*core.Commit{cb})
	if err != nil || res[0].Status != node.Appended {
		t.Fatalf("a node pushes bob's commit: %v, %v; want appended", res, err)
	}
	if rec := e.obs.waitRecord(t, "user.alice.notes", cb.ID); node.Origin(rec.Origin) != node.OriginReplica {
		t.Fatalf("a node's push has origin %v, want replica", node.Origin(rec.Origin))
	}
}

func TestNode_SyncRound(t *testing.T) {
	ctx := context.Background()
	e := openWithRules(t)
	alice := user("alice")
	a := e.newAuthor(t, alice)
	e.createRepo(t, alice, "user.alice.notes")
	ts := e.clock.UnixMilli()
	c1 := a.commit(t, ts, "user.alice.notes", "k1", "", map[string]any{"v": 1.0})
	c2 := a.commit(t, ts, "user.alice.notes", "k2", "", map[string]any{"v": 2.0})
	e.mustAppend(t, "user.alice.notes", node.OriginClient, c1, c2)
	info, err := e.n.State("user.alice.notes")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("EqualDigestIsInSync", func(t *testing.T) {
		req := &gsync.Request{Count: int64(info.Count), Digest: gsync.Sum(info.Digest)}
		resp, results, err := e.n.SyncRound(ctx, alice, "user.alice.notes", req, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !resp.InSync || len(resp.Commits) != 0 || len(results) != 0 {
			t.Fatalf("response %+v, results %v; want inSync and nothing else", resp, results)
		}
		if got, want := resp.Count, int64(2); got != want {
			t.Fatalf("count=%d, want %d", got, want)
		}
	})

	t.Run("EmptyClientGetsEverything", func(t *testing.T) {
		resp, _, err := e.n.SyncRound(ctx, alice, "user.alice.notes", &gsync.Request{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.InSync {
			t.Fatal("an empty client is in sync with a repository of 2 commits")
		}
		var got []core.CommitID
		for _, raw := range resp.Commits {
			c, err := core.DecodeCommit(raw)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, c.ID)
		}
		slices.SortFunc(got, core.CommitID.Compare)
		want := []core.CommitID{c1.ID, c2.ID}
		slices.SortFunc(want, core.CommitID.Compare)
		if !slices.Equal(got, want) {
			t.Fatalf("commits %v, want %v", got, want)
		}
	})

	t.Run("CommitsAreIngestedFirst", func(t *testing.T) {
		c3 := a.commit(t, ts, "user.alice.notes", "k3", "", map[string]any{"v": 3.0})
		raw, err := c3.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		// The client already holds c1, c2 and c3: after ingesting c3 the
		// node is in sync with it.
		var d gsync.Digest
		for _, id := range []core.CommitID{c1.ID, c2.ID, c3.ID} {
			d.Add(id)
		}
		req := &gsync.Request{Count: d.Count, Digest: d.XOR, Commits: []json.RawMessage{raw}}
		resp, results, err := e.n.SyncRound(ctx, alice, "user.alice.notes", req, []*core.Commit{c3})
		if err != nil {
			t.Fatal(err)
		}
		if len(results) != 1 || results[0].Status != node.Appended {
			t.Fatalf("results %v, want c3 appended", results)
		}
		if !resp.InSync {
			t.Fatalf("response %+v, want inSync after ingesting c3", resp)
		}
	})

	t.Run("CommitsNeedWrite", func(t *testing.T) {
		e.createRepo(t, user("erin", "editor"), "public.news")
		c := a.commit(t, ts, "public.news", "k", "", map[string]any{})
		raw, err := c.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		req := &gsync.Request{Commits: []json.RawMessage{raw}}
		_, _, err = e.n.SyncRound(ctx, alice, "public.news", req, []*core.Commit{c})
		wantErr(t, "a reader sends commits", err, core.ErrForbidden)
		if _, _, err := e.n.SyncRound(ctx, alice, "public.news", &gsync.Request{}, nil); err != nil {
			t.Fatalf("a reader syncs without commits: %v", err)
		}
		_, _, err = e.n.SyncRound(ctx, user("bob"), "user.alice.notes", &gsync.Request{}, nil)
		wantErr(t, "bob syncs alice's repository", err, core.ErrNotFound)
	})
}

func TestNode_Local(t *testing.T) {
	ctx := context.Background()
	e := openDev(t)
	alice := user("alice")
	a := e.newAuthor(t, alice)
	ts := e.clock.UnixMilli()
	c1 := a.commit(t, ts, "healed", "k", "", map[string]any{"v": 1.0})
	c2 := a.commit(t, ts, "healed", "k", "", map[string]any{"v": 2.0}, c1.ID)

	l, release, err := e.n.Local("healed", node.OriginReplica)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if got, want := e.obs.createdSoFar(), []created{{"healed", node.OriginReplica}}; !slices.Equal(got, want) {
		t.Fatalf("Created calls %v, want %v", got, want)
	}

	err = l.Ingest(ctx, []*core.Commit{c2})
	wantErr(t, "a commit whose parent is missing", err, core.ErrMissingParents)
	if err := l.Ingest(ctx, []*core.Commit{c1, c2}); err != nil {
		t.Fatalf("Ingest with the parent: %v", err)
	}
	if got, want := l.Digest().Count, int64(2); got != want {
		t.Fatalf("a live Local's digest counts %d commits, want %d", got, want)
	}
	if _, ok := l.Get(c2.ID); !ok {
		t.Fatal("Get does not find an ingested commit")
	}

	forged := a.commit(t, ts, "healed", "f", "", map[string]any{})
	forged.Sig = append([]byte(nil), forged.Sig...)
	forged.Sig[0] ^= 1
	err = l.Ingest(ctx, []*core.Commit{forged})
	if err == nil || errors.Is(err, core.ErrMissingParents) {
		t.Fatalf("Ingest of a forged commit: %v, want an error other than missing parents", err)
	}
	wantErr(t, "Ingest of a forged commit", err, core.ErrBadSignature)

	_, _, err = e.n.Local("never", node.Origin(7))
	wantErr(t, "Local with an unknown origin", err, core.ErrInvalid)
	if _, err := e.n.State("never"); err == nil {
		t.Fatal("Local with an unknown origin created the repository")
	}

	// A replica's commits are not authorized against the rules, a
	// client's are.
	rules := openWithRules(t)
	b := rules.newAuthor(t, user("bob"))
	cb := b.commit(t, rules.clock.UnixMilli(), "user.alice.x", "k", "", map[string]any{})
	replica, releaseReplica, err := rules.n.Local("user.alice.x", node.OriginReplica)
	if err != nil {
		t.Fatal(err)
	}
	defer releaseReplica()
	client, releaseClient, err := rules.n.Local("user.alice.y", node.OriginClient)
	if err != nil {
		t.Fatal(err)
	}
	defer releaseClient()
	if err := replica.Ingest(ctx, []*core.Commit{cb}); err != nil {
		t.Fatalf("a replica's Local ingests bob's commit: %v", err)
	}
	cy := b.commit(t, rules.clock.UnixMilli(), "user.alice.y", "k", "", map[string]any{})
	wantErr(t, "a client's Local ingests bob's commit", client.Ingest(ctx, []*core.Commit{cy}), core.ErrForbidden)
}

func TestStorage_ResultsError(t *testing.T) {
	var id core.CommitID
	missing := node.Result{ID: id, Status: node.Rejected, Err: fmt.Errorf("x: %w", core.ErrMissingParents)}
	bad := node.Result{ID: id, Status: node.Rejected, Err: fmt.Errorf("x: %w", core.ErrBadSignature)}
	ok := node.Result{ID: id, Status: node.Appended}
	dup := node.Result{ID: id, Status: node.Duplicate}
	for _, c := range []struct {
		name    string
		res     []node.Result
		want    error // nil: no error
		missing bool  // the error wraps ErrMissingParents
	}{
		{"Empty", nil, nil, false},
		{"AllStored", []node.Result{ok, dup}, nil, false},
		{"OnlyMissingParents", []node.Result{ok, missing, missing}, core.ErrMissingParents, true},
		{"OtherRejection", []node.Result{ok, bad}, core.ErrBadSignature, false},
		{"OtherRejectionWins", []node.Result{missing, bad}, core.ErrBadSignature, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := storage.ResultsError(c.res)
			if c.want == nil {
				if err != nil {
					t.Fatalf("ResultsError=%v, want nil", err)
				}
				return
			}
			wantErr(t, c.name, err, c.want)
			if got := errors.Is(err, core.ErrMissingParents); got != c.missing {
				t.Fatalf("ResultsError=%v wraps ErrMissingParents: %v, want %v", err, got, c.missing)
			}
		})
	}
}

func TestNode_PushEncoded(t *testing.T) {
	ctx := context.Background()
	e := openWithRules(t)
	alice := user("alice")
	a := e.newAuthor(t, alice)
	e.createRepo(t, alice, "user.alice.notes")
	ts := e.clock.UnixMilli()
	good := a.commit(t, ts, "user.alice.notes", "k1", "", map[string]any{"v": 1.0})
	forged := a.commit(t, ts, "user.alice.notes", "k2", "", map[string]any{"v": 2.0})
	_, other, _ := ed25519.GenerateKey(nil)
	forged.Sig = ed25519.Sign(other, forged.ID[:])
	plain := a.commit(t, ts, "user.alice.notes", "k3", "", map[string]any{"v": 3.0})
	enc := func(c *core.Commit) []byte {
		b, err := c.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	_, err := e.n.PushEncoded(ctx, alice, "user.alice.notes", []*core.Commit{good}, [][]byte{})
	wantErr(t, "fewer encodings than commits", err, core.ErrInvalid)

	// The encoded commits as Push treats them: the one whose signature is
	// another key's is rejected though its id was vouched for; a commit
	// without an encoding is checked whole.
	res, err := e.n.PushEncoded(ctx, alice, "user.alice.notes", []*core.Commit{good, forged, plain}, [][]byte{enc(good), enc(forged), nil})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Status != node.Appended || res[1].Status != node.Rejected || !errors.Is(res[1].Err, core.ErrBadSignature) || res[2].Status != node.Appended {
		t.Fatalf("results %+v; want appended, rejected (bad signature), appended", res)
	}
	for _, c := range []*core.Commit{good, plain} {
		rec, _ := e.record(t, "user.alice.notes", c.ID)
		if string(rec.JSON) != string(enc(c)) {
			t.Fatalf("stored %s, want %s", rec.JSON, enc(c))
		}
	}
	res, err = e.n.PushEncoded(ctx, alice, "user.alice.notes", []*core.Commit{good}, [][]byte{enc(good)})
	if err != nil || res[0].Status != node.Duplicate {
		t.Fatalf("pushed again: %+v, %v; want duplicate", res, err)
	}
}
