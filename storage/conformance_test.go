package storage_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
	"github.com/goat-gateway/goat-gateway/storage"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

// A repository log is the replica-side set of the sync driver through
// gsync.LocalOf, ingesting by Append.
func TestRepo_LocalConformance(t *testing.T) {
	goattest.RunLocalConformance(t, func(tb testing.TB) gsync.Local {
		s, err := storage.Open(storage.Config{Dir: "/data", FS: storage.NewMemFS(), Logger: slog.New(slog.DiscardHandler), IdleTimeout: -1})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { s.Close() })
		r, release, err := s.Ensure(goattest.ConformanceRepo)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(release)
		return gsync.LocalOf(r, func(ctx context.Context, cs []*core.Commit) error { return appendLocal(ctx, r, cs) })
	})
}

// appendLocal appends commits as gsync.Local.Ingest asks: the ones whose
// parents are missing are reported with core.ErrMissingParents, any other
// rejection is an error.
func appendLocal(ctx context.Context, r *storage.Repo, cs []*core.Commit) error {
	res, err := r.Append(ctx, cs)
	if err != nil {
		return err
	}
	missing := 0
	for _, x := range res {
		switch {
		case x.Status != storage.Rejected:
		case errors.Is(x.Err, core.ErrMissingParents):
			missing++
		default:
			return fmt.Errorf("commit %s: %w", x.ID, x.Err)
		}
	}
	if missing > 0 {
		return fmt.Errorf("%w: %d commits", core.ErrMissingParents, missing)
	}
	return nil
}
