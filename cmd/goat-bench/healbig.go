package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/storage"
)

// healBigSetup serves a copy of the cold-open fixture (n commits, cached)
// from its own gateway for the heal scenario at that size: a copy, because
// the heals push commits and the cold scenario checks the fixture's digest.
// The master replica is read from the copy's storage before the gateway
// opens it (faster than a clone over HTTP).
func (e *env) healBigSetup(ctx context.Context, n int) (*cloneFixture, error) {
	src, _, _, err := e.coldFixture(ctx, n)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(e.cfg.Work, "healbig-")
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	if err := copyDir(src, dir); err != nil {
		return nil, fmt.Errorf("copy the cold fixture: %w", err)
	}
	st, err := storage.Open(storage.Config{Dir: dir, NoSync: true, IdleTimeout: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	r, release, err := st.Ensure(coldRepo)
	if err != nil {
		st.Close()
		return nil, err
	}
	master := newReplica()
	var readErr error
	r.EachID(0, func(_ int64, id core.CommitID) bool {
		c, ok := r.Commit(id)
		if !ok {
			readErr = fmt.Errorf("fixture commit %s unreadable", id)
			return false
		}
		master.byID[id] = c
		master.order = append(master.order, id)
		master.digest.Add(id)
		return true
	})
	release()
	if err := st.Close(); err != nil || readErr != nil {
		return nil, fmt.Errorf("read the heal fixture: %w", errors.Join(readErr, err))
	}
	e.log.Info("heal fixture ready", "commits", master.Len(), "seconds", fmt.Sprintf("%.1f", time.Since(t0).Seconds()))
	g, err := startGateway(ctx, e.cfg.Bin, dir, e.meter, e.log)
	if err != nil {
		return nil, err
	}
	s, err := newSigner(ctx, e.http, g, "healer")
	if err != nil {
		g.Stop()
		return nil, err
	}
	return &cloneFixture{g: g, repo: coldRepo, signer: s, master: master}, nil
}

// copyDir copies the regular files of src into dst, keeping the tree and
// the permissions.
func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		to := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(to, info.Mode().Perm())
		}
		if !d.Type().IsRegular() {
			return nil
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		// The file's own permissions: the gateway refuses a key that
		// group or others may read.
		out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, info.Mode().Perm())
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}
