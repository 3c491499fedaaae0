package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/storage"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

// coldVersion names the fixture recipe; bump it when the recipe changes
// so that cached fixtures are rebuilt.
const coldVersion = "v1"

const coldRepo = "cold"

// coldVersions is how many commits each item of the cold repository has:
// a history, not a pile of single-commit items.
const coldVersions = 10

// coldMarker describes a generated fixture.
type coldMarker struct {
	Version string `json:"version"`
	Commits int    `json:"commits"`
	Items   int    `json:"items"`
	Digest  string `json:"digest"`
	Seconds float64
}

// coldFixture returns a data directory holding repository "cold" with n
// commits, generating it (with the storage package directly: it is the
// gateway's own format, written without fsync) unless a cached one exists.
func (e *env) coldFixture(ctx context.Context, n int) (string, coldMarker, bool, error) {
	dir := filepath.Join(e.cfg.Cache, fmt.Sprintf("cold-%d-%s", n, coldVersion))
	var m coldMarker
	if b, err := os.ReadFile(filepath.Join(dir, "fixture.json")); err == nil && json.Unmarshal(b, &m) == nil && m.Commits == n && m.Version == coldVersion {
		return dir, m, true, nil
	}
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", m, false, err
	}
	e.log.Info("generating the cold-open fixture (once; cached)", "commits", n, "dir", dir)
	t0 := time.Now()
	st, err := storage.Open(storage.Config{Dir: dir, NoSync: true, IdleTimeout: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return "", m, false, err
	}
	r, release, err := st.Ensure(coldRepo)
	if err != nil {
		st.Close()
		return "", m, false, err
	}
	_, priv, _ := ed25519.GenerateKey(nil)
	author := auth.SessionID(priv.Public().(ed25519.PublicKey))
	items := max(n/coldVersions, 1)
	last := make([]core.CommitID, items)
	var digest gsync.Digest
	const chunk = 10_000
	ts := time.Now().Add(-24 * time.Hour).UnixMilli()
	for from := 0; from < n; from += chunk {
		if ctx.Err() != nil {
			release()
			st.Close()
			return "", m, false, ctx.Err()
		}
		cs := make([]*core.Commit, min(chunk, n-from))
		var wg sync.WaitGroup
		workers := runtime.NumCPU()
		errs := make([]error, workers)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := w; j < len(cs); j += workers {
					i := from + j
					k := i % items
					var parents []core.CommitID
					if i >= items {
						// In an earlier chunk, because chunk <= items or
						// the chunk loop already set it.
						parents = []core.CommitID{last[k]}
					}
					c := &core.Commit{Repo: coldRepo, Key: itemKey("item-", k), Parents: parents, Author: author, TS: ts + int64(i), Schema: core.AnySchema, Data: doc(i)}
					if err := c.Sign(priv); err != nil {
						errs[w] = err
						return
					}
					cs[j] = c
				}
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				release()
				st.Close()
				return "", m, false, err
			}
		}
		if items < chunk {
			// Parents inside this chunk: sign again in order.
			for j, c := range cs {
				i := from + j
				if i >= items {
					c.Parents = []core.CommitID{last[i%items]}
					if err := c.Sign(priv); err != nil {
						release()
						st.Close()
						return "", m, false, err
					}
				}
				last[i%items] = c.ID
			}
		}
		for b := 0; b < len(cs); b += 1000 {
			res, err := r.Append(ctx, cs[b:min(b+1000, len(cs))])
			if err != nil {
				release()
				st.Close()
				return "", m, false, err
			}
			for _, x := range res {
				if x.Status != storage.Appended {
					release()
					st.Close()
					return "", m, false, fmt.Errorf("fixture commit %s: %v %v", x.ID, x.Status, x.Err)
				}
			}
		}
		for j, c := range cs {
			last[(from+j)%items] = c.ID
			digest.Add(c.ID)
		}
	}
	release()
	if err := st.Close(); err != nil {
		return "", m, false, err
	}
	m = coldMarker{Version: coldVersion, Commits: n, Items: items, Digest: digest.XOR.String(), Seconds: time.Since(t0).Seconds()}
	if err := writeJSON(dir, "fixture.json", m); err != nil {
		return "", m, false, err
	}
	return dir, m, false, nil
}

// ensureCheckpoint makes sure the fixture's repository has an index
// checkpoint (fixtures cached before checkpoints existed have none):
// opening and closing it with the storage package writes one.
func ensureCheckpoint(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, coldRepo+".idx")); err == nil {
		return nil
	}
	st, err := storage.Open(storage.Config{Dir: dir, NoSync: true, IdleTimeout: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	_, release, err := st.Repo(coldRepo)
	if err != nil {
		st.Close()
		return err
	}
	release()
	return st.Close()
}

// dropCache asks the kernel to drop the page cache of every file in dir
// (posix_fadvise DONTNEED), so that opening reads from the disk; it does
// not touch anyone else's cached files. Under a VM the host may still
// cache them.
func dropCache(dir string) error {
	return filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		fh, err := os.Open(path)
		if err != nil {
			return err
		}
		defer fh.Close()
		return unix.Fadvise(int(fh.Fd()), 0, 0, unix.FADV_DONTNEED)
	})
}

// ColdData is the cold-open scenario's figures.
type ColdData struct {
	Commits         int       `json:"commits"`
	Items           int       `json:"items"`
	FileBytes       int64     `json:"fileBytes"`
	GenerateSeconds float64   `json:"generateSeconds"`
	Cached          bool      `json:"cachedFixture"`
	Runs            []ColdRun `json:"runs"`
	// OpenSeconds: first request for the repository until its answer: the
	// log read, checked and indexed.
	OpenSeconds Summary `json:"openSeconds"`
	// OpenCPUSeconds: the gateway's CPU time (user + system, all its
	// threads) during the open: unlike the wall time, it hardly moves
	// with other users' load, so builds can be compared on a busy machine.
	OpenCPUSeconds Summary `json:"openCpuSeconds"`
	// StartSeconds: process start until /readyz answers (repositories
	// load lazily, so this excludes the open).
	StartSeconds Summary `json:"startSeconds"`
	// RSSAfter is the gateway's resident memory with the repository open
	// (MiB), RSSGrowth what opening added.
	RSSAfter  Summary `json:"rssAfterMiB"`
	RSSGrowth Summary `json:"rssGrowthMiB"`
	PeakRSS   Summary `json:"peakRssMiB"`
	// InSyncBytes: the in-sync check against this repository (JSON both
	// ways).
	InSyncBytes int `json:"inSyncBytes"`
	// CheckpointBytes is the size of the repository's index checkpoint;
	// FullOpenSeconds and FullPeakRSS are one more cold start with it
	// moved aside, so that opening reads and indexes the whole log.
	CheckpointBytes int64   `json:"checkpointBytes"`
	FullOpenSeconds float64 `json:"fullOpenSeconds"`
	FullPeakRSS     float64 `json:"fullPeakRssMiB"`
}

// ColdRun is one cold start.
type ColdRun struct {
	StartSeconds float64 `json:"startSeconds"`
	OpenSeconds  float64 `json:"openSeconds"`
	// OpenCPUSeconds is the gateway's CPU time during the open.
	OpenCPUSeconds float64 `json:"openCpuSeconds"`
	RSSBefore      int64   `json:"rssBefore"`
	RSSAfter       int64   `json:"rssAfter"`
	PeakRSS        int64   `json:"peakRss"`
	CacheDropped   bool    `json:"cacheDropped"`
}

func (e *env) runCold(ctx context.Context, r *Result) (any, error) {
	n := e.cfg.ColdN
	dir, m, cached, err := e.coldFixture(ctx, n)
	if err != nil {
		return nil, err
	}
	data := ColdData{Commits: n, Items: m.Items, GenerateSeconds: m.Seconds, Cached: cached}
	if fi, err := os.Stat(filepath.Join(dir, coldRepo+".log")); err == nil {
		data.FileBytes = fi.Size()
	}
	r.Setup = []string{
		fmt.Sprintf("a data directory with one repository of %s commits: %s items with %d versions each (full values, linear histories), %.0f MiB of log, written once by the storage package and cached in %s", commas(int64(n)), commas(int64(m.Items)), coldVersions, float64(data.FileBytes)/(1<<20), displayPath(e.cfg.Cache)),
		fmt.Sprintf("%d cold start(s): the files' page cache dropped (posix_fadvise DONTNEED), a new goat-gateway process started on the directory; start = process start to /readyz; open = the first GET /v1/repos/%s (which loads the index checkpoint and reads the log after it, or without one reads, checks and indexes the whole log) until its answer", e.cfg.ColdReps, coldRepo),
		"memory: the process's VmRSS before and after the open, and its peak (VmHWM)",
	}
	ckpt := filepath.Join(dir, coldRepo+".idx")
	if err := ensureCheckpoint(dir); err != nil {
		return data, err
	}
	extra := 0 // one more start, without the checkpoint
	if fi, err := os.Stat(ckpt); err == nil {
		data.CheckpointBytes, extra = fi.Size(), 1
		r.Setup = append(r.Setup, fmt.Sprintf("the repository has an index checkpoint (%.1f MiB, written by the storage package when the fixture was last closed), so opening loads it and reads the log after it (nothing here); one more cold start with the checkpoint moved aside measures opening from the whole log", float64(data.CheckpointBytes)/(1<<20)))
	} else {
		r.Notes = append(r.Notes, "the repository is too small for an index checkpoint (storage writes one on close from 4,096 records): every open reads the whole log")
	}
	var opens, cpus, starts, after, growth, peaks []float64
	for rep := range e.cfg.ColdReps + extra {
		full := rep == e.cfg.ColdReps // the last start: without the checkpoint
		if full {
			if err := os.Rename(ckpt, ckpt+".aside"); err != nil {
				return data, err
			}
		}
		var run ColdRun
		run.CacheDropped = dropCache(dir) == nil
		restore := func() error { // once the open is done: repositories open lazily
			if !full {
				return nil
			}
			full = false
			return os.Rename(ckpt+".aside", ckpt)
		}
		g, err := startGateway(ctx, e.cfg.Bin, dir, e.meter, e.log)
		if err != nil {
			return data, errors.Join(err, restore())
		}
		run.StartSeconds = time.Since(g.Started).Seconds()
		run.RSSBefore, _, _ = g.Memory()
		tok := g.Token("cold")
		pid := fmt.Sprint(g.PID())
		cpu0 := procCPU(pid, false)
		t0 := time.Now()
		count, digest, err := serverDigest(ctx, e.http, g.URL, coldRepo, tok)
		run.OpenSeconds = time.Since(t0).Seconds()
		run.OpenCPUSeconds = procCPU(pid, false) - cpu0
		// (Stopping, a gateway that read the whole log saves a checkpoint
		// of it, which replaces this one: the same log, the same index.)
		err = errors.Join(err, restore())
		if err == nil && (int(count) != n || digest != m.Digest) {
			err = fmt.Errorf("cold repository has %d commits, digest %s; the fixture has %d, %s", count, digest, n, m.Digest)
		}
		if err != nil {
			g.Stop()
			return data, err
		}
		run.RSSAfter, run.PeakRSS, _ = g.Memory()
		if data.InSyncBytes == 0 {
			resp, req, err := inSyncRound(ctx, e.http, g.URL, tok, coldRepo, count, digest)
			if err != nil {
				g.Stop()
				return data, err
			}
			data.InSyncBytes = req.EncodedLen() + resp.EncodedLen()
		}
		if err := g.Stop(); err != nil {
			return data, err
		}
		if rep == e.cfg.ColdReps {
			data.FullOpenSeconds, data.FullPeakRSS = run.OpenSeconds, float64(run.PeakRSS)/(1<<20)
			e.log.Info("cold, without checkpoint", "commits", n, "open_s", fmt.Sprintf("%.3f", run.OpenSeconds), "peak_mib", run.PeakRSS>>20)
			continue
		}
		data.Runs = append(data.Runs, run)
		opens = append(opens, run.OpenSeconds)
		cpus = append(cpus, run.OpenCPUSeconds)
		starts = append(starts, run.StartSeconds)
		after = append(after, float64(run.RSSAfter)/(1<<20))
		growth = append(growth, float64(run.RSSAfter-run.RSSBefore)/(1<<20))
		peaks = append(peaks, float64(run.PeakRSS)/(1<<20))
		e.log.Info("cold", "commits", n, "open_s", fmt.Sprintf("%.3f", run.OpenSeconds), "open_cpu_s", fmt.Sprintf("%.2f", run.OpenCPUSeconds), "start_s", fmt.Sprintf("%.3f", run.StartSeconds),
			"rss_mib", run.RSSAfter>>20, "peak_mib", run.PeakRSS>>20, "cache_dropped", run.CacheDropped)
	}
	data.OpenSeconds, data.OpenCPUSeconds, data.StartSeconds = Summarize(opens), Summarize(cpus), Summarize(starts)
	data.RSSAfter, data.RSSGrowth, data.PeakRSS = Summarize(after), Summarize(growth), Summarize(peaks)
	if n >= 1_000_000 {
		r.Targets = append(r.Targets, below(targetCold, data.OpenSeconds.P50, 0.4, "s",
			fmt.Sprintf("%.2f s median open (runs %s) from the index checkpoint; %.2f s without one (the whole log read)", data.OpenSeconds.P50, fmtSecs(opens), data.FullOpenSeconds)),
			below(targetColdMemory, data.PeakRSS.P50, 200, "MiB",
				fmt.Sprintf("peak RSS %.0f MiB (median of the cold starts), %.0f MiB resident after the open; without a checkpoint: peak %.0f MiB", data.PeakRSS.P50, data.RSSAfter.P50, data.FullPeakRSS)))
	} else {
		r.Notes = append(r.Notes, fmt.Sprintf("the cold-open target is for 1,000,000 commits; this run opened %s, so it is not judged", commas(int64(n))))
	}
	r.Targets = append(r.Targets, below(fmt.Sprintf("in-sync check, %s commits", commas(int64(n))), float64(data.InSyncBytes), 300, "bytes",
		fmt.Sprintf("%d bytes of JSON both ways, 1 round trip", data.InSyncBytes)))
	return data, nil
}
