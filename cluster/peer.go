package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/goat-gateway/goat-gateway/core"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

// maxResponseBytes bounds a peer's response body: a sync round answers at
// most gsync.DefaultMaxBytes of commits plus a filter.
const maxResponseBytes = 32 << 20

// peer is another node reached over HTTP with a node token. It implements
// gsync.Transport, so that gsync.Driver heals against it.
type peer struct {
	base   string // "http://host:port", no trailing slash
	client *http.Client
	tokens tokenSource
}

var _ gsync.Transport = (*peer)(nil)

// ParsePeer checks a peer base URL (http or https, a host, no query) and
// returns it without a trailing slash.
func ParsePeer(s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return "", fmt.Errorf("%w: peer %q: %v", core.ErrInvalid, s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%w: peer %q must be an http(s) base URL like http://gateway-b:8080", core.ErrInvalid, s)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// problemSentinels maps the API's problem slugs back to the core sentinels.
var problemSentinels = map[string]error{
	"must-reconcile":   core.ErrMustReconcile,
	"too-large":        core.ErrTooLarge,
	"schema-violation": core.ErrSchema,
	"bad-signature":    core.ErrBadSignature,
	"missing-parents":  core.ErrMissingParents,
	"invalid-request":  core.ErrInvalid,
	"unauthenticated":  core.ErrUnauthenticated,
	"forbidden":        core.ErrForbidden,
	"not-found":        core.ErrNotFound,
	"conflict":         core.ErrConflict,
	"unavailable":      core.ErrClosed,
}

// do sends a request and returns the body of a 2xx answer; any other status
// is an error wrapping the sentinel of its problem type.
func (p *peer) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	tok, err := p.tokens.Token(ctx)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if len(b) > maxResponseBytes {
		return nil, fmt.Errorf("%s %s: %w: response larger than %d bytes", method, path, core.ErrTooLarge, maxResponseBytes)
	}
	if resp.StatusCode/100 == 2 {
		return b, nil
	}
	var prob struct {
		Type   string `json:"type"`
		Detail string `json:"detail"`
	}
	_ = json.Unmarshal(b, &prob)
	slug := prob.Type[strings.LastIndexByte(prob.Type, '/')+1:]
	if s, ok := problemSentinels[slug]; ok {
		return nil, fmt.Errorf("%s %s: %d: %w: %s", method, path, resp.StatusCode, s, prob.Detail)
	}
	return nil, fmt.Errorf("%s %s: status %d: %.200s", method, path, resp.StatusCode, b)
}

// info returns the peer's node id (GET /v1/info).
func (p *peer) info(ctx context.Context) (nodeID string, err error) {
	b, err := p.do(ctx, http.MethodGet, "/v1/info", nil)
	if err != nil {
		return "", err
	}
	var info struct {
		NodeID string `json:"nodeId"`
	}
	if err := json.Unmarshal(b, &info); err != nil || info.NodeID == "" {
		return "", fmt.Errorf("GET /v1/info: %w: no nodeId", core.ErrInvalid)
	}
	return info.NodeID, nil
}

// repos lists every repository of the peer (GET /v1/repos, all pages).
func (p *peer) repos(ctx context.Context) ([]string, error) {
	var names []string
	after := ""
	for {
		q := url.Values{"limit": {"1000"}}
		if after != "" {
			q.Set("after", after)
		}
		b, err := p.do(ctx, http.MethodGet, "/v1/repos?"+q.Encode(), nil)
		if err != nil {
			return nil, err
		}
		var page struct {
			Repos []struct {
				Name string `json:"name"`
			} `json:"repos"`
			Next *string `json:"next"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			return nil, fmt.Errorf("GET /v1/repos: %w: %v", core.ErrInvalid, err)
		}
		for _, r := range page.Repos {
			if core.ValidateRepoName(r.Name) == nil {
				names = append(names, r.Name)
			}
		}
		if page.Next == nil || *page.Next == "" || *page.Next <= after || len(page.Repos) == 0 {
			return names, nil
		}
		after = *page.Next
	}
}

// createRepo creates a repository on the peer (idempotent).
func (p *peer) createRepo(ctx context.Context, repo string) error {
	_, err := p.do(ctx, http.MethodPut, "/v1/repos/"+repo, nil)
	return err
}

// Log implements gsync.Transport.
func (p *peer) Log(ctx context.Context, repo, cursor string, limit int) (*gsync.LogPage, error) {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if cursor != "" {
		q.Set("after", cursor)
	}
	b, err := p.do(ctx, http.MethodGet, "/v1/repos/"+repo+"/log?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	var page struct {
		Commits []json.RawMessage `json:"commits"`
		Next    string            `json:"next"`
		Tail    bool              `json:"tail"`
	}
	if err := json.Unmarshal(b, &page); err != nil {
		return nil, fmt.Errorf("log page: %w: %v", core.ErrInvalid, err)
	}
	return &gsync.LogPage{Commits: page.Commits, Next: page.Next, More: !page.Tail}, nil
}

// Sync implements gsync.Transport.
func (p *peer) Sync(ctx context.Context, repo string, req *gsync.Request) (*gsync.Response, error) {
	body, err := req.MarshalJSON()
	if err != nil {
		return nil, err
	}
	b, err := p.do(ctx, http.MethodPost, "/v1/repos/"+repo+"/sync", body)
	if err != nil {
		return nil, err
	}
	return gsync.DecodeResponse(b)
}
