package goat

import (
	"context"
	"errors"
	"fmt"
	stdsync "sync"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
)

// The long-poll fallback. A proxy that buffers responses holds an event
// stream's bytes until the stream ends, so its events arrive minutes late
// or never; requests that end (log pages, sync rounds) pass through it
// unharmed. A stream that does not say `ready` within Config.ReadyTimeout
// is taken to be buffered: the client then long polls each open
// repository's log (GET .../log?after=CURSOR&wait=N, which the gateway
// answers as soon as a commit arrives) and tries the stream again every
// Config.StreamProbeInterval. The first probe that gets `ready` in time
// stops the polls; `ready` heals every repository, as after any
// reconnect, so nothing that arrived in between is missed.

// errStreamBuffered: the event stream did not say `ready` in time.
var errStreamBuffered = fmt.Errorf("%w: the event stream sent no ready in time (a proxy buffers it?)", ErrOffline)

// pollLimit is the page size of a long poll: a burst of commits comes in
// pages this large, the next asked for at once.
const pollLimit = 1000

// poller runs one long-poll loop per followed repository.
type poller struct {
	c      *Client
	ctx    context.Context
	cancel context.CancelFunc
	wg     stdsync.WaitGroup

	mu    stdsync.Mutex
	repos map[*Repo]struct{}
}

// startPolling switches the client to long polls (idempotent) and makes
// them follow repos; repositories opened later are added by the next call.
func (c *Client) startPolling(ctx context.Context, repos []*Repo) {
	c.streamMu.Lock()
	p := c.poll
	if p == nil {
		p = &poller{c: c, repos: map[*Repo]struct{}{}}
		p.ctx, p.cancel = context.WithCancel(ctx)
		c.poll = p
	}
	c.streamMu.Unlock()
	p.follow(repos)
	c.statMu.Lock()
	changed := !c.polling
	c.polling = true
	c.statMu.Unlock()
	if changed {
		c.log.Info("event stream buffered: long polling the log instead")
		c.statusChanged()
	}
}

// stopPolling ends the long polls, if any, and waits for them.
func (c *Client) stopPolling() {
	c.streamMu.Lock()
	p := c.poll
	c.poll = nil
	c.streamMu.Unlock()
	if p == nil {
		return
	}
	p.cancel()
	p.wg.Wait()
	c.statMu.Lock()
	c.polling = false
	c.statMu.Unlock()
	c.log.Info("long polling stopped")
	c.statusChanged()
}

func (p *poller) follow(repos []*Repo) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range repos {
		if _, ok := p.repos[r]; ok || p.ctx.Err() != nil {
			continue
		}
		p.repos[r] = struct{}{}
		p.wg.Add(1)
		go func() { defer p.wg.Done(); p.pollRepo(p.ctx, r) }()
	}
}

// pollRepo follows one repository's log until ctx ends. It starts at the
// log's current end and asks for a heal, which brings what came before
// (what the stream missed while it was buffered) in one digest round.
func (p *poller) pollRepo(ctx context.Context, r *Repo) {
	c := p.c
	cursor := ""
	var backoff time.Duration
	for ctx.Err() == nil {
		err := func() error {
			if cursor == "" {
				if err := r.ensureCreated(ctx); err != nil {
					return err
				}
				info, err := c.api.GetRepo(ctx, r.name)
				if err != nil {
					return err
				}
				// Taken before the heal starts, so the heal covers
				// everything before it.
				cursor = info.Cursor
				r.requestHeal()
				// The gateway answers: live from the first poll on,
				// which may be held for PollWait.
				c.markOnline()
			}
			page, err := c.api.LogWait(ctx, r.name, cursor, pollLimit, c.cfg.PollWait)
			if err != nil {
				return err
			}
			if len(page.Commits) > 0 {
				cs := make([]*core.Commit, 0, len(page.Commits))
				for _, raw := range page.Commits {
					cm, err := core.DecodeCommit(raw)
					if err != nil || cm.Repo != r.name {
						c.log.Warn("bad commit in the log", logKeyRepo, r.name, logKeyErr, err)
						r.requestHeal()
						continue
					}
					cs = append(cs, cm)
				}
				if err := r.ingest(ctx, cs); err != nil && !isCanceled(err) {
					if !errors.Is(err, core.ErrMissingParents) {
						c.log.Warn("ingest polled commits", logKeyRepo, r.name, logKeyErr, err)
					}
					r.requestHeal()
				}
			}
			if page.Next != "" {
				cursor = page.Next
			}
			return nil
		}()
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
			backoff = 0
			c.markOnline()
			continue
		case errors.Is(err, core.ErrMustReconcile):
			// Another node, or a rebuilt log: start again from its end
			// (the heal this asks for covers the rest).
			cursor = ""
			continue
		case isOffline(err):
			c.setOnline(false, err)
		default:
			r.setErr(r.remoteErr(err))
		}
		backoff = c.nextBackoff(backoff)
		c.log.Debug("long poll failed", logKeyRepo, r.name, logKeyErr, err, logKeyRetryIn, backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(jitter(backoff)):
		}
	}
}

// markOnline records that a long poll reached the gateway.
func (c *Client) markOnline() {
	c.statMu.Lock()
	online := c.online
	c.statMu.Unlock()
	if !online {
		c.setOnline(true, nil)
	}
}
