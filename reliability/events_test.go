package reliability

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/internal/goattest"
)

// sseEvent is one event of a stream, with the id of its commit if it
// carries one.
type sseEvent struct {
	ID, Name, Commit string
}

// replayUntilReady opens GET /v1/events on repo with lastID (none if
// empty) and returns the events up to and including `ready`.
func replayUntilReady(tb testing.TB, n *node, token, repo, lastID string) []sseEvent {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", n.url+"/v1/events?repo="+repo, nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := n.client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET /v1/events: status %d", resp.StatusCode)
	}
	var evs []sseEvent
	var ev sseEvent
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			ev.ID = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "event: "):
			ev.Name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			var d struct{ Commit struct{ ID string } }
			_ = json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &d)
			ev.Commit = d.Commit.ID
		case line == "" && ev.Name != "":
			evs = append(evs, ev)
			if ev.Name == "ready" {
				return evs
			}
			ev = sseEvent{}
		}
	}
	tb.Fatalf("the stream ended before ready (%v): %+v", sc.Err(), evs)
	return nil
}

// replayed returns the commits of evs, failing unless they are commit
// events followed by ready.
func replayed(tb testing.TB, evs []sseEvent) []string {
	tb.Helper()
	var ids []string
	for i, ev := range evs {
		switch {
		case ev.Name == "commit":
			ids = append(ids, ev.Commit)
		case ev.Name == "ready" && i == len(evs)-1:
		default:
			tb.Fatalf("event %d is %q, want only commits then ready: %+v", i, ev.Name, evs)
		}
	}
	return ids
}

// TestEvents_IDsSurviveRestart: after a restart, live event ids go on from
// the durable log (DESIGN section 5; issue 17, item 8). A client that
// reconnects with the id it saw before the restart is replayed what it
// missed, not reset; a client that first connects after the restart gets
// an id past the history, so it is never replayed the whole history.
func TestEvents_IDsSurviveRestart(t *testing.T) {
	n := startNode(t, goattest.Config{})
	tok := n.Token("alice")
	n.must(t, "PUT", "/v1/repos/r", tok, nil, http.StatusCreated)
	put := func(key string) string {
		t.Helper()
		var it struct{ Head string }
		if err := json.Unmarshal(n.must(t, "PUT", "/v1/repos/r/items/"+key, tok, []byte(`{"schema":"any/1","data":{"v":1}}`), http.StatusCreated), &it); err != nil {
			t.Fatal(err)
		}
		return it.Head
	}
	ready := replayUntilReady(t, n, tok, "r", "")
	h1, h2 := put("k1"), put("k2")
	seen := replayUntilReady(t, n, tok, "r", ready[len(ready)-1].ID)
	if got, want := replayed(t, seen), []string{h1, h2}; !slices.Equal(got, want) {
		t.Fatalf("before the restart: replayed %v, want %v", got, want)
	}
	last := seen[len(seen)-2].ID // the client saw h2, then went away
	h3 := put("k3")
	n.Restart(t)

	t.Run("ReconnectBeforeAnyWrite", func(t *testing.T) {
		if got, want := replayed(t, replayUntilReady(t, n, tok, "r", last)), []string{h3}; !slices.Equal(got, want) {
			t.Fatalf("replayed %v, want %v", got, want)
		}
	})
	var fresh []sseEvent
	t.Run("NewClientStartsPastHistory", func(t *testing.T) {
		fresh = replayUntilReady(t, n, tok, "r", "")
		if id := fresh[len(fresh)-1].ID; strings.HasSuffix(id, ".0") {
			t.Fatalf("ready id %s after a restart, want one past the durable history", id)
		}
	})
	h4 := put("k4")
	t.Run("NewClientReplaysOnlyWhatItMissed", func(t *testing.T) {
		if got, want := replayed(t, replayUntilReady(t, n, tok, "r", fresh[len(fresh)-1].ID)), []string{h4}; !slices.Equal(got, want) {
			t.Fatalf("replayed %v, want %v", got, want)
		}
	})
	t.Run("ReconnectAfterWrites", func(t *testing.T) {
		if got, want := replayed(t, replayUntilReady(t, n, tok, "r", last)), []string{h3, h4}; !slices.Equal(got, want) {
			t.Fatalf("replayed %v, want %v", got, want)
		}
	})
}
