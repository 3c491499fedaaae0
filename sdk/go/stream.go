package goat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	stdsync "sync"
	"sync/atomic"
	"time"

	"github.com/goat-gateway/goat-gateway/client"
	"github.com/goat-gateway/goat-gateway/core"
)

// The event stream: one GET /v1/events for every open repository. It is
// the client's link to the gateway: it probes the gateway with backoff
// while it is down, resumes with Last-Event-ID (the gateway replays what
// was missed from its log), and on every `ready` asks each repository to
// heal (a digest round when nothing was missed), which also covers a
// gateway that restarted or lost its data without saying so. A stream
// that does not say `ready` within Config.ReadyTimeout is buffered by a
// proxy: the client long polls instead until the stream works (poll.go).

// restartDelay gathers repositories opened in a burst into one restart.
const restartDelay = 25 * time.Millisecond

// restartStream makes the stream reconnect with the current set of
// repositories.
func (c *Client) restartStream() {
	c.streamMu.Lock()
	cancel := c.streamCancel
	c.streamRestart = cancel != nil
	c.streamMu.Unlock()
	if cancel != nil {
		time.AfterFunc(restartDelay, cancel)
	}
	select {
	case c.streamWake <- struct{}{}:
	default:
	}
}

func (c *Client) streamLoop(ctx context.Context) {
	defer c.stopPolling()
	var backoff time.Duration
	lastID := ""
	retryHint := 0
	for {
		repos := c.openRepos()
		if len(repos) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-c.streamWake:
				continue
			}
		}
		sctx, cancel := context.WithCancel(ctx)
		c.streamMu.Lock()
		c.streamCancel, c.streamRestart = cancel, false
		poll := c.poll
		c.streamMu.Unlock()
		if poll != nil {
			// A probe of the stream is starting: repositories opened
			// since the last one are polled meanwhile.
			poll.follow(repos)
		}
		up, err := c.runStream(sctx, cancel, repos, &lastID, &retryHint)
		cancel()
		c.streamMu.Lock()
		restart := c.streamRestart
		c.streamCancel, c.streamRestart = nil, false
		c.streamMu.Unlock()
		if ctx.Err() != nil {
			c.setOnline(false, nil)
			return
		}
		if restart && (err == nil || isCanceled(err)) {
			continue
		}
		if errors.Is(err, errStreamBuffered) {
			c.startPolling(ctx, repos)
			// The polls and the heals they ask for cover what came
			// before; a probe replaying from an old id would take
			// longer than ReadyTimeout for no gain.
			lastID = ""
			backoff = 0
			if !c.waitProbe(ctx) {
				return
			}
			continue
		}
		c.stopPolling()
		if err == nil || isCanceled(err) {
			err = fmt.Errorf("%w: event stream ended", ErrOffline)
		}
		c.setOnline(false, err)
		lo := c.cfg.ReconnectMin
		if lo <= 0 {
			hint := retryHint
			if hint <= 0 {
				hint = 2000
			}
			lo = time.Duration(hint) * time.Millisecond
		}
		if up || backoff == 0 {
			backoff = lo
		} else {
			backoff = min(2*backoff, max(c.cfg.ReconnectMax, lo))
		}
		if up {
			// The gateway we were connected to went away; the next one
			// (or the same one, restarted) may have lost what we set up.
			c.resetRemote()
		}
		c.log.Debug("event stream down", logKeyErr, err, logKeyRetryIn, backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(jitter(backoff)):
		case <-c.streamWake:
		}
	}
}

// waitProbe waits, while the long polls run, until it is time to try
// the event stream again; repositories opened meanwhile are polled at
// once. It returns false when ctx ends.
func (c *Client) waitProbe(ctx context.Context) bool {
	probe := time.NewTimer(jitter(c.cfg.StreamProbeInterval))
	defer probe.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-probe.C:
			return true
		case <-c.streamWake:
			c.startPolling(ctx, c.openRepos())
		}
	}
}

// runStream connects and reads one event stream until it ends. up reports
// whether it got as far as `ready`; a stream that does not within
// Config.ReadyTimeout is cut and reported as errStreamBuffered.
func (c *Client) runStream(ctx context.Context, cancel context.CancelFunc, repos []*Repo, lastID *string, retryHint *int) (up bool, err error) {
	if err := c.ensureSession(ctx); err != nil {
		return false, err
	}
	if err := c.ensureSchemas(ctx); err != nil {
		return false, err
	}
	var names []string
	byName := map[string]*Repo{}
	for _, r := range repos {
		if r.isDeleted() {
			continue // following it would create it again
		}
		if err := r.ensureCreated(ctx); err != nil {
			if isOffline(err) || isCanceled(err) {
				return false, err
			}
			// This repository cannot be followed (forbidden, not
			// found): keep the others live.
			r.setErr(err)
			continue
		}
		names = append(names, r.name)
		byName[r.name] = r
	}
	if len(names) == 0 {
		return false, fmt.Errorf("%w: no repository can be followed", core.ErrForbidden)
	}
	// Started before the request: a proxy that buffers the whole
	// response holds back even its headers.
	var ready, buffered atomic.Bool
	readyTimer := time.AfterFunc(c.cfg.ReadyTimeout, func() {
		if !ready.Load() {
			buffered.Store(true)
			cancel()
		}
	})
	defer readyTimer.Stop()
	defer func() {
		if buffered.Load() && !up && ctx.Err() != nil {
			err = errStreamBuffered
		}
	}()
	resp, err := c.api.Events(ctx, names, *lastID)
	if errors.Is(err, core.ErrNotFound) {
		// One of them cannot be read (or vanished): find which, and
		// follow the others.
		names = c.followable(ctx, names, byName)
		if len(names) == 0 {
			return false, err
		}
		resp, err = c.api.Events(ctx, names, *lastID)
	}
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()

	idle := time.AfterFunc(c.cfg.StreamIdleTimeout, cancel)
	defer idle.Stop()
	rd := newSSEReader(resp.Body, c.cfg.MaxEventBytes)
	rd.onLine = func() { idle.Reset(c.cfg.StreamIdleTimeout) }

	events := make(chan sseEvent, 256)
	var readErr error
	var wg stdsync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(events)
		for {
			ev, err := rd.Next()
			if err != nil {
				readErr = err
				return
			}
			if ev.Name == "ready" {
				// It got through: the stream is not buffered, whatever
				// the time its batch takes to apply.
				ready.Store(true)
			}
			select {
			case events <- ev:
			case <-ctx.Done():
				readErr = ctx.Err()
				return
			}
		}
	}()
	defer func() {
		cancel()
		resp.Body.Close()
		wg.Wait()
	}()

	for ev := range events {
		batch := []sseEvent{ev}
	drain:
		for len(batch) < 256 {
			select {
			case ev, ok := <-events:
				if !ok {
					break drain
				}
				batch = append(batch, ev)
			default:
				break drain
			}
		}
		gotReady, expired := c.handleEvents(ctx, byName, batch)
		if n := batch[len(batch)-1]; n.ID != "" {
			*lastID = n.ID
		}
		*retryHint = batch[len(batch)-1].Retry
		if gotReady && !up {
			up = true
			readyTimer.Stop()
			c.stopPolling()
			c.setOnline(true, nil)
			for _, r := range byName {
				r.requestHeal()
			}
		}
		if expired {
			return up, fmt.Errorf("%w: the token expired", core.ErrUnauthenticated)
		}
	}
	wg.Wait()
	if readErr == io.EOF {
		readErr = nil
	}
	if readErr != nil && ctx.Err() == nil {
		readErr = client.NetError(ctx, readErr)
	}
	if readErr == nil && ctx.Err() != nil {
		readErr = ctx.Err()
	}
	return up, readErr
}

// followable returns the repositories of names that the gateway shows
// this caller; the others get the error and are created again (a gateway
// that lost its data) at the next connection.
func (c *Client) followable(ctx context.Context, names []string, byName map[string]*Repo) []string {
	var out []string
	for _, name := range names {
		_, err := c.api.GetRepo(ctx, name)
		if err == nil {
			out = append(out, name)
			continue
		}
		r := byName[name]
		delete(byName, name)
		r.setErr(r.remoteErr(err))
	}
	return out
}

// handleEvents applies a batch of events: commits are ingested per
// repository in one append each; anything that cannot be applied asks the
// repository to heal.
func (c *Client) handleEvents(ctx context.Context, repos map[string]*Repo, batch []sseEvent) (ready, expired bool) {
	type pendingIngest struct {
		r       *Repo
		commits []*core.Commit
	}
	var order []string
	ingests := map[string]*pendingIngest{}
	add := func(r *Repo, cm *core.Commit) {
		p := ingests[r.name]
		if p == nil {
			p = &pendingIngest{r: r}
			ingests[r.name] = p
			order = append(order, r.name)
		}
		p.commits = append(p.commits, cm)
	}
	for _, ev := range batch {
		switch ev.Name {
		case "ready":
			ready = true
		case "expired":
			expired = true
		case "commit":
			var d struct {
				Repo   string          `json:"repo"`
				Commit json.RawMessage `json:"commit"`
			}
			if json.Unmarshal([]byte(ev.Data), &d) != nil {
				c.log.Warn("malformed commit event", logKeyEvent, ev.ID)
				continue
			}
			r := repos[d.Repo]
			if r == nil {
				continue
			}
			cm, err := core.DecodeCommit(d.Commit)
			if err != nil || cm.Repo != d.Repo {
				c.log.Warn("bad commit in event", logKeyRepo, d.Repo, logKeyErr, err)
				r.requestHeal()
				continue
			}
			add(r, cm)
		case "commits":
			var d struct {
				Repo string   `json:"repo"`
				IDs  []string `json:"ids"`
			}
			if json.Unmarshal([]byte(ev.Data), &d) != nil {
				continue
			}
			r := repos[d.Repo]
			if r == nil {
				continue
			}
			for _, id := range d.IDs {
				cid, err := core.ParseCommitID(id)
				if err != nil {
					continue
				}
				if r.st.Has(cid) {
					continue
				}
				cm, err := c.fetchCommit(ctx, d.Repo, id)
				if err != nil || cm.Repo != d.Repo {
					r.requestHeal()
					break
				}
				add(r, cm)
			}
		case "reset":
			var d struct {
				Repo string `json:"repo"`
				Code string `json:"code"`
			}
			if json.Unmarshal([]byte(ev.Data), &d) == nil && repos[d.Repo] != nil {
				if d.Code == "deleted" {
					repos[d.Repo].markDeleted()
				} else {
					repos[d.Repo].requestHeal()
				}
			}
		}
	}
	for _, name := range order {
		p := ingests[name]
		// Ordered by the gateway's log: parents come first.
		p.commits = slices.Clip(p.commits)
		if err := p.r.ingest(ctx, p.commits); err != nil && !isCanceled(err) {
			if !errors.Is(err, core.ErrMissingParents) {
				c.log.Warn("ingest events", logKeyRepo, name, logKeyErr, err)
			}
			p.r.requestHeal()
		}
	}
	return ready, expired
}

// fetchCommit gets one commit by id (for `commits` events, which announce
// commits too large to inline).
func (c *Client) fetchCommit(ctx context.Context, repo, id string) (*core.Commit, error) {
	raw, err := c.api.GetCommit(ctx, repo, id)
	if err != nil {
		return nil, err
	}
	return core.DecodeCommit(raw)
}
