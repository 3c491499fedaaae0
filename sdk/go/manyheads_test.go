package goat_test

import (
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
)

// TestClient_ManyHeads: a replica that receives more concurrent heads of
// one item than one merge commit takes (issue 17 item 7) merges them in
// groups like the gateway (merge.MergeAll) and ends at the gateway's head,
// holding the gateway's commits and no others.
func TestClient_ManyHeads(t *testing.T) {
	const repo, key, heads = "shared", "k", 1000
	g := goattest.StartGateway(t, goattest.Config{})
	a := goattest.NewAuthor(t, g, "alice")
	a.CreateRepo(t, repo)
	cs := make([]*core.Commit, heads)
	for i := range cs {
		cs[i] = a.CommitAt(int64(1_700_000_000_000+i/4), repo, key, map[string]any{"n": float64(i)})
	}
	a.Push(t, cs...)
	if got := g.MergeCommits(t, repo); got != 5 {
		t.Fatalf("gateway made %d merge commits, want 5 (groups of 256, 256, 256, 232, then the final merge)", got)
	}
	c := openClient(t, g, "bob", nil)
	r := openRepo(t, c, repo)
	waitInSync(t, g, repo, r)
	it, err := r.Get(key)
	if err != nil {
		t.Fatal(err)
	}
	p, err := g.Node().Peek(repo)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Release()
	vals, _, err := p.Items("", 10, false, "")
	if err != nil || len(vals) != 1 {
		t.Fatalf("gateway items %v, %v", vals, err)
	}
	if it.Head != vals[0].Head || vals[0].Heads != 1 {
		t.Fatalf("replica at %s, gateway at %s with %d heads", it.Head, vals[0].Head, vals[0].Heads)
	}
	if got := g.MergeCommits(t, repo); got != 5 {
		t.Fatalf("gateway holds %d merge commits after the replica synced, want 5", got)
	}
}
