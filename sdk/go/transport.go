package goat

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/gen/apiclient"
	"github.com/goat-gateway/goat-gateway/gen/models"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

// gateway is the SDK's HTTP side. Requests are built by the generated
// client (apiclient.Client: paths, parameters, headers from openapi.yaml);
// response bodies are read here as bytes, because commits must stay the
// canonical bytes the gateway stored (the generated models would re-encode
// them) and because log pages and sync rounds are decoded by the sync
// package's strict decoders.
type gateway struct {
	gc      *apiclient.Client
	token   func(context.Context) (string, error)
	timeout time.Duration
}

// maxResponseBytes bounds a response body read into memory: a sync
// response carries at most 4 MiB of commits plus a filter of at most
// 11.2 MB of base64.
const maxResponseBytes = 32 << 20

func newGateway(baseURL string, hc *http.Client, token func(context.Context) (string, error), timeout time.Duration) (*gateway, error) {
	gc, err := apiclient.NewClient(baseURL, apiclient.WithHTTPClient(hc))
	if err != nil {
		return nil, fmt.Errorf("%w: base URL: %v", core.ErrInvalid, err)
	}
	return &gateway{gc: gc, token: token, timeout: timeout}, nil
}

type sendFunc func(ctx context.Context, auth apiclient.RequestEditorFn) (*http.Response, error)

// authEditor returns a request editor setting the bearer token.
func (g *gateway) authEditor(ctx context.Context) (apiclient.RequestEditorFn, error) {
	tok, err := g.token(ctx)
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	return func(_ context.Context, req *http.Request) error {
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		return nil
	}, nil
}

// netErr classifies a transport failure: our own cancellation stays a
// context error; anything else means the gateway is unreachable.
func netErr(parent context.Context, err error) error {
	if perr := parent.Err(); perr != nil {
		return perr
	}
	return fmt.Errorf("%w: %v", ErrOffline, err)
}

// do sends one request with the request timeout and returns the body of a
// 2xx answer, or the mapped error.
func (g *gateway) do(ctx context.Context, send sendFunc) ([]byte, int, error) {
	auth, err := g.authEditor(ctx)
	if err != nil {
		return nil, 0, err
	}
	rctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	resp, err := send(rctx, auth)
	if err != nil {
		return nil, 0, netErr(ctx, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, 0, netErr(ctx, err)
	}
	if len(body) > maxResponseBytes {
		return nil, 0, fmt.Errorf("%w: response over %d bytes", core.ErrTooLarge, maxResponseBytes)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, resp.StatusCode, problemFromResponse(resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	return body, resp.StatusCode, nil
}

// audience returns the deployment's session audience (GET /v1/info).
func (g *gateway) audience(ctx context.Context) (string, error) {
	body, _, err := g.do(ctx, func(ctx context.Context, a apiclient.RequestEditorFn) (*http.Response, error) {
		return g.gc.GetInfo(ctx, a)
	})
	if err != nil {
		return "", fmt.Errorf("info: %w", err)
	}
	var info models.Info
	if err := json.Unmarshal(body, &info); err != nil {
		return "", fmt.Errorf("%w: info: %v", core.ErrInvalid, err)
	}
	return info.Audience, nil
}

// createSession registers a session key (POST /v1/sessions); registering
// a key that is already registered to the same owner answers 200.
func (g *gateway) createSession(ctx context.Context, body models.SessionRequest) error {
	_, _, err := g.do(ctx, func(ctx context.Context, a apiclient.RequestEditorFn) (*http.Response, error) {
		return g.gc.CreateSession(ctx, body, a)
	})
	if err != nil {
		return fmt.Errorf("register session: %w", err)
	}
	return nil
}

// createRepo creates a repository (idempotent).
func (g *gateway) createRepo(ctx context.Context, repo string) error {
	_, _, err := g.do(ctx, func(ctx context.Context, a apiclient.RequestEditorFn) (*http.Response, error) {
		return g.gc.CreateRepo(ctx, repo, a)
	})
	if err != nil {
		return fmt.Errorf("create repository %q: %w", repo, err)
	}
	return nil
}

// repoCursor returns the log cursor at the end of a repository's log.
func (g *gateway) repoCursor(ctx context.Context, repo string) (string, error) {
	body, _, err := g.do(ctx, func(ctx context.Context, a apiclient.RequestEditorFn) (*http.Response, error) {
		return g.gc.GetRepo(ctx, repo, a)
	})
	if err != nil {
		return "", fmt.Errorf("repository %q: %w", repo, err)
	}
	var info models.RepoInfo
	if err := json.Unmarshal(body, &info); err != nil {
		return "", fmt.Errorf("%w: repository info: %v", core.ErrInvalid, err)
	}
	return info.Cursor, nil
}

// schemas lists the gateway's schemas.
func (g *gateway) schemas(ctx context.Context) ([]*core.Schema, error) {
	body, _, err := g.do(ctx, func(ctx context.Context, a apiclient.RequestEditorFn) (*http.Response, error) {
		return g.gc.ListSchemas(ctx, a)
	})
	if err != nil {
		return nil, fmt.Errorf("list schemas: %w", err)
	}
	var list struct {
		Schemas []json.RawMessage `json:"schemas"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("%w: schemas: %v", core.ErrInvalid, err)
	}
	out := make([]*core.Schema, 0, len(list.Schemas))
	for _, raw := range list.Schemas {
		sc, err := core.DecodeSchema(raw)
		if err != nil {
			return nil, fmt.Errorf("schemas: %w", err)
		}
		out = append(out, sc)
	}
	return out, nil
}

// putSchema publishes a schema (idempotent for an identical definition).
func (g *gateway) putSchema(ctx context.Context, sc *core.Schema) error {
	fields := sc.Fields
	if fields == nil {
		fields = map[string]core.Field{}
	}
	body, err := json.Marshal(struct {
		Fields  map[string]core.Field `json:"fields"`
		Upgrade []core.Upgrade        `json:"upgrade,omitempty"`
	}{fields, sc.Upgrade})
	if err != nil {
		return err
	}
	_, _, err = g.do(ctx, func(ctx context.Context, a apiclient.RequestEditorFn) (*http.Response, error) {
		return g.gc.PutSchemaWithBody(ctx, sc.NS, int32(sc.Version), "application/json", bytes.NewReader(body), a)
	})
	if err != nil {
		return fmt.Errorf("publish schema %s: %w", sc.Ref(), err)
	}
	return nil
}

// pushResult is the gateway's verdict on one pushed commit.
type pushResult struct {
	ID          string `json:"id"`
	Status      string `json:"status"` // accepted, duplicate, rejected
	ProblemType string `json:"problemType"`
	Reason      string `json:"reason"`
}

// err returns the rejection as an error mapped to its sentinel.
func (r pushResult) err(repo string) error {
	return fmt.Errorf("gateway rejected commit %s of %q: %w", r.ID, repo,
		&ProblemError{Status: http.StatusUnprocessableEntity, Type: r.ProblemType, Detail: r.Reason, Err: sentinelForType(r.ProblemType)})
}

// push sends commits (canonical JSON, parents first).
func (g *gateway) push(ctx context.Context, repo string, raws [][]byte) ([]pushResult, error) {
	var b bytes.Buffer
	b.WriteString(`{"commits":[`)
	for i, raw := range raws {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(raw)
	}
	b.WriteString(`]}`)
	body, _, err := g.do(ctx, func(ctx context.Context, a apiclient.RequestEditorFn) (*http.Response, error) {
		return g.gc.PushCommitsWithBody(ctx, repo, "application/json", bytes.NewReader(b.Bytes()), a)
	})
	if err != nil {
		return nil, fmt.Errorf("push to %q: %w", repo, err)
	}
	var resp struct {
		Results []pushResult `json:"results"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, fmt.Errorf("%w: push results: %v", core.ErrInvalid, err)
	}
	if len(resp.Results) != len(raws) {
		return nil, fmt.Errorf("%w: %d push results for %d commits", core.ErrInvalid, len(resp.Results), len(raws))
	}
	return resp.Results, nil
}

// commit fetches one commit by id (for `commits` events, which announce
// commits too large to inline).
func (g *gateway) commit(ctx context.Context, repo string, id string) (*core.Commit, error) {
	body, _, err := g.do(ctx, func(ctx context.Context, a apiclient.RequestEditorFn) (*http.Response, error) {
		return g.gc.GetCommit(ctx, repo, id, nil, a)
	})
	if err != nil {
		return nil, fmt.Errorf("get commit %s of %q: %w", id, repo, err)
	}
	return core.DecodeCommit(body)
}

// events opens the SSE stream of repos, resuming after lastID. The
// response body is the caller's to read and close; ctx governs the whole
// stream (no request timeout).
func (g *gateway) events(ctx context.Context, repos []string, lastID string) (*http.Response, error) {
	auth, err := g.authEditor(ctx)
	if err != nil {
		return nil, err
	}
	params := &models.GetEventsParams{Repo: repos}
	if lastID != "" {
		params.LastEventIDHeader = &lastID
	}
	accept := func(_ context.Context, req *http.Request) error {
		req.Header.Set("Accept", "text/event-stream")
		return nil
	}
	resp, err := g.gc.GetEvents(ctx, params, auth, accept)
	if err != nil {
		return nil, netErr(ctx, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return nil, fmt.Errorf("events: %w", problemFromResponse(resp.StatusCode, resp.Header.Get("Content-Type"), body))
	}
	return resp, nil
}

// syncTransport is the gsync.Transport of one client over the gateway.
// Commits the gateway rejects inside a sync round are reported to
// rejected (they would otherwise only show as a heal that never
// converges).
type syncTransport struct {
	g        *gateway
	rejected func(repo string, r pushResult)
}

var _ gsync.Transport = (*syncTransport)(nil)

func (t *syncTransport) Log(ctx context.Context, repo, cursor string, limit int) (*gsync.LogPage, error) {
	params := &models.GetLogParams{}
	if cursor != "" {
		params.After = &cursor
	}
	if limit > 0 {
		l := int32(limit)
		params.Limit = &l
	}
	body, _, err := t.g.do(ctx, func(ctx context.Context, a apiclient.RequestEditorFn) (*http.Response, error) {
		return t.g.gc.GetLog(ctx, repo, params, a)
	})
	if err != nil {
		return nil, err
	}
	var page struct {
		Commits []json.RawMessage `json:"commits"`
		Next    string            `json:"next"`
		Tail    bool              `json:"tail"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, fmt.Errorf("%w: log page: %v", core.ErrInvalid, err)
	}
	return &gsync.LogPage{Commits: page.Commits, Next: page.Next, More: !page.Tail}, nil
}

func (t *syncTransport) Sync(ctx context.Context, repo string, req *gsync.Request) (*gsync.Response, error) {
	b, err := req.MarshalJSON()
	if err != nil {
		return nil, err
	}
	body, _, err := t.g.do(ctx, func(ctx context.Context, a apiclient.RequestEditorFn) (*http.Response, error) {
		return t.g.gc.SyncRoundWithBody(ctx, repo, "application/json", bytes.NewReader(b), a)
	})
	if err != nil {
		return nil, err
	}
	resp, err := gsync.DecodeResponse(body)
	if err != nil {
		return nil, err
	}
	if len(req.Commits) > 0 && t.rejected != nil {
		var extra struct {
			Results []pushResult `json:"results"`
		}
		if json.Unmarshal(body, &extra) == nil {
			for _, r := range extra.Results {
				if r.Status == "rejected" {
					t.rejected(repo, r)
				}
			}
		}
	}
	return resp, nil
}
