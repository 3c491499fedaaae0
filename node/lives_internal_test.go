package node

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	stdsync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/storage"
)

// readHook is an FS that calls onRead when a file is opened for reading
// (after the open, found or not).
type readHook struct {
	storage.FS
	onRead atomic.Pointer[func(name string)]
}

func (h *readHook) OpenFile(name string, flag int, perm os.FileMode) (storage.File, error) {
	f, err := h.FS.OpenFile(name, flag, perm)
	if fn := h.onRead.Load(); fn != nil && flag == os.O_RDONLY {
		(*fn)(name)
	}
	return f, err
}

// A record applied by sysLoop and a replica's creation of the same name
// meet: sysLoop has read the generation of the name's log (none yet: 0)
// when the announcement of the re-created repository arrives. The creation
// must wait for the record's application, or sysLoop would retire the log
// just created as older than the record (the rare timeout of cluster
// TestNode_DeleteRepo/OverNATS: one node ended without the re-created
// repository).
//
// The creation's goroutine is let go first; without the lock it finishes
// while sysLoop is held, and the test sees the repository retired. With
// it, it cannot finish: the test gives it a moment (the only wait here
// that is not on a signal: it proves that something does not happen)
// before letting sysLoop go.
func TestNode_LifeOfANameIsSerialised(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	fs := &readHook{FS: storage.OSFS()}
	n, err := Open(Config{DataDir: dir, NoSync: true, Dev: true, FS: fs, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	admin := auth.Principal{Sub: "root", Roles: []string{auth.AdminRole}, Issuer: auth.DevIssuerName, Expires: time.Now().Add(time.Hour)}
	if _, _, err := n.CreateRepo(ctx, admin, "notes"); err != nil {
		t.Fatal(err)
	}
	if err := n.DeleteRepo(ctx, admin, "notes"); err != nil {
		t.Fatal(err)
	}
	if n.store.Exists("notes") {
		t.Fatal("notes was not retired")
	}

	sys, done, err := n.store.Repo(ReposRepo)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	// record appends a sys.repos record as if it came from another node.
	record := func(key string, data map[string]any) {
		t.Helper()
		c := &core.Commit{Repo: ReposRepo, Key: key, Parents: sys.Heads(key), Author: n.rootID, TS: time.Now().UnixMilli(), Schema: core.AnySchema, Data: data}
		if err := c.Sign(n.root); err != nil {
			t.Fatal(err)
		}
		if _, err := sys.AppendFrom(ctx, []*core.Commit{c}, nil, uint8(OriginReplica)); err != nil {
			t.Fatal(err)
		}
	}
	// applied appends a record of marker and waits until sysLoop applies
	// it (it reads the generation of marker's log): sysLoop applies
	// records in order, one at a time, so every record before it is
	// applied too. hold, if not nil, runs on every other read.
	applied := func(marker string, hold func(name string)) {
		t.Helper()
		seen := make(chan struct{})
		var once stdsync.Once
		hook := func(name string) {
			if name == filepath.Join(dir, marker+".gen") {
				once.Do(func() { close(seen) })
			} else if hold != nil {
				hold(name)
			}
		}
		fs.onRead.Store(&hook)
		record(marker, map[string]any{"owner": "root"})
		<-seen
	}
	applied("marker1", nil) // the deletion's record too

	// Another node's client created notes again: its record (generation
	// 1) arrives first, and sysLoop starts applying it. It is held right
	// after it read the generation of this node's log of notes (none).
	held, release := make(chan struct{}), make(chan struct{})
	var holdOnce stdsync.Once
	hold := func(name string) {
		if name == filepath.Join(dir, "notes.gen") {
			holdOnce.Do(func() { close(held); <-release })
		}
	}
	fs.onRead.Store(&hold)
	record("notes", map[string]any{"owner": "root", "generation": float64(1)})
	<-held

	// Its announcement arrives.
	created := make(chan error, 1)
	go func() { _, err := n.Ensure(ctx, "notes", OriginReplica); created <- err }()
	select {
	case err := <-created:
		created <- err
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := <-created; err != nil {
		t.Fatalf("the replica's creation: %v", err)
	}
	applied("marker2", hold)
	if !n.store.Exists("notes") {
		t.Fatal("the re-created notes was retired by the record of its own creation")
	}
	if gen, err := n.store.Generation("notes"); err != nil || gen != 1 {
		t.Fatalf("the re-created notes is of generation %d (%v), want 1", gen, err)
	}
}
