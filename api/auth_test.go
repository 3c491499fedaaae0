package api_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/client"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/gen/models"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
)

const testRules = `
rules:
  - repos: "user.{sub}.*"
    read: ["{sub}"]
    write: ["{sub}"]
  - repos: "public.*"
    read: ["*"]
    write: ["role:editor"]
`

// rulesGateway starts a gateway out of dev mode, authorizing by testRules.
func rulesGateway(t *testing.T) *gateway {
	t.Helper()
	rules, err := auth.ParseRules([]byte(testRules))
	if err != nil {
		t.Fatal(err)
	}
	return startGateway(t, goattest.Config{Rules: rules})
}

func TestAuth_RuleBoundaries(t *testing.T) {
	g := rulesGateway(t)
	alice, bob, ed := g.newAuthor(t, "alice"), g.newAuthor(t, "bob"), g.newAuthor(t, "ed", "editor")

	wantStatus(t, g.call(t, "PUT", "/v1/repos/user.alice.notes", alice.Token, nil), 201)
	wantStatus(t, g.call(t, "PUT", "/v1/repos/user.alice.notes", bob.Token, nil), 404)
	wantStatus(t, g.call(t, "PUT", "/v1/repos/public.recipes", alice.Token, nil), 403)
	wantStatus(t, g.call(t, "PUT", "/v1/repos/public.recipes", ed.Token, nil), 201)
	wantStatus(t, g.call(t, "PUT", "/v1/repos/elsewhere", ed.Token, nil), 404)

	cases := []struct {
		name, method, path, token string
		body                      any
		want                      int
	}{
		{"owner reads", "GET", "/v1/repos/user.alice.notes", alice.Token, nil, 200},
		{"other user cannot see", "GET", "/v1/repos/user.alice.notes", bob.Token, nil, 404},
		{"anonymous cannot see", "GET", "/v1/repos/user.alice.notes", "", nil, 404},
		{"other user cannot write either", "PUT", "/v1/repos/user.alice.notes/items/x", bob.Token, `{"schema":"any/1","data":{}}`, 404},
		{"anyone reads public", "GET", "/v1/repos/public.recipes", "", nil, 200},
		{"reader without role cannot write public", "PUT", "/v1/repos/public.recipes/items/x", alice.Token, `{"schema":"any/1","data":{}}`, 403},
		{"editor writes public", "PUT", "/v1/repos/public.recipes/items/x", ed.Token, `{"schema":"any/1","data":{"v":1}}`, 201},
		{"anonymous cannot write public", "PUT", "/v1/repos/public.recipes/items/y", "", `{"schema":"any/1","data":{}}`, 403},
		{"garbage token", "GET", "/v1/repos/public.recipes", "not-a-jwt", nil, 401},
		{"sessions need a token", "POST", "/v1/sessions", "", `{"publicKey":"kf1nlEH_mGk4w0hiHCkfU9xbBTwVP8Yk1lejywTpgj8","proof":"kVM5wpzQMwDAKAk6uqaa1W04VKdX67dPbeTrUdCCLzPS7qqT_GMal84ezXm64zwwiJdraBRMv7ReqPQ0p0_FCg","expires":1766392000000}`, 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := g.call(t, c.method, c.path, c.token, c.body)
			wantStatus(t, r, c.want)
			if c.want == 401 && r.Header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
		})
	}

	t.Run("ListShowsOnlyReadable", func(t *testing.T) {
		var list models.RepoList
		g.call(t, "GET", "/v1/repos", bob.Token, nil).json(t, &list)
		for _, r := range list.Repos {
			if r.Name == "user.alice.notes" {
				t.Fatal("bob sees alice's repository in the list")
			}
		}
	})
	t.Run("ExpiredToken", func(t *testing.T) {
		tok, err := g.Mint("alice", nil, time.Minute, time.Now().Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, g.call(t, "GET", "/v1/repos/user.alice.notes", tok, nil), http.StatusUnauthorized)
	})
	t.Run("CommitAuthorizedBySigningSessionOwner", func(t *testing.T) {
		// Alice may write her repository, but a commit signed by bob's
		// session is bob's, and bob may not write there.
		bobs := bob.CommitAt(1, "user.alice.notes", "k", map[string]any{})
		alices := alice.CommitAt(1, "user.alice.notes", "k2", map[string]any{})
		r := g.call(t, "POST", "/v1/repos/user.alice.notes/commits", alice.Token, goattest.PushBody(bobs, alices))
		wantStatus(t, r, 200)
		var res models.PushResponse
		r.json(t, &res)
		if res.Results[0].Status != "rejected" || *res.Results[0].ProblemType != models.ProblemTypeForbidden {
			t.Fatalf("bob's commit in alice's repo: %+v %v", res.Results[0], deref(res.Results[0].Reason))
		}
		if res.Results[1].Status != "accepted" {
			t.Fatalf("alice's own commit: %+v %v", res.Results[1], deref(res.Results[1].Reason))
		}
	})
	t.Run("SystemRepositoriesAreNotClientWritable", func(t *testing.T) {
		wantStatus(t, g.call(t, "PUT", "/v1/repos/sys.sessions/items/x", alice.Token, `{"schema":"any/1","data":{}}`), 403)
		wantStatus(t, g.call(t, "GET", "/v1/repos/sys.sessions", alice.Token, nil), 200)
	})
}

func TestAuth_SessionRevocation(t *testing.T) {
	g := startGateway(t, goattest.Config{})
	alice, bob := g.newAuthor(t, "alice"), g.newAuthor(t, "bob")
	wantStatus(t, g.call(t, "PUT", "/v1/repos/r", alice.Token, nil), 201)
	before := alice.CommitAt(1, "r", "k", map[string]any{"v": 1.0})
	alice.Push(t, before)

	wantStatus(t, g.call(t, "GET", "/v1/sessions/"+alice.ID, bob.Token, nil), 200)
	wantStatus(t, g.call(t, "DELETE", "/v1/sessions/"+alice.ID, bob.Token, nil), 404)
	wantStatus(t, g.call(t, "DELETE", "/v1/sessions/s_nosuchsession", alice.Token, nil), 404)
	r := g.call(t, "DELETE", "/v1/sessions/"+alice.ID, alice.Token, nil)
	wantStatus(t, r, 200)
	var s models.Session
	r.json(t, &s)
	if s.Revoked == nil {
		t.Fatal("revoked session has no revoked time")
	}

	after := alice.CommitAt(2, "r", "k", map[string]any{"v": 2.0}, before.ID)
	pr := g.call(t, "POST", "/v1/repos/r/commits", alice.Token, goattest.PushBody(after))
	var res models.PushResponse
	pr.json(t, &res)
	if res.Results[0].Status != "rejected" || *res.Results[0].ProblemType != models.ProblemTypeUnauthenticated {
		t.Fatalf("commit by a revoked session: %+v %s", res.Results[0], deref(res.Results[0].Reason))
	}
	wantStatus(t, g.call(t, "GET", "/v1/repos/r/commits/"+before.ID.String(), alice.Token, nil), 200)

	// A new session for the same owner works.
	alice2 := g.newAuthor(t, "alice")
	alice2.Push(t, alice2.CommitAt(3, "r", "k", map[string]any{"v": 3.0}, before.ID))
}

func TestEvents_TokenExpiryEndsStream(t *testing.T) {
	g := startGateway(t, goattest.Config{})
	alice := setupRepo(t, g)
	tok, err := g.Mint("alice", nil, 2*time.Second, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	sub := g.subscribe(t, tok, "repo=r")
	sub.waitReady(t)
	_ = alice
	ev := sub.next(t)
	if ev.Name != "expired" {
		t.Fatalf("got %s, want expired", ev.Name)
	}
	goattest.Recv(t, sub.closed, "the stream to close after the token expired")
}

// TestSessions_PublicRecords: the chain of trust is checkable from outside
// (issue 18): GET /v1/info publishes the root keys, any caller (anonymous
// included) reads a session record, its rootSig verifies against them, and
// a revocation carries a revokeSig that verifies too.
func TestSessions_PublicRecords(t *testing.T) {
	g := startGateway(t, goattest.Config{})
	alice := g.newAuthor(t, "alice", "editor")
	var info models.Info
	g.call(t, "GET", "/v1/info", "", nil).json(t, &info)
	roots, err := client.DecodeRootKeys(info.RootKeys)
	if err != nil {
		t.Fatal(err)
	}
	read := func(t *testing.T) core.SessionRecord {
		t.Helper()
		r := g.call(t, "GET", "/v1/sessions/"+alice.ID, "", nil)
		wantStatus(t, r, 200)
		rec, err := core.DecodeSessionRecord(r.body)
		if err != nil {
			t.Fatalf("decode %s: %v", r.body, err)
		}
		return rec
	}
	rec := read(t)
	if err := rec.VerifyRoot(roots); err != nil {
		t.Fatalf("record does not verify against rootKeys: %v", err)
	}
	if got, want := strings.Join(rec.Roles, ","), "editor"; got != want {
		t.Fatalf("roles=%q, want %q", got, want)
	}
	tampered := rec
	tampered.Owner = "mallory"
	if err := tampered.VerifyRoot(roots); !errors.Is(err, core.ErrBadSignature) {
		t.Fatalf("a record with another owner verifies: %v", err)
	}
	wantStatus(t, g.call(t, "GET", "/v1/sessions/"+alice.ID, "not-a-token", nil), 401)

	wantStatus(t, g.call(t, "DELETE", "/v1/sessions/"+alice.ID, alice.Token, nil), 200)
	rec = read(t)
	if rec.Revoked.IsZero() || !rec.RevocationValid(roots) {
		t.Fatalf("revoked record: revoked=%v, revokeSig valid=%v", rec.Revoked, rec.RevocationValid(roots))
	}
	moved := rec
	moved.Revoked = rec.Revoked.Add(time.Hour)
	if moved.RevocationValid(roots) {
		t.Fatal("revokeSig verifies for another revocation time")
	}
}
