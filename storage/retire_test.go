package storage

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
)

func TestStore_Retire(t *testing.T) {
	at := time.Date(2026, 12, 5, 13, 14, 15, 0, time.UTC)
	t.Run("MovesTheLogAsideIntact", func(t *testing.T) {
		fsys := NewMemFS()
		s := openStore(t, fsys, func(c *Config) { c.CheckpointEvery = 1 })
		r := repo(t, s, "a")
		c1 := mkCommit(t, "a", "k", 1, map[string]any{"v": "1"})
		mustAppend(t, r, c1, mkCommit(t, "a", "k", 2, map[string]any{"v": "2"}, c1.ID))
		if err := s.SetGeneration("a", 3); err != nil {
			t.Fatal(err)
		}
		// Another holder waits at the tail of the log: Retire cuts it.
		waited := make(chan error, 1)
		go func() { waited <- r.Wait(context.Background(), r.LogLen()) }()

		dir, err := s.Retire("a", at)
		if err != nil {
			t.Fatalf("Retire: %v", err)
		}
		if got, want := dir, filepath.Join(DeletedDir, "20261205T131415.000Z.a"); got != want {
			t.Fatalf("dir=%q, want %q", got, want)
		}
		if err := <-waited; !errors.Is(err, core.ErrClosed) {
			t.Fatalf("Wait during Retire: %v, want ErrClosed", err)
		}
		if _, err := r.ReadLog(0, 10); !errors.Is(err, core.ErrClosed) {
			t.Fatalf("ReadLog through an old handle: %v, want ErrClosed", err)
		}
		if _, err := r.Append(context.Background(), []*core.Commit{mkCommit(t, "a", "j", 3, map[string]any{"v": "3"})}); !errors.Is(err, core.ErrClosed) {
			t.Fatalf("Append through an old handle: %v, want ErrClosed", err)
		}
		if _, _, err := s.Repo("a"); !errors.Is(err, core.ErrNotFound) {
			t.Fatalf("Repo after Retire: %v, want ErrNotFound", err)
		}
		names, err := s.List()
		if err != nil || len(names) != 0 {
			t.Fatalf("List=%v, %v; want none", names, err)
		}
		moved, err := fsys.ReadFile(filepath.Join("/data", dir, "a.log"))
		if err != nil {
			t.Fatalf("moved log: %v", err)
		}
		if g, err := fsys.ReadFile(filepath.Join("/data", dir, "a.gen")); err != nil || string(g) != "3\n" {
			t.Fatalf("moved generation=%q, %v", g, err)
		}
		if gen, err := s.Generation("a"); err != nil || gen != 0 {
			t.Fatalf("Generation after Retire=%d, %v; want 0", gen, err)
		}
		// Moving the files back restores the repository as it was.
		if err := fsys.Rename(filepath.Join("/data", dir, "a.log"), logPath("a")); err != nil {
			t.Fatal(err)
		}
		r2 := repo(t, s, "a")
		if got, want := r2.Count(), 2; got != want {
			t.Fatalf("restored count=%d, want %d", got, want)
		}
		if !r2.Has(c1.ID) {
			t.Fatal("restored log lacks its first commit")
		}
		back, _ := fsys.ReadFile(logPath("a"))
		if !bytes.HasPrefix(back, moved) {
			t.Fatal("the restored log is not the retired one")
		}
	})
	t.Run("Unknown", func(t *testing.T) {
		s := openStore(t, NewMemFS(), nil)
		if _, err := s.Retire("nope", at); !errors.Is(err, core.ErrNotFound) {
			t.Fatalf("Retire(unknown)=%v, want ErrNotFound", err)
		}
	})
	t.Run("CreateAgainStartsEmpty", func(t *testing.T) {
		s := openStore(t, NewMemFS(), nil)
		r := repo(t, s, "a")
		mustAppend(t, r, mkCommit(t, "a", "k", 1, map[string]any{"v": "1"}))
		if _, err := s.Retire("a", at); err != nil {
			t.Fatal(err)
		}
		r2, release, err := s.Create("a")
		if err != nil {
			t.Fatalf("Create after Retire: %v", err)
		}
		defer release()
		if got := r2.Count(); got != 0 {
			t.Fatalf("count=%d, want 0", got)
		}
	})
}
