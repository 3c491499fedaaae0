package api_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/internal/goattest"
)

// startNginx runs Debian's nginx in front of upstream with default proxy
// settings (proxy_buffering on) and Debian's default nginx.conf settings
// (sendfile, tcp_nopush, gzip), as an operator who added nothing for SSE
// would; it returns nginx's base URL.
func startNginx(tb testing.TB, upstream string) string {
	tb.Helper()
	return goattest.StartNginx(tb, upstream, "sendfile on; tcp_nopush on; gzip on;")
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
