package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// PeerData is the PouchDB side: what bench/pouchdb/bench.mjs measured,
// and the ratios to goat-gateway's figures of the same run.
type PeerData struct {
	Server      string      `json:"server"`
	Client      string      `json:"client"`
	Storage     string      `json:"storage"`
	Docs        int         `json:"docs"`
	LoadSeconds float64     `json:"loadSeconds"`
	Clone       []PeerClone `json:"clone"`
	InSync      PeerInSync  `json:"inSync"`
	Live        []LivePoint `json:"live"`
	Notes       []string    `json:"notes,omitempty"`
	Ratios      []Ratio     `json:"ratios"`
	Phases      []PeerPhase `json:"phases"`
}

// PeerClone is one replication configuration.
type PeerClone struct {
	Config   string    `json:"config"`
	Seconds  []float64 `json:"seconds"`
	Median   float64   `json:"medianSeconds"`
	Requests int       `json:"requests"`
	WireIn   int64     `json:"wireBytesIn"`
	WireOut  int64     `json:"wireBytesOut"`
}

// PeerInSync is a replication with nothing to do.
type PeerInSync struct {
	Millis    Summary `json:"ms"`
	Requests  int     `json:"requests"`
	WireBytes int64   `json:"wireBytes"`
	Runs      int     `json:"runs"`
}

// Ratio compares one figure: Factor is how many times better goat-gateway
// is (peer / goat for costs such as seconds or bytes), so above 1 means
// goat-gateway is ahead, below 1 behind.
type Ratio struct {
	Name   string  `json:"name"`
	Goat   float64 `json:"goat"`
	Peer   float64 `json:"peer"`
	Unit   string  `json:"unit"`
	Factor float64 `json:"factor"`
	Note   string  `json:"note,omitempty"`
}

// PeerPhase is one invocation of bench.mjs: when it ran and how loaded
// the machine was.
type PeerPhase struct {
	Name    string    `json:"name"` // "clone" (load, clone, in-sync) or "live"
	After   string    `json:"after"`
	Started time.Time `json:"started"`
	Seconds float64   `json:"seconds"`
	Load    Load      `json:"load"`
	Error   string    `json:"error,omitempty"`
}

// peerPhase runs one phase of bench/pouchdb/bench.mjs and merges what it
// measured into e.peer. goat-bench runs the clone phase right after its
// own clone and heal scenarios and the live phase right after its live
// scenario, so that each comparison is made minutes apart.
func (e *env) peerPhase(ctx context.Context, phase, after string) error {
	if e.peer == nil {
		e.peer = &PeerData{}
	}
	ph := PeerPhase{Name: phase, After: after, Started: time.Now().UTC().Truncate(time.Second)}
	probe := fsyncProbe(e.cfg.Work, 20)
	before := e.meter.sample()
	err := e.runPeerScript(ctx, phase)
	afterS := e.meter.sample()
	ph.Load = loadBetween(before, afterS)
	ph.Load.FsyncMs = Summarize(append(probe, fsyncProbe(e.cfg.Work, 20)...))
	ph.Seconds = afterS.at.Sub(before.at).Seconds()
	if err != nil {
		ph.Error = err.Error()
		e.log.Error("peer phase failed", "phase", phase, "err", err)
	}
	e.peer.Phases = append(e.peer.Phases, ph)
	e.log.Info("peer phase done", "phase", phase, "seconds", fmt.Sprintf("%.1f", ph.Seconds), "load", ph.Load.String())
	return err
}

func (e *env) runPeerScript(ctx context.Context, phase string) error {
	if _, err := os.Stat(filepath.Join(e.cfg.PeerDir, "node_modules", "pouchdb-server")); err != nil {
		return fmt.Errorf("bench/pouchdb has no node_modules: run `npm ci --prefix bench/pouchdb` (bench/run.sh does): %w", err)
	}
	if err := e.writeDocs(); err != nil {
		return err
	}
	work, err := os.MkdirTemp(e.cfg.Work, "pouchdb-"+phase+"-")
	if err != nil {
		return err
	}
	outPath := filepath.Join(work, "peer-raw.json")
	subs := make([]string, len(e.cfg.PeerSubs))
	for i, n := range e.cfg.PeerSubs {
		subs[i] = strconv.Itoa(n)
	}
	args := []string{filepath.Join(e.cfg.PeerDir, "bench.mjs"), "--phase", phase, "--docs", e.docsPath(), "--subs", strings.Join(subs, ","),
		"--samples", strconv.Itoa(e.cfg.PeerSamples), "--reps", strconv.Itoa(e.cfg.PeerReps), "--work", work, "--out", outPath}
	cmd := exec.CommandContext(ctx, "node", args...)
	cmd.Dir = e.cfg.PeerDir
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		return err
	}
	e.meter.track(cmd.Process.Pid)
	err = cmd.Wait()
	e.meter.untrack(cmd.Process.Pid)
	if err != nil {
		return fmt.Errorf("node bench.mjs --phase %s: %w", phase, err)
	}
	b, err := os.ReadFile(outPath)
	if err != nil {
		return err
	}
	var got PeerData
	if err := json.Unmarshal(b, &got); err != nil {
		return fmt.Errorf("peer-raw.json: %w", err)
	}
	p := e.peer
	p.Server, p.Client, p.Storage = got.Server, got.Client, got.Storage
	if phase != "live" {
		p.Docs, p.LoadSeconds, p.Clone, p.InSync = got.Docs, got.LoadSeconds, got.Clone, got.InSync
	}
	if phase != "clone" {
		p.Live = got.Live
	}
	p.Notes = append(p.Notes, got.Notes...)
	return nil
}

// runPeer runs the phases that did not run next to their goat-gateway
// scenarios, and compares.
func (e *env) runPeer(ctx context.Context, r *Result) (any, error) {
	ran := map[string]bool{}
	if e.peer != nil {
		for _, ph := range e.peer.Phases {
			ran[ph.Name] = true
		}
	}
	var errs []error
	for _, phase := range []string{"clone", "live"} {
		if !ran[phase] {
			if err := e.peerPhase(ctx, phase, "(nothing: its goat-gateway scenario did not run)"); err != nil {
				errs = append(errs, err)
			}
		}
	}
	data := e.peer
	r.Setup = []string{
		"pouchdb-server 4.2.0 (npm, pinned in bench/pouchdb/package-lock.json) on Node, --in-memory (the peer at its fastest: no disk, no fsync; goat-gateway writes and fsyncs its log), logging at level error and not to stdout, on 127.0.0.1",
		fmt.Sprintf("the same %s documents as the goat-gateway clone repository (goat-bench writes them as NDJSON; the script loads them with _bulk_docs, 1000 per request)", commas(int64(e.cfg.CloneN))),
		fmt.Sprintf("clone: PouchDB.replicate(remote, a fresh in-memory PouchDB) in Node (pouchdb-core 9 with the http and memory adapters), with PouchDB's default options and with batch_size 1000, in turn, %d time(s) round; the faster (by median) is compared", e.cfg.PeerReps),
		"in-sync check: the same replication again into the cloned database, nothing to do (it finds its checkpoint); requests counted in the client's fetch, bytes on the client's sockets (HTTP headers and the server's gzip included)",
		fmt.Sprintf("live: %v continuous _changes feeds (feed=continuous&since=now) on a fresh server, one connection each; a writer PUTs one document at a time (the same values as goat-bench's live commits), %d timed after 5 warm-up, latency from sending the PUT to the feed's line for it", e.cfg.PeerSubs, e.cfg.PeerSamples),
	}
	for _, ph := range data.Phases {
		s := fmt.Sprintf("phase %s ran at %s, right after goat-gateway's %s, for %.0f s; machine load: %s", ph.Name, ph.Started.Format("15:04:05"), ph.After, ph.Seconds, ph.Load.String())
		if ph.Error != "" {
			s += "; FAILED: " + ph.Error
		}
		r.Setup = append(r.Setup, s)
	}
	data.Ratios = ratios(e.results, data)
	for _, x := range data.Ratios {
		e.log.Info("ratio", "name", x.Name, "goat", x.Goat, "peer", x.Peer, "unit", x.Unit, "goat_better_by", fmt.Sprintf("%.1fx", x.Factor))
	}
	r.Notes = append(r.Notes, data.Notes...)
	for _, x := range data.Ratios {
		if x.Name == "clone" && data.Docs < 100_000 {
			r.Notes = append(r.Notes, fmt.Sprintf("the 12x clone target is for 100,000 documents; this run had %s (ratio %.1fx), so it is not judged", commas(int64(data.Docs)), x.Factor))
		}
		if x.Name == "clone" && data.Docs >= 100_000 {
			r.Targets = append(r.Targets, atLeast(targetPeer, x.Factor, 12, "x",
				fmt.Sprintf("%.1fx: goat-gateway %.2f s, PouchDB %.2f s (%s documents; %s)", x.Factor, x.Goat, x.Peer, commas(int64(data.Docs)), x.Note)))
		}
	}
	if len(errs) > 0 {
		return data, errors.Join(errs...)
	}
	if len(data.Ratios) == 0 {
		return data, errors.New("no goat-gateway figures of this run to compare with (run clone, heal and live in the same run)")
	}
	return data, nil
}

// ratios compares the peer's figures with goat-gateway's of the same run.
func ratios(results map[string]*Result, p *PeerData) []Ratio {
	var out []Ratio
	var clone CloneData
	if decodeData(results["clone"], &clone) && len(p.Clone) > 0 && clone.Commits == p.Docs {
		best := p.Clone[0]
		for _, c := range p.Clone {
			if c.Median < best.Median {
				best = c
			}
		}
		// Each side at its best: the peer's faster configuration against
		// goat-gateway's fastest coding; bytes against goat-gateway's
		// compressed (zstd) clone, as the peer's are gzipped.
		var fast, zstd *CloneRun
		for i, run := range clone.Runs {
			if fast == nil || run.Median < fast.Median {
				fast = &clone.Runs[i]
			}
			if run.Accept == "zstd" {
				zstd = &clone.Runs[i]
			}
		}
		if fast != nil {
			out = append(out, Ratio{Name: "clone", Goat: fast.Median, Peer: best.Median, Unit: "s", Factor: best.Median / fast.Median,
				Note: fmt.Sprintf("each at its best: goat-gateway with %s, PouchDB with %s", orIdentity(fast.Accept), best.Config)})
			if zstd != nil && zstd != fast {
				out = append(out, Ratio{Name: "clone, goat-gateway with zstd", Goat: zstd.Median, Peer: best.Median, Unit: "s", Factor: best.Median / zstd.Median,
					Note: "compressed like the peer's responses"})
			}
		}
		if zstd != nil {
			out = append(out, Ratio{Name: "clone bytes on the wire", Goat: float64(zstd.WireIn + zstd.WireOut), Peer: float64(best.WireIn + best.WireOut), Unit: "bytes",
				Factor: float64(best.WireIn+best.WireOut) / float64(zstd.WireIn+zstd.WireOut), Note: "goat-gateway zstd, PouchDB gzip"})
			out = append(out, Ratio{Name: "clone requests", Goat: float64(zstd.Requests), Peer: float64(best.Requests), Unit: "requests",
				Factor: float64(best.Requests) / float64(zstd.Requests)})
		}
	}
	var heal HealData
	if decodeData(results["heal"], &heal) && p.InSync.Runs > 0 {
		for _, h := range heal.Points {
			if h.Side != "in-sync" {
				continue
			}
			out = append(out,
				Ratio{Name: "in-sync check round trips", Goat: h.Rounds.Max, Peer: float64(p.InSync.Requests), Unit: "requests", Factor: float64(p.InSync.Requests) / h.Rounds.Max},
				Ratio{Name: "in-sync check bytes on the wire", Goat: h.WireBytes.P50, Peer: float64(p.InSync.WireBytes), Unit: "bytes", Factor: float64(p.InSync.WireBytes) / h.WireBytes.P50},
				Ratio{Name: "in-sync check time", Goat: h.Millis.P50, Peer: p.InSync.Millis.P50, Unit: "ms", Factor: p.InSync.Millis.P50 / h.Millis.P50},
			)
		}
	}
	var live LiveData
	if decodeData(results["live"], &live) {
		for _, pl := range p.Live {
			for _, gl := range live.Points {
				if gl.Subscribers != pl.Subscribers {
					continue
				}
				out = append(out,
					Ratio{Name: fmt.Sprintf("live latency p50, %d subscribers", gl.Subscribers), Goat: gl.FromSend.P50, Peer: pl.FromSend.P50, Unit: "ms", Factor: pl.FromSend.P50 / gl.FromSend.P50},
					Ratio{Name: fmt.Sprintf("live latency p99, %d subscribers", gl.Subscribers), Goat: gl.FromSend.P99, Peer: pl.FromSend.P99, Unit: "ms", Factor: pl.FromSend.P99 / gl.FromSend.P99},
				)
			}
		}
	}
	return out
}
