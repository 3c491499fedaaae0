package reliability

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/client"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/gen/models"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

// The soak's targets (issue 17): what one node may cost and how much its
// honest clients may suffer while every attack of the mix runs at once.
const (
	SoakMaxRSSAboveIdle = 256 << 20 // bytes of resident memory above idle
	SoakMaxP99Ratio     = 3.0       // honest p99 under attack / without
)

// publicRules are the documented rules: private namespaces, public.*
// readable by everyone and writable by editors.
const publicRules = `
rules:
  - repos: "user.{sub}.*"
    read: ["{sub}"]
    write: ["{sub}"]
  - repos: "public.*"
    read: ["*"]
    write: ["role:editor"]
`

// soakIssuer is the token issuer the soak trusts the gateway to accept:
// an operator's issuer configured with --issuers, as in production (the
// dev issuer needs --dev, which would bypass the rules for some calls).
const soakIssuer = "goat-soak"

// SoakConfig configures RunSoak. Zero values are usable defaults, except
// Bin.
type SoakConfig struct {
	// Bin is a built goat-gateway binary.
	Bin string
	// Baseline is phase 1, honest load alone; default 30 s.
	Baseline time.Duration
	// Attack is phase 2, honest load under every attack; default 60 s.
	Attack time.Duration
	// Writers is the number of honest users, each writing and subscribing
	// to its own repository; default 4.
	Writers int
	// WriteEvery is each honest writer's pace; default 100 ms.
	WriteEvery time.Duration
	// PublicRecords and PublicRecordBytes size the public repository that
	// non-reading subscribers replay; default 2,000 records of 16 KiB.
	PublicRecords, PublicRecordBytes int
	// SlowBodies is the number of connections trickling a body one byte
	// every 3 s; default 200.
	SlowBodies int
	// Replays is the number of never-reading replays of the public
	// repository, spread over 4 anonymous addresses; default 32.
	Replays int
	// ManyHeads is the number of concurrent root commits pushed on one
	// item per round; default 1,000.
	ManyHeads int
	// Attacks names the attacks to run in phase 2 (SoakAttacks); empty
	// means all of them. Running one alone shows what it costs.
	Attacks []string
	// Attacker, when set, is the command line of a process that runs the
	// attackers (RunSoakAttacker, reading its orders from stdin) at
	// niceness AttackerNice, as goat-soak's hidden --attacker mode does;
	// empty runs them as goroutines of this process, at its priority.
	// The honest clients always run here, at this process's priority.
	Attacker []string
	// AttackerNice is the attacker process's niceness (0 to 19; goat-soak
	// uses 10). Only with Attacker.
	AttackerNice int
	// Progress receives progress lines; nil means silence.
	Progress io.Writer
}

// SoakAttacks are the attacks of the mix, by name.
var SoakAttacks = []string{"big-bodies", "slow-bodies", "replays", "repo-flood", "session-flood", "method-flood", "many-heads"}

func (c *SoakConfig) setDefaults() {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	if c.Baseline == 0 {
		c.Baseline = 30 * time.Second
	}
	if c.Attack == 0 {
		c.Attack = 60 * time.Second
	}
	if c.WriteEvery == 0 {
		c.WriteEvery = 100 * time.Millisecond
	}
	def(&c.Writers, 4)
	def(&c.PublicRecords, 2000)
	def(&c.PublicRecordBytes, 16<<10)
	def(&c.SlowBodies, 200)
	def(&c.Replays, 32)
	def(&c.ManyHeads, 1000)
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if len(c.Attacks) == 0 {
		c.Attacks = SoakAttacks
	}
}

func (c *SoakConfig) runs(attack string) bool { return slices.Contains(c.Attacks, attack) }

// SoakReport is what a soak established. Sizes are bytes, latencies
// milliseconds.
type SoakReport struct {
	Started string `json:"started"`
	// LoadAvg is /proc/loadavg's 1, 5 and 15 minute averages at the start
	// and at the end: the machine's load from everybody, this run included.
	LoadAvgStart string `json:"loadAvgStart"`
	LoadAvgEnd   string `json:"loadAvgEnd"`
	Config       struct {
		Baseline          string   `json:"baseline"`
		Attack            string   `json:"attack"`
		Writers           int      `json:"writers"`
		WriteEvery        string   `json:"writeEvery"`
		PublicRecords     int      `json:"publicRecords"`
		PublicRecordBytes int      `json:"publicRecordBytes"`
		SlowBodies        int      `json:"slowBodies"`
		Replays           int      `json:"replays"`
		ManyHeads         int      `json:"manyHeads"`
		Attacks           []string `json:"attacks"`
		// Attackers is where the attackers ran: "in-process", or
		// "process, nice N".
		Attackers string `json:"attackers"`
	} `json:"config"`

	// Memory of the gateway process (/proc/PID/status, sampled every
	// 100 ms): VmRSS once the setup settled, the largest VmRSS seen in the
	// phases, and VmHWM (peak since start, setup included) at the end.
	IdleRSS          int64 `json:"idleRSS"`
	PeakRSS          int64 `json:"peakRSS"`
	PeakRSSAboveIdle int64 `json:"peakRSSAboveIdle"`
	BaselinePeakRSS  int64 `json:"baselinePeakRSS"`
	VmHWM            int64 `json:"vmHWM"`
	PeakFDs          int   `json:"peakFDs"`

	// CPU seconds (user and system) used in each phase by the gateway, by
	// this process (the honest clients, and the attackers when they run
	// in-process) and by the attacker process: on a small machine the
	// attackers' own work competes with the gateway's.
	GatewayCPUBaseline float64 `json:"gatewayCPUBaseline"`
	GatewayCPUAttack   float64 `json:"gatewayCPUAttack"`
	SoakCPUBaseline    float64 `json:"soakCPUBaseline"`
	SoakCPUAttack      float64 `json:"soakCPUAttack"`
	AttackerCPUAttack  float64 `json:"attackerCPUAttack,omitempty"`
	AttackerNiceSeen   string  `json:"attackerNiceSeen,omitempty"` // its threads' niceness, lowest-highest
	AttackSeconds      float64 `json:"attackSeconds"`
	// AttackRates is each attacker's answers (and cut attempts) a second
	// over the attack phase, so a reader can see how hard it pushed.
	AttackRates map[string]float64 `json:"attackRatesPerSecond"`

	Baseline SoakPhase `json:"baseline"`
	Attack   SoakPhase `json:"attack"`
	// The honest p99 under attack divided by the p99 without.
	WriteP99Ratio float64 `json:"writeP99Ratio"`
	EventP99Ratio float64 `json:"eventP99Ratio"`

	// Acknowledged writes (honest item writes and pushes, and the
	// attacker's accepted many-head commits), checked after a restart.
	Acknowledged int `json:"acknowledged"`
	Lost         int `json:"lost"`

	// Statuses counts every answer by actor and status; 0 means no
	// answer (the connection was cut, as it is for slow bodies).
	Statuses map[string]map[int]int `json:"statuses"`
	FiveXX   int                    `json:"fiveXX"`
	// FiveXXSamples are the first 5xx answers, for the reader.
	FiveXXSamples []string `json:"fiveXXSamples,omitempty"`

	// Many-head rounds: the PUT that followed each round's pushes.
	ManyHeadRounds []ManyHeadRound `json:"manyHeadRounds"`
	// MetricsBytes is the size of /metrics at the end of each phase.
	MetricsBytesBaseline int `json:"metricsBytesBaseline"`
	MetricsBytesAttack   int `json:"metricsBytesAttack"`

	Failures []string `json:"failures,omitempty"`
	Missed   []string `json:"missed,omitempty"` // targets missed
	Elapsed  string   `json:"elapsed"`
}

// SoakPhase is the honest clients' experience in one phase.
type SoakPhase struct {
	// Write is an acknowledged PUT or push, from sending to the answer.
	Write LatencySummary `json:"writeMs"`
	// Event is from sending a write to its event on the writer's own
	// subscription.
	Event LatencySummary `json:"eventMs"`
	// Retries counts honest requests answered 429 and sent again.
	Retries int `json:"retries"`
	// Reconnects counts honest subscriptions that had to reconnect.
	Reconnects int `json:"reconnects"`
}

// LatencySummary describes a sample by nearest-rank order statistics
// (every percentile is a value that was observed).
type LatencySummary struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func summarize(xs []float64) LatencySummary {
	if len(xs) == 0 {
		return LatencySummary{}
	}
	s := slices.Sorted(slices.Values(xs))
	rank := func(q float64) float64 {
		return s[max(0, min(int(math.Ceil(q*float64(len(s))))-1, len(s)-1))]
	}
	return LatencySummary{N: len(s), P50: rank(0.5), P90: rank(0.9), P99: rank(0.99), Max: s[len(s)-1]}
}

// ManyHeadRound is one round of concurrent root commits on one item.
type ManyHeadRound struct {
	Key      string  `json:"key"`
	Accepted int     `json:"accepted"`
	PutMS    float64 `json:"putMs"`
	Status   int     `json:"putStatus"`
}

// Passed reports whether every target was met and nothing failed.
func (r SoakReport) Passed() bool { return len(r.Missed) == 0 && len(r.Failures) == 0 }

// Text renders the report for people.
func (r SoakReport) Text() string {
	var b strings.Builder
	mib := func(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
	verdict := "PASS"
	if !r.Passed() {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "goat-soak %s: %s (started %s, %s)\n", verdict, r.Elapsed, r.Started, "load "+r.LoadAvgStart+" -> "+r.LoadAvgEnd)
	fmt.Fprintf(&b, "phases: baseline %s, attack %s; %d honest writers every %s, each subscribed to its own repository\n",
		r.Config.Baseline, r.Config.Attack, r.Config.Writers, r.Config.WriteEvery)
	fmt.Fprintf(&b, "attacks run: %s; attackers ran %s\n", strings.Join(r.Config.Attacks, ", "), r.Config.Attackers)
	fmt.Fprintf(&b, "attack mix: anonymous 8 MB and oversized bodies, %d slow bodies (1 byte / 3 s), %d never-reading replays of a %d x %d B public repository, repository and session floods by one user, invented-method floods, %d concurrent root commits on one item per round\n",
		r.Config.SlowBodies, r.Config.Replays, r.Config.PublicRecords, r.Config.PublicRecordBytes, r.Config.ManyHeads)
	fmt.Fprintf(&b, "memory: idle %s, peak %s (baseline peak %s), peak above idle %s (target < %s); VmHWM %s; peak descriptors %d\n",
		mib(r.IdleRSS), mib(r.PeakRSS), mib(r.BaselinePeakRSS), mib(r.PeakRSSAboveIdle), mib(SoakMaxRSSAboveIdle), mib(r.VmHWM), r.PeakFDs)
	if r.Config.Attackers == "in-process" {
		fmt.Fprintf(&b, "CPU seconds: gateway %.1f in the baseline, %.1f under attack; soak process (honest clients and attackers) %.1f and %.1f\n",
			r.GatewayCPUBaseline, r.GatewayCPUAttack, r.SoakCPUBaseline, r.SoakCPUAttack)
	} else {
		fmt.Fprintf(&b, "CPU seconds: gateway %.1f in the baseline, %.1f under attack; honest clients' process %.1f and %.1f; attacker process %.1f under attack (threads' niceness %s)\n",
			r.GatewayCPUBaseline, r.GatewayCPUAttack, r.SoakCPUBaseline, r.SoakCPUAttack, r.AttackerCPUAttack, r.AttackerNiceSeen)
	}
	line := func(name string, a, z LatencySummary, ratio float64) {
		fmt.Fprintf(&b, "honest %s latency ms: baseline p50 %.1f p99 %.1f (n=%d); attack p50 %.1f p99 %.1f max %.1f (n=%d); p99 ratio %.2f (target < %.0f)\n",
			name, a.P50, a.P99, a.N, z.P50, z.P99, z.Max, z.N, ratio, SoakMaxP99Ratio)
	}
	line("write", r.Baseline.Write, r.Attack.Write, r.WriteP99Ratio)
	line("write-to-event", r.Baseline.Event, r.Attack.Event, r.EventP99Ratio)
	fmt.Fprintf(&b, "honest retries after 429: baseline %d, attack %d; reconnects: baseline %d, attack %d\n",
		r.Baseline.Retries, r.Attack.Retries, r.Baseline.Reconnects, r.Attack.Reconnects)
	fmt.Fprintf(&b, "acknowledged writes checked after a restart: %d, lost %d\n", r.Acknowledged, r.Lost)
	fmt.Fprintf(&b, "5xx answers: %d\n", r.FiveXX)
	fmt.Fprintf(&b, "answers by actor and status (0: none, the connection cut), and attackers' answers a second over the %.1f s attack:\n", r.AttackSeconds)
	for _, actor := range slices.Sorted(maps.Keys(r.Statuses)) {
		fmt.Fprintf(&b, "  %-16s", actor)
		for _, st := range slices.Sorted(maps.Keys(r.Statuses[actor])) {
			fmt.Fprintf(&b, " %d:%d", st, r.Statuses[actor][st])
		}
		if rate, ok := r.AttackRates[actor]; ok {
			fmt.Fprintf(&b, "  (%.1f/s)", rate)
		}
		b.WriteByte('\n')
	}
	for _, m := range r.ManyHeadRounds {
		fmt.Fprintf(&b, "many heads: %s: %d root commits accepted, then PUT %d in %.0f ms\n", m.Key, m.Accepted, m.Status, m.PutMS)
	}
	fmt.Fprintf(&b, "/metrics: %d bytes after the baseline, %d after the attack\n", r.MetricsBytesBaseline, r.MetricsBytesAttack)
	for _, m := range r.Missed {
		fmt.Fprintf(&b, "MISSED: %s\n", m)
	}
	for _, f := range r.Failures {
		fmt.Fprintf(&b, "FAILURE: %s\n", f)
	}
	return b.String()
}

// soak is one run's state.
type soak struct {
	cfg     SoakConfig
	rep     *SoakReport
	dir     string
	args    []string // serve's command line
	logs    *os.File
	gw      *process
	issuer  ed25519.PrivateKey
	nodeID  string
	httpc   *http.Client
	phase   atomic.Int32 // 1 baseline, 2 attack
	mu      sync.Mutex
	lat     [3]struct{ write, event []float64 }
	retries [3]int
	reconn  [3]int
	sent    sync.Map // nonce -> soakSent
	acked   map[string][]string
	status  map[string]map[int]int
	samples []string
}

type soakSent struct {
	at    time.Time
	phase int32
}

// RunSoak starts the real binary with the documented rules and runs honest
// load alone (phase 1), then the same honest load under every attack of
// the mix at once (phase 2); then it restarts the gateway and checks that
// every acknowledged write is there. The report says which targets were
// met; the error is non-nil when the run could not proceed.
func RunSoak(ctx context.Context, cfg SoakConfig) (rep SoakReport, err error) {
	cfg.setDefaults()
	start := time.Now()
	rep.Started = start.UTC().Format(time.RFC3339)
	rep.LoadAvgStart = loadAvg()
	rep.Config.Baseline, rep.Config.Attack = cfg.Baseline.String(), cfg.Attack.String()
	rep.Config.Writers, rep.Config.WriteEvery = cfg.Writers, cfg.WriteEvery.String()
	rep.Config.PublicRecords, rep.Config.PublicRecordBytes = cfg.PublicRecords, cfg.PublicRecordBytes
	rep.Config.SlowBodies, rep.Config.Replays, rep.Config.ManyHeads = cfg.SlowBodies, cfg.Replays, cfg.ManyHeads
	rep.Config.Attacks = cfg.Attacks
	for _, a := range cfg.Attacks {
		if !slices.Contains(SoakAttacks, a) {
			return rep, fmt.Errorf("soak: no attack %q (attacks: %s)", a, strings.Join(SoakAttacks, ", "))
		}
	}
	defer func() {
		rep.Elapsed = time.Since(start).Round(time.Second).String()
		rep.LoadAvgEnd = loadAvg()
	}()
	if cfg.Bin == "" {
		return rep, errors.New("soak: no binary (--bin)")
	}
	dir, err := os.MkdirTemp("", "goat-soak-")
	if err != nil {
		return rep, err
	}
	rep.Config.Attackers = "in-process"
	if len(cfg.Attacker) > 0 {
		rep.Config.Attackers = fmt.Sprintf("process, nice %d", cfg.AttackerNice)
	}
	s := &soak{cfg: cfg, rep: &rep, dir: dir, acked: map[string][]string{}, status: map[string]map[int]int{},
		httpc: newSoakHTTPClient()}
	defer func() {
		if s.gw != nil {
			s.gw.kill()
		}
		if s.logs != nil {
			s.logs.Close()
		}
		// Kept when something failed or was lost, for the gateway's log
		// and data; a missed latency or memory target needs neither.
		if err == nil && len(rep.Failures) == 0 && rep.Lost == 0 {
			os.RemoveAll(dir)
		} else {
			fmt.Fprintf(cfg.Progress, "data and gateway log kept in %s\n", dir)
		}
	}()
	if err := s.setup(ctx); err != nil {
		return rep, fmt.Errorf("setup: %w", err)
	}
	if err := s.run(ctx); err != nil {
		return rep, err
	}
	if err := s.verify(ctx); err != nil {
		return rep, fmt.Errorf("verify: %w", err)
	}
	s.judge()
	return rep, nil
}

func newSoakHTTPClient() *http.Client {
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func (s *soak) progressf(format string, args ...any) {
	fmt.Fprintf(s.cfg.Progress, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func (s *soak) failf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.rep.Failures) < 50 {
		s.rep.Failures = append(s.rep.Failures, msg)
	}
}

// count records an answer of actor; status 0 is no answer.
func (s *soak) count(actor string, status int, what string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.status[actor]
	if m == nil {
		m = map[int]int{}
		s.status[actor] = m
	}
	m[status]++
	if status >= 500 {
		s.rep.FiveXX++
		if len(s.samples) < 20 {
			s.samples = append(s.samples, fmt.Sprintf("%s: %d %s", actor, status, what))
		}
	}
}

// token mints a token of the soak's issuer for sub.
func (s *soak) token(sub string, roles ...string) string {
	now := time.Now()
	claims := jwt.MapClaims{"iss": soakIssuer, "sub": sub, "aud": auth.DevAudience,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(2 * time.Hour).Unix()}
	if len(roles) > 0 {
		claims["roles"] = roles
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims).SignedString(s.issuer)
	if err != nil {
		panic(err) // an Ed25519 key always signs
	}
	return tok
}

// apiFor is an API client of the gateway authenticated as tok.
func (s *soak) apiFor(tok string) *client.Client {
	c, err := client.New(s.gw.url, client.Options{HTTPClient: s.httpc, Token: func(context.Context) (string, error) { return tok, nil }})
	if err != nil {
		panic(err) // the URL came from the gateway
	}
	return c
}

// setup writes the rules and the issuer's key, starts the gateway and
// fills the public repository.
func (s *soak) setup(ctx context.Context) error {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return err
	}
	s.issuer = priv
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return err
	}
	keyFile, rulesFile := filepath.Join(s.dir, "issuer.pem"), filepath.Join(s.dir, "rules.yaml")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(rulesFile, []byte(publicRules), 0o644); err != nil {
		return err
	}
	issuers, _ := json.Marshal([]map[string]any{{"issuer": soakIssuer, "audience": []string{auth.DevAudience}, "keyFiles": []string{keyFile}}})
	s.args = []string{"serve", "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(s.dir, "data"),
		"--rules", rulesFile, "--issuers", string(issuers), "--log-level", "warn"}
	if s.logs, err = os.Create(filepath.Join(s.dir, "gateway.log")); err != nil {
		return err
	}
	if err := s.start(ctx); err != nil {
		return err
	}
	info, err := s.gw.api.Info(ctx)
	if err != nil {
		return err
	}
	s.nodeID = info.NodeId

	// The public repository the replays read, filled by an editor's
	// pushes of signed commits.
	editor := s.apiFor(s.token("editor", "editor"))
	if _, _, err := editor.CreateRepo(ctx, "public.big"); err != nil {
		return err
	}
	key, sess, err := s.session(ctx, editor, "editor")
	if err != nil {
		return err
	}
	pad := strings.Repeat("p", s.cfg.PublicRecordBytes)
	const batch = 100
	for i := 0; i < s.cfg.PublicRecords; i += batch {
		var raws [][]byte
		for j := i; j < min(i+batch, s.cfg.PublicRecords); j++ {
			cm := &core.Commit{Repo: "public.big", Key: fmt.Sprintf("k%05d", j), Author: sess, TS: time.Now().UnixMilli(),
				Schema: core.AnySchema, Data: map[string]any{"i": float64(j), "pad": pad}}
			if err := cm.Sign(key); err != nil {
				return err
			}
			raw, _ := cm.MarshalJSON()
			raws = append(raws, raw)
		}
		res, err := editor.PushCommits(ctx, "public.big", raws)
		if err != nil {
			return fmt.Errorf("filling public.big: %w", err)
		}
		for _, r := range res {
			if r.Status != gsync.StatusAccepted {
				return fmt.Errorf("filling public.big: %s %s", r.Status, r.Reason)
			}
		}
	}
	s.progressf("setup: gateway pid %d, public.big holds %d records of %d B", s.gw.cmd.Process.Pid, s.cfg.PublicRecords, s.cfg.PublicRecordBytes)
	return nil
}

// start starts an incarnation of the gateway.
func (s *soak) start(ctx context.Context) error {
	p, err := spawnGateway(s.cfg.Bin, s.logs, s.args...)
	if err != nil {
		return err
	}
	if err := p.await(ctx, "", s.logs.Name()); err != nil {
		return err
	}
	s.gw = p
	return nil
}

// session registers a new session key for owner.
func (s *soak) session(ctx context.Context, api *client.Client, owner string) (ed25519.PrivateKey, string, error) {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, "", err
	}
	body, err := client.SessionBody(priv, auth.DevAudience, owner, time.Now().Add(2*time.Hour))
	if err != nil {
		return nil, "", err
	}
	sess, _, err := api.CreateSession(ctx, body)
	if err != nil {
		return nil, "", err
	}
	return priv, sess.Id, nil
}

// procStatus reads VmRSS and VmHWM of pid, in bytes, and its descriptors.
func procStatus(pid int) (rss, hwm int64, fds int) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			hwm = kb << 10
		}
	}
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		fds = len(ents)
	}
	return rss, hwm, fds
}

// run runs both phases with a memory sampler.
func (s *soak) run(ctx context.Context) error {
	pid := s.gw.cmd.Process.Pid
	s.rep.IdleRSS, _, _ = procStatus(pid)
	sampleCtx, stopSampling := context.WithCancel(ctx)
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-sampleCtx.Done():
				return
			case <-t.C:
			}
			rss, _, fds := procStatus(pid)
			s.mu.Lock()
			s.rep.PeakRSS = max(s.rep.PeakRSS, rss)
			s.rep.PeakFDs = max(s.rep.PeakFDs, fds)
			s.mu.Unlock()
		}
	}()

	honestCtx, stopHonest := context.WithCancel(ctx)
	var honest sync.WaitGroup
	s.phase.Store(1)
	for i := range s.cfg.Writers {
		sub := fmt.Sprintf("h%d", i)
		api := s.apiFor(s.token(sub))
		repo := "user." + sub + ".notes"
		if _, _, err := api.CreateRepo(ctx, repo); err != nil {
			stopHonest()
			stopSampling()
			return err
		}
		key, sess, err := s.session(ctx, api, sub)
		if err != nil {
			stopHonest()
			stopSampling()
			return err
		}
		ready := make(chan struct{})
		honest.Add(2)
		go func() { defer honest.Done(); s.subscribe(honestCtx, api, repo, ready) }()
		<-ready
		go func() { defer honest.Done(); s.write(honestCtx, api, sub, repo, key, sess) }()
	}
	s.progressf("phase 1: honest load alone for %s", s.cfg.Baseline)
	gw0, me0 := cpuSeconds(pid), cpuSeconds(os.Getpid())
	sleepCtx(ctx, s.cfg.Baseline)
	gw1, me1 := cpuSeconds(pid), cpuSeconds(os.Getpid())
	s.rep.GatewayCPUBaseline, s.rep.SoakCPUBaseline = gw1-gw0, me1-me0
	s.mu.Lock()
	s.rep.BaselinePeakRSS = s.rep.PeakRSS
	s.mu.Unlock()
	s.rep.MetricsBytesBaseline = s.metricsSize(ctx)

	s.progressf("phase 2: honest load under attack for %s", s.cfg.Attack)
	s.phase.Store(2)
	attackStart := time.Now()
	attackCtx, stopAttack := context.WithTimeout(ctx, s.cfg.Attack)
	var attackers sync.WaitGroup
	var child *attackerProc
	if len(s.cfg.Attacker) > 0 {
		var err error
		if child, err = s.startAttacker(); err != nil {
			stopAttack()
			stopHonest()
			stopSampling()
			return err
		}
	} else {
		s.attack(attackCtx, &attackers)
	}
	<-attackCtx.Done()
	gw2, me2 := cpuSeconds(pid), cpuSeconds(os.Getpid())
	s.rep.AttackSeconds = time.Since(attackStart).Seconds()
	s.rep.GatewayCPUAttack, s.rep.SoakCPUAttack = gw2-gw1, me2-me1
	if child != nil {
		// The child started with the phase, so all its CPU is the attack's.
		s.rep.AttackerCPUAttack = cpuSeconds(child.cmd.Process.Pid)
		if lo, hi, ok := niceness(child.cmd.Process.Pid); ok {
			s.rep.AttackerNiceSeen = fmt.Sprintf("%d-%d", lo, hi)
		}
	}
	s.phase.Store(0) // writes from here are not measured
	stopHonest()
	honest.Wait()
	s.progressf("phase 2 over; waiting for the attackers to stop")
	if child != nil {
		if err := s.finish(child); err != nil {
			s.failf("%v", err)
		}
	}
	attackers.Wait()
	stopAttack()
	s.rep.AttackRates = map[string]float64{}
	for actor, byStatus := range s.status {
		if actor == "honest" || actor == "metrics" {
			continue
		}
		n := 0
		for _, c := range byStatus {
			n += c
		}
		s.rep.AttackRates[actor] = math.Round(float64(n)/s.rep.AttackSeconds*10) / 10
	}
	s.rep.MetricsBytesAttack = s.metricsSize(ctx)
	stopSampling()
	sampler.Wait()
	_, s.rep.VmHWM, _ = procStatus(pid)
	s.rep.PeakRSSAboveIdle = s.rep.PeakRSS - s.rep.IdleRSS
	for p := 1; p <= 2; p++ {
		ph := SoakPhase{Write: summarize(s.lat[p].write), Event: summarize(s.lat[p].event), Retries: s.retries[p], Reconnects: s.reconn[p]}
		if p == 1 {
			s.rep.Baseline = ph
		} else {
			s.rep.Attack = ph
		}
	}
	return ctx.Err()
}

// cpuSeconds is the user and system CPU time pid has used
// (/proc/PID/stat, in clock ticks of 10 ms).
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses and may
	// hold spaces: state is field 3, utime and stime fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (s *soak) metricsSize(ctx context.Context) int {
	n, _, _, status, err := scrape(ctx, s.apiFor(""))
	if err != nil {
		s.failf("GET /metrics: %v", err)
		return 0
	}
	s.count("metrics", status, "GET /metrics")
	return n
}

// ack records acknowledged commit ids of repo and a latency sample.
func (s *soak) ack(repo string, phase int32, took time.Duration, ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acked[repo] = append(s.acked[repo], ids...)
	if phase > 0 {
		s.lat[phase].write = append(s.lat[phase].write, float64(took)/float64(time.Millisecond))
	}
}

// honestErr handles an honest request's error: true means send it again
// (429), false means give up on it.
func (s *soak) honestErr(ctx context.Context, what string, phase int32, err error) bool {
	var pe *client.ProblemError
	switch {
	case ctx.Err() != nil:
		return false
	case errors.As(err, &pe) && pe.Status == http.StatusTooManyRequests:
		s.count("honest", pe.Status, what)
		s.mu.Lock()
		s.retries[phase]++
		s.mu.Unlock()
		sleepCtx(ctx, 50*time.Millisecond)
		return true
	case errors.As(err, &pe):
		s.count("honest", pe.Status, what+": "+pe.Detail)
		if pe.Status < 500 {
			s.failf("honest %s: %v", what, err)
		}
		return false
	default:
		s.count("honest", 0, what)
		s.failf("honest %s: %v", what, err)
		return false
	}
}

// write is one honest user: at its pace it alternates an item PUT and a
// push of one signed commit, each carrying a nonce its subscription
// recognizes.
func (s *soak) write(ctx context.Context, api *client.Client, sub, repo string, key ed25519.PrivateKey, sess string) {
	t := time.NewTicker(s.cfg.WriteEvery)
	defer t.Stop()
	heads := map[string]core.CommitID{}
	pad := strings.Repeat("h", 200)
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		nonce := fmt.Sprintf("%s-%d", sub, n)
		phase := s.phase.Load()
		sent := time.Now()
		s.sent.Store(nonce, soakSent{at: sent, phase: phase})
		data := map[string]any{"nonce": nonce, "pad": pad}
		if n%2 == 0 {
			k := fmt.Sprintf("item-%d", n%20)
			for {
				it, err := api.PutItem(ctx, repo, k, models.ItemWrite{Schema: core.AnySchema, Data: data}, "")
				if err == nil {
					s.count("honest", http.StatusOK, "PUT")
					s.ack(repo, phase, time.Since(sent), it.Head)
					break
				}
				if !s.honestErr(ctx, "PUT "+repo+"/"+k, phase, err) {
					break
				}
			}
			continue
		}
		k := fmt.Sprintf("push-%d", n%10)
		cm := &core.Commit{Repo: repo, Key: k, Author: sess, TS: time.Now().UnixMilli(), Schema: core.AnySchema, Data: data}
		if p, ok := heads[k]; ok {
			cm.Parents = []core.CommitID{p}
		}
		if err := cm.Sign(key); err != nil {
			s.failf("sign: %v", err)
			return
		}
		raw, _ := cm.MarshalJSON()
		for {
			res, err := api.PushCommits(ctx, repo, [][]byte{raw})
			if err == nil {
				s.count("honest", http.StatusOK, "push")
				if r := res[0]; r.Status != gsync.StatusAccepted && r.Status != gsync.StatusDuplicate {
					s.failf("honest push rejected: %s %s", r.Status, r.Reason)
					break
				}
				heads[k] = cm.ID
				s.ack(repo, phase, time.Since(sent), cm.ID.String())
				break
			}
			if !s.honestErr(ctx, "push to "+repo, phase, err) {
				break
			}
		}
	}
}

// subscribe is one honest user's subscription to its repository: it
// measures from each write's sending to its commit event, and reconnects
// with its last event id when the stream ends.
func (s *soak) subscribe(ctx context.Context, api *client.Client, repo string, ready chan<- struct{}) {
	lastID := ""
	first := true
	for ctx.Err() == nil {
		resp, err := api.Events(ctx, []string{repo}, lastID)
		if err != nil {
			if ctx.Err() == nil {
				var pe *client.ProblemError
				if errors.As(err, &pe) {
					s.count("honest", pe.Status, "events: "+pe.Detail)
				} else {
					s.count("honest", 0, "events")
				}
				s.failf("honest events on %s: %v", repo, err)
				sleepCtx(ctx, time.Second)
			}
			continue
		}
		s.count("honest", resp.StatusCode, "events")
		if !first {
			s.mu.Lock()
			s.reconn[max(s.phase.Load(), 0)]++
			s.mu.Unlock()
		}
		lastID = s.readEvents(resp.Body, lastID, func() {
			if first {
				first = false
				close(ready)
			}
		})
		resp.Body.Close()
	}
	if first {
		close(ready)
	}
}

// readEvents reads one stream until it ends, calling onReady at `ready`,
// and returns the last event id.
func (s *soak) readEvents(r io.Reader, lastID string, onReady func()) string {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var name string
	var data []byte
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case bytes.HasPrefix(line, []byte("id: ")):
			lastID = string(line[4:])
		case bytes.HasPrefix(line, []byte("event: ")):
			name = string(line[7:])
		case bytes.HasPrefix(line, []byte("data: ")):
			data = append(data[:0], line[6:]...)
		case len(line) == 0 && name != "":
			now := time.Now()
			switch name {
			case "ready":
				onReady()
			case "commit":
				var ev struct {
					Commit struct {
						Data struct {
							Nonce string `json:"nonce"`
						} `json:"data"`
					} `json:"commit"`
				}
				if json.Unmarshal(data, &ev) == nil {
					if v, ok := s.sent.LoadAndDelete(ev.Commit.Data.Nonce); ok {
						if sent := v.(soakSent); sent.phase > 0 {
							s.mu.Lock()
							s.lat[sent.phase].event = append(s.lat[sent.phase].event, float64(now.Sub(sent.at))/float64(time.Millisecond))
							s.mu.Unlock()
						}
					}
				}
			case "reset":
				s.failf("honest subscription told reset: %s", data)
			}
			name = ""
		}
	}
	return lastID
}

// raw sends one request with a fresh connection from the loopback
// address src, for what the API client cannot send (oversized bodies,
// invented methods), and returns the status (0 when the connection failed or
// was cut) and, for a 5xx, what was asked and answered.
func (s *soak) raw(ctx context.Context, src, method, path, token string, body io.Reader, length int64) (int, string) {
	hc := httpFrom(src)
	hc.Timeout = 60 * time.Second
	req, err := http.NewRequestWithContext(ctx, method, s.gw.url+path, body)
	if err != nil {
		return 0, err.Error()
	}
	req.ContentLength = length
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, method + " " + path
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return resp.StatusCode, method + " " + path + ": " + string(b)
}

// httpFrom is an HTTP client whose connections leave from the loopback
// address src (anonymous limits count per address), one per request.
func httpFrom(src string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// apiFrom is an API client of the gateway at url that connects from the
// local address src (httpFrom), authenticated as tok ("" for anonymous).
func apiFrom(url, src, tok string) *client.Client {
	opts := client.Options{HTTPClient: httpFrom(src)}
	if tok != "" {
		opts.Token = func(context.Context) (string, error) { return tok, nil }
	}
	c, err := client.New(url, opts)
	if err != nil {
		panic(err) // the URL came from the gateway
	}
	return c
}

// statusOf turns an API client's answer into the (status, detail) the
// attack loop counts: 200 for success, the problem's status, or 0 when no
// answer came.
func statusOf(err error, what string) (int, string) {
	if err == nil {
		return http.StatusOK, what
	}
	if pe, ok := errors.AsType[*client.ProblemError](err); ok {
		return pe.Status, what + ": " + pe.Error()
	}
	return 0, what + ": " + err.Error()
}

// attack starts every attacker of the mix; they stop when ctx is done.
func (s *soak) attack(ctx context.Context, wg *sync.WaitGroup) {
	loop := func(attack, actor string, workers int, f func(ctx context.Context, worker, i int) (int, string)) {
		if !s.cfg.runs(attack) {
			return
		}
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ctx.Err() == nil; i++ {
					st, what := f(ctx, w, i)
					if ctx.Err() != nil && st == 0 {
						return // cut by the end of the phase, not by the gateway
					}
					s.count(actor, st, what)
				}
			}()
		}
	}

	// Anonymous 8 MB bodies of numbers on a public repository (403 before
	// a byte is read), and oversized ones (413 from Content-Length).
	numbers := make([]byte, 0, 8_000_000)
	numbers = append(numbers, `{"schema":"any/1","data":{"n":[`...)
	for len(numbers) < 8_000_000-16 {
		numbers = append(numbers, "1234567,"...)
	}
	numbers = append(numbers, `1]}}`...)
	loop("big-bodies", "anon-8MB", 2, func(ctx context.Context, _, _ int) (int, string) {
		return s.raw(ctx, "127.0.0.2", "PUT", "/v1/repos/public.big/items/k", "", bytes.NewReader(numbers), int64(len(numbers)))
	})
	loop("big-bodies", "anon-oversized", 1, func(ctx context.Context, _, _ int) (int, string) {
		big := io.LimitReader(zeroReader{}, 9<<20)
		return s.raw(ctx, "127.0.0.2", "POST", "/v1/repos/public.big/sync", "", big, 9<<20)
	})

	// Slow bodies: anonymous sync rounds (authorized for reading, so their
	// bodies are read) trickling one byte every 3 s.
	for i := range s.cfg.SlowBodies * bool2int(s.cfg.runs("slow-bodies")) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src := fmt.Sprintf("127.0.1.%d", 1+i%250)
			for ctx.Err() == nil {
				st := trickle(ctx, s.gw.url, src, 4096, 0, 3*time.Second)
				if ctx.Err() != nil && st == 0 {
					return
				}
				s.count("slow-body", st, "POST sync trickling")
			}
		}()
	}

	// Never-reading replays of the whole public repository.
	for i := range s.cfg.Replays * bool2int(s.cfg.runs("replays")) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src := fmt.Sprintf("127.0.2.%d", 1+i%4)
			for ctx.Err() == nil {
				s.count("replay-no-read", s.stalledReplay(ctx, src), "GET /v1/events from .0")
			}
		}()
	}

	// A repository flood and a session flood by one user.
	mallory := s.token("mallory")
	// Well-formed requests: through the API client, from one address.
	api := apiFrom(s.gw.url, "127.0.0.1", mallory)
	loop("repo-flood", "repo-flood", 2, func(ctx context.Context, w, i int) (int, string) {
		repo := fmt.Sprintf("user.mallory.r%d-%d", w, i)
		_, _, err := api.CreateRepo(ctx, repo)
		return statusOf(err, "PUT /v1/repos/"+repo)
	})
	loop("session-flood", "session-flood", 1, func(ctx context.Context, _, _ int) (int, string) {
		_, priv, _ := ed25519.GenerateKey(nil)
		body, _ := client.SessionBody(priv, auth.DevAudience, "mallory", time.Now().Add(time.Hour))
		_, _, err := api.CreateSession(ctx, body)
		return statusOf(err, "POST /v1/sessions")
	})

	// Invented HTTP methods on invented and real paths.
	paths := []string{"/v1/repos/public.big", "/v1/events", "/metrics", "/x/y", "/v1/repos/public.big/items/k"}
	loop("method-flood", "method-flood", 2, func(ctx context.Context, w, i int) (int, string) {
		return s.raw(ctx, "127.0.0.5", fmt.Sprintf("M%dX%d", w, i), paths[i%len(paths)], "", nil, 0)
	})

	// Many heads: rounds of concurrent root commits on one item of the
	// attacker's own repository, each followed by a PUT to it.
	if s.cfg.runs("many-heads") {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.manyHeads(ctx, mallory)
		}()
	}
}

func bool2int(b bool) int {
	if b {
		return 1
	}
	return 0
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// stalledReplay opens the public repository's events from the start of
// the log on a connection that never reads, holds it until the gateway
// gives up on it (it stops accepting bytes, then closes) or 40 s pass,
// and returns 200 (the stream opened), another status, or 0.
func (s *soak) stalledReplay(ctx context.Context, src string) int {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", strings.TrimPrefix(s.gw.url, "http://"))
	if err != nil {
		return 0
	}
	defer conn.Close()
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4096)
	}
	fmt.Fprintf(conn, "GET /v1/events?repo=public.big HTTP/1.1\r\nHost: soak\r\nAccept: text/event-stream\r\nLast-Event-ID: %s.0\r\n\r\n", s.nodeID)
	// Read only the status line, then nothing more.
	br := bufio.NewReaderSize(conn, 256)
	line, err := br.ReadString('\n')
	if err != nil {
		return 0
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		return 0
	}
	st, _ := strconv.Atoi(f[1])
	sleepCtx(ctx, 40*time.Second)
	return st
}

// manyHeads pushes rounds of concurrent root commits on one item, then
// writes the item over REST, which must merge its heads.
func (s *soak) manyHeads(ctx context.Context, tok string) {
	api := s.apiFor(tok)
	const repo = "user.mallory.heads"
	if _, _, err := api.CreateRepo(ctx, repo); err != nil {
		if ctx.Err() == nil {
			s.failf("many heads: create %s: %v", repo, err)
		}
		return
	}
	key, sess, err := s.session(ctx, api, "mallory")
	if err != nil {
		if ctx.Err() == nil {
			s.failf("many heads: session: %v", err)
		}
		return
	}
	for round := 0; round < 3 && ctx.Err() == nil; round++ {
		item := fmt.Sprintf("hot-%d", round)
		var mu sync.Mutex
		var accepted []string
		var wg sync.WaitGroup
		const per = 50
		for b := 0; b < s.cfg.ManyHeads; b += per {
			var raws [][]byte
			var ids []string
			for j := b; j < min(b+per, s.cfg.ManyHeads); j++ {
				cm := &core.Commit{Repo: repo, Key: item, Author: sess, TS: time.Now().UnixMilli(), Schema: core.AnySchema,
					Data: map[string]any{"j": float64(j), "r": rand.Float64()}}
				if err := cm.Sign(key); err != nil {
					s.failf("sign: %v", err)
					return
				}
				raw, _ := cm.MarshalJSON()
				raws, ids = append(raws, raw), append(ids, cm.ID.String())
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := api.PushCommits(ctx, repo, raws)
				var pe *client.ProblemError
				switch {
				case err == nil:
					s.count("many-heads", http.StatusOK, "push")
				case errors.As(err, &pe):
					s.count("many-heads", pe.Status, "push: "+pe.Detail)
					return
				default:
					if ctx.Err() == nil {
						s.count("many-heads", 0, "push")
					}
					return
				}
				mu.Lock()
				defer mu.Unlock()
				for i, r := range res {
					if r.Status == gsync.StatusAccepted || r.Status == gsync.StatusDuplicate {
						accepted = append(accepted, ids[i])
					}
				}
			}()
		}
		wg.Wait()
		s.ack(repo, 0, 0, accepted...)
		start := time.Now()
		_, err := api.PutItem(ctx, repo, item, models.ItemWrite{Schema: core.AnySchema, Data: map[string]any{"merged": true}}, "")
		round := ManyHeadRound{Key: item, Accepted: len(accepted), PutMS: float64(time.Since(start)) / float64(time.Millisecond), Status: http.StatusOK}
		var pe *client.ProblemError
		switch {
		case err == nil:
		case errors.As(err, &pe):
			round.Status = pe.Status
			s.failf("many heads: PUT %s/%s after %d roots: %v", repo, item, len(accepted), err)
		case ctx.Err() != nil:
			return
		default:
			round.Status = 0
			s.failf("many heads: PUT %s/%s: %v", repo, item, err)
		}
		s.count("many-heads", round.Status, "PUT after the roots")
		s.mu.Lock()
		s.rep.ManyHeadRounds = append(s.rep.ManyHeadRounds, round)
		s.mu.Unlock()
	}
}

// verify restarts the gateway and checks that every acknowledged commit
// is in its repository's log.
func (s *soak) verify(ctx context.Context) error {
	if err := s.gw.stop(); err != nil {
		s.failf("graceful stop: %v", err)
	}
	s.gw = nil
	if err := s.start(ctx); err != nil {
		return err
	}
	s.rep.Statuses = s.status
	s.rep.FiveXXSamples = s.samples
	for repo, ids := range s.acked {
		api := s.apiFor(s.token(strings.Split(repo, ".")[1]))
		p := &process{api: api}
		log, err := readLog(ctx, p, repo)
		if err != nil {
			s.failf("reading %s after the restart: %v", repo, err)
			s.rep.Lost += len(ids)
			continue
		}
		for _, id := range ids {
			s.rep.Acknowledged++
			if _, ok := log[id]; !ok {
				s.rep.Lost++
				s.failf("acknowledged commit %s of %s missing after the restart", id, repo)
			}
		}
	}
	if err := s.gw.stop(); err != nil {
		s.failf("graceful stop after the check: %v", err)
	}
	s.gw = nil
	return nil
}

// judge compares the report with the targets.
func (s *soak) judge() {
	r := s.rep
	ratio := func(a, z LatencySummary) float64 {
		if a.P99 <= 0 {
			return math.Inf(1)
		}
		return z.P99 / a.P99
	}
	r.WriteP99Ratio, r.EventP99Ratio = ratio(r.Baseline.Write, r.Attack.Write), ratio(r.Baseline.Event, r.Attack.Event)
	if math.IsInf(r.WriteP99Ratio, 0) || math.IsInf(r.EventP99Ratio, 0) {
		r.Missed = append(r.Missed, "no baseline latency was measured")
		r.WriteP99Ratio, r.EventP99Ratio = 0, 0
	}
	if r.PeakRSSAboveIdle >= SoakMaxRSSAboveIdle {
		r.Missed = append(r.Missed, fmt.Sprintf("peak RSS %d MiB above idle, target under %d MiB", r.PeakRSSAboveIdle>>20, SoakMaxRSSAboveIdle>>20))
	}
	if r.WriteP99Ratio >= SoakMaxP99Ratio {
		r.Missed = append(r.Missed, fmt.Sprintf("honest write p99 %.2fx under attack, target under %.0fx", r.WriteP99Ratio, SoakMaxP99Ratio))
	}
	if r.EventP99Ratio >= SoakMaxP99Ratio {
		r.Missed = append(r.Missed, fmt.Sprintf("honest write-to-event p99 %.2fx under attack, target under %.0fx", r.EventP99Ratio, SoakMaxP99Ratio))
	}
	if r.Lost > 0 {
		r.Missed = append(r.Missed, fmt.Sprintf("%d acknowledged writes lost", r.Lost))
	}
	if r.Acknowledged == 0 {
		r.Missed = append(r.Missed, "nothing was acknowledged, so nothing was checked")
	}
	if r.FiveXX > 0 {
		r.Missed = append(r.Missed, fmt.Sprintf("%d answers were 5xx", r.FiveXX))
	}
	if len(r.ManyHeadRounds) == 0 && slices.Contains(r.Config.Attacks, "many-heads") {
		r.Missed = append(r.Missed, "no many-head round completed")
	}
}
