package api_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/internal/goattest"
)

// startNginx runs Debian's nginx in front of upstream with default proxy
// settings (proxy_buffering on), as an operator who added nothing for SSE
// would; it returns nginx's base URL.
func startNginx(tb testing.TB, upstream string) string {
	tb.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, err2 := os.Stat("/usr/sbin/nginx"); err2 != nil {
			tb.Fatal("nginx is needed for this test (.ci/run installs Debian's nginx-light)")
		}
		bin = "/usr/sbin/nginx"
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := tb.TempDir()
	conf := fmt.Sprintf(`
daemon off;
master_process off;
worker_processes 1;
error_log %[1]s/error.log warn;
pid %[1]s/nginx.pid;
events { worker_connections 256; }
http {
  # Debian's default nginx.conf settings, plus default proxy settings.
  sendfile on;
  tcp_nopush on;
  gzip on;
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  server {
    listen 127.0.0.1:%[2]d;
    location / {
      proxy_pass http://%[3]s;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`, dir, port, strings.TrimPrefix(upstream, "http://"))
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", path, "-p", dir)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	goattest.WaitFor(tb, "nginx to listen", func() bool {
		resp, err := http.Get(url + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return url
}

// Through nginx with its default settings (proxy_buffering on, gzip on),
// events still arrive at once. The gateway also sends X-Accel-Buffering: no,
// which turns nginx's buffering off for the stream in configurations that
// would hold events back (slow clients, larger proxy buffers).
func TestEvents_ThroughNginx(t *testing.T) {
	g := startGateway(t, goattest.Config{Heartbeat: time.Hour})
	alice := setupRepo(t, g)
	proxied := &gateway{Gateway: g.Gateway, base: startNginx(t, g.URL()), proxied: true}
	viaNginx := alice.At(proxied.base)
	sub := proxied.subscribe(t, alice.Token, "repo=r")
	sub.waitReady(t)
	for i := 0; i < 3; i++ {
		c := alice.CommitAt(int64(i), "r", fmt.Sprintf("k%d", i), map[string]any{"i": float64(i)})
		viaNginx.Push(t, c)
		start := time.Now()
		if _, id := sub.nextCommit(t); id != c.ID.String() {
			t.Fatalf("got %s, want %s", id, c.ID)
		}
		t.Logf("event %d through nginx after %v", i, time.Since(start))
	}
}
