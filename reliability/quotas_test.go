package reliability

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/client"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
	gnode "github.com/goat-gateway/goat-gateway/node"
	"github.com/goat-gateway/goat-gateway/storage"
)

// wantProblem fails tb unless body is a problem of the given slug whose
// detail holds every one of parts.
func wantProblem(tb testing.TB, what string, st int, body []byte, status int, slug string, parts ...string) {
	tb.Helper()
	var p struct{ Type, Detail string }
	if err := json.Unmarshal(body, &p); err != nil || st != status || !strings.HasSuffix(p.Type, "/"+slug) {
		tb.Fatalf("%s: %d %s, want %d %s", what, st, body, status, slug)
	}
	for _, part := range parts {
		if !strings.Contains(p.Detail, part) {
			tb.Fatalf("%s: detail %q lacks %q", what, p.Detail, part)
		}
	}
}

// A repository flood at the default limits: 2,000 repositories created and
// written in sequence never hold more than the open-files budget open, and
// every request succeeds; past the per-owner quota a creation is a 429 that
// says why, and another owner is not affected.
func TestLimits_RepositoryFlood(t *testing.T) {
	n := startNode(t, goattest.Config{})
	owners := []string{"alice", "bob"}
	per := gnode.DefaultMaxReposPerOwner
	peak := 0
	for _, sub := range owners {
		tok := n.Token(sub)
		for i := range per {
			repo := fmt.Sprintf("%s.r%04d", sub, i)
			n.must(t, "PUT", "/v1/repos/"+repo, tok, nil, 201)
			n.must(t, "PUT", "/v1/repos/"+repo+"/items/k", tok, []byte(`{"schema":"any/1","data":{"v":1}}`), 201)
			peak = max(peak, n.Node().OpenRepos())
			if peak > storage.DefaultMaxOpen {
				t.Fatalf("after %s: %d repositories open, budget %d", repo, peak, storage.DefaultMaxOpen)
			}
		}
	}
	t.Logf("%d repositories created and written; at most %d open (budget %d)", len(owners)*per, peak, storage.DefaultMaxOpen)
	st, body := n.do(t, "PUT", "/v1/repos/alice.one-more", n.Token("alice"), nil)
	wantProblem(t, "alice's repository past the quota", st, body, 429, "rate-limited", fmt.Sprintf("%d repositories", per))
	n.must(t, "PUT", "/v1/repos/carol.first", n.Token("carol"), nil, 201)
	// Every repository is still whole.
	n.must(t, "GET", "/v1/repos/alice.r0000/items/k", n.Token("alice"), nil, 200)
	// The quota holds across a restart.
	n.Restart(t)
	st, body = n.do(t, "PUT", "/v1/repos/alice.one-more", n.Token("alice"), nil)
	wantProblem(t, "alice's repository past the quota after a restart", st, body, 429, "rate-limited")
}

// A session flood: past the per-owner quota of live sessions, POST
// /v1/sessions is a 429 that says why; revoking one makes room.
func TestLimits_SessionFlood(t *testing.T) {
	n := startNode(t, goattest.Config{})
	tok := n.Token("alice")
	register := func() (int, []byte, string) {
		t.Helper()
		_, priv, err := ed25519.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		req, err := client.SessionBody(priv, auth.DevAudience, "alice", time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		st, body := n.do(t, "POST", "/v1/sessions", tok, b)
		return st, body, auth.SessionID(priv.Public().(ed25519.PublicKey))
	}
	var first string
	for i := range gnode.DefaultMaxSessionsPerOwner {
		st, body, id := register()
		if st != 201 {
			t.Fatalf("session %d: %d %s", i, st, body)
		}
		if i == 0 {
			first = id
		}
	}
	st, body, _ := register()
	wantProblem(t, "a session past the quota", st, body, 429, "rate-limited", fmt.Sprintf("%d live sessions", gnode.DefaultMaxSessionsPerOwner))
	n.must(t, "DELETE", "/v1/sessions/"+first, tok, nil, 200)
	if st, body, _ := register(); st != 201 {
		t.Fatalf("a session once one was revoked: %d %s", st, body)
	}
}
