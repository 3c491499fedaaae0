package reliability

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/internal/goattest"
)

var (
	crashTrials = flag.Int("crash.trials", 3, "trials of TestCrash (make crash-test runs cmd/goat-crashtest for the long run)")
	crashSeed   = flag.Uint64("crash.seed", 1, "seed of TestCrash")
)

// binDir holds the binaries built for this test process; TestMain
// removes it.
var binDir = sync.OnceValues(func() (string, error) { return os.MkdirTemp("", "goat-reliability-bin-") })

// builtCmd is one command of this module, built once per test process.
type builtCmd struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

var builtCmds = map[string]*builtCmd{"goat-gateway": {}, "goat-soak": {}}

// buildCmd builds cmd/NAME once per test process (without the race
// detector: the binaries stand for what users run) and returns its path.
func buildCmd(tb testing.TB, name string) string {
	tb.Helper()
	b := builtCmds[name]
	b.once.Do(func() {
		dir, err := binDir()
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, name)
		cmd := exec.Command("go", "build", "-o", b.path, "github.com/goat-gateway/goat-gateway/cmd/"+name)
		b.out, b.err = cmd.CombinedOutput()
	})
	if b.err != nil {
		tb.Fatalf("go build ./cmd/%s: %v\n%s", name, b.err, b.out)
	}
	return b.path
}

// gatewayBinary builds cmd/goat-gateway once per test process.
func gatewayBinary(tb testing.TB) string { return buildCmd(tb, "goat-gateway") }

// soakBinary builds cmd/goat-soak once per test process: the attacker
// process as goat-soak runs it, without the race detector's cost.
func soakBinary(tb testing.TB) string { return buildCmd(tb, "goat-soak") }

// TestMain removes the binaries buildCmd built.
func TestMain(m *testing.M) {
	code := m.Run()
	if dir, err := binDir(); err == nil {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

// A few crash trials on every `go test`: the real binary, killed with
// SIGKILL while it takes writes, keeps every acknowledged commit.
func TestCrash_KillAndRestart(t *testing.T) {
	bin := gatewayBinary(t)
	var progress strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := RunCrash(ctx, CrashConfig{Bin: bin, Trials: *crashTrials, Seed: *crashSeed, DataDir: filepath.Join(t.TempDir(), "data"), Progress: &progress})
	t.Log(progress.String())
	t.Log(rep.Summary())
	if err != nil {
		t.Fatalf("RunCrash: %v (gateway log: %s)", err, rep.GatewayLog)
	}
	if got, want := rep.Trials, *crashTrials; got != want {
		t.Fatalf("trials=%d, want %d", got, want)
	}
	if rep.Lost != 0 || len(rep.Failures) != 0 {
		t.Fatalf("lost=%d failures=%v", rep.Lost, rep.Failures)
	}
	// A run that acknowledged nothing would prove nothing.
	if rep.Pushed == 0 || rep.Items == 0 || rep.Sessions == 0 {
		t.Fatalf("acknowledged pushed=%d items=%d sessions=%d: the writers did no work", rep.Pushed, rep.Items, rep.Sessions)
	}
	if rep.Fsck["ok"] == 0 {
		t.Fatalf("fsck verdicts %v: no log checked", rep.Fsck)
	}
}

// The checker itself: an acknowledgement the gateway does not hold, and
// one whose bytes differ, are both reported as lost.
func TestCrash_DetectsLoss(t *testing.T) {
	bin := gatewayBinary(t)
	dir := t.TempDir()
	rep := &CrashReport{Fsck: map[string]int{}, GatewayLog: filepath.Join(dir, "gateway.log")}
	c := &crashRun{cfg: CrashConfig{Bin: bin, DataDir: filepath.Join(dir, "data")}, rep: rep, ledger: newLedger()}
	c.cfg.setDefaults()
	ctx := context.Background()
	if err := c.setup(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.logs.Close()
	defer func() { c.node.kill() }()

	ws := c.startWritersUntil(ctx, 1, func() bool { return c.ackedCommits() >= 5 })
	ws.wait()
	if got := c.verify(ctx); got == 0 || rep.Lost != 0 {
		t.Fatalf("verify of real acknowledgements: checks=%d lost=%d failures=%v", got, rep.Lost, rep.Failures)
	}

	c.ledger.mu.Lock()
	for id, a := range c.ledger.commits {
		a.json = append([]byte(nil), a.json...)
		a.json[len(a.json)-2] ^= 1 // changed bytes
		c.ledger.commits[id] = a
		break
	}
	c.ledger.commits[strings.Repeat("ab", 32)] = ackedCommit{repo: crashRepos[0], json: []byte(`{}`), trial: 1} // never written
	c.ledger.mu.Unlock()
	c.verify(ctx)
	if got, want := rep.Lost, 2; got != want {
		t.Fatalf("lost=%d, want %d (failures %v)", got, want, rep.Failures)
	}
}

// startWritersUntil runs one trial's writers until cond holds.
func (c *crashRun) startWritersUntil(ctx context.Context, trial int, cond func() bool) *writers {
	ws := c.startWriters(ctx, trial)
	goattest.Eventually(30*time.Second, cond)
	ws.halt()
	return ws
}

func (c *crashRun) ackedCommits() int {
	c.ledger.mu.Lock()
	defer c.ledger.mu.Unlock()
	return len(c.ledger.commits)
}
