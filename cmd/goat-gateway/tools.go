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

const tokenUsage = `Prints a token signed by the dev issuer of the node whose keys are in
--keys-dir (default DATA_DIR/keys), alone on stdout. Only a node started with
--dev trusts it.

examples:
  export TOKEN=$(goat-gateway token --sub alice)
  goat-gateway token --data-dir ./data --sub bob --role editor --role admin --ttl 720h
`

// token prints a token signed by the dev issuer, alone on stdout.
func token(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "./data", "the gateway's `DIR`ectory of data")
	keysDir := fs.String("keys-dir", "", "the keys `DIR`ectory (default DATA_DIR/keys)")
	sub := fs.String("sub", "", "the token's subject, `NAME` (required)")
	ttl := 24 * time.Hour
	fs.Func("ttl", "the token's lifetime, a `DURATION` in h, m or s, such as 24h or 720h (default 24h)", func(v string) error {
		d, err := parseTTL(v)
		ttl = d
		return err
	})
	var roles stringList
	fs.Var(&roles, "role", "a `ROLE` (repeatable)")
	if help, err := parseFlags(fs, args, tokenUsage, stdout); help || err != nil {
		return err
	}
	if *sub == "" {
		return errors.New("token: --sub is required: the subject the token is for, such as --sub alice")
	}
	dev, err := auth.OpenDevIssuer(keysDirFor(*dataDir, *keysDir))
	if err != nil {
		return err
	}
	tok, err := dev.Mint(*sub, roles, ttl, time.Now())
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}

// parseTTL reads a lifetime. Go durations have no day unit, so "2d" gets
// an answer that says which units there are rather than "parse error".
func parseTTL(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, errors.New("want a positive duration in h, m, s (or ms, us, ns), such as 24h, 90m or 720h for 30 days; there is no unit for days")
	}
	return d, nil
}

const fsckUsage = `Checks every repository log in --data-dir and prints one line per
repository. The gateway must be stopped. With --repair it keeps every intact
record, those after the damage included, and moves the damaged original
aside (never erased). Exits 1 while a repository stays damaged.

examples:
  goat-gateway fsck --data-dir ./data
  goat-gateway fsck --data-dir ./data --repair
`

// fsck reports every repository log and, with --repair, keeps the good
// prefix and every intact record after the damage, and moves damaged
// files aside.
func fsck(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("fsck", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "./data", "the gateway's `DIR`ectory of data")
	repair := fs.Bool("repair", false, "repair: keep every intact record (before and after the damage), move the damaged original aside")
	if help, err := parseFlags(fs, args, fsckUsage, stdout); help || err != nil {
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

const exportUsage = `Writes one repository as NDJSON on stdout: its current items, one
{key, schema, data, head, ts} per line, or with --history every commit in
log order (what import loads). Of a running gateway through its API with
--url and a token that may read the repository, or of a stopped gateway's
--data-dir.

examples:
  goat-gateway export --url http://localhost:8080 --token $TOKEN --repo user.alice.notes > notes.ndjson
  goat-gateway export --data-dir ./data --repo user.alice.notes --history > notes.commits.ndjson
`

// export writes a repository's current items (or every commit) as NDJSON.
func export(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "./data", "a stopped gateway's `DIR`ectory of data (without --url)")
	var af apiFlags
	af.register(fs)
	repoName := fs.String("repo", "", "the `REPO`sitory to export (required)")
	history := fs.Bool("history", false, "every commit in log order instead of current items")
	deleted := fs.Bool("include-deleted", false, "include deleted items")
	if help, err := parseFlags(fs, args, exportUsage, stdout); help || err != nil {
		return err
	}
	if *repoName == "" {
		return errors.New("export: --repo is required: the repository to export, such as --repo user.alice.notes")
	}
	if err := core.ValidateRepoName(*repoName); err != nil {
		return fmt.Errorf("export: --repo %q is not a repository name: lower-case letters, digits and . _ - (at most 128, starting with a letter or digit)", *repoName)
	}
	if af.url != "" {
		return exportAPI(ctx, af, *repoName, *history, *deleted, stdout)
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
