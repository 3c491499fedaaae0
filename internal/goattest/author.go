package goattest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/client"
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
// once registered with a gateway, pushes them there through the Go client
// of the API (client.Client).
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
	return &Author{Sub: sub, ID: core.SessionID(priv.Public().(ed25519.PublicKey)), Key: priv}
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
	body, err := client.SessionBody(a.Key, auth.DevAudience, a.Sub, time.Now().Add(time.Hour))
	if err != nil {
		tb.Fatal(err)
	}
	if _, _, err := a.client().CreateSession(context.Background(), body); err != nil {
		tb.Fatalf("register session of %s: %v", a.Sub, err)
	}
}

// client returns the API client a pushes with.
func (a *Author) client() *client.Client {
	tok := a.Token
	c, err := client.New(a.URL, client.Options{HTTPClient: httpClient, Token: func(context.Context) (string, error) { return tok, nil }})
	if err != nil {
		panic(fmt.Sprintf("goattest: client of %q: %v", a.URL, err))
	}
	return c
}

// At returns a copy of a that pushes to another node of the same
// deployment (its session is replicated there).
func (a *Author) At(url string) *Author {
	b := *a
	b.URL = url
	return &b
}

// SessionBody is a POST /v1/sessions body registering key for sub with the
// dev audience, valid for an hour, for tests that send it by hand.
func SessionBody(tb testing.TB, key ed25519.PrivateKey, sub string) []byte {
	tb.Helper()
	body, err := client.SessionBody(key, auth.DevAudience, sub, time.Now().Add(time.Hour))
	if err != nil {
		tb.Fatal(err)
	}
	b, err := json.Marshal(body)
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
// their canonical encoding, for tests that send it by hand.
func PushBody(commits ...*core.Commit) []byte {
	var b bytes.Buffer
	b.WriteString(`{"commits":[`)
	for i, raw := range encode(commits) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(raw)
	}
	b.WriteString("]}")
	return b.Bytes()
}

func encode(commits []*core.Commit) [][]byte {
	raws := make([][]byte, len(commits))
	for i, c := range commits {
		j, err := c.MarshalJSON()
		if err != nil {
			panic(fmt.Sprintf("goattest: encode commit %s: %v", c.ID, err))
		}
		raws[i] = j
	}
	return raws
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
// that may fail: the error is a failed request, an error answer, or a
// rejected commit (wrapping ErrRejected and the rejection's core
// sentinel, with the verdicts).
func (a *Author) TryPush(ctx context.Context, commits ...*core.Commit) ([]gsync.PushResult, error) {
	if len(commits) == 0 {
		return nil, nil
	}
	repo := commits[0].Repo
	res, err := a.client().PushCommits(ctx, repo, encode(commits))
	if err != nil {
		return nil, fmt.Errorf("push: %w", err)
	}
	for _, r := range res {
		if r.Status != gsync.StatusAccepted && r.Status != gsync.StatusDuplicate {
			return res, fmt.Errorf("push: %w: %w", ErrRejected, client.RejectedError(repo, r))
		}
	}
	return res, nil
}

// CreateRepo creates repo on a's gateway; an existing repository is fine.
func (a *Author) CreateRepo(tb testing.TB, repo string) {
	tb.Helper()
	if _, _, err := a.client().CreateRepo(context.Background(), repo); err != nil {
		tb.Fatalf("create repository %s: %v", repo, err)
	}
}
