package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/goat-gateway/goat-gateway/client"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/gen/models"
	"github.com/goat-gateway/goat-gateway/storage"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

// The operator's commands that work on a running gateway, through its API
// with a token (DESIGN section 10): backup, and export and import with
// --url. Through the API they see exactly what the token may read, and
// the gateway keeps serving meanwhile.

// logPage is the number of commits asked for per log page.
const logPage = 1000

// apiFlags are the flags of a command that talks to a running gateway.
type apiFlags struct {
	url, token string
}

func (a *apiFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.url, "url", "", "the running gateway's base `URL`, such as http://localhost:8080")
	fs.StringVar(&a.token, "token", "", "a bearer `TOKEN` for it (default $GOAT_TOKEN)")
}

func (a *apiFlags) client(cmd string) (*client.Client, error) {
	if a.url == "" {
		return nil, fmt.Errorf("%s: --url is required: the running gateway, such as --url http://localhost:8080", cmd)
	}
	tok := a.token
	if tok == "" {
		tok = os.Getenv("GOAT_TOKEN")
	}
	cl, err := client.New(a.url, client.Options{
		Token:   func(context.Context) (string, error) { return tok, nil },
		Timeout: 5 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: --url %q is not an http(s) URL", cmd, a.url)
	}
	return cl, nil
}

// readLog calls fn with every commit of repo's log, in log order, through
// the API, up to the log's end as of the last page.
func readLog(ctx context.Context, cl *client.Client, repo string, fn func(raw []byte) error) error {
	cursor := ""
	for {
		page, err := cl.Log(ctx, repo, cursor, logPage)
		if err != nil {
			return err
		}
		for _, raw := range page.Commits {
			if err := fn(raw); err != nil {
				return err
			}
		}
		cursor = page.Next
		if !page.More {
			return nil
		}
	}
}

const backupUsage = `Copies every repository the token may read from a running gateway,
through its API, into --out: a directory that a gateway serves as it is
(goat-gateway serve --data-dir OUT). The gateway keeps serving meanwhile.
Every commit acknowledged before the backup began is in the copy: each
repository is read to the end of its log after the list of repositories
was taken. Commits acknowledged later may or may not be.

Use a token that may read everything to back up everything (role admin
for the sys.* repositories; a node token reads all). The copy holds no
keys: a gateway started on it makes new ones unless you copy the keys
directory (DATA_DIR/keys) next to it, which keeps its root key, session
signatures and dev tokens valid. Prints one line per repository: name,
commits, digest.

examples:
  goat-gateway backup --url http://localhost:8080 --token $TOKEN --out /backups/2026-12-05
  GOAT_TOKEN=$TOKEN goat-gateway backup --url https://sync.example.com --out ./backup
`

// backup copies every readable repository of a running gateway into a new
// data directory.
func backup(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	var af apiFlags
	af.register(fs)
	out := fs.String("out", "", "the `DIR`ectory to write, new or empty (required)")
	if help, err := parseFlags(fs, args, backupUsage, stdout); help || err != nil {
		return err
	}
	if *out == "" {
		return errors.New("backup: --out is required: a new or empty directory, such as --out ./backup")
	}
	if ents, err := os.ReadDir(*out); err == nil && len(ents) > 0 {
		return fmt.Errorf("backup: --out %s is not empty: back up into a new directory", *out)
	}
	cl, err := af.client("backup")
	if err != nil {
		return err
	}
	// The backup begins here: the list of repositories is taken first,
	// then each is read to its end.
	var names []string
	for after := ""; ; {
		page, err := cl.ListRepos(ctx, "", after, 1000)
		if err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		for _, r := range page.Repos {
			names = append(names, r.Name)
		}
		if page.Next == nil {
			break
		}
		after = *page.Next
	}
	for _, sys := range []string{"sys.sessions", "sys.schemas"} {
		if !contains(names, sys) {
			if _, err := cl.GetRepo(ctx, sys); err == nil {
				names = append(names, sys)
			}
		}
	}
	st, err := storage.Open(storage.Config{Dir: *out, IdleTimeout: -1})
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer st.Close()
	for _, name := range names {
		count, digest, err := copyRepo(ctx, cl, st, name)
		if err != nil {
			return fmt.Errorf("backup: %s: %w", name, err)
		}
		fmt.Fprintf(stdout, "%-40s %8d %s\n", name, count, hex.EncodeToString(digest[:]))
	}
	return st.Close()
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// copyRepo appends repo's log, read through the API, to a repository of
// st, durably, and returns what it then holds.
func copyRepo(ctx context.Context, cl *client.Client, st *storage.Store, name string) (int, [32]byte, error) {
	r, release, err := st.Ensure(name)
	if err != nil {
		return 0, [32]byte{}, err
	}
	defer release()
	var batch []*core.Commit
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := appendAll(ctx, r, batch); err != nil {
			return err
		}
		batch = batch[:0]
		return nil
	}
	err = readLog(ctx, cl, name, func(raw []byte) error {
		c, err := core.DecodeCommit(raw)
		if err != nil {
			return err
		}
		batch = append(batch, c)
		if len(batch) == logPage {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	count, digest := r.State()
	return count, digest, err
}

// appendAll appends commits to r and fails if any is refused.
func appendAll(ctx context.Context, r *storage.Repo, commits []*core.Commit) error {
	res, err := r.Append(ctx, commits)
	if err != nil {
		return err
	}
	for _, x := range res {
		if x.Err != nil {
			return fmt.Errorf("commit %s: %w", x.ID, x.Err)
		}
	}
	return nil
}

// exportAPI is export of a running gateway, through its API.
func exportAPI(ctx context.Context, af apiFlags, repo string, history, deleted bool, stdout io.Writer) error {
	cl, err := af.client("export")
	if err != nil {
		return err
	}
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	if history {
		return readLog(ctx, cl, repo, func(raw []byte) error {
			w.Write(raw)
			return w.WriteByte('\n')
		})
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	params := models.ListItemsParams{IncludeDeleted: &deleted}
	limit := models.Limit(1000)
	params.Limit = &limit
	for {
		page, err := cl.ListItems(ctx, repo, params)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		for _, v := range page.Items {
			line := map[string]any{"key": v.Key, "schema": v.Schema, "data": v.Data, "head": v.Head, "ts": v.Ts}
			if v.Deleted != nil && *v.Deleted {
				line["deleted"] = true
			}
			if err := enc.Encode(line); err != nil {
				return err
			}
		}
		if page.Next == nil {
			return nil
		}
		params.After = page.Next
	}
}

const importUsage = `Loads the commits of 'goat-gateway export --history' (NDJSON, one
commit per line, in log order) into a repository: of a stopped gateway with
--data-dir, or of a running one with --url, which pushes them through the
API (POST /v1/repos/{repo}/commits, verified there like any push: their
authors' sessions must be known to that gateway, as they are when it holds
the sys.sessions of the gateway exported from). Commits already present are
skipped, so an import can be repeated. The file is read from --in, or
standard input.

examples:
  goat-gateway export --data-dir ./old --repo user.alice.notes --history > notes.ndjson
  goat-gateway import --data-dir ./new --repo user.alice.notes --in notes.ndjson
  goat-gateway import --url http://localhost:8080 --token $TOKEN --repo user.alice.notes < notes.ndjson
`

// importCmd loads an export's commits into a repository.
func importCmd(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	var af apiFlags
	af.register(fs)
	dataDir := fs.String("data-dir", "", "a stopped gateway's `DIR`ectory of data (instead of --url)")
	repoName := fs.String("repo", "", "the `REPO`sitory to load into, created if absent (required)")
	in := fs.String("in", "", "the `FILE` to read (default standard input)")
	if help, err := parseFlags(fs, args, importUsage, stdout); help || err != nil {
		return err
	}
	if *repoName == "" {
		return errors.New("import: --repo is required: the repository to load into, such as --repo user.alice.notes")
	}
	if err := core.ValidateRepoName(*repoName); err != nil {
		return fmt.Errorf("import: --repo %q is not a repository name: lower-case letters, digits and . _ - (at most 128, starting with a letter or digit)", *repoName)
	}
	if (*dataDir == "") == (af.url == "") {
		return errors.New("import: give either --data-dir (a stopped gateway) or --url (a running one)")
	}
	src := stdin
	if *in != "" {
		f, err := os.Open(*in)
		if err != nil {
			return fmt.Errorf("import: %w", err)
		}
		defer f.Close()
		src = f
	}
	var push func([][]byte) error
	if *dataDir != "" {
		st, err := storage.Open(storage.Config{Dir: *dataDir, IdleTimeout: -1})
		if err != nil {
			return fmt.Errorf("import: %w", err)
		}
		defer st.Close()
		r, release, err := st.Ensure(*repoName)
		if err != nil {
			return fmt.Errorf("import: %w", err)
		}
		defer release()
		push = func(raws [][]byte) error {
			commits := make([]*core.Commit, len(raws))
			for i, raw := range raws {
				c, err := core.DecodeCommit(raw)
				if err != nil {
					return err
				}
				commits[i] = c
			}
			return appendAll(ctx, r, commits)
		}
	} else {
		cl, err := af.client("import")
		if err != nil {
			return err
		}
		if _, _, err := cl.CreateRepo(ctx, *repoName); err != nil {
			return fmt.Errorf("import: %w", err)
		}
		push = func(raws [][]byte) error {
			res, err := pushPaced(ctx, cl, *repoName, raws)
			if err != nil {
				return err
			}
			for _, x := range res {
				if x.Status != gsync.StatusAccepted && x.Status != gsync.StatusDuplicate {
					return fmt.Errorf("commit %s %s: %s", x.ID, x.Status, x.Reason)
				}
			}
			return nil
		}
	}
	sc := bufio.NewScanner(src)
	sc.Buffer(make([]byte, 0, 64<<10), int(core.MaxCommitBytes)+1024)
	var batch [][]byte
	batchBytes := 0
	line, total := 0, 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := push(batch); err != nil {
			return fmt.Errorf("import: line %d: %w", line, err)
		}
		total += len(batch)
		batch, batchBytes = nil, 0
		return nil
	}
	for sc.Scan() {
		line++
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		var probe struct {
			ID   string `json:"id"`
			Repo string `json:"repo"`
		}
		if json.Unmarshal(raw, &probe) != nil || probe.ID == "" {
			return fmt.Errorf("import: line %d is not a commit: import takes the output of export --history", line)
		}
		if probe.Repo != *repoName {
			// A commit's id covers its repository: it cannot move.
			return fmt.Errorf("import: line %d is a commit of %q, not of --repo %s", line, probe.Repo, *repoName)
		}
		batch = append(batch, append([]byte(nil), raw...))
		// Pushes stay well under a gateway's body limit and commit count.
		if batchBytes += len(raw); len(batch) == 500 || batchBytes >= 4<<20 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("import: line %d: %w", line+1, err)
	}
	if err := flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d commits loaded\n", *repoName, total)
	return nil
}

// pushPaced pushes raws, waiting and trying again while the gateway says
// 429 (its --body-rate or --body-budget: an import of large documents
// sends faster than one caller's rate). A push is idempotent (commits are
// content-addressed), so a retry never doubles anything.
func pushPaced(ctx context.Context, cl *client.Client, repo string, raws [][]byte) ([]gsync.PushResult, error) {
	wait := 250 * time.Millisecond
	for {
		res, err := cl.PushCommits(ctx, repo, raws)
		if !errors.Is(err, core.ErrRateLimited) {
			return res, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 5*time.Second)
	}
}
