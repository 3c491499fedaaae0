package reliability

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
	goat "github.com/goat-gateway/goat-gateway/sdk/go"
)

// binGateway is the real binary serving a data directory, restartable on
// the same address (clients keep their URL across the restart).
type binGateway struct {
	bin, dir, listen, url string
	cmd                   *exec.Cmd
	exited                chan struct{}
}

func startBinGateway(tb testing.TB, bin, dir, listen string) *binGateway {
	tb.Helper()
	g := &binGateway{bin: bin, dir: dir, listen: listen}
	g.start(tb)
	tb.Cleanup(func() { g.stop(tb) })
	return g
}

func (g *binGateway) start(tb testing.TB) {
	tb.Helper()
	cmd := exec.Command(g.bin, "serve", "--listen", g.listen, "--data-dir", g.dir, "--dev", "--log-level", "warn")
	logs, err := os.Create(filepath.Join(tb.TempDir(), "gateway.log"))
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	ready := make(chan string, 1)
	g.cmd, g.exited = cmd, make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "goat-gateway listening on "); ok {
				ready <- strings.TrimSpace(u)
			}
		}
		_ = cmd.Wait()
		logs.Close()
		close(g.exited)
	}()
	select {
	case g.url = <-ready:
	case <-g.exited:
		tb.Fatalf("gateway exited while starting (log: %s)", logs.Name())
	case <-time.After(60 * time.Second):
		tb.Fatal("gateway did not listen within 60 s")
	}
	g.listen = strings.TrimPrefix(g.url, "http://")
}

func (g *binGateway) stop(tb testing.TB) {
	tb.Helper()
	if g.cmd == nil {
		return
	}
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.exited:
	case <-time.After(30 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.exited
	}
	g.cmd = nil
}

// wipe removes everything the gateway stores except its keys directory:
// repositories, sys.sessions and the other system repositories, the node
// identity.
func (g *binGateway) wipe(tb testing.TB) {
	tb.Helper()
	ents, err := os.ReadDir(g.dir)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() == "keys" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(g.dir, e.Name())); err != nil {
			tb.Fatal(err)
		}
	}
}

func (g *binGateway) token(tb testing.TB, sub string) string {
	tb.Helper()
	out, err := exec.Command(g.bin, "token", "--data-dir", g.dir, "--sub", sub, "--ttl", "24h").Output()
	if err != nil {
		tb.Fatalf("token: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.Count(f[len(f)-1], ".") == 2 {
			return strings.TrimPrefix(f[len(f)-1], "TOKEN=")
		}
	}
	tb.Fatalf("no token in %q", out)
	return ""
}

func (g *binGateway) call(tb testing.TB, method, path, token string, body any) (int, []byte) {
	tb.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, g.url+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// state returns a repository's count and digest (GET /v1/repos/{repo}).
func (g *binGateway) state(tb testing.TB, token, repo string) (int64, string) {
	tb.Helper()
	st, b := g.call(tb, "GET", "/v1/repos/"+repo, token, nil)
	if st != 200 {
		return -1, fmt.Sprintf("status %d", st)
	}
	var info struct {
		Count  int64  `json:"count"`
		Digest string `json:"digest"`
	}
	if err := json.Unmarshal(b, &info); err != nil {
		tb.Fatal(err)
	}
	return info.Count, info.Digest
}

// items reads every item of repo over REST.
func (g *binGateway) items(tb testing.TB, token, repo string) map[string]any {
	tb.Helper()
	st, b := g.call(tb, "GET", "/v1/repos/"+repo+"/items?limit=1000", token, nil)
	if st != 200 {
		tb.Fatalf("items of %s: %d %s", repo, st, b)
	}
	var page struct {
		Items []struct {
			Key  string         `json:"key"`
			Data map[string]any `json:"data"`
			Head string         `json:"head"`
		} `json:"items"`
	}
	if err := json.Unmarshal(b, &page); err != nil {
		tb.Fatal(err)
	}
	out := map[string]any{}
	for _, it := range page.Items {
		out[it.Key] = map[string]any{"data": it.Data, "head": it.Head}
	}
	return out
}

// TestRestore_OneClientRestoresWipedGateway is issue 18's "must show" with
// the real binary: data written by two Go SDK clients and, over REST, by a
// third user (signed by the gateway's custodial session for that user);
// the gateway loses everything but its keys; after the restart only ONE
// client reconnects, and the gateway ends with every repository's count
// and digest as before and every item reading as before over REST. The
// other client then reconnects without conflict.
func TestRestore_OneClientRestoresWipedGateway(t *testing.T) {
	bin := gatewayBinary(t)
	g := startBinGateway(t, bin, t.TempDir(), "127.0.0.1:0")
	repos := []string{"team.r1", "team.r2"}
	carol := g.token(t, "carol")
	logger := slog.New(slog.DiscardHandler)
	open := func(sub, dir string) *goat.Client {
		c, err := goat.Open(goat.Config{URL: g.url, Token: g.token(t, sub), Dir: dir, NoSync: true, Logger: logger,
			CoalesceWindow: 5 * time.Millisecond, ReconnectMin: 50 * time.Millisecond, ReconnectMax: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	dirA, dirB := t.TempDir(), t.TempDir()
	a, b := open("alice", dirA), open("bob", dirB)
	repo := func(c *goat.Client, name string) *goat.Repo {
		r, err := c.Repo(name)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	ctx := context.Background()
	for i, name := range repos {
		ra, rb := repo(a, name), repo(b, name)
		if err := ra.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		for k := range 6 {
			if err := ra.Set(fmt.Sprintf("a%d", k), core.AnySchema, map[string]any{"by": "alice", "n": float64(k + i)}); err != nil {
				t.Fatal(err)
			}
			if err := rb.Set(fmt.Sprintf("b%d", k), core.AnySchema, map[string]any{"by": "bob", "n": float64(k)}); err != nil {
				t.Fatal(err)
			}
		}
		// One item edited by all three: concurrent heads, merges.
		if err := ra.Set("shared", core.AnySchema, map[string]any{"a": true}); err != nil {
			t.Fatal(err)
		}
		if err := rb.Set("shared", core.AnySchema, map[string]any{"b": true}); err != nil {
			t.Fatal(err)
		}
		for k := range 3 {
			if st, body := g.call(t, "PUT", fmt.Sprintf("/v1/repos/%s/items/c%d", name, k), carol, map[string]any{"schema": core.AnySchema, "data": map[string]any{"by": "carol", "n": float64(k)}}); st != 200 && st != 201 {
				t.Fatalf("carol's REST write: %d %s", st, body)
			}
		}
		if st, body := g.call(t, "PUT", "/v1/repos/"+name+"/items/c0", carol, map[string]any{"schema": core.AnySchema, "data": map[string]any{"edited": true}}); st != 200 {
			t.Fatalf("carol's second write: %d %s", st, body)
		}
		if st, body := g.call(t, "DELETE", "/v1/repos/"+name+"/items/c2", carol, nil); st != 200 && st != 204 {
			t.Fatalf("carol's delete: %d %s", st, body)
		}
	}
	// Both clients hold everything (carol's custodial commits included).
	type state struct {
		count  int64
		digest string
		items  map[string]any
	}
	before := map[string]state{}
	for _, name := range repos {
		ra, rb := repo(a, name), repo(b, name)
		goattest.WaitFor(t, "both clients in sync with "+name, func() bool {
			_ = ra.Sync(ctx)
			_ = rb.Sync(ctx)
			n, d := g.state(t, carol, name)
			an, ad := ra.Digest()
			bn, bd := rb.Digest()
			return an == n && ad == d && bn == n && bd == d
		})
		n, d := g.state(t, carol, name)
		before[name] = state{n, d, g.items(t, carol, name)}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	g.stop(t)
	g.wipe(t)
	g.start(t)
	if n, _ := g.state(t, carol, repos[0]); n != -1 {
		t.Fatalf("the wipe left %s with %d commits", repos[0], n)
	}

	// Only alice reconnects: she holds bob's and carol's commits and their
	// session records, and gives the gateway both.
	a = open("alice", dirA)
	for _, name := range repos {
		ra := repo(a, name)
		goattest.WaitFor(t, "alice to restore "+name, func() bool {
			_ = ra.Sync(ctx)
			n, d := g.state(t, carol, name)
			return n == before[name].count && d == before[name].digest
		})
		if got := g.items(t, carol, name); !core.EqualJSON(got, before[name].items) {
			t.Fatalf("%s items after the restore:\n%v\nbefore:\n%v", name, got, before[name].items)
		}
	}
	if s := a.Status(); s.Quarantined != 0 || s.LastError != nil {
		t.Fatalf("alice after the restore: quarantined %d, last error %v", s.Quarantined, s.LastError)
	}

	// Bob reconnects later: nothing to add, no conflict.
	b = open("bob", dirB)
	for _, name := range repos {
		rb := repo(b, name)
		if err := rb.Sync(ctx); err != nil {
			t.Fatalf("bob's sync of %s after the restore: %v", name, err)
		}
		n, d := g.state(t, carol, name)
		if bn, bd := rb.Digest(); bn != n || bd != d || n != before[name].count || d != before[name].digest {
			t.Fatalf("%s: bob %d %.8s, gateway %d %.8s, before %d %.8s", name, bn, bd, n, d, before[name].count, before[name].digest)
		}
	}
	if s := b.Status(); s.Quarantined != 0 || s.LastError != nil {
		t.Fatalf("bob after the restore: quarantined %d, last error %v", s.Quarantined, s.LastError)
	}
}
