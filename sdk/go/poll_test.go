package goat_test

import (
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/internal/goattest"
	goat "github.com/goat-gateway/goat-gateway/sdk/go"
)

// behindBufferingProxy opens a client of g through a proxy that buffers
// every response, and waits until it long polls.
func behindBufferingProxy(tb testing.TB, g *goattest.Gateway, repo string, mod func(*goat.Config)) (*goattest.Proxy, *goat.Client, *goat.Repo) {
	tb.Helper()
	p := goattest.StartProxy(tb, g.URL())
	p.SetBuffering(true)
	c := openClient(tb, g, "alice", func(cfg *goat.Config) {
		cfg.URL = p.URL()
		cfg.ReadyTimeout = 300 * time.Millisecond
		// Nothing but the live path may bring a write in time.
		cfg.HealInterval = time.Hour
		if mod != nil {
			mod(cfg)
		}
	})
	r := openRepo(tb, c, repo)
	goattest.WaitFor(tb, "the client to long poll", func() bool {
		s := c.Status()
		return s.Polling && s.Online && p.LongPolls() > 0
	})
	return p, c, r
}

// nextAdded returns the first change adding key, skipping other events.
func nextAdded(tb testing.TB, q *goat.LiveQuery, key string) goat.Change {
	tb.Helper()
	for {
		ev := goattest.Recv(tb, q.Events(), "a query event adding "+key)
		for _, ch := range ev.Changes {
			if ch.Kind == goat.Added && ch.Key == key {
				return ch
			}
		}
		for _, it := range ev.Items {
			if it.Key == key {
				return goat.Change{Kind: goat.Added, Key: key, Item: it}
			}
		}
	}
}

func TestClient_LongPollFallback(t *testing.T) {
	g := goattest.StartGateway(t, goattest.Config{})
	const repo = "user.alice.notes"
	const pollWait = 20 * time.Second
	p, c, r := behindBufferingProxy(t, g, repo, func(cfg *goat.Config) {
		cfg.PollWait = pollWait
		cfg.StreamProbeInterval = time.Hour
	})
	q, err := r.Query(goat.Query{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	goattest.Recv(t, q.Events(), "the first snapshot")

	// Another client, straight to the gateway, writes.
	b := openClient(t, g, "alice", nil)
	rb := openRepo(t, b, repo)
	written := time.Now()
	if err := rb.Set("from-b", "note/1", map[string]any{"title": "hello"}); err != nil {
		t.Fatal(err)
	}
	ch := nextAdded(t, q, "from-b")
	latency := time.Since(written)
	if got, want := ch.Item.Data["title"], "hello"; got != want {
		t.Fatalf("title=%v, want %v", got, want)
	}
	// The proxy let no event through: the write came by a long poll,
	// which the gateway answers as soon as the commit is in its log, not
	// when the poll's wait is over.
	if n := p.LiveStreams(); n != 0 {
		t.Fatalf("%d event streams got through the buffering proxy, want 0", n)
	}
	if latency >= pollWait/2 {
		t.Fatalf("the write reached the live query %v after it was made, want well under the poll's wait %v", latency, pollWait)
	}
	t.Logf("Set on another client -> live query event here, behind a buffering proxy: %v (the writer's coalesce window included)", latency)

	// Writes go up as before (pushes are requests that end).
	if err := r.Set("from-a", "note/1", map[string]any{"title": "up"}); err != nil {
		t.Fatal(err)
	}
	waitInSync(t, g, repo, r, rb)

	// A repository opened while polling is polled at once, not at the
	// next probe of the stream (an hour away).
	const other = "user.alice.later"
	r2 := openRepo(t, c, other)
	q2, err := r2.Query(goat.Query{})
	if err != nil {
		t.Fatal(err)
	}
	defer q2.Close()
	goattest.Recv(t, q2.Events(), "the first snapshot of the second repository")
	rb2 := openRepo(t, b, other)
	if err := rb2.Set("later", "note/1", map[string]any{"title": "polled"}); err != nil {
		t.Fatal(err)
	}
	if got, want := nextAdded(t, q2, "later").Item.Data["title"], "polled"; got != want {
		t.Fatalf("title=%v, want %v", got, want)
	}
	if n := p.LiveStreams(); n != 0 {
		t.Fatalf("%d event streams got through the buffering proxy, want 0", n)
	}
}

func TestClient_ReturnsToSSE(t *testing.T) {
	g := goattest.StartGateway(t, goattest.Config{})
	const repo = "user.alice.notes"
	p, c, r := behindBufferingProxy(t, g, repo, func(cfg *goat.Config) {
		cfg.StreamProbeInterval = 50 * time.Millisecond
	})
	q, err := r.Query(goat.Query{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	goattest.Recv(t, q.Events(), "the first snapshot")

	// The proxy is fixed (or the route changes): the next probe gets
	// ready in time and the polls stop.
	p.SetBuffering(false)
	goattest.WaitFor(t, "the client back on the event stream", func() bool {
		s := c.Status()
		return !s.Polling && s.Online && p.LiveStreams() == 1 && p.LongPolls() == 0
	})
	for len(p.Events()) > 0 {
		<-p.Events()
	}

	b := openClient(t, g, "alice", nil)
	rb := openRepo(t, b, repo)
	if err := rb.Set("from-b", "note/1", map[string]any{"title": "live"}); err != nil {
		t.Fatal(err)
	}
	for name := ""; name != "commit"; {
		name = goattest.Recv(t, p.Events(), "the commit on the event stream through the proxy")
	}
	if got, want := nextAdded(t, q, "from-b").Item.Data["title"], "live"; got != want {
		t.Fatalf("title=%v, want %v", got, want)
	}
	if s, polls := c.Status(), p.LongPolls(); s.Polling || polls != 0 {
		t.Fatalf("Polling=%v with %d long polls in flight after the return to the stream, want none", s.Polling, polls)
	}
}

// Through nginx configured as many are (proxy_buffering on, gzip on for
// text/event-stream, X-Accel-Buffering ignored), the gzip buffer holds the
// stream's small events: without the fallback a write never reaches the
// client (checked by hand: not within goattest.Patience). With it, the
// client long polls and sees the write.
func TestClient_LongPollFallbackThroughNginx(t *testing.T) {
	g := goattest.StartGateway(t, goattest.Config{})
	url := goattest.StartNginx(t, g.URL(), `
      proxy_buffering on;
      proxy_ignore_headers X-Accel-Buffering;
      gzip on;
      gzip_types text/event-stream;`)
	const repo = "user.alice.notes"
	c := openClient(t, g, "alice", func(cfg *goat.Config) {
		cfg.URL = url
		cfg.ReadyTimeout = 300 * time.Millisecond
		cfg.StreamProbeInterval = time.Hour
		cfg.HealInterval = time.Hour
	})
	r := openRepo(t, c, repo)
	goattest.WaitFor(t, "the client to long poll", func() bool { s := c.Status(); return s.Polling && s.Online })
	q, err := r.Query(goat.Query{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	goattest.Recv(t, q.Events(), "the first snapshot")
	b := openClient(t, g, "alice", nil)
	rb := openRepo(t, b, repo)
	written := time.Now()
	if err := rb.Set("from-b", "note/1", map[string]any{"title": "through nginx"}); err != nil {
		t.Fatal(err)
	}
	if got, want := nextAdded(t, q, "from-b").Item.Data["title"], "through nginx"; got != want {
		t.Fatalf("title=%v, want %v", got, want)
	}
	t.Logf("Set on another client -> live query event here, behind nginx gzipping the stream: %v", time.Since(written))
}
