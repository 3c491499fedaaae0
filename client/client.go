// Package client is the one Go client of goat-gateway's HTTP API
// (openapi.yaml). The Go SDK, node-to-node reconciliation (cluster), the
// benchmark and the reliability tools all talk to a gateway through it.
//
// Requests are built by the generated client (gen/apiclient: paths,
// parameters and headers from the spec); this package adds the bearer
// token, a per-request timeout, a bound on response bodies, and the
// mapping of errors. Guarantees:
//
//   - Commits in responses (log pages, sync rounds, history, single
//     commits) are returned as the raw bytes the gateway sent, the
//     commits' canonical JSON: they are never decoded into generated
//     models and re-encoded. Pushed commits are sent as given.
//   - Every error answer is a *ProblemError that errors.Is matches against
//     the core sentinel its problem type stands for (one table,
//     problemSentinels, held to the spec's ProblemType enum by a test), or,
//     for a body that is not a problem, the sentinel of its status.
//   - Every failure to reach the gateway wraps ErrOffline; a cancelled
//     caller's context is returned as the context's error instead.
//   - *Client implements gsync.Transport, so gsync.Driver clones and
//     heals over it; a sync round's body is parsed once, by
//     gsync.DecodeResponse, results included.
//
// A client imports only the generated models and client, sync and core:
// no HTTP server framework, OpenAPI validator, JWT or YAML library.
package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/gen/apiclient"
	"github.com/goat-gateway/goat-gateway/gen/models"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

// DefaultMaxResponseBytes bounds a response body read into memory: a sync
// response carries at most 4 MiB of commits plus a filter of at most
// 11.2 MB of base64.
const DefaultMaxResponseBytes = 32 << 20

// maxErrorBytes bounds the body of an error answer to an event stream.
const maxErrorBytes = 64 << 10

// Options configures a Client; the zero value is usable.
type Options struct {
	// HTTPClient sends every request; nil means http.DefaultClient. To
	// open event streams it must have no Timeout (a stream is one long
	// response); Timeout below bounds every other request.
	HTTPClient *http.Client
	// Token returns the bearer token of a request; nil, or an empty
	// token, sends none.
	Token func(context.Context) (string, error)
	// Timeout bounds each request but event streams, from sending to the
	// end of the body; zero means none.
	Timeout time.Duration
	// MaxResponseBytes bounds a response body; zero means
	// DefaultMaxResponseBytes. A larger body is an error wrapping
	// core.ErrTooLarge.
	MaxResponseBytes int64
}

// Client talks to one gateway. Its methods are safe for concurrent use.
type Client struct {
	gc   *apiclient.Client
	hc   *http.Client
	opts Options
}

var _ gsync.Transport = (*Client)(nil)

// New returns a client of the gateway at baseURL ("https://sync.example.com",
// a path prefix allowed).
func New(baseURL string, opts Options) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: gateway URL %q is not an http(s) URL", core.ErrInvalid, baseURL)
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = http.DefaultClient
	}
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = DefaultMaxResponseBytes
	}
	gc, err := apiclient.NewClient(baseURL, apiclient.WithHTTPClient(opts.HTTPClient))
	if err != nil {
		return nil, fmt.Errorf("%w: gateway URL: %v", core.ErrInvalid, err)
	}
	return &Client{gc: gc, hc: opts.HTTPClient, opts: opts}, nil
}

// reply is a 2xx answer read whole.
type reply struct {
	status int
	body   []byte
}

type sendFunc func(ctx context.Context, edit apiclient.RequestEditorFn) (*http.Response, error)

// authEditor returns a request editor setting the bearer token.
func (c *Client) authEditor(ctx context.Context) (apiclient.RequestEditorFn, error) {
	tok := ""
	if c.opts.Token != nil {
		var err error
		if tok, err = c.opts.Token(ctx); err != nil {
			return nil, fmt.Errorf("token: %w", err)
		}
	}
	return func(_ context.Context, req *http.Request) error {
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		return nil
	}, nil
}

// NetError classifies a failure to talk to the gateway, for callers that
// read a response themselves (an event stream): the cancellation of ctx,
// the caller's own, stays a context error; anything else means the gateway
// is unreachable and wraps ErrOffline.
func NetError(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return fmt.Errorf("%w: %v", ErrOffline, err)
}

// do sends one request within the request timeout and returns a 2xx
// answer, or the mapped error wrapped with op.
func (c *Client) do(ctx context.Context, op string, send sendFunc) (reply, error) {
	r, err := c.roundTrip(ctx, send)
	if err != nil {
		return reply{}, fmt.Errorf("%s: %w", op, err)
	}
	return r, nil
}

func (c *Client) roundTrip(ctx context.Context, send sendFunc) (reply, error) {
	return c.roundTripWithin(ctx, c.opts.Timeout, send)
}

// roundTripWithin is roundTrip with a timeout of its own (zero: none).
func (c *Client) roundTripWithin(ctx context.Context, timeout time.Duration, send sendFunc) (reply, error) {
	edit, err := c.authEditor(ctx)
	if err != nil {
		return reply{}, err
	}
	rctx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	resp, err := send(rctx, edit)
	if err != nil {
		return reply{}, NetError(ctx, err)
	}
	defer resp.Body.Close()
	limit := c.opts.MaxResponseBytes
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return reply{}, NetError(ctx, err)
	}
	if int64(len(body)) > limit {
		return reply{}, fmt.Errorf("%w: response over %d bytes", core.ErrTooLarge, limit)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return reply{}, problemFrom(resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	return reply{status: resp.StatusCode, body: body}, nil
}

// decode unmarshals a 2xx body; a body that does not decode is the
// gateway's fault, reported as core.ErrInvalid.
func decode(op string, r reply, v any) error {
	if err := json.Unmarshal(r.body, v); err != nil {
		return fmt.Errorf("%s: %w: response: %v", op, core.ErrInvalid, err)
	}
	return nil
}

// quoted is an If-Match value for a head commit id; "" sends none.
func quoted(head string) *string {
	if head == "" {
		return nil
	}
	s := `"` + head + `"`
	return &s
}

// limitOf is a limit parameter; zero or less sends none (the server's
// default).
func limitOf(limit int) *int32 {
	if limit <= 0 {
		return nil
	}
	l := int32(min(limit, 1<<31-1))
	return &l
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Info returns the node's description (GET /v1/info).
func (c *Client) Info(ctx context.Context) (*models.Info, error) {
	const op = "info"
	r, err := c.do(ctx, op, func(ctx context.Context, e apiclient.RequestEditorFn) (*http.Response, error) {
		return c.gc.GetInfo(ctx, e)
	})
	if err != nil {
		return nil, err
	}
	var info models.Info
	return &info, decode(op, r, &info)
}

// Ready returns nil when the node is ready to serve (GET /readyz answers
// 200); a node that is not answers 503, an error.
func (c *Client) Ready(ctx context.Context) error {
	_, err := c.do(ctx, "readyz", func(ctx context.Context, e apiclient.RequestEditorFn) (*http.Response, error) {
		return c.gc.GetReadyz(ctx, e)
	})
	return err
}

// Metrics returns the node's metrics in the Prometheus text format (GET
// /metrics), as they were read: for operators' scripts and benchmarks.
func (c *Client) Metrics(ctx context.Context) ([]byte, error) {
	r, err := c.do(ctx, "metrics", func(ctx context.Context, e apiclient.RequestEditorFn) (*http.Response, error) {
		return c.gc.GetMetrics(ctx, e)
	})
	return r.body, err
}

// SessionBody builds the body of POST /v1/sessions for priv's public key:
// the proof (core.NewSessionRequest) that owner, the sub of the token that
// sends it, holds the key, for the deployment named audience (Info's
// Audience).
func SessionBody(priv ed25519.PrivateKey, audience, owner string, expires time.Time) (models.SessionRequest, error) {
	expires = expires.Truncate(time.Millisecond)
	sr, err := core.NewSessionRequest(priv, audience, owner, expires)
	if err != nil {
		return models.SessionRequest{}, err
	}
	return models.SessionRequest{PublicKey: sr.PublicKey, Proof: sr.Proof, Expires: expires.UnixMilli()}, nil
}

// CreateSession registers a session key (POST /v1/sessions). created is
// false when the key was already registered to the same owner.
func (c *Client) CreateSession(ctx context.Context, body models.SessionRequest) (s *models.Session, created bool, err error) {
	const op = "register session"
	r, err := c.do(ctx, op, func(ctx context.Context, e apiclient.RequestEditorFn) (*http.Response, error) {
		return c.gc.CreateSession(ctx, body, e)
	})
	if err != nil {
		return nil, false, err
	}
	s = new(models.Session)
	return s, r.status == http.StatusCreated, decode(op, r, s)
}

// GetSession returns a registered session (GET /v1/sessions/{id}).
func (c *Client) GetSession(ctx context.Context, id string) (*models.Session, error) {
	op := fmt.Sprintf("session %s", id)
	r, err := c.do(ctx, op, func(ctx context.Context, e apiclient.RequestEditorFn) (*http.Response, error) {
		return c.gc.GetSession(ctx, id, e)
	})
	if err != nil {
		return nil, err
	}
	var s models.Session
	return &s, decode(op, r, &s)
}

// SessionRecord returns the record of session id (GET /v1/sessions/{id},
// which any caller may read) decoded strictly, and its JSON as the
// gateway sent it. It does not verify the record (core.SessionRecord's
// VerifyRoot does, against RootKeys).
func (c *Client) SessionRecord(ctx context.Context, id string) (core.SessionRecord, json.RawMessage, error) {
	op := fmt.Sprintf("session %s", id)
	r, err := c.do(ctx, op, func(ctx context.Context, e apiclient.RequestEditorFn) (*http.Response, error) {
		return c.gc.GetSession(ctx, id, e)
	})
	if err != nil {
		return core.SessionRecord{}, nil, err
	}
	rec, err := core.DecodeSessionRecord(r.body)
	if err != nil {
		return core.SessionRecord{}, nil, fmt.Errorf("%s: %w", op, err)
	}
	if rec.ID != id {
		return core.SessionRecord{}, nil, fmt.Errorf("%s: %w: the gateway answered the record of %s", op, core.ErrInvalid, rec.ID)
	}
	return rec, json.RawMessage(r.body), nil
}

// RootKeys returns the gateway's root public keys (GET /v1/info rootKeys),
// which sign session records.
func (c *Client) RootKeys(ctx context.Context) ([]ed25519.PublicKey, error) {
	info, err := c.Info(ctx)
	if err != nil {
		return nil, err
	}
	return DecodeRootKeys(info.RootKeys)
}

// DecodeRootKeys decodes rootKeys of GET /v1/info.
func DecodeRootKeys(keys []string) ([]ed25519.PublicKey, error) {
	out := make([]ed25519.PublicKey, 0, len(keys))
	for _, k := range keys {
		b, err := base64.RawURLEncoding.Strict().DecodeString(k)
		if err != nil || len(b) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: rootKeys: %q is not a 32-byte unpadded base64url key", core.ErrInvalid, k)
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: the gateway publishes no rootKeys", core.ErrInvalid)
	}
	return out, nil
}

// ListRepos returns one page of the repositories the caller may read,
// by name after after ("" for the first page), at most limit (zero: the
// server's default), with names starting with prefix ("" for all).
func (c *Client) ListRepos(ctx context.Context, prefix, after string, limit int) (*models.RepoList, error) {
	const op = "list repositories"
	params := &models.ListReposParams{Prefix: optional(prefix), After: optional(after), Limit: limitOf(limit)}
	r, err := c.do(ctx, op, func(ctx context.Context, e apiclient.RequestEditorFn) (*http.Response, error) {
		return c.gc.ListRepos(ctx, params, e)
	})
	if err != nil {
		return nil, err
	}
	var list models.RepoList
	return &list, decode(op, r, &list)
}

// CreateRepo creates a repository (PUT /v1/repos/{repo}, idempotent).
// created is false when it existed already.
func (c *Client) CreateRepo(ctx context.Context, repo string) (info *models.RepoInfo, created bool, err error) {
	op := fmt.Sprintf("create repository %q", repo)
	r, err := c.do(ctx, op, func(ctx context.Context, e apiclient.RequestEditorFn) (*http.Response, error) {
		return c.gc.CreateRepo(ctx, repo, e)
	})
	if err != nil {
		return nil, false, err
	}
	info = new(models.RepoInfo)
	return info, r.status == http.StatusCreated, decode(op, r, info)
}

// DeleteRepo deletes a repository (DELETE /v1/repos/{repo}; role admin):
// core.ErrForbidden for a caller who may read it without the role,
// core.ErrNotFound for one who may not read it or a repository that does
// not exist.
func (c *Client) DeleteRepo(ctx context.Context, repo string) error {
	_, err := c.do(ctx, fmt.Sprintf("delete repository %q", repo), func(ctx context.Context, e apiclient.RequestEditorFn) (*http.Response, error) {
		return c.gc.DeleteRepo(ctx, repo, e)
	})
	return err
}

// GetRepo returns a repository's count, digest and log cursor.
func (c *Client) GetRepo(ctx context.Context, repo string) (*models.RepoInfo, error) {
	op := fmt.Sprintf("repository %q", repo)
	r, err := c.do(ctx, op, func(ctx context.Context, e apiclient.RequestEditorFn) (*http.Response, error) {
		return c.gc.GetRepo(ctx, repo, e)
	})
	if err != nil {
		return nil, err
	}
	var info models.RepoInfo
	return &info, decode(op, r, &info)
}

// GetItem returns an item's current value.
func (c *Client) GetItem(ctx context.Context, repo, key string) (*models.Item, error) {
	op := fmt.Sprintf("get item %s of %q", key, repo)
	r, err := c.do(ctx, op, func(ctx context.Context, e apiclient.RequestEditorFn) (*http.Response, error) {
		return c.gc.GetItem(ctx, repo, key, nil, e)
	})
	if err != nil {
		return nil, err
	}
	var it models.Item
	return &it, decode(op, r, &it)
}

// PutItem writes a full value as a commit the gateway signs for the
// caller. ifMatch, a head commit id ("" for none), says which version the
// value edits; the gateway merges it with anything newer.
func (c *Client) PutItem(ctx context.Context, repo, key string, w models.ItemWrite, ifMatch string) (*models.Item, error) {
	op := fmt.Sprintf("put item %s of %q", key, repo)
	params := &models.PutItemParams{IfMatch: quoted(ifMatch)}
	r, err := c.do(ctx, op, func(ctx context.Context, e apiclient.RequestEditorFn) (*http.Response, error) {
		return c.gc.PutItem(ctx, repo, key, params, w, e)
	})
	if err != nil {
		return nil, err
	}
	var it models.Item
	return &it, decode(op, r, &it)
}

// PatchItem applies a JSON merge patch (RFC 7396) to an item; ifMatch as
// for PutItem.
func (c *Client) PatchItem(ctx context.Context, repo, key string, patch models.MergePatch, ifMatch string) (*models.Item, error) {
	op := fmt.Sprintf("patch item %s of %q", key, repo)
	params := &models.PatchItemParams{IfMatch: quoted(ifMatch)}
	r, err := c.do(ctx, op, func(ctx context.Context, e apiclient.RequestEditorFn) (*http.Response, error) {
		return c.gc.PatchItemWithApplicationMergePatchPlusJSONBody(ctx, repo, key, params, patch, e)
	})
	if err != nil {
		return nil, err
	}
	var it models.Item
	return &it, decode(op, r, &it)
}

// DeleteItem writes a tombstone and returns the tombstoned item; ifMatch
// as for PutItem.
func (c *Client) DeleteItem(ctx context.Context, repo, key, ifMatch string) (*models.Item, error) {
	op := fmt.Sprintf("delete item %s of %q", key, repo)
	params := &models.DeleteItemParams{IfMatch: quoted(ifMatch)}
	r, err := c.do(ctx, op, func(ctx context.Context, e apiclient.RequestEditorFn) (*http.Response, error) {
		return c.gc.DeleteItem(ctx, repo, key, params, e)
	})
	if err != nil {
		return nil, err
	}
	var it models.Item
	return &it, decode(op, r, &it)
}

// ListItems returns one page of a repository's current items.
func (c *Client) ListItems(ctx context.Context, repo string, params models.ListItemsParams) (*models.ItemPage, error) {
	op := fmt.Sprintf("list items of %q", repo)
	r, err := c.do(ctx, op, func(ctx context.Context, e apiclient.RequestEditorFn) (*http.Response, error) {
		return c.gc.ListItems(ctx, repo, &params, e)
	})
	if err != nil {
		return nil, err
	}
	var page models.ItemPage
	return &page, decode(op, r, &page)
}

// HistoryPage is one page of an item's commits, newest first, as the
// gateway sent them.
type HistoryPage struct {
	Commits []json.RawMessage `json:"commits"`
	// Next is the before of the next page; "" after the last.
	Next string `json:"next"`
}

// ItemHistory returns one page of an item's commits, newest first, those
// before the commit before ("" for the newest), at most limit (zero: the
// server's default).
func (c *Client) ItemHistory(ctx context.Context, repo, key, before string, limit int) (*HistoryPage, error) {
	op := fmt.Sprintf("history of item %s of %q", key, repo)
	params := &models.GetItemHistoryParams{Before: optional(before), Limit: limitOf(limit)}
	r, err := c.do(ctx, op, func(ctx context.Context, e apiclient.RequestEditorFn) (*http.Response, error) {
		return c.gc.GetItemHistory(ctx, repo, key, params, e)
	})
	if err != nil {
		return nil, err
	}
	var page HistoryPage
	return &page, decode(op, r, &page)
}

// GetCommit returns one commit as the gateway stores it: its canonical
// JSON, byte for byte.
func (c *Client) GetCommit(ctx context.Context, repo, id string) (json.RawMessage, error) {
	r, err := c.do(ctx, fmt.Sprintf("get commit %s of %q", id, repo), func(ctx context.Context, e apiclient.RequestEditorFn) (*http.Response, error) {
		return c.gc.GetCommit(ctx, repo, id, nil, e)
	})
	if err != nil {
		return nil, err
	}
	return r.body, nil
}

// PushCommits sends commits, each its canonical JSON, parents first (POST
// /v1/repos/{repo}/commits), and returns the gateway's verdict on each, in
// order. A rejected commit is a result, not an error (see RejectedError).
func (c *Client) PushCommits(ctx context.Context, repo string, commits [][]byte) ([]gsync.PushResult, error) {
	op := fmt.Sprintf("push to %q", repo)
	n := len(`{"commits":[]}`)
	for _, raw := range commits {
		n += len(raw) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, `{"commits":[`...)
	for i, raw := range commits {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, raw...)
	}
	b = append(b, `]}`...)
	r, err := c.do(ctx, op, func(ctx context.Context, e apiclient.RequestEditorFn) (*http.Response, error) {
		return c.gc.PushCommitsWithBody(ctx, repo, "application/json", bytes.NewReader(b), e)
	})
	if err != nil {
		return nil, err
	}
	var resp struct {
		Results []gsync.PushResult `json:"results"`
	}
	if results, ok := splitPushResults(r.body, len(commits)); ok {
		resp.Results = results
	} else if err := decode(op, r, &resp); err != nil {
		return nil, err
	}
	if len(resp.Results) != len(commits) {
		return nil, fmt.Errorf("%s: %w: %d results for %d commits", op, core.ErrInvalid, len(resp.Results), len(commits))
	}
	return resp.Results, nil
}

// Log returns a page of repo's log after cursor ("" for the start), at
// most limit commits (zero: the server's default). It implements
// gsync.Transport: a cursor the node cannot serve is an error wrapping
// core.ErrMustReconcile. The page's commits are slices of one buffer, the
// response: keeping one of them keeps the page.
func (c *Client) Log(ctx context.Context, repo, cursor string, limit int) (*gsync.LogPage, error) {
	op := fmt.Sprintf("log of %q", repo)
	params := &models.GetLogParams{After: optional(cursor), Limit: limitOf(limit)}
	r, err := c.do(ctx, op, func(ctx context.Context, e apiclient.RequestEditorFn) (*http.Response, error) {
		return c.gc.GetLog(ctx, repo, params, e)
	})
	if err != nil {
		return nil, err
	}
	return decodeLogPage(op, r)
}

// Sync runs one reconciliation round (POST /v1/repos/{repo}/sync). It
// implements gsync.Transport; the response, results of pushed commits
// included, is decoded once by gsync.DecodeResponse.
func (c *Client) Sync(ctx context.Context, repo string, req *gsync.Request) (*gsync.Response, error) {
	op := fmt.Sprintf("sync %q", repo)
	b, err := req.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	r, err := c.do(ctx, op, func(ctx context.Context, e apiclient.RequestEditorFn) (*http.Response, error) {
		return c.gc.SyncRoundWithBody(ctx, repo, "application/json", bytes.NewReader(b), e)
	})
	if err != nil {
		return nil, err
	}
	resp, err := gsync.DecodeResponse(r.body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return resp, nil
}

// ListSchemas returns the gateway's schemas.
func (c *Client) ListSchemas(ctx context.Context) ([]*core.Schema, error) {
	list, _, err := c.ListSchemasRetired(ctx)
	return list, err
}

// ListSchemasRetired is ListSchemas with the refs of the retired versions
// (rollback, DESIGN section 2): still known, read through the branch below.
func (c *Client) ListSchemasRetired(ctx context.Context) (schemas []*core.Schema, retired map[string]bool, err error) {
	const op = "list schemas"
	r, err := c.do(ctx, op, func(ctx context.Context, e apiclient.RequestEditorFn) (*http.Response, error) {
		return c.gc.ListSchemas(ctx, e)
	})
	if err != nil {
		return nil, nil, err
	}
	var list struct {
		Schemas []map[string]json.RawMessage `json:"schemas"`
	}
	if err := decode(op, r, &list); err != nil {
		return nil, nil, err
	}
	out := make([]*core.Schema, 0, len(list.Schemas))
	retired = map[string]bool{}
	for _, def := range list.Schemas {
		flag := def["retired"]
		delete(def, "retired") // the listing's, not the definition's
		raw, err := json.Marshal(def)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", op, err)
		}
		sc, err := core.DecodeSchema(raw)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", op, err)
		}
		out = append(out, sc)
		if string(flag) == "true" {
			retired[sc.Ref()] = true
		}
	}
	return out, retired, nil
}

// PutSchema publishes a schema (idempotent for an identical definition).
func (c *Client) PutSchema(ctx context.Context, sc *core.Schema) error {
	op := fmt.Sprintf("publish schema %s", sc.Ref())
	fields := sc.Fields
	if fields == nil {
		fields = map[string]core.Field{}
	}
	body, err := json.Marshal(struct {
		Fields  map[string]core.Field `json:"fields"`
		Upgrade []core.Upgrade        `json:"upgrade,omitempty"`
	}{fields, sc.Upgrade})
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	_, err = c.do(ctx, op, func(ctx context.Context, e apiclient.RequestEditorFn) (*http.Response, error) {
		return c.gc.PutSchemaWithBody(ctx, sc.NS, int32(sc.Version), "application/json", bytes.NewReader(body), e)
	})
	return err
}

// NewEventsRequest returns the request that opens the event stream of
// repos (GET /v1/events), resuming after lastID ("" for now), for a caller
// that sends it over a connection of its own. ctx governs the whole
// stream.
func (c *Client) NewEventsRequest(ctx context.Context, repos []string, lastID string) (*http.Request, error) {
	edit, err := c.authEditor(ctx)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	params := &models.GetEventsParams{Repo: repos, LastEventIDHeader: optional(lastID)}
	req, err := apiclient.NewGetEventsRequest(c.gc.Server, params)
	if err != nil {
		return nil, fmt.Errorf("events: %w: %v", core.ErrInvalid, err)
	}
	req = req.WithContext(ctx)
	if err := edit(ctx, req); err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	return req, nil
}

// Events opens the event stream of repos, resuming after lastID ("" for
// now). The response (status 200, text/event-stream) is the caller's to
// read with its own SSE reader and to close; ctx governs the whole stream,
// without the request timeout.
func (c *Client) Events(ctx context.Context, repos []string, lastID string) (*http.Response, error) {
	req, err := c.NewEventsRequest(ctx, repos, lastID)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("events: %w", NetError(ctx, err))
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
		return nil, fmt.Errorf("events: %w", problemFrom(resp.StatusCode, resp.Header.Get("Content-Type"), body))
	}
	return resp, nil
}
