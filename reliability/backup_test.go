package reliability

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/gen/models"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
)

// A backup of a running gateway taken under write load restores: a gateway
// started on the backup directory (with the keys directory copied next to
// it, as the backup's help says) holds every commit, item write and session
// acknowledged before the backup began, byte for byte, and each
// repository's count and digest are those the backup printed; a repository
// that took no writes during the backup has the source's digest.
func TestBackup_RunningGatewayUnderWrites(t *testing.T) {
	bin := gatewayBinary(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep := &CrashReport{Fsck: map[string]int{}, GatewayLog: filepath.Join(dir, "gateway.log")}
	c := &crashRun{cfg: CrashConfig{Bin: bin, DataDir: filepath.Join(dir, "data")}, rep: rep, ledger: newLedger()}
	c.cfg.setDefaults()
	if err := c.setup(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.logs.Close()
	source := c.node
	defer func() { source.kill() }()

	// A repository written before the backup only.
	const quiet = "backup.quiet"
	if _, _, err := source.api.CreateRepo(ctx, quiet); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := source.api.PutItem(ctx, quiet, fmt.Sprintf("k%d", i), models.ItemWrite{Schema: "any/1", Data: map[string]any{"n": i}}, ""); err != nil {
			t.Fatal(err)
		}
	}

	ws := c.startWriters(ctx, 1)
	defer func() { ws.halt(); ws.wait() }()
	goattest.WaitFor(t, "writes acknowledged before the backup", func() bool { return c.ledger.snapshot().acked() >= 50 })
	// The backup begins once this snapshot of what was acknowledged is
	// taken: everything in it must be in the backup.
	before := c.ledger.snapshot()
	out := filepath.Join(dir, "backup")
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "backup", "--url", source.url, "--token", c.token, "--out", out)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	acked := c.ledger.snapshot().acked()
	ws.halt()
	ws.wait()
	if err != nil {
		t.Fatalf("backup: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	t.Logf("%d writes acknowledged before the backup began, %d by its end", before.acked(), acked)
	if acked <= before.acked() {
		t.Fatalf("no write was acknowledged while the backup ran (%d before, %d after): not a backup under load", before.acked(), acked)
	}
	printed := map[string]string{} // repo -> "count digest"
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 {
			printed[f[0]] = f[1] + " " + f[2]
		}
	}
	for _, want := range append([]string{quiet, "sys.sessions"}, crashRepos...) {
		if _, ok := printed[want]; !ok {
			t.Fatalf("backup printed no line for %s:\n%s", want, stdout.String())
		}
	}
	quietSource, err := source.api.GetRepo(ctx, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if err := source.stop(); err != nil {
		t.Fatalf("stopping the source: %v", err)
	}

	// The restore: the keys directory copied beside the backup, then a
	// gateway on it.
	// (cp -a in a shell: os.CopyFS makes files readable by all, which the
	// gateway refuses for keys.)
	keys := filepath.Join(out, "keys")
	if err := os.CopyFS(keys, os.DirFS(filepath.Join(c.cfg.DataDir, "keys"))); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(keys)
	for _, e := range ents {
		if err := os.Chmod(filepath.Join(keys, e.Name()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c.cfg.DataDir = out
	restored, err := c.start(ctx)
	if err != nil {
		log, _ := os.ReadFile(rep.GatewayLog)
		t.Fatalf("a gateway on the backup: %v\n%s", err, log)
	}
	defer func() { restored.kill() }()
	c.node = restored
	c.ledger = before
	if checks := c.verify(ctx); checks == 0 || rep.Lost != 0 || len(rep.Failures) != 0 {
		t.Fatalf("restored backup: %d checks, %d lost: %v", checks, rep.Lost, rep.Failures)
	}
	for _, name := range slices.Sorted(maps.Keys(printed)) {
		info, err := restored.api.GetRepo(ctx, name)
		if err != nil {
			t.Fatalf("restored %s: %v", name, err)
		}
		if got := fmt.Sprintf("%d %s", info.Count, info.Digest); got != printed[name] {
			t.Errorf("restored %s: count and digest %s, the backup printed %s", name, got, printed[name])
		}
	}
	if got, want := printed[quiet], fmt.Sprintf("%d %s", quietSource.Count, quietSource.Digest); got != want {
		t.Errorf("%s took no writes during the backup: backup %s, source %s", quiet, got, want)
	}
}

// snapshot copies what the ledger holds now.
func (l *ledger) snapshot() *ledger {
	l.mu.Lock()
	defer l.mu.Unlock()
	return &ledger{commits: maps.Clone(l.commits), items: slices.Clone(l.items), sessions: maps.Clone(l.sessions)}
}

// acked counts the acknowledged writes: pushed commits and item writes.
func (l *ledger) acked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.commits) + len(l.items)
}
