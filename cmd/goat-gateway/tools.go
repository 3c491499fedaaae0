package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/merge"
	"github.com/goat-gateway/goat-gateway/node"
	"github.com/goat-gateway/goat-gateway/storage"
)

type stringList []string

func (l *stringList) String() string     { return fmt.Sprint(*l) }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// token prints a token signed by the dev issuer, alone on stdout.
func token(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "./data", "the gateway's data directory")
	keysDir := fs.String("keys-dir", "", "the keys directory (default DATA_DIR/keys)")
	sub := fs.String("sub", "", "subject (required)")
	ttl := fs.Duration("ttl", 24*time.Hour, "lifetime")
	var roles stringList
	fs.Var(&roles, "role", "a role (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *sub == "" {
		return errors.New("token: --sub is required")
	}
	dev, err := auth.OpenDevIssuer(keysDirFor(*dataDir, *keysDir))
	if err != nil {
		return err
	}
	tok, err := dev.Mint(*sub, roles, *ttl, time.Now())
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}

// fsck reports every repository log and, with --repair, keeps the good
// prefix and every intact record after the damage, and moves damaged
// files aside.
func fsck(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("fsck", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "./data", "the gateway's data directory")
	repair := fs.Bool("repair", false, "repair: keep every intact record (before and after the damage), move the damaged original aside")
	if err := fs.Parse(args); err != nil {
		return err
	}
	reports, err := storage.Fsck(*dataDir, *repair)
	if err != nil {
		return err
	}
	bad := 0
	for _, r := range reports {
		fmt.Fprintf(stdout, "%-40s %-12s %8d records", r.Repo, r.State, r.Records)
		if r.Problem != "" {
			fmt.Fprintf(stdout, "  %s", r.Problem)
		}
		if r.Repaired && r.State == storage.FsckCorrupt {
			fmt.Fprintf(stdout, "  (repaired: %d intact records after the damage salvaged, %d dropped; original kept as %s)", r.Salvaged, r.Dropped, r.MovedTo)
		} else if r.Repaired {
			fmt.Fprintf(stdout, "  (repaired; original kept as %s)", r.MovedTo)
		}
		fmt.Fprintln(stdout)
		if r.State != storage.FsckOK && !r.Repaired {
			bad++
		}
	}
	if bad > 0 {
		return fmt.Errorf("fsck: %d damaged repositories (run with --repair)", bad)
	}
	return nil
}

// export writes a repository's current items (or every commit) as NDJSON.
func export(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "./data", "the gateway's data directory (the gateway must be stopped)")
	repoName := fs.String("repo", "", "repository (required)")
	history := fs.Bool("history", false, "every commit in log order instead of current items")
	deleted := fs.Bool("include-deleted", false, "include deleted items")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := core.ValidateRepoName(*repoName); err != nil {
		return err
	}
	st, err := storage.Open(storage.Config{Dir: *dataDir, IdleTimeout: -1})
	if err != nil {
		return err
	}
	defer st.Close()
	r, release, err := st.Repo(*repoName)
	if err != nil {
		return err
	}
	defer release()
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	if *history {
		for off := int64(0); ; {
			recs, err := r.ReadLog(off, 1000)
			if err != nil {
				return err
			}
			for _, rec := range recs {
				w.Write(rec.JSON)
				w.WriteByte('\n')
			}
			if len(recs) < 1000 {
				return nil
			}
			off += int64(len(recs))
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	// Items are exported as readers see them: upgraded to the newest
	// published version, through the branch below a retired one.
	reg, err := node.LoadRegistry(st)
	if err != nil {
		return fmt.Errorf("load schemas: %w", err)
	}
	after := ""
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for {
		vals, err := r.Items(after, 1000, true)
		if err != nil {
			return err
		}
		for _, sv := range vals {
			v, err := node.ReadValue(r, reg, sv.Key, merge.View{})
			if errors.Is(err, core.ErrNotFound) {
				continue // nothing readable below a retired version
			}
			if err != nil {
				return err
			}
			if v.Deleted && !*deleted {
				continue
			}
			line := map[string]any{"key": v.Key, "schema": v.Schema, "data": v.Data, "head": v.Head.String(), "ts": v.TS}
			if v.Deleted {
				line["deleted"] = true
			}
			if err := enc.Encode(line); err != nil {
				return err
			}
		}
		if len(vals) < 1000 {
			return nil
		}
		after = vals[len(vals)-1].Key
	}
}
