package api_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
)

// A push body in canonical form takes the fast path (decoded from its
// bytes, stored as received); the same commits in a body with white space
// take the general one (parsed, validated against openapi.yaml, decoded
// from values). Two gateways with the same session get one each: the
// answers and the stored commits must be the same, rejections included.
func TestServer_PushCommitsCanonicalBodyAsGeneral(t *testing.T) {
	fast, general := startGateway(t, goattest.Config{}), startGateway(t, goattest.Config{})
	a := fast.newAuthor(t, "alice")
	wantStatus(t, general.call(t, "POST", "/v1/sessions", general.Token("alice"), goattest.SessionBody(t, a.Key, "alice")), http.StatusCreated)
	for _, g := range []*gateway{fast, general} {
		wantStatus(t, g.call(t, "PUT", "/v1/repos/user.alice.notes", g.Token("alice"), nil), http.StatusCreated)
	}

	const repo = "user.alice.notes"
	c1 := a.Commit(repo, "k1", map[string]any{"title": "<b>milk</b> & eggs", "n": 1.5, "tags": []any{"a"}})
	c2 := a.Commit(repo, "k1", map[string]any{"title": "bread"}, c1.ID)
	forged := a.Commit(repo, "k2", map[string]any{"v": 1.0})
	_, other, _ := ed25519.GenerateKey(nil)
	forged.Sig = ed25519.Sign(other, forged.ID[:])
	var missing core.CommitID
	missing[0] = 7
	orphan := a.Commit(repo, "k3", map[string]any{"v": 1.0}, missing)
	elsewhere := a.Commit("user.alice.other", "k4", map[string]any{"v": 1.0})
	batch := []*core.Commit{c1, c2, forged, orphan, c1, elsewhere}

	canonical := goattest.PushBody(batch...)
	var spaced bytes.Buffer
	if err := json.Indent(&spaced, canonical, "", "  "); err != nil {
		t.Fatal(err)
	}
	answers := map[*gateway][]byte{}
	for g, body := range map[*gateway][]byte{fast: canonical, general: spaced.Bytes()} {
		r := g.call(t, "POST", "/v1/repos/"+repo+"/commits", g.Token("alice"), body)
		wantStatus(t, r, http.StatusOK)
		answers[g] = r.body
	}
	if !bytes.Equal(answers[fast], answers[general]) {
		t.Fatalf("canonical body answered\n%s\nthe same commits with white space\n%s", answers[fast], answers[general])
	}
	var res struct{ Results []struct{ Status string } }
	if err := json.Unmarshal(answers[fast], &res); err != nil {
		t.Fatal(err)
	}
	want := []string{"accepted", "accepted", "rejected", "rejected", "duplicate", "rejected"}
	for i, r := range res.Results {
		if r.Status != want[i] {
			t.Fatalf("result %d is %s, want %s: %s", i, r.Status, want[i], answers[fast])
		}
	}
	for _, c := range []*core.Commit{c1, c2} {
		enc, _ := c.MarshalJSON()
		for _, g := range []*gateway{fast, general} {
			r := g.call(t, "GET", "/v1/repos/"+repo+"/commits/"+c.ID.String(), g.Token("alice"), nil)
			wantStatus(t, r, http.StatusOK)
			if !bytes.Equal(bytes.TrimSpace(r.body), enc) {
				t.Fatalf("stored %s, want %s", r.body, enc)
			}
		}
	}
}
