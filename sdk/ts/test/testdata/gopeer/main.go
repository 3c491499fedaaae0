// Command gopeer is a Go client of a goat-gateway for the TypeScript SDK's
// integration tests: it registers a session, clones a repository with the
// gsync driver, writes the items given with -put (signed commits whose
// parents are the heads it holds), heals, and prints what it holds as JSON:
// {"count", "digest", "values": {key: value}} with each item's value
// merged from its heads by package merge. It stands in for the Go SDK
// (sdk/go) until that exists; it lives under testdata so that `go test
// ./...` and `go vet ./...` skip it.
package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/merge"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

type puts []string

func (p *puts) String() string     { return strings.Join(*p, ",") }
func (p *puts) Set(v string) error { *p = append(*p, v); return nil }

func main() {
	url := flag.String("url", "", "gateway URL")
	token := flag.String("token", "", "bearer token")
	repo := flag.String("repo", "", "repository")
	schema := flag.String("schema", core.AnySchema, "schema of written items")
	var ps puts
	flag.Var(&ps, "put", "key=JSON object to write (repeatable)")
	flag.Parse()
	if err := run(*url, *token, *repo, *schema, ps); err != nil {
		fmt.Fprintln(os.Stderr, "gopeer:", err)
		os.Exit(1)
	}
}

type client struct {
	url, token string
}

func (c *client) do(method, path string, body []byte) ([]byte, int, error) {
	req, err := http.NewRequest(method, c.url+path, bytes.NewReader(body))
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return b, resp.StatusCode, err
}

func (c *client) Log(ctx context.Context, repo, cursor string, limit int) (*gsync.LogPage, error) {
	path := fmt.Sprintf("/v1/repos/%s/log?limit=%d", repo, limit)
	if cursor != "" {
		path += "&after=" + cursor
	}
	b, status, err := c.do("GET", path, nil)
	if err != nil {
		return nil, err
	}
	if status == http.StatusConflict {
		return nil, core.ErrMustReconcile
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("log: %d %s", status, b)
	}
	var p struct {
		Commits []json.RawMessage `json:"commits"`
		Next    string            `json:"next"`
		Tail    bool              `json:"tail"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, err
	}
	return &gsync.LogPage{Commits: p.Commits, Next: p.Next, More: !p.Tail}, nil
}

func (c *client) Sync(ctx context.Context, repo string, req *gsync.Request) (*gsync.Response, error) {
	body, err := req.MarshalJSON()
	if err != nil {
		return nil, err
	}
	b, status, err := c.do("POST", "/v1/repos/"+repo+"/sync", body)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("sync: %d %s", status, b)
	}
	return gsync.DecodeResponse(b)
}

// local is a replica in memory.
type local struct {
	order []core.CommitID
	byID  map[core.CommitID]*core.Commit
}

func (m *local) Digest() gsync.Digest { return gsync.DigestOf(m.order...) }
func (m *local) Walk(fn func(core.CommitID) bool) {
	for _, id := range m.order {
		if !fn(id) {
			return
		}
	}
}
func (m *local) Get(id core.CommitID) (*core.Commit, bool) { c, ok := m.byID[id]; return c, ok }
func (m *local) Ingest(ctx context.Context, cs []*core.Commit) error {
	missing := false
	for _, c := range cs {
		if _, ok := m.byID[c.ID]; ok {
			continue
		}
		if slices.ContainsFunc(c.Parents, func(p core.CommitID) bool { _, ok := m.byID[p]; return !ok }) {
			missing = true
			continue
		}
		m.byID[c.ID] = c
		m.order = append(m.order, c.ID)
	}
	if missing {
		return core.ErrMissingParents
	}
	return nil
}

// heads returns each key's commits that no commit of the key names as a parent.
func (m *local) heads() map[string][]core.CommitID {
	parent := map[core.CommitID]bool{}
	for _, id := range m.order {
		for _, p := range m.byID[id].Parents {
			parent[p] = true
		}
	}
	out := map[string][]core.CommitID{}
	for _, id := range m.order {
		if c := m.byID[id]; !parent[id] {
			out[c.Key] = append(out[c.Key], id)
		}
	}
	for k := range out {
		slices.SortFunc(out[k], core.CommitID.Compare)
	}
	return out
}

func run(url, token, repo, schema string, ps puts) error {
	ctx := context.Background()
	c := &client{url: strings.TrimRight(url, "/"), token: token}

	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	if err := register(c, pub, priv); err != nil {
		return err
	}
	if _, status, err := c.do("PUT", "/v1/repos/"+repo, nil); err != nil || status >= 300 {
		return fmt.Errorf("create repo: %d %v", status, err)
	}
	reg, err := schemas(c)
	if err != nil {
		return err
	}

	l := &local{byID: map[core.CommitID]*core.Commit{}}
	d := &gsync.Driver{Transport: c}
	if _, err := d.Clone(ctx, l, repo, ""); err != nil {
		return fmt.Errorf("clone: %w", err)
	}
	heads := l.heads()
	now := time.Now().UnixMilli()
	for i, p := range ps {
		key, val, ok := strings.Cut(p, "=")
		if !ok {
			return fmt.Errorf("-put %q: want key=JSON", p)
		}
		v, err := core.ParseJSON([]byte(val))
		if err != nil {
			return err
		}
		data, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("-put %q: not an object", p)
		}
		cm := &core.Commit{Repo: repo, Key: key, Parents: heads[key], Author: auth.SessionID(pub), TS: now + int64(i), Schema: schema, Data: data}
		if cm.Parents == nil {
			cm.Parents = []core.CommitID{}
		}
		if err := cm.Sign(priv); err != nil {
			return err
		}
		if err := l.Ingest(ctx, []*core.Commit{cm}); err != nil {
			return err
		}
		heads[key] = []core.CommitID{cm.ID}
	}
	if _, err := d.Heal(ctx, l, repo); err != nil {
		return fmt.Errorf("heal: %w", err)
	}

	values := map[string]any{}
	for key, hs := range l.heads() {
		var data map[string]any
		if len(hs) == 1 {
			cm := l.byID[hs[0]]
			data = cm.Data
			if data == nil {
				base := l.byID[cm.Delta.Base]
				if data, err = core.ApplyDelta(base.Data, cm.Delta); err != nil {
					return err
				}
			}
		} else {
			m, err := merge.Merge(merge.GraphFunc(l.Get), reg, repo, key, hs)
			if err != nil {
				return fmt.Errorf("merge %s: %w", key, err)
			}
			data = m.Data
		}
		values[key] = data
	}
	dg := l.Digest()
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"count": dg.Count, "digest": dg.XOR.String(), "values": values, "session": auth.SessionID(pub)})
}

func register(c *client, pub ed25519.PublicKey, priv ed25519.PrivateKey) error {
	b, _, err := c.do("GET", "/v1/info", nil)
	if err != nil {
		return err
	}
	var info struct {
		Audience string `json:"audience"`
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return err
	}
	parts := strings.Split(c.token, ".")
	if len(parts) != 3 {
		return errors.New("token is not a JWT")
	}
	claims, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return err
	}
	var sub struct {
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(claims, &sub); err != nil {
		return err
	}
	expires := time.Now().Add(24 * time.Hour).Truncate(time.Millisecond)
	msg, err := auth.SessionChallenge(info.Audience, sub.Sub, pub, expires)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(map[string]any{
		"publicKey": base64.RawURLEncoding.EncodeToString(pub),
		"expires":   expires.UnixMilli(),
		"proof":     base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, msg)),
	})
	rb, status, err := c.do("POST", "/v1/sessions", body)
	if err != nil {
		return err
	}
	if status != http.StatusCreated && status != http.StatusOK {
		return fmt.Errorf("register session: %d %s", status, rb)
	}
	return nil
}

func schemas(c *client) (*core.Registry, error) {
	b, status, err := c.do("GET", "/v1/schemas", nil)
	if err != nil || status != http.StatusOK {
		return nil, fmt.Errorf("schemas: %d %v", status, err)
	}
	var list struct {
		Schemas []json.RawMessage `json:"schemas"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, err
	}
	reg := core.NewRegistry()
	for _, raw := range list.Schemas {
		s, err := core.DecodeSchema(raw)
		if err != nil {
			return nil, err
		}
		if err := reg.Add(s); err != nil {
			return nil, err
		}
	}
	return reg, nil
}
