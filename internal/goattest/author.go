package goattest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

// Endpoint is a gateway as an author sees it: a base URL and dev tokens.
// *Gateway is one; a test of built binaries or of several nodes adapts its
// own.
type Endpoint interface {
	URL() string
	Token(sub string, roles ...string) string
}

// Author is a writer with an Ed25519 session key: it signs commits and,
// once registered with a gateway, pushes them there.
type Author struct {
	Sub   string             // the token subject owning the session
	ID    string             // the session id, the commits' author
	Key   ed25519.PrivateKey // the session key
	Token string             // bearer token for Sub; "" until registered
	URL   string             // base URL of the gateway registered with
}

// httpClient bounds every request of the harness, so that a request a
// gateway holds fails the test instead of hanging it.
var httpClient = &http.Client{Timeout: 30 * time.Second}

// NewSigner returns an author whose key is registered nowhere: for peers
// that do not check signatures against sessions (replicas, in-memory
// sets).
func NewSigner(sub string) *Author {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		panic(err)
	}
	return &Author{Sub: sub, ID: auth.SessionID(priv.Public().(ed25519.PublicKey)), Key: priv}
}

// NewAuthor returns an author for sub whose session key is registered
// with ep (POST /v1/sessions with a token of ep for sub).
func NewAuthor(tb testing.TB, ep Endpoint, sub string) *Author {
	tb.Helper()
	a := NewSigner(sub)
	a.Register(tb, ep)
	return a
}

// Register registers a's session key with ep, which a then pushes to.
func (a *Author) Register(tb testing.TB, ep Endpoint) {
	tb.Helper()
	a.Token, a.URL = ep.Token(a.Sub), ep.URL()
	status, body, err := do(context.Background(), "POST", a.URL+"/v1/sessions", a.Token, SessionBody(tb, a.Key, a.Sub))
	if err != nil {
		tb.Fatalf("register session of %s: %v", a.Sub, err)
	}
	if status != http.StatusCreated && status != http.StatusOK {
		tb.Fatalf("register session of %s: status %d: %s", a.Sub, status, body)
	}
}

// At returns a copy of a that pushes to another node of the same
// deployment (its session is replicated there).
func (a *Author) At(url string) *Author {
	b := *a
	b.URL = url
	return &b
}

// SessionBody is a POST /v1/sessions body registering key for sub with the
// dev audience, valid for an hour.
func SessionBody(tb testing.TB, key ed25519.PrivateKey, sub string) []byte {
	tb.Helper()
	expires := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	sr, err := auth.NewSessionRequest(key, auth.DevAudience, sub, expires)
	if err != nil {
		tb.Fatal(err)
	}
	b, err := json.Marshal(map[string]any{"publicKey": sr.PublicKey, "proof": sr.Proof, "expires": expires.UnixMilli()})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// Commit returns a commit by a of repo/key with full data (schema any/1),
// timestamped now and signed. Parents are sorted, as the wire requires.
func (a *Author) Commit(repo, key string, data map[string]any, parents ...core.CommitID) *core.Commit {
	return a.CommitAt(time.Now().UnixMilli(), repo, key, data, parents...)
}

// CommitAt is Commit with a given timestamp (unix milliseconds).
func (a *Author) CommitAt(ts int64, repo, key string, data map[string]any, parents ...core.CommitID) *core.Commit {
	return a.Sign(&core.Commit{Repo: repo, Key: key, Parents: parents, TS: ts, Schema: core.AnySchema, Data: data})
}

// Sign makes a the author of c, sorts its parents, and seals and signs it.
// A key that cannot sign is a broken test: Sign panics then.
func (a *Author) Sign(c *core.Commit) *core.Commit {
	c.Parents = slices.Clone(c.Parents)
	slices.SortFunc(c.Parents, core.CommitID.Compare)
	c.Author = a.ID
	if err := c.Sign(a.Key); err != nil {
		panic(fmt.Sprintf("goattest: sign commit: %v", err))
	}
	return c
}

// PushBody is a POST /v1/repos/{repo}/commits body carrying commits in
// their canonical encoding.
func PushBody(commits ...*core.Commit) []byte {
	var b bytes.Buffer
	b.WriteString(`{"commits":[`)
	for i, c := range commits {
		if i > 0 {
			b.WriteByte(',')
		}
		j, err := c.MarshalJSON()
		if err != nil {
			panic(fmt.Sprintf("goattest: encode commit %s: %v", c.ID, err))
		}
		b.Write(j)
	}
	b.WriteString("]}")
	return b.Bytes()
}

// ErrRejected is what TryPush wraps when the gateway rejected a commit.
var ErrRejected = errors.New("commit rejected")

// Push sends commits (of one repository) to a's gateway and fails tb
// unless every one is acknowledged (accepted or duplicate). It returns
// the verdicts.
func (a *Author) Push(tb testing.TB, commits ...*core.Commit) []gsync.PushResult {
	tb.Helper()
	res, err := a.TryPush(context.Background(), commits...)
	if err != nil {
		tb.Fatal(err)
	}
	return res
}

// TryPush is Push for goroutines other than the test's and for pushes
// that may fail: the error is a failed request, a status other than 200,
// or a rejected commit (wrapping ErrRejected, with the verdicts).
func (a *Author) TryPush(ctx context.Context, commits ...*core.Commit) ([]gsync.PushResult, error) {
	if len(commits) == 0 {
		return nil, nil
	}
	status, body, err := do(ctx, "POST", a.URL+"/v1/repos/"+commits[0].Repo+"/commits", a.Token, PushBody(commits...))
	if err != nil {
		return nil, fmt.Errorf("push: %w", err)
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("push: status %d: %s", status, body)
	}
	var out struct {
		Results []gsync.PushResult `json:"results"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("push: %w", err)
	}
	if got, want := len(out.Results), len(commits); got != want {
		return out.Results, fmt.Errorf("push: %d verdicts for %d commits", got, want)
	}
	for _, r := range out.Results {
		if r.Status != gsync.StatusAccepted && r.Status != gsync.StatusDuplicate {
			return out.Results, fmt.Errorf("push: %w: %s %s: %s", ErrRejected, r.ID, r.Status, r.Reason)
		}
	}
	return out.Results, nil
}

// CreateRepo creates repo on a's gateway (PUT /v1/repos/{repo}); an
// existing repository is fine.
func (a *Author) CreateRepo(tb testing.TB, repo string) {
	tb.Helper()
	status, body, err := do(context.Background(), "PUT", a.URL+"/v1/repos/"+repo, a.Token, nil)
	if err != nil {
		tb.Fatalf("create repository %s: %v", repo, err)
	}
	if status != http.StatusOK && status != http.StatusCreated {
		tb.Fatalf("create repository %s: status %d: %s", repo, status, body)
	}
}

// do sends one request with a bearer token and returns status and body.
func do(ctx context.Context, method, url, token string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}
