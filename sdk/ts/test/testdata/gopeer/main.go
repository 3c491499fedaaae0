// Command gopeer is a Go client of a goat-gateway for the TypeScript SDK's
// integration tests that uses the gsync driver alone, not the Go SDK: it
// registers a session, clones a repository with the driver over
// client.Client, writes the items given with -put (signed commits whose
// parents are the heads it holds), heals, and prints what it holds as JSON:
// {"count", "digest", "values": {key: value}, "session"} with each item's
// value merged from its heads by package merge. Its values are the commits'
// data as written and merged, with no schema defaults filled in (the Go SDK,
// which does fill them, is exercised by gosdkpeer). It lives under testdata
// so that `go test ./...` and `go vet ./...` skip it.
package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/goat-gateway/goat-gateway/client"
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
	c, err := client.New(url, client.Options{Token: func(context.Context) (string, error) { return token, nil }})
	if err != nil {
		return err
	}

	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	session := core.SessionID(pub)
	if err := register(ctx, c, token, priv); err != nil {
		return err
	}
	if _, _, err := c.CreateRepo(ctx, repo); err != nil {
		return err
	}
	reg, err := schemas(ctx, c)
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
		cm := &core.Commit{Repo: repo, Key: key, Parents: heads[key], Author: session, TS: now + int64(i), Schema: schema, Data: data}
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
			ms, err := merge.MergeAll(merge.GraphFunc(l.Get), reg, repo, key, hs)
			if err != nil {
				return fmt.Errorf("merge %s: %w", key, err)
			}
			data = ms[len(ms)-1].Data
		}
		values[key] = data
	}
	dg := l.Digest()
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"count": dg.Count, "digest": dg.XOR.String(), "values": values, "session": session})
}

// register registers priv's public key as a session of the token's
// subject.
func register(ctx context.Context, c *client.Client, token string, priv ed25519.PrivateKey) error {
	info, err := c.Info(ctx)
	if err != nil {
		return err
	}
	sub, err := subject(token)
	if err != nil {
		return err
	}
	body, err := client.SessionBody(priv, info.Audience, sub, time.Now().Add(24*time.Hour))
	if err != nil {
		return err
	}
	_, _, err = c.CreateSession(ctx, body)
	return err
}

// subject returns the sub claim of a JWT, unverified: the owner that a
// session proof names is the subject of the token that registers it.
func subject(token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", errors.New("token is not a JWT")
	}
	claims, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", fmt.Errorf("token claims: %w", err)
	}
	var c struct {
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(claims, &c); err != nil {
		return "", fmt.Errorf("token claims: %w", err)
	}
	return c.Sub, nil
}

// schemas returns a registry of the gateway's schemas, for merging.
func schemas(ctx context.Context, c *client.Client) (*core.Registry, error) {
	list, err := c.ListSchemas(ctx)
	if err != nil {
		return nil, err
	}
	reg := core.NewRegistry()
	for _, s := range list {
		if err := reg.Add(s); err != nil {
			return nil, err
		}
	}
	return reg, nil
}
