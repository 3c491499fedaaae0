package cluster

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	stdsync "sync"

	"github.com/goat-gateway/goat-gateway/client"
	"github.com/goat-gateway/goat-gateway/core"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

// peer is another node reached over HTTP with a node token, through the
// one Go client of the API (package client). It implements
// gsync.Transport, so that gsync.Driver heals against it.
type peer struct {
	base   string // "http://host:port", no trailing slash
	client *http.Client
	tokens tokenSource

	once stdsync.Once
	api  *client.Client
	err  error
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

// conn returns the client of the peer, made on first use.
func (p *peer) conn() (*client.Client, error) {
	p.once.Do(func() {
		p.api, p.err = client.New(p.base, client.Options{HTTPClient: p.client, Token: p.tokens.Token})
	})
	return p.api, p.err
}

// info returns the peer's node id.
func (p *peer) info(ctx context.Context) (nodeID string, err error) {
	c, err := p.conn()
	if err != nil {
		return "", err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return "", err
	}
	if info.NodeId == "" {
		return "", fmt.Errorf("info: %w: no nodeId", core.ErrInvalid)
	}
	return info.NodeId, nil
}

// repos lists every repository of the peer (all pages).
func (p *peer) repos(ctx context.Context) ([]string, error) {
	c, err := p.conn()
	if err != nil {
		return nil, err
	}
	var names []string
	after := ""
	for {
		page, err := c.ListRepos(ctx, "", after, 1000)
		if err != nil {
			return nil, err
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
	c, err := p.conn()
	if err != nil {
		return err
	}
	_, _, err = c.CreateRepo(ctx, repo)
	return err
}

// Log implements gsync.Transport.
func (p *peer) Log(ctx context.Context, repo, cursor string, limit int) (*gsync.LogPage, error) {
	c, err := p.conn()
	if err != nil {
		return nil, err
	}
	return c.Log(ctx, repo, cursor, limit)
}

// Sync implements gsync.Transport.
func (p *peer) Sync(ctx context.Context, repo string, req *gsync.Request) (*gsync.Response, error) {
	c, err := p.conn()
	if err != nil {
		return nil, err
	}
	return c.Sync(ctx, repo, req)
}
