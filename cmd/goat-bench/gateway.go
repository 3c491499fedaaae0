package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/client"
)

// gateway is a goat-gateway process that the benchmark started.
type gateway struct {
	cmd     *exec.Cmd
	URL     string // http://127.0.0.1:port
	Addr    string // 127.0.0.1:port
	DataDir string
	issuer  *auth.DevIssuer
	api     *client.Client // anonymous: /readyz and /metrics
	stderr  *tailBuffer
	exited  chan struct{}
	waitErr error
	meter   *cpuMeter
	// Started is when the process was started; Listening when it printed
	// its address.
	Started, Listening time.Time
}

// startGateway runs `bin serve` on a loopback port over dataDir, in dev
// mode (every authenticated caller may write every repository) with real
// fsync, and waits until /readyz answers.
func startGateway(ctx context.Context, bin, dataDir string, meter *cpuMeter, log *slog.Logger) (*gateway, error) {
	g := &gateway{DataDir: dataDir, stderr: &tailBuffer{max: 64 << 10}, exited: make(chan struct{}), meter: meter}
	g.cmd = exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--dev", "--log-level", "warn")
	g.cmd.Stderr = g.stderr
	// The gateway must outlive a Ctrl-C long enough for Stop to end it
	// cleanly, so it gets its own process group.
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := g.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	g.Started = time.Now()
	if err := g.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	if meter != nil {
		meter.track(g.cmd.Process.Pid)
	}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "goat-gateway listening on "); ok {
				select {
				case addrc <- strings.TrimSpace(rest):
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	go func() {
		g.waitErr = g.cmd.Wait()
		if meter != nil {
			meter.untrack(g.cmd.Process.Pid)
		}
		close(g.exited)
	}()
	select {
	case u := <-addrc:
		g.Listening = time.Now()
		g.URL = u
		pu, err := url.Parse(u)
		if err != nil {
			g.Stop()
			return nil, err
		}
		g.Addr = pu.Host
		if g.api, err = client.New(u, client.Options{}); err != nil {
			g.Stop()
			return nil, err
		}
	case <-g.exited:
		return nil, fmt.Errorf("gateway exited at start: %v\n%s", g.waitErr, g.stderr.String())
	case <-time.After(2 * time.Minute):
		g.Stop()
		return nil, errors.New("gateway printed no address within 2 minutes")
	case <-ctx.Done():
		g.Stop()
		return nil, ctx.Err()
	}
	if err := g.waitReady(ctx); err != nil {
		g.Stop()
		return nil, err
	}
	var err2 error
	if g.issuer, err2 = auth.OpenDevIssuer(filepath.Join(dataDir, "keys")); err2 != nil {
		g.Stop()
		return nil, err2
	}
	log.Debug("gateway started", "url", g.URL, "pid", g.cmd.Process.Pid, "data_dir", dataDir)
	return g, nil
}

func (g *gateway) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := g.api.Ready(ctx)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gateway not ready within 2 minutes: %v", err)
		}
		select {
		case <-g.exited:
			return fmt.Errorf("gateway exited: %v\n%s", g.waitErr, g.stderr.String())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// PID is the gateway's process id.
func (g *gateway) PID() int { return g.cmd.Process.Pid }

// Token mints a dev token for sub, valid for a few hours.
func (g *gateway) Token(sub string) string {
	tok, err := g.issuer.Mint(sub, nil, 6*time.Hour, time.Now())
	if err != nil {
		panic(fmt.Sprintf("mint token: %v", err)) // the issuer key is ours: cannot fail
	}
	return tok
}

// Stop ends the gateway with SIGTERM (it closes its logs cleanly) and,
// after 30 s, SIGKILL.
func (g *gateway) Stop() error {
	select {
	case <-g.exited:
		return nil
	default:
	}
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.exited:
	case <-time.After(30 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.exited
		return errors.New("gateway did not stop within 30 s of SIGTERM; killed")
	}
	var ee *exec.ExitError
	if g.waitErr != nil && !errors.As(g.waitErr, &ee) {
		return g.waitErr
	}
	return nil
}

// Memory reads the gateway's resident set size and its peak (VmRSS and
// VmHWM of /proc/PID/status), in bytes.
func (g *gateway) Memory() (rss, peak int64, err error) {
	return procMemory(g.PID())
}

func procMemory(pid int) (rss, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			rss = n << 10
		case "VmHWM":
			peak = n << 10
		}
	}
	return rss, peak, nil
}

// Metrics fetches /metrics and returns the samples without labels, by
// name (go_goroutines, goat_sse_subscribers, ...).
func (g *gateway) Metrics() (map[string]float64, error) {
	b, err := g.api.Metrics(context.Background())
	if err != nil {
		return nil, err
	}
	return parseMetrics(bytes.NewReader(b))
}

// parseMetrics reads the Prometheus text format and keeps unlabelled
// samples.
func parseMetrics(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || strings.ContainsRune(line, '{') {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		out[f[0]] = v
	}
	return out, sc.Err()
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append([]byte(nil), t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.TrimSpace(t.b))
}

// buildGateway compiles ./cmd/goat-gateway of the repository at root into
// dir and returns the binary's path.
func buildGateway(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "goat-gateway")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/goat-gateway")
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/goat-gateway: %w\n%s", err, out.String())
	}
	return bin, nil
}
