// Command gosdkpeer is a client of the Go SDK (sdk/go) for the TypeScript
// SDK's integration tests: it opens a repository in memory (or in -dir,
// which keeps the replica, the session and its records), waits for the
// clone, writes the items given with -put, syncs, and prints what it holds
// as JSON: {"count", "digest", "values": {key: data}, "session"}. It lives
// under testdata so that `go test ./...` and `go vet ./...` skip it.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/goat-gateway/goat-gateway/client"
	"github.com/goat-gateway/goat-gateway/core"
	goat "github.com/goat-gateway/goat-gateway/sdk/go"
)

type puts []string

func (p *puts) String() string     { return strings.Join(*p, ",") }
func (p *puts) Set(v string) error { *p = append(*p, v); return nil }

func main() {
	url := flag.String("url", "", "gateway URL")
	token := flag.String("token", "", "bearer token")
	repo := flag.String("repo", "", "repository")
	schema := flag.String("schema", core.AnySchema, "schema of written items")
	dir := flag.String("dir", "", "local directory of the replica (default: memory only)")
	var ps puts
	flag.Var(&ps, "put", "key=JSON object to write (repeatable)")
	flag.Parse()
	if err := run(*url, *token, *repo, *schema, *dir, ps); err != nil {
		fmt.Fprintln(os.Stderr, "gosdkpeer:", err)
		os.Exit(1)
	}
}

func run(url, token, name, schema, dir string, ps puts) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The schemas the items are written with, as an application would
	// bring them (the SDK learns the gateway's in the background, which
	// may be after the first Set).
	schemas, err := gatewaySchemas(ctx, url, token)
	if err != nil {
		return err
	}
	c, err := goat.Open(goat.Config{URL: url, Token: token, Dir: dir, Schemas: schemas, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	defer c.Close()
	r, err := c.Repo(name)
	if err != nil {
		return err
	}
	if err := r.Sync(ctx); err != nil {
		return fmt.Errorf("first sync: %w", err)
	}
	for _, p := range ps {
		key, val, ok := strings.Cut(p, "=")
		if !ok {
			return fmt.Errorf("-put %q: want key=JSON", p)
		}
		var data map[string]any
		if err := json.Unmarshal([]byte(val), &data); err != nil {
			return fmt.Errorf("-put %q: %w", p, err)
		}
		if err := r.Set(key, schema, data); err != nil {
			return err
		}
	}
	if err := r.Sync(ctx); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	items, err := r.Items()
	if err != nil {
		return err
	}
	values := map[string]any{}
	for _, it := range items {
		values[it.Key] = it.Data
	}
	count, digest := r.Digest()
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"count": count, "digest": digest, "values": values, "session": c.SessionID(), "quarantined": c.Status().Quarantined})
}

// gatewaySchemas returns the gateway's schemas but the built-in any/1.
func gatewaySchemas(ctx context.Context, url, token string) ([]*core.Schema, error) {
	c, err := client.New(url, client.Options{Token: func(context.Context) (string, error) { return token, nil }})
	if err != nil {
		return nil, err
	}
	list, err := c.ListSchemas(ctx)
	if err != nil {
		return nil, err
	}
	var out []*core.Schema
	for _, s := range list {
		if s.Ref() != core.AnySchema {
			out = append(out, s)
		}
	}
	return out, nil
}
