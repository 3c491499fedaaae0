package reliability

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/client"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/gen/models"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

// CrashConfig configures RunCrash. Zero values are usable defaults, except
// Bin.
type CrashConfig struct {
	// Bin is a built goat-gateway binary.
	Bin string
	// Trials is the number of kill-and-restart cycles; default 5.
	Trials int
	// Seed makes the choice of kill moments and writes repeatable (the
	// timing of a real process is not); default 1.
	Seed uint64
	// Writers is the number of concurrent writing goroutines; default 4.
	Writers int
	// DataDir keeps the gateway's data across trials; empty means a fresh
	// temporary directory, removed afterwards unless the run failed.
	DataDir string
	// MinKill and MaxKill bound the delay between the writers' start and
	// the SIGKILL; default 10 ms and 400 ms.
	MinKill, MaxKill time.Duration
	// RecoveryKills is the fraction of trials that kill the process while it
	// is still starting (recovering its logs) instead of while it serves;
	// default 0.1, negative for none.
	RecoveryKills float64
	// Progress receives one line per trial; nil means silence.
	Progress io.Writer
}

func (c *CrashConfig) setDefaults() {
	if c.Trials == 0 {
		c.Trials = 5
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Writers == 0 {
		c.Writers = 4
	}
	if c.MinKill == 0 {
		c.MinKill = 10 * time.Millisecond
	}
	if c.MaxKill == 0 {
		c.MaxKill = 400 * time.Millisecond
	}
	if c.MaxKill < c.MinKill {
		c.MaxKill = c.MinKill
	}
	if c.RecoveryKills == 0 {
		c.RecoveryKills = 0.1
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// CrashReport is what a crash run established.
type CrashReport struct {
	Trials        int // trials run (each ends in a SIGKILL)
	RecoveryKills int // of which killed while starting up
	Pushed        int // acknowledged pushed commits, checked after the last restart
	Items         int // acknowledged item writes (their head commits), checked likewise
	Sessions      int // acknowledged session registrations, checked likewise
	Lost          int // acknowledged commits, items or sessions missing or changed
	Checks        int // individual acknowledged-commit checks over all restarts
	// Fsck counts the verdicts of `goat-gateway fsck` on every log after
	// every kill (ok, torn-tail; anything else is a failure).
	Fsck       map[string]int
	Failures   []string
	DataDir    string
	GatewayLog string // the gateway's stderr, every incarnation
	Elapsed    time.Duration
}

// Acknowledged is the number of acknowledged commits checked: pushed
// commits and item writes.
func (r CrashReport) Acknowledged() int { return r.Pushed + r.Items }

// Summary is the one-line result.
func (r CrashReport) Summary() string {
	return fmt.Sprintf("crash-test: %d trials, %d acknowledged commits checked, %d lost", r.Trials, r.Acknowledged(), r.Lost)
}

// crashRepos are the repositories the writers write.
var crashRepos = []string{"crash.a", "crash.b", "crash.c"}

// RunCrash kills a real gateway process again and again while it takes
// writes, and checks after every restart that everything it acknowledged
// is still there, byte for byte, and that its logs reopened without repair.
// It returns an error when any check failed (the report says which) or the
// run could not proceed.
func RunCrash(ctx context.Context, cfg CrashConfig) (rep CrashReport, err error) {
	cfg.setDefaults()
	start := time.Now()
	rep.Fsck = map[string]int{}
	if cfg.Bin == "" {
		return rep, errors.New("crash: no binary (--bin)")
	}
	logPath := cfg.DataDir + ".gateway.log"
	if cfg.DataDir == "" {
		// The gateway's log must not go inside its data directory: every
		// *.log file there is a repository.
		root, mkErr := os.MkdirTemp("", "goat-crashtest-")
		if mkErr != nil {
			return rep, mkErr
		}
		cfg.DataDir, logPath = filepath.Join(root, "data"), filepath.Join(root, "gateway.log")
		defer func() {
			if err == nil {
				os.RemoveAll(root)
			}
		}()
	}
	rep.DataDir, rep.GatewayLog = cfg.DataDir, logPath
	defer func() { rep.Elapsed = time.Since(start) }()

	c := &crashRun{cfg: cfg, rep: &rep, rng: rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15)), ledger: newLedger()}
	defer func() {
		// A run cut short leaves no gateway behind.
		if c.node != nil {
			c.node.kill()
		}
		if c.logs != nil {
			c.logs.Close()
		}
		c.ledger.mu.Lock()
		rep.Pushed, rep.Items, rep.Sessions = len(c.ledger.commits), len(c.ledger.items), len(c.ledger.sessions)
		c.ledger.mu.Unlock()
	}()
	if err := c.setup(ctx); err != nil {
		return rep, err
	}
	for trial := 1; trial <= cfg.Trials; trial++ {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		if err := c.trial(ctx, trial); err != nil {
			return rep, fmt.Errorf("trial %d: %w", trial, err)
		}
	}
	if err := c.finish(ctx); err != nil {
		return rep, err
	}
	if len(rep.Failures) > 0 || rep.Lost > 0 {
		return rep, fmt.Errorf("crash: %d failures, %d lost; first: %s", len(rep.Failures), rep.Lost, first(rep.Failures))
	}
	return rep, nil
}

func first(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return s[0]
}

type crashRun struct {
	cfg    CrashConfig
	rep    *CrashReport
	rng    *rand.Rand
	ledger *ledger
	token  string
	logs   *os.File // the gateway's stderr, all incarnations
	node   *process // the running incarnation, if any
	mu     sync.Mutex
}

// setup mints a token, starts the first incarnation and creates the
// repositories.
func (c *crashRun) setup(ctx context.Context) error {
	if err := os.MkdirAll(c.cfg.DataDir, 0o755); err != nil {
		return err
	}
	var err error
	if c.logs, err = os.OpenFile(c.rep.GatewayLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, c.cfg.Bin, "token", "--data-dir", c.cfg.DataDir, "--sub", "crash", "--ttl", "720h").Output()
	if err != nil {
		return fmt.Errorf("minting a token: %w", err)
	}
	c.token = strings.TrimSpace(string(out))
	if c.node, err = c.start(ctx); err != nil {
		return err
	}
	for _, repo := range crashRepos {
		if _, _, err := c.node.api.CreateRepo(ctx, repo); err != nil {
			return fmt.Errorf("creating %s: %w", repo, err)
		}
	}
	return nil
}

// progressf writes a progress line.
func (c *crashRun) progressf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.cfg.Progress, format, args...)
}

// failf records a failure; writers call it concurrently.
func (c *crashRun) failf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rep.Failures = append(c.rep.Failures, msg)
	fmt.Fprintln(c.cfg.Progress, "FAIL:", msg)
}

// trial verifies the running incarnation (a restart after the previous
// kill), runs writers until a random SIGKILL, and checks the logs with fsck.
func (c *crashRun) trial(ctx context.Context, trial int) error {
	if c.node == nil {
		if c.rng.Float64() < c.cfg.RecoveryKills {
			// Kill while the gateway opens its logs.
			p, err := c.spawn(ctx)
			if err != nil {
				return err
			}
			delay := time.Duration(c.rng.Int64N(int64(40 * time.Millisecond)))
			time.Sleep(delay)
			p.kill()
			c.rep.Trials++
			c.rep.RecoveryKills++
			verdicts := c.fsck(ctx, false)
			c.progressf("trial %d/%d: killed %v after spawn (recovery); fsck %v\n", trial, c.cfg.Trials, delay.Round(time.Millisecond), verdicts)
			return nil
		}
		var err error
		if c.node, err = c.start(ctx); err != nil {
			return err
		}
	}
	checked := c.verify(ctx)

	w := c.startWriters(ctx, trial)
	delay := c.cfg.MinKill + time.Duration(c.rng.Int64N(int64(c.cfg.MaxKill-c.cfg.MinKill)+1))
	time.Sleep(delay)
	c.node.kill()
	c.node = nil
	w.wait()
	c.rep.Trials++
	verdicts := c.fsck(ctx, false)
	c.progressf("trial %d/%d: verified %d acknowledged; killed %v into writes; acked %d commits, %d items, %d sessions; fsck %v\n",
		trial, c.cfg.Trials, checked, delay.Round(time.Millisecond), w.pushed, w.items, w.sessions, verdicts)
	return nil
}

// finish restarts once more, verifies everything, stops the gateway
// cleanly and expects fsck to find every log clean.
func (c *crashRun) finish(ctx context.Context) error {
	if c.node == nil {
		var err error
		if c.node, err = c.start(ctx); err != nil {
			return err
		}
	}
	c.verify(ctx)
	if err := c.node.stop(); err != nil {
		c.failf("graceful stop: %v", err)
	}
	c.node = nil
	verdicts := c.fsck(ctx, true)
	c.progressf("final: clean stop; fsck %v\n", verdicts)
	return nil
}

// fsck runs `goat-gateway fsck` on the stopped gateway's data. After a kill
// a torn tail is acceptable (opening truncates it, no repair needed);
// after a clean stop only "ok" is.
func (c *crashRun) fsck(ctx context.Context, clean bool) map[string]int {
	out, err := exec.CommandContext(ctx, c.cfg.Bin, "fsck", "--data-dir", c.cfg.DataDir).Output()
	verdicts := map[string]int{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		verdicts[f[1]]++
		c.rep.Fsck[f[1]]++
		if f[1] != "ok" && (clean || f[1] != "torn-tail") {
			c.failf("fsck after %s: %s", map[bool]string{true: "clean stop", false: "kill"}[clean], line)
		}
	}
	if len(verdicts) == 0 {
		c.failf("fsck printed nothing: %v", err)
	}
	if err != nil && (clean || verdicts["torn-tail"] == 0) {
		c.failf("fsck: %v\n%s", err, out)
	}
	return verdicts
}

// verify checks every acknowledged write of every trial so far against the
// logs as a fresh incarnation serves them, and reads the ones not yet read
// through the commit endpoint too. It returns the number of checks.
func (c *crashRun) verify(ctx context.Context) int {
	n := c.node
	logs := map[string]map[string][]byte{} // repo -> id -> canonical JSON
	for _, repo := range crashRepos {
		m, err := readLog(ctx, n, repo)
		if err != nil {
			c.failf("reading the log of %s after restart: %v", repo, err)
			continue
		}
		logs[repo] = m
	}
	l := c.ledger
	l.mu.Lock()
	defer l.mu.Unlock()
	checks := 0
	for id, a := range l.commits {
		checks++
		got, ok := logs[a.repo][id]
		if !ok || !bytes.Equal(got, a.json) {
			c.rep.Lost++
			c.failf("acknowledged commit %s (trial %d) missing or changed in %s (present=%v)", id, a.trial, a.repo, ok)
			continue
		}
		if !a.read {
			body, err := n.api.GetCommit(ctx, a.repo, id)
			if err != nil || !bytes.Equal(body, a.json) {
				c.rep.Lost++
				c.failf("GET commit %s (trial %d): %v, body equal=%v", id, a.trial, err, bytes.Equal(body, a.json))
				continue
			}
			a.read = true
			l.commits[id] = a
		}
	}
	for i := range l.items {
		a := &l.items[i]
		checks++
		got, ok := logs[a.repo][a.head]
		switch {
		case !ok:
			c.rep.Lost++
			c.failf("acknowledged item write %s/%s (trial %d): head %s missing", a.repo, a.key, a.trial, a.head)
		case a.json != nil:
			if !bytes.Equal(got, a.json) {
				c.rep.Lost++
				c.failf("acknowledged item write %s/%s (trial %d): head %s changed", a.repo, a.key, a.trial, a.head)
			}
		default:
			// First check after the write: the head resolves to the
			// acknowledged value; later checks compare bytes.
			v, err := resolve(logs[a.repo], a.head)
			if err != nil || !core.EqualJSON(v, a.data) {
				c.rep.Lost++
				c.failf("acknowledged item write %s/%s (trial %d): head %s resolves to %v (%v), acknowledged %v", a.repo, a.key, a.trial, a.head, v, err, a.data)
				continue
			}
			a.json = got
		}
	}
	for id, s := range l.sessions {
		if s.read {
			continue
		}
		checks++
		if _, err := n.api.GetSession(ctx, id); err != nil {
			c.rep.Lost++
			c.failf("acknowledged session %s (trial %d): %v", id, s.trial, err)
			continue
		}
		s.read = true
		l.sessions[id] = s
	}
	if damaged, _ := filepath.Glob(filepath.Join(c.cfg.DataDir, "*.damaged-*")); len(damaged) > 0 {
		c.failf("opening repaired logs (kept aside: %v)", damaged)
	}
	c.rep.Checks += checks
	return checks
}

// resolve returns the full value of commit id (applying its delta to its
// base).
func resolve(log map[string][]byte, id string) (map[string]any, error) {
	cm, err := core.DecodeCommit(log[id])
	if err != nil {
		return nil, err
	}
	if cm.Delta == nil {
		return cm.Data, nil
	}
	base, err := core.DecodeCommit(log[cm.Delta.Base.String()])
	if err != nil {
		return nil, fmt.Errorf("base %s: %w", cm.Delta.Base, err)
	}
	return core.ApplyDelta(base.Data, cm.Delta)
}

// readLog reads a repository's whole log, page by page.
func readLog(ctx context.Context, n *process, repo string) (map[string][]byte, error) {
	out := map[string][]byte{}
	cursor := ""
	for range 100000 {
		page, err := n.api.Log(ctx, repo, cursor, 1000)
		if err != nil {
			return nil, err
		}
		for _, raw := range page.Commits {
			var probe struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(raw, &probe); err != nil {
				return nil, err
			}
			out[probe.ID] = raw
		}
		if !page.More {
			return out, nil
		}
		cursor = page.Next
	}
	return nil, errors.New("log does not end")
}

// ledger is what the gateway acknowledged, across all trials.
type ledger struct {
	mu       sync.Mutex
	commits  map[string]ackedCommit // id -> pushed commit
	items    []ackedItem
	sessions map[string]ackedSession
}

type ackedCommit struct {
	repo  string
	json  []byte // the canonical JSON pushed
	trial int
	read  bool // read back through GET .../commits/{id}
}

type ackedItem struct {
	repo, key, head string
	data            map[string]any // the value written
	trial           int
	json            []byte // the head's bytes once verified
}

type ackedSession struct {
	trial int
	read  bool
}

func newLedger() *ledger {
	return &ledger{commits: map[string]ackedCommit{}, sessions: map[string]ackedSession{}}
}

// writers is one trial's set of writing goroutines.
type writers struct {
	wg                      sync.WaitGroup
	stop                    chan struct{} // closed: finish the current request and return
	stopOnce                sync.Once
	mu                      sync.Mutex
	pushed, items, sessions int
}

func (w *writers) wait() { w.wg.Wait() }

func (w *writers) halt() { w.stopOnce.Do(func() { close(w.stop) }) }

func (w *writers) stopped() bool {
	select {
	case <-w.stop:
		return true
	default:
		return false
	}
}

func (c *crashRun) startWriters(ctx context.Context, trial int) *writers {
	ws := &writers{stop: make(chan struct{})}
	n := c.node
	for i := range c.cfg.Writers {
		id := trial*1000 + i
		rng := rand.New(rand.NewPCG(c.cfg.Seed, uint64(id)))
		ws.wg.Add(1)
		go func() {
			defer ws.wg.Done()
			c.write(ctx, n, ws, trial, id, rng)
		}()
	}
	return ws
}

// write is one writer: it registers a session, then alternates item PUTs
// and signed pushes on keys of its own until the gateway goes away.
func (c *crashRun) write(ctx context.Context, n *process, ws *writers, trial, id int, rng *rand.Rand) {
	_, priv, _ := ed25519.GenerateKey(nil)
	sess := core.SessionID(priv.Public().(ed25519.PublicKey))
	body, err := client.SessionBody(priv, auth.DevAudience, "crash", time.Now().Add(2*time.Hour))
	if err != nil {
		c.failf("session request: %v", err)
		return
	}
	_, created, err := n.api.CreateSession(ctx, body)
	if gone(ctx, err) {
		return // killed
	}
	if err != nil || !created {
		c.failf("POST /v1/sessions: created=%v, %v", created, err)
		return
	}
	c.ledger.mu.Lock()
	c.ledger.sessions[sess] = ackedSession{trial: trial}
	c.ledger.mu.Unlock()
	ws.mu.Lock()
	ws.sessions++
	ws.mu.Unlock()

	heads := map[string]core.CommitID{} // push key -> last acknowledged commit
	for seq := 0; !ws.stopped(); seq++ {
		repo := crashRepos[rng.IntN(len(crashRepos))]
		pad := strings.Repeat("x", rng.IntN(256))
		if rng.IntN(2) == 0 {
			key := fmt.Sprintf("item-%d-%d", id, rng.IntN(4))
			data := map[string]any{"writer": float64(id), "seq": float64(seq), "pad": pad}
			it, err := n.api.PutItem(ctx, repo, key, models.ItemWrite{Schema: core.AnySchema, Data: data}, "")
			if gone(ctx, err) {
				return
			}
			if err != nil {
				c.failf("PUT item %s/%s: %v", repo, key, err)
				return
			}
			c.ledger.mu.Lock()
			c.ledger.items = append(c.ledger.items, ackedItem{repo: repo, key: key, head: it.Head, data: data, trial: trial})
			c.ledger.mu.Unlock()
			ws.mu.Lock()
			ws.items++
			ws.mu.Unlock()
			continue
		}
		// A batch of 1 to 4 commits; a later one may build on an earlier.
		batch := make([]*core.Commit, 0, 4)
		local := map[string]core.CommitID{}
		for j := range 1 + rng.IntN(4) {
			key := fmt.Sprintf("push-%d-%d", id, rng.IntN(3))
			cm := &core.Commit{Repo: repo, Key: key, Author: sess, TS: time.Now().UnixMilli(), Schema: core.AnySchema,
				Data: map[string]any{"writer": float64(id), "seq": float64(seq), "n": float64(j), "pad": pad}}
			hk := repo + "/" + key
			if p, ok := local[hk]; ok {
				cm.Parents = []core.CommitID{p}
			} else if p, ok := heads[hk]; ok {
				cm.Parents = []core.CommitID{p}
			}
			if err := cm.Sign(priv); err != nil {
				c.failf("sign: %v", err)
				return
			}
			local[hk] = cm.ID
			batch = append(batch, cm)
		}
		raws := make([][]byte, len(batch))
		for j, cm := range batch {
			raws[j], _ = cm.MarshalJSON()
		}
		results, err := n.api.PushCommits(ctx, repo, raws)
		if gone(ctx, err) {
			return
		}
		if err != nil {
			c.failf("push to %s: %v", repo, err)
			return
		}
		for j, r := range results {
			if r.Status != gsync.StatusAccepted && r.Status != gsync.StatusDuplicate {
				c.failf("push %s rejected: %s", r.ID, r.Reason)
				return
			}
			cm := batch[j]
			c.ledger.mu.Lock()
			c.ledger.commits[cm.ID.String()] = ackedCommit{repo: repo, json: raws[j], trial: trial}
			c.ledger.mu.Unlock()
			heads[repo+"/"+cm.Key] = cm.ID
		}
		ws.mu.Lock()
		ws.pushed += len(batch)
		ws.mu.Unlock()
	}
}

// gone reports whether err means the request got no answer: the gateway
// was killed (or the run is ending), which a writer takes as its cue to
// stop; any other error is a failure.
func gone(ctx context.Context, err error) bool {
	return err != nil && (errors.Is(err, client.ErrOffline) || ctx.Err() != nil)
}

// process is one incarnation of the gateway.
type process struct {
	cmd    *exec.Cmd
	url    string
	ready  chan string // the listening URL
	exited chan struct{}
	err    error // Wait's, once exited is closed
	client *http.Client
	api    *client.Client // of url, once it is known
}

// spawn starts the binary without waiting for it to listen.
func (c *crashRun) spawn(_ context.Context) (*process, error) {
	return spawnGateway(c.cfg.Bin, c.logs, "serve", "--listen", "127.0.0.1:0", "--data-dir", c.cfg.DataDir, "--dev", "--log-level", "warn")
}

// start spawns an incarnation and waits until it answers /readyz.
func (c *crashRun) start(ctx context.Context) (*process, error) {
	p, err := c.spawn(ctx)
	if err != nil {
		return nil, err
	}
	if err := p.await(ctx, c.token, c.logs.Name()); err != nil {
		return nil, err
	}
	return p, nil
}

// spawnGateway starts bin with args, a command line that prints
// "goat-gateway listening on URL" (serve), its stderr to logs, without
// waiting for it to listen.
func spawnGateway(bin string, logs io.Writer, args ...string) (*process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stderr = logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, ready: make(chan string, 1), exited: make(chan struct{}),
		client: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "goat-gateway listening on "); ok {
				p.ready <- strings.TrimSpace(u)
			}
		}
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// await waits until p listens and answers /readyz, and gives it an API
// client authenticated with token; it kills p when it fails. logName
// names the gateway's log for the error.
func (p *process) await(ctx context.Context, token, logName string) error {
	select {
	case p.url = <-p.ready:
	case <-p.exited:
		return fmt.Errorf("gateway exited while starting: %v (log: %s)", p.err, logName)
	case <-time.After(60 * time.Second):
		p.kill()
		return fmt.Errorf("gateway did not listen within 60 s (log: %s)", logName)
	case <-ctx.Done():
		p.kill()
		return ctx.Err()
	}
	var err error
	if p.api, err = client.New(p.url, client.Options{HTTPClient: p.client, Token: func(context.Context) (string, error) { return token, nil }}); err != nil {
		p.kill()
		return err
	}
	if err := p.api.Ready(ctx); err != nil {
		p.kill()
		return fmt.Errorf("readyz: %w", err)
	}
	return nil
}

func (p *process) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
	p.client.CloseIdleConnections()
}

// stop ends the incarnation with SIGTERM, as an operator would.
func (p *process) stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		p.kill()
		return errors.New("did not stop within 30 s of SIGTERM")
	}
	p.client.CloseIdleConnections()
	return p.err
}

// sortedKeys is for stable reports.
func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// FsckSummary renders Fsck as "ok=12 torn-tail=1".
func (r CrashReport) FsckSummary() string {
	var b strings.Builder
	for i, k := range sortedKeys(r.Fsck) {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%d", k, r.Fsck[k])
	}
	return b.String()
}
