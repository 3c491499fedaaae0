package goat_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	stdsync "sync"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
	goat "github.com/goat-gateway/goat-gateway/sdk/go"
)

func TestClient_Basic(t *testing.T) {
	g := goattest.StartGateway(t, goattest.Config{})
	var mu stdsync.Mutex
	var seen []goat.Status
	a := openClient(t, g, "alice", func(c *goat.Config) {
		c.OnStatus = func(s goat.Status) { mu.Lock(); seen = append(seen, s); mu.Unlock() }
		c.CoalesceWindow = time.Hour // committed by the Flush below
	})
	b := openClient(t, g, "bob", nil)
	ra, rb := openRepo(t, a, "team"), openRepo(t, b, "team")
	if err := ra.Set("t1", "note/1", map[string]any{"title": "Buy milk", "tags": []string{"home"}}); err != nil {
		t.Fatal(err)
	}
	it, err := ra.Get("t1")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := it.Data["title"], "Buy milk"; got != want || !it.Pending {
		t.Fatalf("local read: title %v pending %v, want %v and pending", got, it.Pending, want)
	}
	goattest.WaitFor(t, "OnStatus to report the pending write", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.ContainsFunc(seen, func(s goat.Status) bool { return s.Pending == 1 })
	})
	must(t, ra.Flush(t.Context()))
	goattest.WaitFor(t, "bob to see t1", func() bool {
		it, err := rb.Get("t1")
		return err == nil && it.Data["title"] == "Buy milk"
	})
	waitInSync(t, g, "team", ra, rb)
	if got := a.SessionID(); got == b.SessionID() || got == "" {
		t.Fatalf("session ids %q and %q", got, b.SessionID())
	}
	goattest.WaitFor(t, "status online", func() bool { s := a.Status(); return s.Online && s.Pending == 0 && s.LastError == nil })
	goattest.WaitFor(t, "OnStatus to report online and nothing pending", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) > 0 && seen[len(seen)-1].Online && seen[len(seen)-1].Pending == 0
	})
}

// Two clients edit the same items at once; every replica ends with the
// gateway's commits, merges included (byte-identical, or digests would
// differ), and the same values.
func TestClient_ConcurrentEditsConverge(t *testing.T) {
	g := goattest.StartGateway(t, goattest.Config{})
	a := openClient(t, g, "alice", nil)
	b := openClient(t, g, "bob", nil)
	ra, rb := openRepo(t, a, "shared"), openRepo(t, b, "shared")
	const keys, edits = 8, 60
	for k := range keys {
		if err := ra.Set(fmt.Sprintf("k%d", k), "note/1", map[string]any{"title": "x", "n": 0}); err != nil {
			t.Fatal(err)
		}
	}
	waitInSync(t, g, "shared", ra, rb)

	var wg stdsync.WaitGroup
	for ci, r := range []*goat.Repo{ra, rb} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(ci), 1))
			for i := range edits {
				key := fmt.Sprintf("k%d", rng.IntN(keys))
				err := r.Update(key, func(d map[string]any) error {
					d["n"] = float64(i)
					d["title"] = fmt.Sprint(d["title"], ci)
					tags, _ := d["tags"].([]any)
					d["tags"] = append(slices.Clone(tags), fmt.Sprintf("c%d-%d", ci, i))
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
				if i%10 == 0 {
					_ = r.Flush(t.Context())
				}
			}
		}()
	}
	wg.Wait()
	waitInSync(t, g, "shared", ra, rb)

	// Every tag either client added survives (sets merge by add/remove).
	got := values(t, ra)
	tags := 0
	for _, v := range got {
		ts, _ := v["tags"].([]any)
		tags += len(ts)
	}
	if tags != 2*edits {
		t.Fatalf("%d tags after merging, want %d (one per edit)", tags, 2*edits)
	}
}

// A client that is offline for a while, with edits on both sides,
// converges after it reconnects; fields edited on each side merge.
func TestClient_OfflineEditsConverge(t *testing.T) {
	g := goattest.StartGateway(t, goattest.Config{})
	sw := newNetSwitch()
	a := openClient(t, g, "alice", func(c *goat.Config) { c.HTTPClient = sw.client() })
	b := openClient(t, g, "bob", nil)
	ra, rb := openRepo(t, a, "notes"), openRepo(t, b, "notes")
	must(t, ra.Set("n1", "note/1", map[string]any{"title": "hello", "tags": []string{"x"}, "done": false}))
	must(t, ra.Set("n2", "note/1", map[string]any{"title": "second"}))
	waitInSync(t, g, "notes", ra, rb)
	goattest.WaitFor(t, "alice online", func() bool { return a.Status().Online })

	sw.set(true)
	goattest.WaitFor(t, "alice offline", func() bool { return !a.Status().Online })
	must(t, ra.Update("n1", func(d map[string]any) error {
		d["title"] = d["title"].(string) + " world"
		d["tags"] = append(d["tags"].([]any), "a")
		d["done"] = true
		return nil
	}))
	must(t, ra.Set("a-only", "any/1", map[string]any{"from": "alice"}))
	must(t, rb.Update("n1", func(d map[string]any) error {
		d["title"] = "oh " + d["title"].(string)
		d["tags"] = append(d["tags"].([]any), "b")
		return nil
	}))
	must(t, rb.Delete("n2"))
	must(t, ra.Flush(t.Context()))
	if err := ra.Sync(t.Context()); !errors.Is(err, goat.ErrOffline) {
		t.Fatalf("Sync while offline: %v, want ErrOffline", err)
	}
	st := a.Status()
	if st.Online || st.Pending == 0 || !errors.Is(st.LastError, goat.ErrOffline) {
		t.Fatalf("offline status %+v", st)
	}
	goattest.WaitFor(t, "bob's edits on the gateway", func() bool { _, ok := g.Items(t, "notes")["n2"]; return !ok })

	sw.set(false)
	waitInSync(t, g, "notes", ra, rb)
	n1, err := ra.Get("n1")
	must(t, err)
	if got, want := n1.Data["title"], "oh hello world"; got != want {
		t.Errorf("merged title %q, want %q", got, want)
	}
	if got, want := n1.Data["tags"], []any{"a", "b", "x"}; !core.EqualJSON(got, want) {
		t.Errorf("merged tags %v, want %v", got, want)
	}
	if got := n1.Data["done"]; got != true {
		t.Errorf("done %v, want true", got)
	}
	if _, err := ra.Get("n2"); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("n2 after bob deleted it: %v, want ErrNotFound", err)
	}
	if _, err := rb.Get("a-only"); err != nil {
		t.Errorf("bob does not see alice's offline item: %v", err)
	}
	// One concurrent edit on each side: one merge, made by alice's replica
	// and by the gateway alike (a different one would be a second commit).
	if got := g.MergeCommits(t, "notes"); got != 1 {
		t.Errorf("%d merge commits after one concurrent edit, want exactly 1", got)
	}
	goattest.WaitFor(t, "alice idle", func() bool { s := a.Status(); return s.Online && s.Pending == 0 && s.LastError == nil })
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}
