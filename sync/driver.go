package sync

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	stdsync "sync"

	"github.com/goat-gateway/goat-gateway/core"
)

// Transport is what the driver needs from the network: the two protocol
// endpoints of one peer. The Go SDK implements it over HTTP, node-to-node
// sync over its own client; tests over a Server in memory.
type Transport interface {
	// Log returns up to limit commits of repo's log after cursor ("" for
	// the start). A cursor the peer cannot serve is an error wrapping
	// core.ErrMustReconcile.
	Log(ctx context.Context, repo, cursor string, limit int) (*LogPage, error)
	// Sync runs one reconciliation round.
	Sync(ctx context.Context, repo string, req *Request) (*Response, error)
}

// LogPage is one page of a log: commits in log order, the cursor after the
// last of them, and whether more may follow (false at the tail of the log).
type LogPage struct {
	Commits []json.RawMessage
	Next    string
	More    bool
}

// Local is the driver's side of a repository: a Set it can also add to.
type Local interface {
	Set
	// Ingest stores commits, given in topological order, skipping those
	// already present. It stores every commit it can; commits whose
	// parents are missing are left out and reported by an error wrapping
	// core.ErrMissingParents, which the driver tolerates (a later round
	// supplies the parents and the commits again). Any other error stops
	// the driver.
	Ingest(ctx context.Context, commits []*core.Commit) error
}

// Driver runs the client side of the protocol against one Transport:
// Clone catches up from the log, Heal reconciles. It holds no state between
// calls and may be shared by goroutines working on different Locals.
type Driver struct {
	Transport Transport
	// Rand supplies filter salts; nil means crypto/rand.
	Rand io.Reader
	// Policy sizes the client's filters.
	Policy FilterPolicy
	// PageLimit is the number of commits asked per log page; zero means
	// DefaultPageLimit.
	PageLimit int
	// Limit is the limit asked for each sync response; zero means the
	// most: MaxStream in version 2 (a large divergence comes as one
	// stream), MaxCommits in version 1.
	Limit int
	// PushLimit and PushBytes cap each push (see Client).
	PushLimit, PushBytes int
	// MaxRounds bounds the sync rounds of one Heal; zero means
	// DefaultMaxRounds.
	MaxRounds int
	// OnRejected, if set, sees every pushed commit the peer rejected (the
	// response's results), so a refusal is reported rather than showing
	// only as a heal that never converges.
	OnRejected func(repo string, r PushResult)
	// V1 makes the driver speak protocol version 1 only, V2 version 2 (and
	// 1). Otherwise it speaks version 3 and, when the peer refuses the
	// first request as invalid, falls back to version 2 (a gateway without
	// "sync-v3"), then to version 1 (one without "sync-v2").
	V1 bool
	V2 bool
}

// Driver defaults.
const (
	DefaultPageLimit = MaxCommits // the API's maxPageLimit
	DefaultMaxRounds = 100
)

// Stats describes what one Clone or Heal did. Bytes are those of the
// compact JSON messages as MarshalJSON writes them (for log pages, of the
// commits only), before any content encoding.
type Stats struct {
	Pages         int    // log pages fetched
	Rounds        int    // sync round trips
	Pushed        int    // commits sent to the peer
	Received      int    // commits received from the peer
	BytesSent     int64  // request bytes of sync rounds
	BytesReceived int64  // response bytes of sync rounds and commit bytes of log pages
	Rejected      int    // pushed commits the peer rejected
	Cursor        string // Clone: the cursor to resume from; "" after a fall back to Heal
	Healed        bool   // Clone: fell back to Heal
}

func (s *Stats) add(o Stats) {
	s.Pages += o.Pages
	s.Rounds += o.Rounds
	s.Pushed += o.Pushed
	s.Received += o.Received
	s.Rejected += o.Rejected
	s.BytesSent += o.BytesSent
	s.BytesReceived += o.BytesReceived
}

func (d *Driver) rand() io.Reader {
	if d.Rand != nil {
		return d.Rand
	}
	return rand.Reader
}

// Clone pages repo's log into local, starting after cursor ("" for the start
// of the log), and returns the cursor to resume from in Stats.Cursor. Log
// pages are cacheable, so a clone costs the peer almost nothing. If the peer
// refuses the cursor (core.ErrMustReconcile: another node or an older log),
// or a page cannot be ingested for missing parents (a saved cursor ahead of
// what local holds), Clone falls back to Heal.
func (d *Driver) Clone(ctx context.Context, local Local, repo, cursor string) (Stats, error) {
	var st Stats
	limit := orDefault(d.PageLimit, DefaultPageLimit)
	heal := false
	// The next page is fetched while this one is decoded and ingested: the
	// cursor comes with the page, so the network and the decoding overlap.
	ctx, cancel := context.WithCancel(ctx)
	pages := make(chan fetchedPage, 1)
	go func() {
		defer close(pages)
		for cur := cursor; ; {
			page, err := d.Transport.Log(ctx, repo, cur, limit)
			select {
			case pages <- fetchedPage{page, err}:
			case <-ctx.Done():
				return
			}
			// An empty page is the tail whatever it claims, so a peer
			// cannot keep the loop spinning without progress.
			if err != nil || !page.More || len(page.Commits) == 0 || page.Next == "" {
				return
			}
			cur = page.Next
		}
	}()
	defer func() {
		cancel()
		for range pages { // the fetcher has ended once pages is closed
		}
	}()
	for f := range pages {
		page, err := f.page, f.err
		if errors.Is(err, core.ErrMustReconcile) {
			heal = true
			break
		}
		if err != nil {
			return st, fmt.Errorf("clone %q: log: %w", repo, err)
		}
		st.Pages++
		commits, n, err := decodeCommits(page.Commits)
		st.BytesReceived += n
		if err != nil {
			return st, fmt.Errorf("clone %q: log page: %w", repo, err)
		}
		st.Received += len(commits)
		if len(commits) > 0 {
			if err := local.Ingest(ctx, commits); errors.Is(err, core.ErrMissingParents) {
				heal = true
			} else if err != nil {
				return st, fmt.Errorf("clone %q: ingest: %w", repo, err)
			}
		}
		if page.Next != "" {
			cursor = page.Next
		}
	}
	if err := ctx.Err(); err != nil {
		return st, err
	}
	st.Cursor = cursor
	if heal {
		hs, err := d.Heal(ctx, local, repo)
		st.add(hs)
		st.Healed, st.Cursor = true, ""
		return st, err
	}
	return st, nil
}

// Heal reconciles local with the peer: a digest round, which is all it
// costs when already in sync, then rounds with filters until the sets are
// equal (typically two round trips in all). It fails, wrapping
// core.ErrConflict, if the sets are still different after MaxRounds (for
// example because the peer keeps rejecting a pushed commit).
func (d *Driver) Heal(ctx context.Context, local Local, repo string) (Stats, error) {
	var st Stats
	c := &Client{Rand: d.rand(), Policy: d.Policy, Limit: d.Limit, PushLimit: d.PushLimit, PushBytes: d.PushBytes, V1: d.V1, V2: d.V2}
	if c.Limit == 0 {
		c.Limit = MaxStream // version 1 lowers it to MaxCommits
	}
	maxRounds := orDefault(d.MaxRounds, DefaultMaxRounds)
	req := c.Start(local)
	var firstRejected *PushResult
	for {
		if st.Rounds == maxRounds {
			if firstRejected != nil {
				return st, fmt.Errorf("heal %q: %w: not in sync after %d rounds; the peer rejected %d commits, first %s: %s", repo, core.ErrConflict, st.Rounds, st.Rejected, firstRejected.ID, firstRejected.Reason)
			}
			return st, fmt.Errorf("heal %q: %w: not in sync after %d rounds", repo, core.ErrConflict, st.Rounds)
		}
		if err := ctx.Err(); err != nil {
			return st, err
		}
		resp, err := d.Transport.Sync(ctx, repo, req)
		for err != nil && st.Rounds == 0 && (req.V == Version2 || req.V == Version3) && errors.Is(err, core.ErrInvalid) {
			// A peer without this version refuses its "v": a version 2
			// gateway (v0.1.0) refuses 3, speak 2; an older one refuses
			// 2, speak version 1.
			if req.V == Version3 {
				c.V2 = true
			} else {
				c.V1 = true
			}
			req = c.Start(local)
			resp, err = d.Transport.Sync(ctx, repo, req)
		}
		if err != nil {
			return st, fmt.Errorf("heal %q: round %d: %w", repo, st.Rounds+1, err)
		}
		st.Rounds++
		st.Pushed += len(req.Commits)
		st.BytesSent += int64(req.EncodedLen())
		st.BytesReceived += int64(resp.EncodedLen())
		for _, x := range resp.Results {
			if x.Status != StatusRejected {
				continue
			}
			st.Rejected++
			if firstRejected == nil {
				firstRejected = &x
			}
			if d.OnRejected != nil {
				d.OnRejected(repo, x)
			}
		}
		commits, _, err := decodeCommits(resp.Commits)
		if err != nil {
			return st, fmt.Errorf("heal %q: round %d: %w", repo, st.Rounds, err)
		}
		st.Received += len(commits)
		if len(commits) > 0 {
			if err := local.Ingest(ctx, commits); err != nil && !errors.Is(err, core.ErrMissingParents) {
				return st, fmt.Errorf("heal %q: ingest: %w", repo, err)
			}
		}
		var done bool
		if req, done, err = c.Next(local, resp); err != nil {
			return st, fmt.Errorf("heal %q: round %d: %w", repo, st.Rounds, err)
		} else if done {
			return st, nil
		}
	}
}

// fetchedPage is what Clone's fetcher hands over: a page or why not.
type fetchedPage struct {
	page *LogPage
	err  error
}

// decodeCommits decodes raw commits strictly and returns their total size.
// A page is decoded on all cores: decoding (parsing and hashing every
// commit) is most of what a clone costs the client.
func decodeCommits(raw []json.RawMessage) ([]*core.Commit, int64, error) {
	var n int64
	for _, b := range raw {
		n += int64(len(b))
	}
	out := make([]*core.Commit, len(raw))
	errs := make([]error, len(raw))
	decode := func(from, to int) {
		for i := from; i < to; i++ {
			if out[i], errs[i] = core.DecodeCommit(raw[i]); errs[i] != nil {
				return
			}
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(raw)/minParallelDecode)
	if workers <= 1 {
		decode(0, len(raw))
	} else {
		var wg stdsync.WaitGroup
		per := (len(raw) + workers - 1) / workers
		for from := 0; from < len(raw); from += per {
			wg.Go(func() { decode(from, min(from+per, len(raw))) })
		}
		wg.Wait()
	}
	for i, err := range errs {
		if err != nil {
			return nil, n, fmt.Errorf("commits[%d]: %w", i, err)
		}
	}
	return out, n, nil
}

// minParallelDecode is the fewest commits per goroutine worth starting
// one for.
const minParallelDecode = 64
