// Command goat-bench measures goat-gateway against the targets of its
// benchmark suite, side by side with PouchDB's pouchdb-server and with
// Centrifugo (live delivery) on the same machine in the same run, and
// writes what it measured to bench/results/:
// one <scenario>.json per scenario, report.md, and PNG plots.
//
//	goat-bench [--quick] [--out bench/results] [--bin path/to/goat-gateway] [--only live,clone,...] [--poller auto|uring|epoll] [--cpuprofile FILE]
//	goat-bench report [--out bench/results]   rebuild report.md and plots from the JSON
//
// It builds ./cmd/goat-gateway into a temporary directory (or takes
// --bin), starts it on 127.0.0.1 with a fresh data directory in dev mode
// and with real fsync, and drives it over HTTP and SSE as clients do.
// docs/benchmarks.md says what every scenario does and what its numbers
// mean.
//
// Guarantees:
//   - Every figure in the results was measured in this run, on this
//     machine; nothing is carried over, extrapolated or hard-coded. A target
//     that is missed is reported as missed.
//   - Each scenario records how loaded the machine was while it ran (the
//     cores busy with our processes and with everybody else's), because
//     the machine may be shared.
//   - Noisy figures are repeated and reported as the median of the runs,
//     with the spread; latencies are reported as percentiles (nearest
//     rank) of every observation, never as averages alone.
//   - Timed sections contain only what they measure: commits are signed,
//     data loaded and connections opened before the clock starts.
//   - Correctness is checked alongside speed: a clone or a heal that does
//     not end with the client's digest equal to the server's is an error,
//     not a number.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// scenarioOrder is the order scenarios run in and appear in the report.
var scenarioOrder = []string{"micro", "live", "fanout", "ingest", "clone", "heal", "cold", "peer", "centrifugo"}

var scenarioTitles = map[string]string{
	"micro":  "Go micro-benchmarks",
	"live":   "1. Live latency: commit accepted to SSE event received",
	"fanout": "2. Fan-out: SSE subscribers on one node",
	"ingest": "3. Durable ingest",
	"clone":  "4. Clone",
	"heal":   "5. In-sync check and divergence healing",
	"cold":   "6. Cold open",
	"peer":   "Side by side: PouchDB (pouchdb-server 4.2.0)",
	// The version is the binary's: bench/run.sh pins it.
	"centrifugo": "Side by side: Centrifugo (second peer, live delivery)",
}

// config is the run's parameters. quickConfig and fullConfig are the two
// presets; flags override single values.
type config struct {
	Mode    string
	Root    string // repository root (go.mod)
	Out     string // results directory
	Bin     string // goat-gateway binary; built when empty
	Work    string // scratch directory
	Cache   string // generated fixtures kept between runs
	PeerDir string // bench/pouchdb
	// Centrifugo is the second peer's binary (bench/run.sh installs it
	// into bench/.bin).
	Centrifugo string
	Only       map[string]bool
	Keep       bool
	Parallel   int // dial concurrency for SSE streams
	// Poller is how goat-bench reads its live streams: uring or epoll
	// (auto is resolved to one of them before the scenarios run).
	Poller pollerKind

	LiveSubs      []int
	LiveSamples   int
	FanoutSteps   []int
	FanoutCommits int
	IngestClients []int
	IngestBatch   int
	IngestCommits int     // commits per batched run, at least
	IngestPutSecs float64 // seconds per PUT run
	IngestReps    int
	CloneN        int
	CloneReps     int
	HealMissing   []int
	HealReps      int
	HealBigN      int // a second heal repository of this many commits (the cold fixture's); 0: none
	ColdN         int
	ColdReps      int
	PeerSubs      []int
	PeerSamples   int
	PeerReps      int
	MicroTime     string // -benchtime; "" skips the micro-benchmarks
}

func quickConfig() config {
	return config{
		Mode: "quick", Parallel: 32,
		LiveSubs: []int{1, 100, 1000}, LiveSamples: 30,
		FanoutSteps: []int{500, 1000, 2000}, FanoutCommits: 5,
		IngestClients: []int{1, 16, 64}, IngestBatch: 100, IngestCommits: 3000, IngestPutSecs: 1, IngestReps: 1,
		CloneN: 10_000, CloneReps: 1,
		HealMissing: []int{0, 10, 100, 1000}, HealReps: 2,
		ColdN: 100_000, ColdReps: 1,
		PeerSubs: []int{1, 100}, PeerSamples: 15, PeerReps: 1,
	}
}

func fullConfig() config {
	return config{
		Mode: "full", Parallel: 64,
		LiveSubs: []int{1, 100, 1000}, LiveSamples: 300,
		FanoutSteps: []int{1000, 2500, 5000, 10000, 20000}, FanoutCommits: 10,
		IngestClients: []int{1, 4, 16, 64, 256}, IngestBatch: 100, IngestCommits: 20_000, IngestPutSecs: 5, IngestReps: 5,
		CloneN: 100_000, CloneReps: 5,
		HealMissing: []int{0, 10, 100, 1000}, HealReps: 5, HealBigN: 1_000_000,
		ColdN: 1_000_000, ColdReps: 3,
		PeerSubs: []int{1, 100, 1000}, PeerSamples: 100, PeerReps: 3,
		MicroTime: "1s",
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "goat-bench:", err)
		os.Exit(1)
	}
}

func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(strings.ReplaceAll(f, "_", ""))
		if err != nil {
			return nil, fmt.Errorf("%q: %w", f, err)
		}
		out = append(out, n)
	}
	return out, nil
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	report := len(args) > 0 && args[0] == "report"
	if report {
		args = args[1:]
	}
	fs := flag.NewFlagSet("goat-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "every scenario at a small size (well under 2 minutes)")
	out := fs.String("out", "", "results directory (default REPO/bench/results, REPO/bench/results/quick with --quick)")
	bin := fs.String("bin", "", "goat-gateway binary to measure (default: go build ./cmd/goat-gateway)")
	only := fs.String("only", "", "comma-separated scenarios to run: "+strings.Join(scenarioOrder, ","))
	cache := fs.String("cache", "", "directory for generated fixtures kept between runs (default: the user cache dir)")
	keep := fs.Bool("keep", false, "keep the scratch directory")
	verbose := fs.Bool("v", false, "debug logging")
	liveSubs := fs.String("live-subs", "", "subscriber counts of the live scenario, e.g. 1,100,1000")
	fanout := fs.String("fanout-steps", "", "subscriber counts the fan-out scenario ramps through, e.g. 1000,5000,20000")
	cloneN := fs.Int("clone-n", 0, "commits of the clone and heal repository")
	healBigN := fs.Int("heal-big-n", -1, "commits of the second heal repository (0: none; default 1M in full mode, none in quick)")
	coldN := fs.Int("cold-n", 0, "commits of the cold-open repository")
	centrifugoBin := fs.String("centrifugo", "", "Centrifugo binary of the centrifugo scenario (default REPO/bench/.bin/centrifugo, which bench/run.sh installs)")
	peerSubs := fs.String("peer-subs", "", "subscriber counts of the peer's changes-feed latency")
	ingestClients := fs.String("ingest-clients", "", "client counts of the ingest scenario, e.g. 16")
	ingestReps := fs.Int("ingest-reps", 0, "repetitions per ingest point (0 keeps the preset)")
	ingestPutSecs := fs.Float64("ingest-put-secs", -1, "seconds per single-item PUT run of the ingest scenario (0 skips the PUT mode; -1 keeps the preset)")
	microTime := fs.String("micro-benchtime", "", "-benchtime of the Go micro-benchmarks ('' keeps the preset; 'skip' skips them)")
	poller := fs.String("poller", "auto", "how goat-bench reads its live event streams: uring (a receive queued per stream on an io_uring, one system call for many streams' events), epoll (epoll_wait, then one read(2) per ready stream), or auto (uring where the kernel offers it, else epoll); for comparing the tool's own CPU per event")
	cpuProfile := fs.String("cpuprofile", "", "write goat-bench's own CPU profile (its subscribers, writers and clients; not the gateway's) to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := fullConfig()
	if *quick {
		cfg = quickConfig()
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	var err error
	if cfg.Root, err = findRoot(); err != nil {
		return err
	}
	cfg.Out = *out
	if cfg.Out == "" {
		// Quick results never overwrite the full run's.
		cfg.Out = filepath.Join(cfg.Root, "bench", "results")
		if *quick {
			cfg.Out = filepath.Join(cfg.Out, "quick")
		}
	}
	if report {
		return writeReport(cfg.Out, log)
	}
	cfg.Bin, cfg.Keep = *bin, *keep
	cfg.PeerDir = filepath.Join(cfg.Root, "bench", "pouchdb")
	cfg.Centrifugo = *centrifugoBin
	if cfg.Centrifugo == "" {
		cfg.Centrifugo = filepath.Join(cfg.Root, "bench", ".bin", "centrifugo")
	}
	cfg.Cache = *cache
	if cfg.Cache == "" {
		d, err := os.UserCacheDir()
		if err != nil {
			d = os.TempDir()
		}
		cfg.Cache = filepath.Join(d, "goat-bench")
	}
	for _, p := range []struct {
		s   string
		dst *[]int
	}{{*liveSubs, &cfg.LiveSubs}, {*fanout, &cfg.FanoutSteps}, {*peerSubs, &cfg.PeerSubs}, {*ingestClients, &cfg.IngestClients}} {
		if p.s != "" {
			if *p.dst, err = intList(p.s); err != nil {
				return err
			}
		}
	}
	if *ingestReps > 0 {
		cfg.IngestReps = *ingestReps
	}
	if *ingestPutSecs >= 0 {
		cfg.IngestPutSecs = *ingestPutSecs
	}
	if *healBigN >= 0 {
		cfg.HealBigN = *healBigN
	}
	if *cloneN > 0 {
		cfg.CloneN = *cloneN
	}
	if *coldN > 0 {
		cfg.ColdN = *coldN
	}
	switch *microTime {
	case "":
	case "skip":
		cfg.MicroTime = ""
	default:
		cfg.MicroTime = *microTime
	}
	if cfg.Poller, err = resolvePoller(pollerKind(*poller)); err != nil {
		return fmt.Errorf("--poller %s: %w", *poller, err)
	}
	log.Info("event stream poller", "poller", cfg.Poller, "asked", *poller)
	cfg.Only = map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		if s = strings.TrimSpace(s); s != "" {
			if _, ok := scenarioTitles[s]; !ok {
				return fmt.Errorf("unknown scenario %q (have %s)", s, strings.Join(scenarioOrder, ", "))
			}
			cfg.Only[s] = true
		}
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	return runAll(ctx, cfg, log)
}

// findRoot returns the directory of the goat-gateway go.mod at or above
// the working directory.
func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/goat-gateway/goat-gateway\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run goat-bench inside the goat-gateway repository")
		}
		dir = parent
	}
}

// env is what scenarios share during one run.
type env struct {
	cfg     config
	log     *slog.Logger
	meter   *cpuMeter
	machine Machine
	http    *http.Client
	results map[string]*Result
	// clone is the 100k-commit repository that clone, heal and the peer
	// share (built on first use).
	clone *cloneFixture
	// peer accumulates the PouchDB phases of the run.
	peer *PeerData
}

func runAll(ctx context.Context, cfg config, log *slog.Logger) error {
	start := time.Now()
	limit := raiseOpenFiles(1 << 16)
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "goat-bench-")
	if err != nil {
		return err
	}
	cfg.Work = work
	defer func() {
		if cfg.Keep {
			log.Info("scratch directory kept", "dir", work)
			return
		}
		os.RemoveAll(work)
	}()
	e := &env{cfg: cfg, log: log, meter: newCPUMeter(), http: newHTTPClient(64, nil), results: map[string]*Result{}}
	e.machine = describeMachine(ctx, cfg.Root)
	log.Info("goat-bench", "mode", cfg.Mode, "out", cfg.Out, "cpu", e.machine.CPU, "cores", e.machine.Cores, "open_files", limit, "commit", e.machine.Commit)
	if cfg.Bin == "" && cfg.wants("live", "fanout", "ingest", "clone", "heal", "cold", "centrifugo") {
		t := time.Now()
		if cfg.Bin, err = buildGateway(ctx, cfg.Root, work); err != nil {
			return err
		}
		log.Info("built goat-gateway", "bin", cfg.Bin, "seconds", time.Since(t).Seconds())
		e.cfg.Bin = cfg.Bin
	}
	defer e.closeFixtures()
	steps := []struct {
		name string
		fn   func(context.Context, *Result) (any, error)
	}{
		{"micro", e.runMicro},
		{"live", e.runLive},
		{"fanout", e.runFanout},
		{"ingest", e.runIngest},
		{"clone", e.runClone},
		{"heal", e.runHeal},
		{"cold", e.runCold},
		{"peer", e.runPeer},
		{"centrifugo", e.runCentrifugo},
	}
	var failed []string
	for _, s := range steps {
		if !cfg.wants(s.name) {
			continue
		}
		if s.name == "micro" && cfg.MicroTime == "" {
			continue
		}
		if s.name == "peer" || s.name == "centrifugo" {
			e.closeFixtures() // the peers get the machine to themselves
		}
		if err := e.scenario(ctx, s.name, s.fn); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			log.Error("scenario failed", "scenario", s.name, "err", err)
			failed = append(failed, s.name)
		}
		// The peer's phases run right after the goat-gateway scenarios they
		// are compared with, outside them (each has its own load figure).
		if !cfg.wants("peer") {
			continue
		}
		switch {
		case s.name == "live":
			_ = e.peerPhase(ctx, "live", "live scenario")
		case s.name == "heal" || (s.name == "clone" && !cfg.wants("heal")):
			e.closeFixtures()
			_ = e.peerPhase(ctx, "clone", s.name+" scenario")
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	e.closeFixtures()
	if err := writeReport(cfg.Out, log); err != nil {
		return err
	}
	log.Info("done", "seconds", time.Since(start).Round(time.Second).Seconds(), "report", filepath.Join(cfg.Out, "report.md"))
	if len(failed) > 0 {
		return fmt.Errorf("scenarios failed: %s (their JSON records the error)", strings.Join(failed, ", "))
	}
	return nil
}

// wants reports whether any of names is to run.
func (c config) wants(names ...string) bool {
	for _, n := range names {
		if len(c.Only) == 0 || c.Only[n] {
			return true
		}
	}
	return false
}

// scenario runs fn, times it, records the machine's load around it, and
// writes its JSON (also when it fails, with the error).
func (e *env) scenario(ctx context.Context, name string, fn func(context.Context, *Result) (any, error)) error {
	e.log.Info("scenario", "name", name)
	r := &Result{Scenario: name, Title: scenarioTitles[name], Mode: e.cfg.Mode, Started: time.Now().UTC().Truncate(time.Second), Machine: e.machine}
	probe := fsyncProbe(e.cfg.Work, 20)
	before := e.meter.sample()
	data, err := fn(ctx, r)
	after := e.meter.sample()
	probe = append(probe, fsyncProbe(e.cfg.Work, 20)...)
	r.Load = loadBetween(before, after)
	r.Load.FsyncMs = Summarize(probe)
	r.Seconds = after.at.Sub(before.at).Seconds()
	if data != nil {
		b, merr := jsonMarshal(data)
		if merr != nil && err == nil {
			err = merr
		}
		r.Data = b
	}
	if err != nil {
		r.Error = err.Error()
	}
	e.results[name] = r
	if werr := writeJSON(e.cfg.Out, name+".json", r); werr != nil && err == nil {
		err = werr
	}
	for _, t := range r.Targets {
		verdict := "MET"
		if !t.Met {
			verdict = "MISSED"
		}
		e.log.Info("target", "scenario", name, "target", t.Name, "goal", t.Goal, "measured", t.Measured, "verdict", verdict)
	}
	e.log.Info("scenario done", "name", name, "seconds", fmt.Sprintf("%.1f", r.Seconds), "load", r.Load.String())
	return err
}

func (e *env) closeFixtures() {
	if e.clone != nil {
		e.clone.close()
		e.clone = nil
	}
}

// newGateway starts a gateway over a fresh data directory.
func (e *env) newGateway(ctx context.Context, name string) (*gateway, error) {
	dir, err := os.MkdirTemp(e.cfg.Work, name+"-")
	if err != nil {
		return nil, err
	}
	return startGateway(ctx, e.cfg.Bin, dir, e.meter, e.log)
}

// displayPath names a path for the report without this machine's home
// directory, so a committed report carries no path of the machine that ran
// it: "~/.cache/goat-bench", not the expanded form.
func displayPath(p string) string {
	if home, err := os.UserHomeDir(); err == nil && home != "" {
		if rel, err := filepath.Rel(home, p); err == nil && !strings.HasPrefix(rel, "..") {
			return filepath.Join("~", rel)
		}
	}
	return p
}
