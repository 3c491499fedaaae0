package api_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
	"github.com/goat-gateway/goat-gateway/merge"
	"github.com/goat-gateway/goat-gateway/storage"
)

// TestServer_ManyHeads is issue 17 item 7: any writer may push 1,000
// concurrent root commits of one item, more than one merge commit takes
// (core.MaxParents). The node merges them in groups (merge.MergeAll), so
// the item stays writable over REST, and another node that receives the
// same heads in another order builds the same merge commits.
func TestServer_ManyHeads(t *testing.T) {
	const (
		repo  = "user.alice.notes"
		key   = "k"
		heads = 1000
	)
	commits := func(a *goattest.Author) []*core.Commit {
		out := make([]*core.Commit, heads)
		for i := range out {
			// ts repeats so that ids order some heads.
			out[i] = a.CommitAt(int64(1_700_000_000_000+i/4), repo, key, map[string]any{"n": float64(i), "who": fmt.Sprintf("w%d", i)})
		}
		return out
	}
	g1 := startGateway(t, goattest.Config{})
	a := g1.newAuthor(t, "alice")
	wantStatus(t, g1.call(t, "PUT", "/v1/repos/"+repo, a.Token, nil), http.StatusCreated)
	cs := commits(a)
	a.Push(t, cs...)

	t.Run("Writable", func(t *testing.T) {
		put := g1.call(t, "PUT", "/v1/repos/"+repo+"/items/"+key, a.Token, `{"schema":"any/1","data":{"n":-1}}`)
		wantStatus(t, put, http.StatusOK)
		wantStatus(t, g1.call(t, "PATCH", "/v1/repos/"+repo+"/items/"+key, a.Token, `{"m":1}`, "Content-Type", "application/merge-patch+json"), http.StatusOK)
		wantStatus(t, g1.call(t, "DELETE", "/v1/repos/"+repo+"/items/"+key, a.Token, nil), http.StatusOK)
	})

	ms1 := mergeCommits(t, g1.Gateway, repo)
	// 1,000 heads: groups of 256, 256, 256, 232, then their final merge.
	if got, want := len(ms1), 5; got < want {
		t.Fatalf("%d merge commits on the first node, want at least %d", got, want)
	}
	t.Run("SameMergesElsewhere", func(t *testing.T) {
		g2 := startGateway(t, goattest.Config{})
		b := a.At(g2.base)
		b.Register(t, g2.Gateway)
		wantStatus(t, g2.call(t, "PUT", "/v1/repos/"+repo, b.Token, nil), http.StatusCreated)
		rev := slices.Clone(cs)
		slices.Reverse(rev)
		b.Push(t, rev...)
		ms2 := mergeCommits(t, g2.Gateway, repo)
		if got, want := len(ms2), 5; got != want {
			t.Fatalf("%d merge commits on the second node, want %d", got, want)
		}
		for _, id := range ms2 {
			if !slices.Contains(ms1, id) {
				t.Fatalf("second node made merge %s, which the first did not", id)
			}
		}
		// The first five merges of the first node are the tree over the
		// pushed heads, the ones the second node made.
		if !slices.Equal(ms1[:5], ms2) {
			t.Fatalf("merges differ:\n%v\n%v", ms1[:5], ms2)
		}
	})
}

// TestServer_ManyHeadsStoredUnmerged: an item whose many heads were
// stored without being merged (by a node older than merge.MergeAll) is
// merged by the first REST write, which then succeeds.
func TestServer_ManyHeadsStoredUnmerged(t *testing.T) {
	const repo, key = "user.alice.notes", "k"
	g := startGateway(t, goattest.Config{})
	a := g.newAuthor(t, "alice")
	wantStatus(t, g.call(t, "PUT", "/v1/repos/"+repo, a.Token, nil), http.StatusCreated)
	g.Stop()
	// The repository's log, appended to as that node did: no merge.
	s, err := storage.Open(storage.Config{Dir: g.DataDir()})
	if err != nil {
		t.Fatal(err)
	}
	r, release, err := s.Repo(repo)
	if err != nil {
		t.Fatal(err)
	}
	cs := make([]*core.Commit, 600)
	for i := range cs {
		cs[i] = a.CommitAt(int64(1_700_000_000_000+i), repo, key, map[string]any{"n": float64(i)})
	}
	res, err := r.Append(t.Context(), cs)
	if err == nil {
		err = storage.ResultsError(res)
	}
	if err != nil {
		t.Fatal(err)
	}
	if got := len(r.Heads(key)); got != len(cs) {
		t.Fatalf("%d heads stored, want %d", got, len(cs))
	}
	release()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, g.call(t, "PUT", "/v1/repos/"+repo+"/items/"+key, a.Token, `{"schema":"any/1","data":{"n":-1}}`), http.StatusOK)
	// 600 heads: groups of 256, 256 and 88, then their final merge.
	if got, want := len(mergeCommits(t, g.Gateway, repo)), 4; got != want {
		t.Fatalf("%d merge commits, want %d", got, want)
	}
}

// mergeCommits returns the ids of repo's merge commits on g, in log order.
func mergeCommits(tb testing.TB, g *goattest.Gateway, repo string) []core.CommitID {
	tb.Helper()
	r, err := g.Node().Peek(repo)
	if err != nil {
		tb.Fatal(err)
	}
	defer r.Release()
	var out []core.CommitID
	for off := int64(0); ; {
		recs, err := r.ReadLog(off, 1000)
		if err != nil {
			tb.Fatal(err)
		}
		for _, rec := range recs {
			c, err := rec.Commit()
			if err != nil {
				tb.Fatal(err)
			}
			if c.IsMerge() {
				if len(c.Parents) > merge.GroupSize {
					tb.Fatalf("merge %s has %d parents", c.ID, len(c.Parents))
				}
				out = append(out, c.ID)
			}
		}
		if len(recs) < 1000 {
			return out
		}
		off += int64(len(recs))
	}
}
