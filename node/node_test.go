package node_test

import (
	"context"
	"fmt"
	"slices"
	stdsync "sync"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
	"github.com/goat-gateway/goat-gateway/node"
)

func TestNode_Ingest(t *testing.T) {
	ctx := context.Background()
	alice := user("alice")

	t.Run("ClientCommitIsAppended", func(t *testing.T) {
		e := openDev(t)
		a := e.newAuthor(t, alice)
		e.createRepo(t, alice, "notes")
		c := a.commit(t, e.clock.UnixMilli(), "notes", "k", "", map[string]any{"x": 1.0})
		res := e.ingest(t, "notes", node.OriginClient, c)
		if got, want := res[0].Status, node.Appended; got != want {
			t.Fatalf("status=%v (%v), want %v", got, res[0].Err, want)
		}
		if got, want := res[0].ID, c.ID; got != want {
			t.Fatalf("result id=%s, want %s", got, want)
		}
		if res[0].Seq == 0 || res[0].Err != nil {
			t.Fatalf("appended result %+v: want a seq and no error", res[0])
		}
		if !e.n.Has("notes", c.ID) {
			t.Fatal("the appended commit is not in the repository")
		}
		if got, want := e.n.Ingested(), uint64(1); got < want {
			t.Fatalf("Ingested()=%d, want at least %d", got, want)
		}
	})

	t.Run("DuplicateIsDuplicate", func(t *testing.T) {
		e := openDev(t)
		a := e.newAuthor(t, alice)
		e.createRepo(t, alice, "notes")
		c := a.commit(t, e.clock.UnixMilli(), "notes", "k", "", map[string]any{"x": 1.0})
		first := e.mustAppend(t, "notes", node.OriginClient, c)
		last := e.n.LastSeq()
		again := e.ingest(t, "notes", node.OriginClient, c, c)
		for i, r := range again {
			if got, want := r.Status, node.Duplicate; got != want {
				t.Fatalf("commit %d: status=%v (%v), want %v", i, got, r.Err, want)
			}
			if got, want := r.Seq, first[0].Seq; got != want {
				t.Fatalf("commit %d: duplicate seq=%d, want the original %d", i, got, want)
			}
		}
		if got, want := e.n.LastSeq(), last; got != want {
			t.Fatalf("LastSeq=%d after duplicates, want %d", got, want)
		}
	})

	t.Run("SameCommitTwiceInOneBatch", func(t *testing.T) {
		e := openDev(t)
		a := e.newAuthor(t, alice)
		e.createRepo(t, alice, "notes")
		c := a.commit(t, e.clock.UnixMilli(), "notes", "k", "", map[string]any{"x": 1.0})
		res := e.ingest(t, "notes", node.OriginClient, c, c)
		if got, want := res[0].Status, node.Appended; got != want {
			t.Fatalf("first copy: status=%v, want %v", got, want)
		}
		if got, want := res[1].Status, node.Duplicate; got != want {
			t.Fatalf("second copy: status=%v, want %v", got, want)
		}
		if got, want := e.history(t, "notes", "k"), 1; len(got) != want {
			t.Fatalf("history has %d commits, want %d", len(got), want)
		}
	})

	t.Run("ForgedSignatureIsRejected", func(t *testing.T) {
		e := openDev(t)
		a := e.newAuthor(t, alice)
		e.createRepo(t, alice, "notes")
		mallory := newSigner(t, "mallory")
		c := mallory.commit(t, e.clock.UnixMilli(), "notes", "k", "", map[string]any{"x": 1.0})
		c.Author = a.id // claims alice's session, signed by another key
		if err := c.Sign(mallory.key); err != nil {
			t.Fatal(err)
		}
		res := e.ingest(t, "notes", node.OriginClient, c)
		wantRejected(t, "forged", res[0], core.ErrBadSignature)
		if e.n.Has("notes", c.ID) {
			t.Fatal("a forged commit was stored")
		}
	})

	t.Run("UnknownSessionIsRejected", func(t *testing.T) {
		e := openDev(t)
		e.createRepo(t, alice, "notes")
		stranger := newSigner(t, "alice")
		c := stranger.commit(t, e.clock.UnixMilli(), "notes", "k", "", map[string]any{"x": 1.0})
		res := e.ingest(t, "notes", node.OriginClient, c)
		wantRejected(t, "unknown session", res[0], core.ErrUnauthenticated)
	})

	t.Run("BadSchemaIsRejected", func(t *testing.T) {
		e := openDev(t)
		a := e.newAuthor(t, alice)
		e.createRepo(t, alice, "notes")
		e.putSchema(t, alice, "task", 1, taskSchema())
		ts := e.clock.UnixMilli()
		for name, c := range map[string]*core.Commit{
			"WrongType":       a.commit(t, ts, "notes", "k1", "task/1", map[string]any{"title": 1.0}),
			"MissingRequired": a.commit(t, ts, "notes", "k2", "task/1", map[string]any{"done": true}),
			"UnknownField":    a.commit(t, ts, "notes", "k3", "task/1", map[string]any{"title": "a", "color": "red"}),
			"UnknownSchema":   a.commit(t, ts, "notes", "k4", "nope/1", map[string]any{"title": "a"}),
		} {
			t.Run(name, func(t *testing.T) {
				res := e.ingest(t, "notes", node.OriginClient, c)
				wantRejected(t, name, res[0], core.ErrSchema)
			})
		}
		good := a.commit(t, ts, "notes", "k5", "task/1", map[string]any{"title": "a"})
		e.mustAppend(t, "notes", node.OriginClient, good)
	})

	t.Run("TamperedCommitIsRejected", func(t *testing.T) {
		e := openDev(t)
		a := e.newAuthor(t, alice)
		e.createRepo(t, alice, "notes")
		c := a.commit(t, e.clock.UnixMilli(), "notes", "k", "", map[string]any{"x": 1.0})
		c.Data = map[string]any{"x": 2.0} // the id no longer matches
		res := e.ingest(t, "notes", node.OriginClient, c)
		wantRejected(t, "tampered", res[0], core.ErrInvalid)
	})

	t.Run("BadCommitDoesNotSinkTheBatch", func(t *testing.T) {
		e := openDev(t)
		a := e.newAuthor(t, alice)
		e.createRepo(t, alice, "notes")
		ts := e.clock.UnixMilli()
		c1 := a.commit(t, ts, "notes", "k", "", map[string]any{"v": 1.0})
		forged := a.commit(t, ts, "notes", "f", "", map[string]any{"v": 1.0})
		forged.Sig = slices.Clone(forged.Sig)
		forged.Sig[0] ^= 1
		c2 := a.commit(t, ts, "notes", "k", "", map[string]any{"v": 2.0}, c1.ID)
		unknown := newSigner(t, "alice").commit(t, ts, "notes", "u", "", map[string]any{})
		orphan := a.commit(t, ts, "notes", "o", "", map[string]any{}, a.commit(t, ts, "notes", "o", "", map[string]any{"never": "sent"}).ID)
		other := a.commit(t, ts, "elsewhere", "k", "", map[string]any{})
		batch := []*core.Commit{c1, forged, c2, unknown, orphan, other}
		res := e.ingest(t, "notes", node.OriginClient, batch...)
		for i, c := range batch {
			if got, want := res[i].ID, c.ID; got != want {
				t.Fatalf("result %d is for %s, want %s (results in the caller's order)", i, got, want)
			}
		}
		if res[0].Status != node.Appended || res[2].Status != node.Appended {
			t.Fatalf("good commits: %v (%v), %v (%v), want appended", res[0].Status, res[0].Err, res[2].Status, res[2].Err)
		}
		wantRejected(t, "forged", res[1], core.ErrBadSignature)
		wantRejected(t, "unknown session", res[3], core.ErrUnauthenticated)
		wantRejected(t, "orphan", res[4], core.ErrMissingParents)
		wantRejected(t, "other repository", res[5], core.ErrInvalid)
		if got, want := e.peekValue(t, "notes", "k").Head, c2.ID; got != want {
			t.Fatalf("head=%s, want %s", got, want)
		}
	})

	t.Run("ClientNeedsAnExistingRepository", func(t *testing.T) {
		e := openDev(t)
		a := e.newAuthor(t, alice)
		c := a.commit(t, e.clock.UnixMilli(), "missing", "k", "", map[string]any{})
		_, err := e.n.Ingest(ctx, "missing", []*core.Commit{c}, node.OriginClient)
		wantErr(t, "Ingest into a missing repository", err, core.ErrNotFound)
		if _, err := e.n.State("missing"); err == nil {
			t.Fatal("a client's ingest created the repository")
		}
	})

	t.Run("InvalidRepositoryName", func(t *testing.T) {
		e := openDev(t)
		_, err := e.n.Ingest(ctx, "Not/A/Name", nil, node.OriginReplica)
		wantErr(t, "Ingest with a bad name", err, core.ErrInvalid)
	})

	t.Run("ReplicaSkipsTheRules", func(t *testing.T) {
		e := openWithRules(t)
		bob := user("bob")
		b := e.newAuthor(t, bob) // bob may write user.bob.* only
		e.createRepo(t, alice, "user.alice.notes")
		ts := e.clock.UnixMilli()
		c := b.commit(t, ts, "user.alice.notes", "k", "", map[string]any{"by": "bob"})
		res := e.ingest(t, "user.alice.notes", node.OriginClient, c)
		wantRejected(t, "bob's commit as a client", res[0], core.ErrForbidden)
		res = e.ingest(t, "user.alice.notes", node.OriginReplica, c)
		if got, want := res[0].Status, node.Appended; got != want {
			t.Fatalf("bob's commit as a replica: status=%v (%v), want %v", got, res[0].Err, want)
		}
	})

	t.Run("ReplicaCreatesAMissingRepository", func(t *testing.T) {
		e := openWithRules(t)
		a := e.newAuthor(t, alice)
		c := a.commit(t, e.clock.UnixMilli(), "user.alice.new", "k", "", map[string]any{})
		e.mustAppend(t, "user.alice.new", node.OriginReplica, c)
		repos, err := e.n.Repos()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(repos, "user.alice.new") {
			t.Fatalf("Repos()=%v, want user.alice.new in it", repos)
		}
	})

	t.Run("ReplicaStillVerifiesSignatures", func(t *testing.T) {
		e := openDev(t)
		a := e.newAuthor(t, alice)
		ts := e.clock.UnixMilli()
		forged := a.commit(t, ts, "notes", "k", "", map[string]any{})
		forged.Sig = slices.Clone(forged.Sig)
		forged.Sig[3] ^= 0x80
		unknown := newSigner(t, "alice").commit(t, ts, "notes", "u", "", map[string]any{})
		badSchema := a.commit(t, ts, "notes", "s", "nope/1", map[string]any{})
		res := e.ingest(t, "notes", node.OriginReplica, forged, unknown, badSchema)
		wantRejected(t, "forged", res[0], core.ErrBadSignature)
		wantRejected(t, "unknown session", res[1], core.ErrUnauthenticated)
		wantRejected(t, "bad schema", res[2], core.ErrSchema)
	})

	t.Run("GatewayOriginIsNotVerified", func(t *testing.T) {
		// The node's own commits are built and signed here: Ingest takes
		// them as they are. Callers must never pass a caller's commits so.
		e := openDev(t)
		e.createRepo(t, alice, "notes")
		c := newSigner(t, "x").commit(t, e.clock.UnixMilli(), "notes", "k", "", map[string]any{})
		e.mustAppend(t, "notes", node.OriginGateway, c)
	})

	t.Run("UnknownOriginIsInvalid", func(t *testing.T) {
		e := openDev(t)
		a := e.newAuthor(t, alice)
		e.createRepo(t, alice, "notes")
		c := a.commit(t, e.clock.UnixMilli(), "notes", "k", "", map[string]any{})
		for _, repo := range []string{"notes", "missing"} {
			t.Run(repo, func(t *testing.T) {
				_, err := e.n.Ingest(ctx, repo, []*core.Commit{c}, node.Origin(7))
				wantErr(t, "Ingest with origin 7", err, core.ErrInvalid)
			})
		}
		if e.n.Has("notes", c.ID) {
			t.Fatal("a commit of an unknown origin was stored")
		}
	})
}

func TestOrigin_String(t *testing.T) {
	for o, want := range map[node.Origin]string{
		node.OriginGateway: "gateway", node.OriginClient: "client", node.OriginReplica: "replica", node.Origin(9): "origin(9)",
	} {
		if got := o.String(); got != want {
			t.Errorf("Origin(%d).String()=%q, want %q", uint8(o), got, want)
		}
	}
}

func TestOriginOf(t *testing.T) {
	if got, want := node.OriginOf(user("alice")), node.OriginClient; got != want {
		t.Fatalf("OriginOf(user)=%v, want %v", got, want)
	}
	if got, want := node.OriginOf(nodePrincipal), node.OriginReplica; got != want {
		t.Fatalf("OriginOf(node)=%v, want %v", got, want)
	}
}

func TestNode_Observer(t *testing.T) {
	ctx := context.Background()
	alice := user("alice")

	t.Run("CreatedOncePerRepositoryWithItsOrigin", func(t *testing.T) {
		e := openDev(t)
		a := e.newAuthor(t, alice)
		e.createRepo(t, alice, "by-client")
		e.createRepo(t, alice, "by-client") // exists: no event
		e.createRepo(t, nodePrincipal, "by-node")
		e.mustAppend(t, "by-replica", node.OriginReplica, a.commit(t, e.clock.UnixMilli(), "by-replica", "k", "", map[string]any{}))
		e.mustAppend(t, "by-replica", node.OriginReplica, a.commit(t, e.clock.UnixMilli(), "by-replica", "k2", "", map[string]any{}))
		if made, err := e.n.Ensure(ctx, "by-gateway", node.OriginGateway); err != nil || !made {
			t.Fatalf("Ensure of a new repository = %v, %v; want true, nil", made, err)
		}
		if made, err := e.n.Ensure(ctx, "by-gateway", node.OriginGateway); err != nil || made {
			t.Fatalf("Ensure of an existing repository = %v, %v; want false, nil", made, err)
		}
		_, release, err := e.n.Local("by-heal", node.OriginReplica)
		if err != nil {
			t.Fatal(err)
		}
		release()
		want := []created{
			{"by-client", node.OriginClient},
			{"by-node", node.OriginReplica},
			{"by-replica", node.OriginReplica},
			{"by-gateway", node.OriginGateway},
			{"by-heal", node.OriginReplica},
		}
		if got := e.obs.createdSoFar(); !slices.Equal(got, want) {
			t.Fatalf("Created calls %v, want %v", got, want)
		}
	})

	t.Run("AppendedCarriesTheOrigin", func(t *testing.T) {
		e := openDev(t)
		a := e.newAuthor(t, alice)
		e.createRepo(t, alice, "notes")
		ts := e.clock.UnixMilli()
		base := a.commit(t, ts, "notes", "k", "", map[string]any{"v": 0.0})
		e.mustAppend(t, "notes", node.OriginClient, base)
		// Two concurrent edits in one batch: the node merges them.
		left := a.commit(t, ts+1, "notes", "k", "", map[string]any{"v": 1.0}, base.ID)
		right := a.commit(t, ts+2, "notes", "k", "", map[string]any{"v": 2.0}, base.ID)
		e.mustAppend(t, "notes", node.OriginClient, left, right)
		replicated := a.commit(t, ts, "notes", "r", "", map[string]any{})
		e.mustAppend(t, "notes", node.OriginReplica, replicated)
		v, _, err := e.n.WriteItem(ctx, alice, "notes", "w", nil, setData(map[string]any{"w": true}))
		if err != nil {
			t.Fatal(err)
		}

		merged := e.peekValue(t, "notes", "k").Head
		if _, mc := e.record(t, "notes", merged); !mc.IsMerge() {
			t.Fatalf("head of k is %s by %s, want a merge commit", merged, mc.Author)
		}
		for id, want := range map[core.CommitID]node.Origin{
			base.ID: node.OriginClient, left.ID: node.OriginClient, right.ID: node.OriginClient,
			merged: node.OriginGateway, replicated.ID: node.OriginReplica, v.Head: node.OriginGateway,
		} {
			rec := e.obs.waitRecord(t, "notes", id)
			if got := node.Origin(rec.Origin); got != want {
				t.Errorf("commit %s: origin=%v, want %v", id, got, want)
			}
		}
		sess := e.history(t, auth.SessionsRepo, e.commitAuthor(t, "notes", v.Head))
		if rec := e.obs.waitRecord(t, auth.SessionsRepo, sess[0].ID); node.Origin(rec.Origin) != node.OriginGateway {
			t.Errorf("custodial session record: origin=%v, want gateway", node.Origin(rec.Origin))
		}
	})

	t.Run("AppendedInSequenceOrder", func(t *testing.T) {
		e := openDev(t)
		a := e.newAuthor(t, alice)
		repos := []string{"r1", "r2", "r3"}
		for _, r := range repos {
			e.createRepo(t, alice, r)
		}
		var wg stdsync.WaitGroup
		for i := range 12 {
			wg.Go(func() {
				repo := repos[i%len(repos)]
				c := a.commit(t, e.clock.UnixMilli(), repo, fmt.Sprintf("k%d", i), "", map[string]any{"i": float64(i)})
				if _, err := e.n.Ingest(ctx, repo, []*core.Commit{c}, node.OriginClient); err != nil {
					t.Errorf("Ingest: %v", err)
				}
			})
		}
		wg.Wait()
		last := e.n.LastSeq()
		e.obs.waitSeq(t, last)
		e.obs.mu.Lock()
		defer e.obs.mu.Unlock()
		var prev uint64
		for _, x := range e.obs.appended {
			if x.rec.Seq <= prev {
				t.Fatalf("observer saw seq %d after %d: not in increasing order", x.rec.Seq, prev)
			}
			prev = x.rec.Seq
		}
		for _, call := range e.obs.calls {
			if len(call) == 0 {
				t.Fatal("Appended called with no records")
			}
		}
	})
}

// waitSeq waits until the observer has seen sequence number seq.
func (o *observer) waitSeq(tb testing.TB, seq uint64) {
	tb.Helper()
	for {
		o.mu.Lock()
		seen := len(o.appended) > 0 && o.appended[len(o.appended)-1].rec.Seq >= seq
		o.mu.Unlock()
		if seen {
			return
		}
		goattest.Recv(tb, o.signal, fmt.Sprintf("the observer to see seq %d", seq))
	}
}

// commitAuthor returns the author of commit id of repo.
func (e *env) commitAuthor(tb testing.TB, repo string, id core.CommitID) string {
	tb.Helper()
	_, c := e.record(tb, repo, id)
	return c.Author
}

func TestNode_Barrier(t *testing.T) {
	ctx := context.Background()
	alice := user("alice")

	t.Run("IngestWaitsForItsOwnMaxSeq", func(t *testing.T) {
		e := openDev(t)
		a := e.newAuthor(t, alice)
		e.createRepo(t, alice, "notes")
		e.bar.take()
		ts := e.clock.UnixMilli()
		batch := []*core.Commit{
			a.commit(t, ts, "notes", "a", "", map[string]any{}),
			a.commit(t, ts, "notes", "b", "", map[string]any{}),
			a.commit(t, ts, "notes", "c", "", map[string]any{}),
		}
		res := e.mustAppend(t, "notes", node.OriginClient, batch...)
		var maxSeq uint64
		for _, r := range res {
			maxSeq = max(maxSeq, r.Seq)
		}
		want := []node.Write{{Repo: "notes", Seq: maxSeq}}
		if got := e.bar.take(); !slices.Equal(got, want) {
			t.Fatalf("barrier saw %+v, want %+v", got, want)
		}

		t.Run("DuplicatesWaitForWhatIsPresent", func(t *testing.T) {
			mid := res[1].Seq
			e.ingest(t, "notes", node.OriginClient, batch[1])
			want := []node.Write{{Repo: "notes", Seq: mid}}
			if got := e.bar.take(); !slices.Equal(got, want) {
				t.Fatalf("barrier saw %+v, want %+v", got, want)
			}
		})

		t.Run("RejectedOnlyIsNotWaitedFor", func(t *testing.T) {
			forged := newSigner(t, "alice").commit(t, ts, "notes", "x", "", map[string]any{})
			e.ingest(t, "notes", node.OriginClient, forged)
			if got := e.bar.take(); len(got) != 0 {
				t.Fatalf("barrier saw %+v for a write that appended nothing, want nothing", got)
			}
		})

		t.Run("NotALaterWritesSeq", func(t *testing.T) {
			// A write that triggers a merge waits for its own commits,
			// not for the merge commit appended after them.
			base := batch[0]
			l := a.commit(t, ts+1, "notes", "a", "", map[string]any{"v": 1.0}, base.ID)
			r := a.commit(t, ts+2, "notes", "a", "", map[string]any{"v": 2.0}, base.ID)
			res := e.mustAppend(t, "notes", node.OriginClient, l, r)
			own := max(res[0].Seq, res[1].Seq)
			if e.n.LastSeq() <= own {
				t.Fatalf("LastSeq=%d, want a merge commit after seq %d", e.n.LastSeq(), own)
			}
			want := []node.Write{{Repo: "notes", Seq: own}}
			if got := e.bar.take(); !slices.Equal(got, want) {
				t.Fatalf("barrier saw %+v, want %+v", got, want)
			}
		})
	})

	t.Run("ConcurrentWritesWaitForTheirOwn", func(t *testing.T) {
		e := openDev(t)
		a := e.newAuthor(t, alice)
		e.createRepo(t, alice, "notes")
		e.bar.take()
		const writers = 16
		seqs := make([]uint64, writers)
		var wg stdsync.WaitGroup
		for i := range writers {
			wg.Go(func() {
				c := a.commit(t, e.clock.UnixMilli(), "notes", fmt.Sprintf("k%d", i), "", map[string]any{})
				res, err := e.n.Ingest(context.WithValue(ctx, tagKey{}, i), "notes", []*core.Commit{c}, node.OriginClient)
				if err != nil || res[0].Status != node.Appended {
					t.Errorf("writer %d: %v %v", i, res, err)
					return
				}
				seqs[i] = res[0].Seq
			})
		}
		wg.Wait()
		e.bar.mu.Lock()
		defer e.bar.mu.Unlock()
		if got, want := len(e.bar.writes), writers; got != want {
			t.Fatalf("barrier saw %d writes, want %d", got, want)
		}
		for j, w := range e.bar.writes {
			i := e.bar.tags[j].(int)
			if got, want := w.Seq, seqs[i]; got != want {
				t.Errorf("writer %d: barrier waited for seq %d, want its own %d", i, got, want)
			}
		}
	})

	t.Run("AcknowledgementWaitsForTheBarrier", func(t *testing.T) {
		e := openDev(t)
		a := e.newAuthor(t, alice)
		e.createRepo(t, alice, "notes")
		entered, release := make(chan node.Write, 1), make(chan struct{})
		e.bar.mu.Lock()
		e.bar.hold = func(ctx context.Context, w node.Write) {
			entered <- w
			<-release
		}
		e.bar.mu.Unlock()
		c := a.commit(t, e.clock.UnixMilli(), "notes", "k", "", map[string]any{})
		done := make(chan error, 1)
		go func() {
			_, err := e.n.Ingest(ctx, "notes", []*core.Commit{c}, node.OriginClient)
			done <- err
		}()
		w := goattest.Recv(t, entered, "the barrier to be consulted")
		if !e.n.Has("notes", c.ID) {
			t.Fatalf("barrier consulted (%+v) before the commit was stored", w)
		}
		select {
		case err := <-done:
			t.Fatalf("Ingest returned (%v) while the barrier held the write", err)
		default:
		}
		close(release)
		if err := goattest.Recv(t, done, "Ingest to return"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("CreateRepo", func(t *testing.T) {
		e := openDev(t)
		e.createRepo(t, alice, "notes")
		want := []node.Write{{Repo: "notes", Created: true}}
		if got := e.bar.take(); !slices.Equal(got, want) {
			t.Fatalf("barrier saw %+v, want %+v", got, want)
		}
		e.createRepo(t, alice, "notes")
		if got := e.bar.take(); len(got) != 0 {
			t.Fatalf("barrier saw %+v for an existing repository, want nothing", got)
		}
	})

	t.Run("NothingForAReplica", func(t *testing.T) {
		e := openDev(t)
		a := e.newAuthor(t, alice)
		e.bar.take()
		c := a.commit(t, e.clock.UnixMilli(), "notes", "k", "", map[string]any{})
		e.mustAppend(t, "notes", node.OriginReplica, c)
		e.createRepo(t, nodePrincipal, "other")
		if _, err := e.n.Ensure(ctx, "third", node.OriginReplica); err != nil {
			t.Fatal(err)
		}
		if got := e.bar.take(); len(got) != 0 {
			t.Fatalf("barrier saw %+v for a replica's writes, want nothing", got)
		}
	})

	t.Run("SystemAndItemWrites", func(t *testing.T) {
		e := openDev(t)
		e.createRepo(t, alice, "notes")
		e.bar.take()

		a := e.newAuthor(t, alice)
		rec := e.history(t, auth.SessionsRepo, a.id)[0]
		if got, want := e.bar.take(), []node.Write{{Repo: auth.SessionsRepo, Seq: rec.Seq}}; !slices.Equal(got, want) {
			t.Fatalf("RegisterSession: barrier saw %+v, want %+v", got, want)
		}

		e.putSchema(t, alice, "task", 1, taskSchema())
		rec = e.history(t, auth.SchemasRepo, "task:1")[0]
		if got, want := e.bar.take(), []node.Write{{Repo: auth.SchemasRepo, Seq: rec.Seq}}; !slices.Equal(got, want) {
			t.Fatalf("PutSchema: barrier saw %+v, want %+v", got, want)
		}

		v, _, err := e.n.WriteItem(ctx, alice, "notes", "k", nil, setData(map[string]any{"x": 1.0}))
		if err != nil {
			t.Fatal(err)
		}
		item := e.history(t, "notes", "k")[0]
		sess := e.history(t, auth.SessionsRepo, e.commitAuthor(t, "notes", v.Head))[0]
		want := []node.Write{{Repo: auth.SessionsRepo, Seq: sess.Seq}, {Repo: "notes", Seq: item.Seq}}
		if got := e.bar.take(); !slices.Equal(got, want) {
			t.Fatalf("first WriteItem: barrier saw %+v, want %+v (custodial session, then the item)", got, want)
		}

		if _, err := e.n.RevokeSession(ctx, alice, a.id); err != nil {
			t.Fatal(err)
		}
		rec = e.history(t, auth.SessionsRepo, a.id)[0]
		if got, want := e.bar.take(), []node.Write{{Repo: auth.SessionsRepo, Seq: rec.Seq}}; !slices.Equal(got, want) {
			t.Fatalf("RevokeSession: barrier saw %+v, want %+v", got, want)
		}
	})
}

func TestNode_Close(t *testing.T) {
	ctx := context.Background()
	e := openDev(t)
	alice := user("alice")
	a := e.newAuthor(t, alice)
	e.createRepo(t, alice, "notes")
	if err := e.n.Ready(); err != nil {
		t.Fatalf("Ready of an open node: %v", err)
	}
	sub, err := e.n.Subscribe(alice, []string{"notes"}, 8)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.n.Close(); err != nil {
		t.Fatal(err)
	}
	goattest.Recv(t, sub.Gone(), "Gone to close when the node closes")
	wantErr(t, "Ready after Close", e.n.Ready(), core.ErrClosed)
	c := a.commit(t, e.clock.UnixMilli(), "notes", "k", "", map[string]any{})
	_, err = e.n.Ingest(ctx, "notes", []*core.Commit{c}, node.OriginClient)
	wantErr(t, "Ingest after Close", err, core.ErrClosed)
	if err := e.n.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestNode_Shutdown(t *testing.T) {
	e := openDev(t)
	alice := user("alice")
	e.createRepo(t, alice, "notes")
	sub, err := e.n.Subscribe(alice, []string{"notes"}, 8)
	if err != nil {
		t.Fatal(err)
	}
	e.n.Shutdown()
	goattest.Recv(t, sub.Gone(), "Gone to close on Shutdown")
	wantErr(t, "Ready after Shutdown", e.n.Ready(), core.ErrClosed)
	late, err := e.n.Subscribe(alice, []string{"notes"}, 8)
	if err != nil {
		t.Fatal(err)
	}
	goattest.Recv(t, late.Gone(), "a subscription after Shutdown to be born closed")
}

func TestOpen_LoadsSystemRepositories(t *testing.T) {
	dir := t.TempDir()
	alice := user("alice")
	e := open(t, node.Config{DataDir: dir, Dev: true})
	a := e.newAuthor(t, alice)
	e.putSchema(t, alice, "task", 1, taskSchema())
	if _, err := e.n.RevokeSession(context.Background(), alice, a.id); err != nil {
		t.Fatal(err)
	}
	if err := e.n.Close(); err != nil {
		t.Fatal(err)
	}

	e2 := open(t, node.Config{DataDir: dir, Dev: true})
	sess, err := e2.n.Session(context.Background(), alice, a.id)
	if err != nil {
		t.Fatalf("session after reopening: %v", err)
	}
	if got, want := sess.Revoked, e.clock.Now(); !got.Equal(want) {
		t.Fatalf("revoked=%v after reopening, want %v", got, want)
	}
	schemas, err := e2.n.Schemas(alice)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(schemas, func(s *core.Schema) bool { return s.Ref() == "task/1" }) {
		t.Fatal("task/1 is not known after reopening")
	}
	if !e2.n.RootPublicKey().Equal(e.n.RootPublicKey()) {
		t.Fatal("the root key changed across a reopen")
	}
	if got, want := e2.n.ID(), e.n.ID(); got != want {
		t.Fatalf("node id=%s after reopening, want %s", got, want)
	}
}

// Sessions already expired or revoked when a node starts are not loaded
// into memory, so a long history of sessions does not cost memory at every
// start; their records are still found on disk, and commits they signed
// while valid still verify.
func TestOpen_LoadsOnlyLiveSessions(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	alice := user("alice")
	e := open(t, node.Config{DataDir: dir, Dev: true, MaxSessionsPerOwner: -1})
	e.createRepo(t, alice, "notes")
	var expired []*author
	for range 20 {
		expired = append(expired, e.newAuthor(t, alice)) // valid for an hour
	}
	signedThen := expired[0].commit(t, e.clock.UnixMilli(), "notes", "old", "", map[string]any{"v": 1})
	e.clock.Add(2 * time.Hour)
	live := []*author{e.newAuthor(t, alice), e.newAuthor(t, alice), e.newAuthor(t, alice)}
	revoked := live[2]
	if _, err := e.n.RevokeSession(ctx, alice, revoked.id); err != nil {
		t.Fatal(err)
	}
	if err := e.n.Close(); err != nil {
		t.Fatal(err)
	}

	e2 := open(t, node.Config{DataDir: dir, Dev: true, Now: e.clock.Now})
	// The two live sessions and the node's own implicit one.
	if got, want := e2.n.SessionsInMemory(), 3; got != want {
		t.Fatalf("%d sessions in memory after a restart, want %d (the live ones and the node's)", got, want)
	}
	if got, want := e2.n.LiveSessions("alice"), 2; got != want {
		t.Fatalf("LiveSessions(alice)=%d, want %d", got, want)
	}
	for _, a := range []*author{expired[0], expired[19], revoked} {
		if _, err := e2.n.Session(ctx, alice, a.id); err != nil {
			t.Fatalf("session %s, left on disk: %v", a.id, err)
		}
	}
	if s, _ := e2.n.Session(ctx, alice, revoked.id); s.Revoked.IsZero() {
		t.Fatalf("the revoked session read from disk is not revoked")
	}
	// A commit the expired session signed while valid replicates; a new one
	// it signs now is refused.
	e2.mustAppend(t, "notes", node.OriginReplica, signedThen)
	res := e2.ingest(t, "notes", node.OriginClient, expired[1].commit(t, e2.clock.UnixMilli(), "notes", "new", "", map[string]any{"v": 2}))
	wantRejected(t, "a commit of an expired session", res[0], core.ErrUnauthenticated)
	e2.mustAppend(t, "notes", node.OriginClient, live[0].commit(t, e2.clock.UnixMilli(), "notes", "live", "", map[string]any{"v": 3}))
}

func TestNode_AcquireStream(t *testing.T) {
	e := open(t, node.Config{Dev: true, MaxStreamsPerCaller: 2})
	alice, bob := user("alice"), user("bob")
	r1, err := e.n.AcquireStream(alice, "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.n.AcquireStream(alice, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	_, err = e.n.AcquireStream(alice, "192.0.2.1")
	wantErr(t, "third stream of alice", err, core.ErrRateLimited)
	if _, err := e.n.AcquireStream(bob, "192.0.2.1"); err != nil {
		t.Fatalf("bob's first stream: %v", err)
	}
	r1()
	if _, err := e.n.AcquireStream(alice, "192.0.2.1"); err != nil {
		t.Fatalf("a stream after one was released: %v", err)
	}
	t.Run("SubjectAcrossAddresses", func(t *testing.T) {
		_, err := e.n.AcquireStream(alice, "192.0.2.2")
		wantErr(t, "alice's third stream from another address", err, core.ErrRateLimited)
	})
	for range 2 {
		if _, err := e.n.AcquireStream(auth.Anonymous(), "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
	}
	_, err = e.n.AcquireStream(auth.Anonymous(), "192.0.2.1")
	wantErr(t, "anonymous callers of one address share one quota", err, core.ErrRateLimited)
	t.Run("AnonymousPerAddress", func(t *testing.T) {
		release, err := e.n.AcquireStream(auth.Anonymous(), "192.0.2.2")
		if err != nil {
			t.Fatalf("an anonymous caller of another address is locked out: %v", err)
		}
		release()
	})
}
