package api

import (
	"net/http"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/gen/models"
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

func rulesNode(t *testing.T) *testNode {
	rules, err := auth.ParseRules([]byte(testRules))
	if err != nil {
		t.Fatal(err)
	}
	return startNode(t, func(c *testConfig) { c.Dev = false; c.Rules = rules })
}

func TestAuth_RuleBoundaries(t *testing.T) {
	n := rulesNode(t)
	alice, bob, ed := n.newClient("alice"), n.newClient("bob"), n.newClient("ed", "editor")

	wantStatus(t, n.call("PUT", "/v1/repos/user.alice.notes", alice.token, nil), 201)
	wantStatus(t, n.call("PUT", "/v1/repos/user.alice.notes", bob.token, nil), 404)
	wantStatus(t, n.call("PUT", "/v1/repos/public.recipes", alice.token, nil), 403)
	wantStatus(t, n.call("PUT", "/v1/repos/public.recipes", ed.token, nil), 201)
	wantStatus(t, n.call("PUT", "/v1/repos/elsewhere", ed.token, nil), 404)

	cases := []struct {
		name, method, path, token string
		body                      any
		want                      int
	}{
		{"owner reads", "GET", "/v1/repos/user.alice.notes", alice.token, nil, 200},
		{"other user cannot see", "GET", "/v1/repos/user.alice.notes", bob.token, nil, 404},
		{"anonymous cannot see", "GET", "/v1/repos/user.alice.notes", "", nil, 404},
		{"other user cannot write either", "PUT", "/v1/repos/user.alice.notes/items/x", bob.token, `{"schema":"any/1","data":{}}`, 404},
		{"anyone reads public", "GET", "/v1/repos/public.recipes", "", nil, 200},
		{"reader without role cannot write public", "PUT", "/v1/repos/public.recipes/items/x", alice.token, `{"schema":"any/1","data":{}}`, 403},
		{"editor writes public", "PUT", "/v1/repos/public.recipes/items/x", ed.token, `{"schema":"any/1","data":{"v":1}}`, 201},
		{"anonymous cannot write public", "PUT", "/v1/repos/public.recipes/items/y", "", `{"schema":"any/1","data":{}}`, 403},
		{"garbage token", "GET", "/v1/repos/public.recipes", "not-a-jwt", nil, 401},
		{"sessions need a token", "POST", "/v1/sessions", "", `{"publicKey":"kf1nlEH_mGk4w0hiHCkfU9xbBTwVP8Yk1lejywTpgj8","proof":"kVM5wpzQMwDAKAk6uqaa1W04VKdX67dPbeTrUdCCLzPS7qqT_GMal84ezXm64zwwiJdraBRMv7ReqPQ0p0_FCg","expires":1766392000000}`, 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := n.call(c.method, c.path, c.token, c.body)
			wantStatus(t, r, c.want)
			if c.want == 401 && r.Header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
		})
	}

	t.Run("ListShowsOnlyReadable", func(t *testing.T) {
		var list models.RepoList
		n.call("GET", "/v1/repos", bob.token, nil).json(t, &list)
		for _, r := range list.Repos {
			if r.Name == "user.alice.notes" {
				t.Fatal("bob sees alice's repository in the list")
			}
		}
	})
	t.Run("ExpiredToken", func(t *testing.T) {
		tok, err := n.node.DevIssuer().Mint("alice", nil, time.Minute, time.Now().Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, n.call("GET", "/v1/repos/user.alice.notes", tok, nil), http.StatusUnauthorized)
	})
	t.Run("CommitAuthorizedBySigningSessionOwner", func(t *testing.T) {
		// Alice may write her repository, but a commit signed by bob's
		// session is bob's, and bob may not write there.
		bobs := bob.commit(t, "user.alice.notes", "k", 1, map[string]any{})
		alices := alice.commit(t, "user.alice.notes", "k2", 1, map[string]any{})
		r := n.call("POST", "/v1/repos/user.alice.notes/commits", alice.token, commitsBody(bobs, alices))
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
		wantStatus(t, n.call("PUT", "/v1/repos/sys.sessions/items/x", alice.token, `{"schema":"any/1","data":{}}`), 403)
		wantStatus(t, n.call("GET", "/v1/repos/sys.sessions", alice.token, nil), 200)
	})
}

func TestAuth_SessionRevocation(t *testing.T) {
	n := startNode(t, nil)
	alice, bob := n.newClient("alice"), n.newClient("bob")
	wantStatus(t, n.call("PUT", "/v1/repos/r", alice.token, nil), 201)
	before := alice.commit(t, "r", "k", 1, map[string]any{"v": 1.0})
	push(t, n, alice, "r", before)

	wantStatus(t, n.call("GET", "/v1/sessions/"+alice.id, bob.token, nil), 200)
	wantStatus(t, n.call("DELETE", "/v1/sessions/"+alice.id, bob.token, nil), 404)
	wantStatus(t, n.call("DELETE", "/v1/sessions/s_nosuchsession", alice.token, nil), 404)
	r := n.call("DELETE", "/v1/sessions/"+alice.id, alice.token, nil)
	wantStatus(t, r, 200)
	var s models.Session
	r.json(t, &s)
	if s.Revoked == nil {
		t.Fatal("revoked session has no revoked time")
	}

	after := alice.commit(t, "r", "k", 2, map[string]any{"v": 2.0}, before.ID)
	pr := n.call("POST", "/v1/repos/r/commits", alice.token, commitsBody(after))
	var res models.PushResponse
	pr.json(t, &res)
	if res.Results[0].Status != "rejected" || *res.Results[0].ProblemType != models.ProblemTypeUnauthenticated {
		t.Fatalf("commit by a revoked session: %+v %s", res.Results[0], deref(res.Results[0].Reason))
	}
	wantStatus(t, n.call("GET", "/v1/repos/r/commits/"+before.ID.String(), alice.token, nil), 200)

	// A new session for the same owner works.
	alice2 := n.newClient("alice")
	push(t, n, alice2, "r", alice2.commit(t, "r", "k", 3, map[string]any{"v": 3.0}, before.ID))
}

func TestEvents_TokenExpiryEndsStream(t *testing.T) {
	n := startNode(t, nil)
	alice := setupRepo(t, n)
	tok, err := n.node.DevIssuer().Mint("alice", nil, 2*time.Second, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	sub := n.subscribe(t, tok, "repo=r")
	sub.waitReady(t)
	_ = alice
	ev := sub.next(t)
	if ev.Name != "expired" {
		t.Fatalf("got %s, want expired", ev.Name)
	}
	select {
	case <-sub.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("stream stayed open after the token expired")
	}
}
