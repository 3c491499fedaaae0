package goat_test

import (
	stdsync "sync"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
	goat "github.com/goat-gateway/goat-gateway/sdk/go"
)

// offlineClient is a memory client whose gateway never answers.
func offlineClient(tb testing.TB, mod func(*goat.Config)) *goat.Client {
	tb.Helper()
	cfg := testConfig("http://127.0.0.1:1", "x.eyJzdWIiOiJ0In0.x")
	cfg.ReconnectMin, cfg.ReconnectMax = time.Second, time.Minute
	if mod != nil {
		mod(&cfg)
	}
	c, err := goat.Open(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

func TestRepo_CoalescesEdits(t *testing.T) {
	c := offlineClient(t, func(cfg *goat.Config) { cfg.CoalesceWindow = time.Hour })
	r := openRepo(t, c, "r")
	for i := range 100 {
		must(t, r.Set("k", core.AnySchema, map[string]any{"i": i, "pad": "some text that makes a delta worth it"}))
	}
	it, err := r.Get("k")
	must(t, err)
	if got, want := it.Data["i"], float64(99); got != want || !it.Pending {
		t.Fatalf("before the flush: i=%v pending=%v, want %v and pending", got, it.Pending, want)
	}
	if n, _ := r.Digest(); n != 0 {
		t.Fatalf("%d commits before the window ended, want 0", n)
	}
	must(t, r.Flush(t.Context()))
	if n, _ := r.Digest(); n != 1 {
		t.Fatalf("100 edits made %d commits, want 1", n)
	}
	it, err = r.Get("k")
	must(t, err)
	if it.Pending || it.Head.IsZero() || it.Data["i"] != float64(99) {
		t.Fatalf("after the flush: %+v", it)
	}
	for range 50 {
		must(t, r.Update("k", func(d map[string]any) error { d["i"] = d["i"].(float64) + 1; return nil }))
	}
	must(t, r.Flush(t.Context()))
	if n, _ := r.Digest(); n != 2 {
		t.Fatalf("%d commits after the second window, want 2", n)
	}
	// Setting what is already there commits nothing.
	must(t, r.Set("k", core.AnySchema, map[string]any{"i": 149, "pad": "some text that makes a delta worth it"}))
	must(t, r.Flush(t.Context()))
	if n, _ := r.Digest(); n != 2 {
		t.Fatalf("%d commits after an edit that changed nothing, want 2", n)
	}
	if got := c.Status().Pending; got != 2 {
		t.Fatalf("pending %d, want the 2 unpushed commits", got)
	}
}

func TestRepo_WindowCommitsOnItsOwn(t *testing.T) {
	c := offlineClient(t, func(cfg *goat.Config) { cfg.CoalesceWindow = 10 * time.Millisecond })
	r := openRepo(t, c, "r")
	for i := range 20 {
		must(t, r.Set("k", core.AnySchema, map[string]any{"i": i}))
	}
	goattest.WaitFor(t, "the window to commit", func() bool {
		it, err := r.Get("k")
		return err == nil && !it.Pending && it.Data["i"] == float64(19)
	})
}

func TestRepo_ReadsNewestSchemaVersion(t *testing.T) {
	v1 := &core.Schema{NS: "card", Version: 1, Fields: map[string]core.Field{"name": {Type: core.TypeString}}}
	v2 := &core.Schema{NS: "card", Version: 2, Fields: map[string]core.Field{
		"title": {Type: core.TypeString},
		"color": {Type: core.TypeString, Default: "blue"},
	}, Upgrade: []core.Upgrade{{Op: "rename", From: "name", To: "title"}, {Op: "add", Field: "color", Default: "blue"}}}
	c := offlineClient(t, func(cfg *goat.Config) { cfg.Schemas = []*core.Schema{v1, v2} })
	r := openRepo(t, c, "cards")
	must(t, r.Set("c1", "card/1", map[string]any{"name": "hello"}))
	must(t, r.Flush(t.Context()))
	it, err := r.Get("c1")
	must(t, err)
	if it.Schema != "card/2" || it.Data["title"] != "hello" || it.Data["color"] != "blue" || it.Data["name"] != nil {
		t.Fatalf("read %s %v, want card/2 with title hello and color blue", it.Schema, it.Data)
	}
	must(t, r.Update("c1", func(d map[string]any) error { d["color"] = "red"; return nil }))
	it, err = r.Get("c1")
	must(t, err)
	if it.Schema != "card/2" || it.Data["color"] != "red" {
		t.Fatalf("after update %s %v", it.Schema, it.Data)
	}
}

func TestClient_ReplacesExpiringSessionKey(t *testing.T) {
	var mu stdsync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	dir := t.TempDir()
	open := func() *goat.Client {
		return offlineClient(t, func(cfg *goat.Config) { cfg.Dir, cfg.Now, cfg.CoalesceWindow = dir, clock, time.Hour })
	}
	c := open()
	first := c.SessionID()
	r := openRepo(t, c, "r")
	must(t, r.Set("k", core.AnySchema, map[string]any{"v": 1}))
	must(t, r.Flush(t.Context()))
	if got := c.SessionID(); got != first {
		t.Fatalf("session changed to %s without a reason", got)
	}
	mu.Lock()
	now = now.Add(23 * 24 * time.Hour) // 6 of the 29 days left
	mu.Unlock()
	must(t, r.Set("k", core.AnySchema, map[string]any{"v": 2}))
	must(t, r.Flush(t.Context()))
	second := c.SessionID()
	if second == first {
		t.Fatal("the session key was not replaced near its expiry")
	}
	must(t, c.Close())
	if got := open().SessionID(); got != second {
		t.Fatalf("reopened with session %s, want the replacement %s", got, second)
	}
}
