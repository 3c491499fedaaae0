package reliability

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

// DESIGN section 3: a delta's base is an ancestor of its commit. A pushed
// delta based on a sibling (same item, full data, present, but on another
// branch) is rejected with a reason naming delta.base; a delta based on a
// parent or an older ancestor is accepted.
func TestDelta_BaseMustBeAnAncestor(t *testing.T) {
	n := startNode(t, goattest.Config{})
	a := goattest.NewAuthor(t, n, "alice")
	a.CreateRepo(t, "notes")
	root := a.CommitAt(1, "notes", "k", map[string]any{"v": "root"})
	sibling := a.CommitAt(2, "notes", "k", map[string]any{"v": "sibling"})
	mid := a.CommitAt(3, "notes", "k", map[string]any{"v": "mid"}, root.ID)
	delta := func(ts int64, base core.CommitID, parents ...core.CommitID) *core.Commit {
		return a.Sign(&core.Commit{Repo: "notes", Key: "k", Parents: parents, TS: ts, Schema: core.AnySchema,
			Delta: &core.Delta{Base: base, Ops: []core.Op{{Op: core.OpSet, Field: "v", Value: "new"}}}})
	}
	notAncestor := delta(4, sibling.ID, mid.ID)
	onGrandparent := delta(5, root.ID, mid.ID)
	st, body := n.do(t, "POST", "/v1/repos/notes/commits", a.Token, goattest.PushBody(root, sibling, mid, notAncestor, onGrandparent))
	var out struct{ Results []gsync.PushResult }
	if err := json.Unmarshal(body, &out); err != nil || len(out.Results) != 5 {
		t.Fatalf("push: %d %s", st, body)
	}
	res := out.Results
	for i, want := range []string{gsync.StatusAccepted, gsync.StatusAccepted, gsync.StatusAccepted, gsync.StatusRejected, gsync.StatusAccepted} {
		if res[i].Status != want {
			t.Fatalf("commit %d: %+v, want %s", i, res[i], want)
		}
	}
	if r := res[3]; !strings.Contains(r.Reason, "delta.base") || !strings.HasSuffix(r.ProblemType, "/invalid-request") {
		t.Fatalf("rejection %+v, want invalid-request naming delta.base", r)
	}
	if n.Has("notes", notAncestor.ID) || !n.Has("notes", onGrandparent.ID) {
		t.Fatalf("stored: non-ancestor delta %v, grandparent delta %v; want false, true", n.Has("notes", notAncestor.ID), n.Has("notes", onGrandparent.ID))
	}
}
