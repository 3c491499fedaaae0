package goattest

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

// TransportFactory makes the transport under test for one subtest: a
// gsync.Transport to a peer on which ConformanceRepo exists and is empty,
// and seed, which makes the peer hold commits (given in a topological
// order, appended in that order) by some way other than the transport.
// Every commit the suite makes is signed by author; the peer must accept
// its commits (a gateway registers its session key).
type TransportFactory func(tb testing.TB, author *Author) (tr gsync.Transport, seed func(commits ...*core.Commit))

// RunTransportConformance runs the contract of gsync.Transport
// (sync/driver.go) against the implementation newTransport makes: log
// paging and cursors, cursors the peer cannot serve, sync rounds, the
// verdicts on pushed commits, errors as the core sentinels, and the
// driver converging over it. Every implementation of gsync.Transport
// runs it in its own package's tests.
func RunTransportConformance(t *testing.T, newTransport TransportFactory) {
	t.Helper()
	ctx := context.Background()
	const repo = ConformanceRepo

	setup := func(t *testing.T) (*Author, gsync.Transport, func(...*core.Commit)) {
		t.Helper()
		a := NewSigner("conformance")
		tr, seed := newTransport(t, a)
		return a, tr, seed
	}

	t.Run("LogEmpty", func(t *testing.T) {
		_, tr, _ := setup(t)
		page, err := tr.Log(ctx, repo, "", 10)
		must(t, err, "Log of an empty repository")
		if len(page.Commits) != 0 || page.More {
			t.Fatalf("Log of an empty repository: %d commits, more=%v; want none", len(page.Commits), page.More)
		}
		if page.Next == "" {
			t.Fatal("Log of an empty repository gave no cursor to resume from")
		}
		again, err := tr.Log(ctx, repo, page.Next, 10)
		must(t, err, "Log from the tail cursor")
		if len(again.Commits) != 0 || again.More {
			t.Fatalf("Log from the tail cursor: %d commits, more=%v; want none", len(again.Commits), again.More)
		}
	})

	t.Run("LogPagesWithCursors", func(t *testing.T) {
		a, tr, seed := setup(t)
		seeded := chains(a, "p", 25, 3)
		seed(seeded...)
		var got []*core.Commit
		var sizes []int
		var cursors []string
		cursor := ""
		for range 10 {
			page, err := tr.Log(ctx, repo, cursor, 10)
			must(t, err, "Log after %q", cursor)
			cs := decodeAll(t, page.Commits)
			got = append(got, cs...)
			sizes = append(sizes, len(cs))
			if page.Next == "" {
				t.Fatalf("page %d has no cursor", len(sizes))
			}
			cursor = page.Next
			cursors = append(cursors, cursor)
			if !page.More {
				break
			}
		}
		if fmt.Sprint(sizes) != "[10 10 5]" {
			t.Fatalf("pages of 10 over 25 commits have sizes %v, want [10 10 5] and more=false at the end", sizes)
		}
		checkTopological(t, got, seeded)
		// A cursor is a position: resuming from one again serves the same page.
		page, err := tr.Log(ctx, repo, cursors[0], 10)
		must(t, err, "Log from the first cursor again")
		if again := decodeAll(t, page.Commits); len(again) != 10 || again[0].ID != got[10].ID || again[9].ID != got[19].ID {
			t.Fatalf("resuming from the first cursor again served %d commits, not the second page", len(again))
		}
		// The tail cursor serves what is appended after it, and only that.
		tail := cursors[len(cursors)-1]
		page, err = tr.Log(ctx, repo, tail, 10)
		must(t, err, "Log from the tail")
		if len(page.Commits) != 0 || page.More {
			t.Fatalf("Log from the tail: %d commits, more=%v; want none", len(page.Commits), page.More)
		}
		later := chains(a, "q", 3, 1)
		seed(later...)
		page, err = tr.Log(ctx, repo, tail, 10)
		must(t, err, "Log from the old tail")
		if cs := decodeAll(t, page.Commits); len(cs) != 3 || page.More {
			t.Fatalf("Log from the old tail: %d commits, more=%v; want the 3 new ones", len(cs), page.More)
		} else {
			checkTopological(t, cs, later)
		}
	})

	t.Run("LogRefusesCursorsOfOtherLogs", func(t *testing.T) {
		a, tr, seed := setup(t)
		seed(chains(a, "p", 3, 1)...)
		page, err := tr.Log(ctx, repo, "", 10)
		must(t, err, "Log")
		cur, err := gsync.DecodeCursor(page.Next)
		must(t, err, "the peer's cursor %q", page.Next)
		var other gsync.LogID
		if _, err := rand.Read(other[:]); err != nil {
			t.Fatal(err)
		}
		for name, c := range map[string]string{
			"another log":      gsync.EncodeCursor(other, 1),
			"beyond the end":   gsync.EncodeCursor(cur.Log, cur.Offset+100),
			"another log at 0": gsync.EncodeCursor(other, 0),
		} {
			if _, err := tr.Log(ctx, repo, c, 10); !errors.Is(err, core.ErrMustReconcile) {
				t.Errorf("Log with a cursor of %s: err=%v, want core.ErrMustReconcile", name, err)
			}
		}
	})

	t.Run("ErrorsAreSentinels", func(t *testing.T) {
		_, tr, _ := setup(t)
		if _, err := tr.Log(ctx, repo, "not-a-cursor", 10); !errors.Is(err, core.ErrInvalid) {
			t.Errorf("Log with a malformed cursor: err=%v, want core.ErrInvalid", err)
		}
		const missing = "conformance.missing"
		if _, err := tr.Log(ctx, missing, "", 10); !errors.Is(err, core.ErrNotFound) {
			t.Errorf("Log of a missing repository: err=%v, want core.ErrNotFound", err)
		}
		if _, err := tr.Sync(ctx, missing, &gsync.Request{}); !errors.Is(err, core.ErrNotFound) {
			t.Errorf("Sync of a missing repository: err=%v, want core.ErrNotFound", err)
		}
	})

	t.Run("SyncInSync", func(t *testing.T) {
		a, tr, seed := setup(t)
		seeded := chains(a, "p", 7, 2)
		seed(seeded...)
		want := gsync.DigestOf(idsOf(seeded)...)
		resp, err := tr.Sync(ctx, repo, &gsync.Request{Count: want.Count, Digest: want.XOR})
		must(t, err, "Sync")
		if !resp.InSync || resp.Count != want.Count || resp.Digest != want.XOR || len(resp.Commits) != 0 {
			t.Fatalf("Sync with the peer's digest: inSync=%v count=%d digest=%v commits=%d; want in sync at %v",
				resp.InSync, resp.Count, resp.Digest, len(resp.Commits), want)
		}
	})

	t.Run("SyncFromNothing", func(t *testing.T) {
		a, tr, seed := setup(t)
		seeded := chains(a, "p", 7, 2)
		seed(seeded...)
		resp, err := tr.Sync(ctx, repo, &gsync.Request{})
		must(t, err, "Sync")
		want := gsync.DigestOf(idsOf(seeded)...)
		if resp.InSync || resp.Count != want.Count || resp.Digest != want.XOR {
			t.Fatalf("Sync from nothing: inSync=%v count=%d digest=%v; want the peer's %v", resp.InSync, resp.Count, resp.Digest, want)
		}
		checkTopological(t, decodeAll(t, resp.Commits), seeded)
	})

	t.Run("SyncReportsPushResults", func(t *testing.T) {
		a, tr, seed := setup(t)
		present := a.Commit(repo, "k", map[string]any{"v": "present"})
		seed(present)
		fresh := a.Commit(repo, "n", map[string]any{"v": "fresh"})
		child := a.Commit(repo, "n", map[string]any{"v": "child"}, fresh.ID)
		absent := a.Commit(repo, "o", map[string]any{"v": "never sent"})
		orphan := a.Commit(repo, "o", map[string]any{"v": "orphan"}, absent.ID)
		pushed := []*core.Commit{fresh, child, present, orphan}
		var raws []json.RawMessage
		for _, c := range pushed {
			b, err := c.MarshalJSON()
			must(t, err, "encode")
			raws = append(raws, b)
		}
		mine := gsync.DigestOf(fresh.ID, child.ID, present.ID)
		resp, err := tr.Sync(ctx, repo, &gsync.Request{Count: mine.Count, Digest: mine.XOR, Commits: raws})
		must(t, err, "Sync with pushed commits")
		if got, want := len(resp.Results), len(pushed); got != want {
			t.Fatalf("%d results for %d pushed commits", got, want)
		}
		for i, want := range []string{gsync.StatusAccepted, gsync.StatusAccepted, gsync.StatusDuplicate, gsync.StatusRejected} {
			r := resp.Results[i]
			if r.ID != pushed[i].ID.String() || r.Status != want {
				t.Errorf("result %d = %+v, want %s for %s", i, r, want, pushed[i].ID)
			}
			if rejected := r.Status == gsync.StatusRejected; rejected != (r.Reason != "") || rejected != (r.ProblemType != "") {
				t.Errorf("result %d = %+v: reason and problem type must come with a rejection, and only then", i, r)
			}
		}
		// The accepted ones are held: the peer's digest is the client's.
		if !resp.InSync || resp.Count != mine.Count || resp.Digest != mine.XOR {
			t.Fatalf("after the push the peer has count=%d digest=%v (inSync=%v), want %v", resp.Count, resp.Digest, resp.InSync, mine)
		}
	})

	t.Run("DriverHealConverges", func(t *testing.T) {
		a, tr, seed := setup(t)
		shared := chains(a, "s", 5, 1)
		theirs := chains(a, "t", 8, 2)
		ours := chains(a, "o", 7, 2)
		seed(append(append([]*core.Commit{}, shared...), theirs...)...)
		local := NewMemPeer(repo)
		local.Add(shared...)
		local.Add(ours...)
		d := gsync.Driver{Transport: tr}
		st, err := d.Heal(ctx, local, repo)
		must(t, err, "Heal")
		if st.Rejected != 0 {
			t.Fatalf("Heal: the peer rejected %d commits", st.Rejected)
		}
		all := append(append(idsOf(shared), idsOf(theirs)...), idsOf(ours)...)
		want := gsync.DigestOf(all...)
		if got := local.Digest(); got != want {
			t.Fatalf("local Digest after Heal = %v, want %v", got, want)
		}
		// The peer holds the union too: its log lists it.
		var logged []*core.Commit
		cursor := ""
		for {
			page, err := tr.Log(ctx, repo, cursor, 7)
			must(t, err, "Log")
			logged = append(logged, decodeAll(t, page.Commits)...)
			cursor = page.Next
			if !page.More {
				break
			}
		}
		if got := gsync.DigestOf(idsOf(logged)...); got != want || len(logged) != len(all) {
			t.Fatalf("the peer's log has %d commits (%v), want %d (%v)", len(logged), got, len(all), want)
		}
		again, err := d.Heal(ctx, local, repo)
		must(t, err, "Heal again")
		if again.Rounds != 1 || again.Pushed != 0 || again.Received != 0 {
			t.Fatalf("Heal of a replica in sync: %+v, want one round moving nothing", again)
		}
	})

	t.Run("DriverCloneResumes", func(t *testing.T) {
		a, tr, seed := setup(t)
		first := chains(a, "p", 12, 3)
		seed(first...)
		local := NewMemPeer(repo)
		d := gsync.Driver{Transport: tr, PageLimit: 5}
		st, err := d.Clone(ctx, local, repo, "")
		must(t, err, "Clone")
		if st.Healed || st.Received != len(first) || st.Cursor == "" {
			t.Fatalf("Clone: %+v, want %d commits from the log and a cursor", st, len(first))
		}
		more := chains(a, "q", 4, 1)
		seed(more...)
		st2, err := d.Clone(ctx, local, repo, st.Cursor)
		must(t, err, "Clone from the cursor")
		if st2.Healed || st2.Received != len(more) {
			t.Fatalf("Clone from the cursor: %+v, want exactly the %d new commits", st2, len(more))
		}
		if got, want := local.Digest(), gsync.DigestOf(append(idsOf(first), idsOf(more)...)...); got != want {
			t.Fatalf("local Digest = %v, want %v", got, want)
		}
	})
}

// chains returns n commits by a on keys prefix0..prefix{keys-1}, each key
// a chain, interleaved: a topological order in which every key keeps one
// head.
func chains(a *Author, prefix string, n, keys int) []*core.Commit {
	out := make([]*core.Commit, n)
	last := map[int]core.CommitID{}
	for i := range out {
		k := i % keys
		var parents []core.CommitID
		if p, ok := last[k]; ok {
			parents = []core.CommitID{p}
		}
		out[i] = a.Commit(ConformanceRepo, fmt.Sprintf("%s%d", prefix, k), map[string]any{"i": float64(i)}, parents...)
		last[k] = out[i].ID
	}
	return out
}

func decodeAll(tb testing.TB, raws []json.RawMessage) []*core.Commit {
	tb.Helper()
	out := make([]*core.Commit, len(raws))
	for i, raw := range raws {
		c, err := core.DecodeCommit(raw)
		if err != nil {
			tb.Fatalf("commit %d from the peer: %v", i, err)
		}
		out[i] = c
	}
	return out
}

// checkTopological fails unless got holds exactly the commits of want,
// each once, every parent before its child.
func checkTopological(tb testing.TB, got, want []*core.Commit) {
	tb.Helper()
	wanted := map[core.CommitID]bool{}
	for _, c := range want {
		wanted[c.ID] = true
	}
	seen := map[core.CommitID]bool{}
	for _, c := range got {
		if !wanted[c.ID] {
			tb.Fatalf("the peer served %s, not one of the %d expected", c.ID, len(want))
		}
		if seen[c.ID] {
			tb.Fatalf("the peer served %s twice", c.ID)
		}
		for _, p := range c.Parents {
			if wanted[p] && !seen[p] {
				tb.Fatalf("the peer served %s before its parent %s", c.ID, p)
			}
		}
		seen[c.ID] = true
	}
	if len(seen) != len(want) {
		tb.Fatalf("the peer served %d of the %d commits", len(seen), len(want))
	}
}
