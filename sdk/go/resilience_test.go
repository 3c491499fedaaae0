package goat_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
	goat "github.com/goat-gateway/goat-gateway/sdk/go"
)

// The gateway restarts while a client pushes a large backlog and another
// one follows the stream: both reconnect, resume and converge.
func TestClient_GatewayRestartMidSync(t *testing.T) {
	g := goattest.StartGateway(t, goattest.Config{})
	sw := newNetSwitch()
	a := openClient(t, g, "alice", func(c *goat.Config) { c.HTTPClient = sw.client() })
	b := openClient(t, g, "bob", nil)
	ra, rb := openRepo(t, a, "big"), openRepo(t, b, "big")
	goattest.WaitFor(t, "both online", func() bool { return a.Status().Online && b.Status().Online })

	// A backlog made offline, so that it goes up in pushes and rounds
	// that the restart interrupts.
	sw.set(true)
	const n = 2500
	for i := range n {
		must(t, ra.Set(fmt.Sprintf("item-%04d", i), "note/1", map[string]any{"n": i}))
	}
	must(t, ra.Flush(t.Context()))
	sw.set(false)
	goattest.WaitFor(t, "the push to begin", func() bool { c, _ := gatewayState(g, "big"); return c > 0 })
	g.Restart(t)
	must(t, rb.Set("from-bob", "any/1", map[string]any{"after": "restart"}))

	waitInSync(t, g, "big", ra, rb)
	if got := len(g.Items(t, "big")); got != n+1 {
		t.Fatalf("gateway has %d items, want %d", got, n+1)
	}
	if _, err := ra.Get("from-bob"); err != nil {
		t.Fatalf("alice after the restart: %v", err)
	}
}

// A client opened from its local directory works with the gateway down:
// reads, writes, queries; its session and unpushed commits survive a
// reopen, and sync resumes when the gateway is back.
func TestClient_ReopenWithGatewayDown(t *testing.T) {
	g := goattest.StartGateway(t, goattest.Config{})
	dir := t.TempDir()
	token := g.Token("alice")
	open := func() *goat.Client {
		cfg := testConfig(g.URL(), token)
		cfg.Dir = dir
		c, err := goat.Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	c1 := open()
	r1 := openRepo(t, c1, "todo")
	must(t, r1.Set("t1", "note/1", map[string]any{"title": "synced"}))
	must(t, r1.Sync(t.Context()))
	session := c1.SessionID()
	must(t, c1.Close())

	g.Stop()
	c2 := open()
	if got := c2.SessionID(); got != session {
		t.Fatalf("reopened session %s, want %s", got, session)
	}
	r2 := openRepo(t, c2, "todo")
	it, err := r2.Get("t1")
	must(t, err)
	if got, want := it.Data["title"], "synced"; got != want {
		t.Fatalf("offline read: %v, want %v", got, want)
	}
	must(t, r2.Set("t2", "note/1", map[string]any{"title": "offline"}))
	must(t, r2.Update("t1", func(d map[string]any) error { d["done"] = true; return nil }))
	q, err := r2.Query(goat.Query{})
	must(t, err)
	if got := q.Len(); got != 2 {
		t.Fatalf("offline query has %d items, want 2", got)
	}
	q.Close()
	goattest.WaitFor(t, "the offline error", func() bool { return errors.Is(c2.Status().LastError, goat.ErrOffline) })
	must(t, c2.Close())

	c3 := open()
	r3 := openRepo(t, c3, "todo")
	if got := c3.Status().Pending; got != 2 {
		t.Fatalf("pending after reopen: %d, want 2 (the offline commits)", got)
	}
	if it, err := r3.Get("t1"); err != nil || it.Data["done"] != true {
		t.Fatalf("offline edit after reopen: %v %v", it.Data, err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	waitInSync(t, g, "todo", r3)
	goattest.WaitFor(t, "nothing pending", func() bool { s := c3.Status(); return s.Pending == 0 && s.Online })
	if got := g.Items(t, "todo")["t2"]["title"]; got != "offline" {
		t.Fatalf("gateway t2 title %v", got)
	}
}

// Active replication: the gateway loses every repository file (its keys
// stay) and restarts; the connected clients register their sessions again
// and restore every commit to it. With its node identity kept, the event
// ids clients resume from look valid and nothing says `reset`: the heal
// after every reconnect finds the loss. With a new node identity, the
// gateway answers `reset` for every repository.
func TestClient_RestoresWipedGateway(t *testing.T) {
	for _, tc := range []struct {
		name    string
		newNode bool
	}{{"KeepNodeID", false}, {"NewNodeID", true}} {
		t.Run(tc.name, func(t *testing.T) { testRestoresWipedGateway(t, tc.newNode) })
	}
}

func testRestoresWipedGateway(t *testing.T, newNode bool) {
	g := goattest.StartGateway(t, goattest.Config{})
	a := openClient(t, g, "alice", func(c *goat.Config) { c.Dir = t.TempDir() })
	b := openClient(t, g, "bob", nil)
	repos := []string{"r1", "r2"}
	var ra, rb []*goat.Repo
	for _, name := range repos {
		ra, rb = append(ra, openRepo(t, a, name)), append(rb, openRepo(t, b, name))
	}
	for i := range 40 {
		r := ra[i%2]
		if i%3 == 0 {
			r = rb[i%2]
		}
		must(t, r.Set(fmt.Sprintf("k%d", i%7), "note/1", map[string]any{"n": i, "tags": []string{fmt.Sprint(i)}}))
		if i%5 == 0 {
			must(t, r.Flush(t.Context()))
		}
	}
	for i, name := range repos {
		waitInSync(t, g, name, ra[i], rb[i])
	}
	want := map[string][2]any{}
	for _, name := range repos {
		n, d := gatewayState(g, name)
		want[name] = [2]any{n, d}
	}

	g.Stop()
	if wiped := g.WipeRepositories(t); len(wiped) < 4 {
		t.Fatalf("wiped %v, want the two repositories and the system ones", wiped)
	}
	if newNode {
		must(t, os.Remove(filepath.Join(g.DataDir(), "NODE")))
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	for i, name := range repos {
		waitInSync(t, g, name, ra[i], rb[i])
		n, d := gatewayState(g, name)
		if got := [2]any{n, d}; got != want[name] {
			t.Fatalf("%s restored as %v, want %v", name, got, want[name])
		}
	}
	// The restored gateway serves new writes as before.
	must(t, ra[0].Set("after", "any/1", map[string]any{"ok": true}))
	goattest.WaitFor(t, "bob to see a write after the restore", func() bool { _, err := rb[0].Get("after"); return err == nil })
}

// Errors from the gateway arrive as the core sentinels.
func TestClient_ErrorsMapToSentinels(t *testing.T) {
	g := goattest.StartGateway(t, goattest.Config{})
	// A well-formed token from another gateway: this one refuses it.
	stranger := goattest.StartGateway(t, goattest.Config{}).Token("mallory")
	cfg := testConfig(g.URL(), stranger)
	c, err := goat.Open(cfg)
	must(t, err)
	defer c.Close()
	r := openRepo(t, c, "x")
	if err := r.Sync(t.Context()); !errors.Is(err, core.ErrUnauthenticated) {
		t.Fatalf("Sync with a bad token: %v, want ErrUnauthenticated", err)
	}
	goattest.WaitFor(t, "the status to show it", func() bool { return errors.Is(c.Status().LastError, core.ErrUnauthenticated) })

	bad := testConfig(g.URL(), g.Token("carol"))
	bad.Schemas = nil
	c2, err := goat.Open(bad)
	must(t, err)
	defer c2.Close()
	r2 := openRepo(t, c2, "y")
	if err := r2.Set("k", "nosuch/1", map[string]any{}); !errors.Is(err, core.ErrSchema) {
		t.Fatalf("Set with an unknown schema: %v, want ErrSchema", err)
	}
	if err := r2.Set("bad key!", core.AnySchema, map[string]any{}); !errors.Is(err, core.ErrInvalid) {
		t.Fatalf("Set with a bad key: %v, want ErrInvalid", err)
	}
	// Repositories a caller may not read answer 404, not 403.
	hidden := openRepo(t, c2, "sys.private")
	if err := hidden.Sync(t.Context()); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("Sync of a hidden system repository: %v, want ErrNotFound", err)
	}
	// The others stay live all the same.
	writer := openClient(t, g, "dave", nil)
	must(t, openRepo(t, writer, "y").Set("live", core.AnySchema, map[string]any{"v": 1}))
	goattest.WaitFor(t, "carol to receive dave's item", func() bool { _, err := r2.Get("live"); return err == nil })
}
