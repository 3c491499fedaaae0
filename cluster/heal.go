package cluster

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	stdsync "sync"
	"time"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/node"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

// healParallel is how many repositories one pass heals at once per peer.
const healParallel = 4

// maxHealRuns bounds the Heal calls for one repository in one pass: a
// Heal stops after gsync.DefaultMaxRounds rounds of up to gsync.MaxCommits
// commits each, and a large divergence (a wiped node) takes several.
const maxHealRuns = 50

// dirtySet is the repositories waiting for a prompt reconciliation.
type dirtySet struct {
	mu     stdsync.Mutex
	repos  map[string]bool
	signal chan struct{}
}

func newDirtySet() *dirtySet {
	return &dirtySet{repos: map[string]bool{}, signal: make(chan struct{}, 1)}
}

func (d *dirtySet) add(repo string) {
	d.mu.Lock()
	d.repos[repo] = true
	d.mu.Unlock()
	select {
	case d.signal <- struct{}{}:
	default:
	}
}

func (d *dirtySet) take() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.repos))
	for r := range d.repos {
		out = append(out, r)
	}
	clear(d.repos)
	return out
}

// healLoop runs a full pass at start (a node that lost its files refills
// here), then every HealInterval and whenever NATS (re)connects or drops
// messages, and a pass over the dirty repositories DirtyDelay after one is
// marked.
func (n *Cluster) healLoop(ctx context.Context) {
	full := true
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for {
		if full {
			full = false
			if err := n.healPass(ctx, nil); err != nil && ctx.Err() == nil {
				n.log.Debug("reconciliation pass incomplete", logErr, err)
			}
			timer.Reset(jitter(n.cfg.HealInterval))
		}
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
			full = true
		case <-n.fullHeal:
			full = true
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		case <-n.dirty.signal:
			wait := time.NewTimer(n.cfg.DirtyDelay)
			select {
			case <-ctx.Done():
				wait.Stop()
				return
			case <-wait.C:
			}
			if repos := n.dirty.take(); len(repos) > 0 {
				_ = n.healPass(ctx, repos)
			}
		}
	}
}

func jitter(d time.Duration) time.Duration {
	return d - d/10 + time.Duration(rand.Int64N(int64(d/5)+1))
}

// healPass reconciles repos (nil: every repository of this node and of
// each peer) with every peer, peers in parallel. sys.sessions goes first,
// so that the sessions that signed the other repositories' commits are
// known when those arrive, then sys.schemas.
func (n *Cluster) healPass(ctx context.Context, repos []string) error {
	defer n.stats.healPasses.Add(1)
	errs := make([]error, len(n.peers))
	var wg stdsync.WaitGroup
	for i, p := range n.peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = n.healPeer(ctx, p, repos)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (n *Cluster) healPeer(ctx context.Context, p *peerState, only []string) error {
	id, err := p.info(ctx)
	if err != nil {
		if !p.down.Swap(true) {
			n.log.Warn("peer unreachable", logPeer, p.base, logErr, err)
		}
		n.stats.healErrors.Add(1)
		return fmt.Errorf("peer %s: %w", p.base, err)
	}
	if p.down.Swap(false) {
		n.log.Info("peer reachable again", logPeer, p.base)
	}
	if id == n.nodeID {
		return nil // this node itself, listed among the peers
	}
	var names []string
	if only == nil {
		if names, err = p.repos(ctx); err != nil {
			n.stats.healErrors.Add(1)
			return fmt.Errorf("peer %s: list repositories: %w", p.base, err)
		}
		mine, err := n.node.Repos()
		if err != nil {
			return err
		}
		names = append(names, mine...)
	} else {
		names = append([]string{auth.SessionsRepo}, only...)
	}
	names = healOrder(names)
	start := time.Now()
	var (
		mu             stdsync.Mutex
		pulled, pushed int
		firstErr       error
		failed         int
	)
	heal := func(repo string) {
		st, err := n.healRepo(ctx, p.peer, repo)
		mu.Lock()
		defer mu.Unlock()
		pulled += st.Received
		pushed += st.Pushed
		if err != nil && ctx.Err() == nil {
			failed++
			n.stats.healErrors.Add(1)
			if firstErr == nil {
				firstErr = fmt.Errorf("peer %s: %w", p.base, err)
			}
			n.log.Warn("reconciliation failed", logPeer, p.base, logRepo, repo, logErr, err)
		}
	}
	i := 0
	for ; i < len(names) && strings.HasPrefix(names[i], "sys."); i++ {
		heal(names[i])
	}
	sem := make(chan struct{}, healParallel)
	var wg stdsync.WaitGroup
	for _, repo := range names[i:] {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			heal(repo)
		}()
	}
	wg.Wait()
	n.stats.healPulled.Add(int64(pulled))
	n.stats.healPushed.Add(int64(pushed))
	if pulled+pushed > 0 || failed > 0 {
		n.log.Info("reconciled with peer", logPeer, p.base, "repos", len(names), "pulled", pulled, "pushed", pushed, "failed", failed, "took", time.Since(start).Round(time.Millisecond))
	} else {
		n.log.Debug("in sync with peer", logPeer, p.base, "repos", len(names), "took", time.Since(start).Round(time.Millisecond))
	}
	return firstErr
}

// healOrder returns the unique names, sys.sessions first, then sys.schemas,
// then the other system repositories, then the rest, sorted.
func healOrder(names []string) []string {
	rank := func(s string) int {
		switch {
		case s == auth.SessionsRepo:
			return 0
		case s == auth.SchemasRepo:
			return 1
		case strings.HasPrefix(s, "sys."):
			return 2
		}
		return 3
	}
	out := slices.Clone(names)
	slices.SortFunc(out, func(a, b string) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		return strings.Compare(a, b)
	})
	return slices.Compact(out)
}

// healRepo reconciles one repository with one peer. A repository this node
// lacks is created and, the first time, filled from the peer's log (cheap,
// cacheable pages); one the peer lacks is created there so that its
// commits can be pushed.
func (n *Cluster) healRepo(ctx context.Context, p *peer, repo string) (gsync.Stats, error) {
	var total gsync.Stats
	l, release, err := n.node.Local(repo, node.OriginReplica)
	if errors.Is(err, core.ErrNotFound) {
		// Deleted (sys.repos): a peer that still has it has not applied
		// the deletion yet, and must not bring it back.
		return total, nil
	}
	if err != nil {
		return total, err
	}
	defer release()
	d := gsync.Driver{Transport: p, OnRejected: func(repo string, r gsync.PushResult) {
		n.log.Warn("peer rejected a commit", logPeer, p.base, logRepo, repo, "commit", r.ID, "problem", r.ProblemType, "reason", r.Reason)
	}}
	if l.Digest().Count == 0 {
		st, err := d.Clone(ctx, l, repo, "")
		addStats(&total, st)
		if errors.Is(err, core.ErrNotFound) {
			return total, p.createRepo(ctx, repo)
		}
		if err != nil {
			return total, err
		}
	}
	created := false
	for run := 0; run < maxHealRuns; run++ {
		st, err := d.Heal(ctx, l, repo)
		addStats(&total, st)
		switch {
		case errors.Is(err, core.ErrNotFound) && !created:
			created = true
			if err := p.createRepo(ctx, repo); err != nil {
				return total, err
			}
		case errors.Is(err, core.ErrConflict) && st.Received+st.Pushed > 0:
			// Out of rounds while still moving commits: keep going.
		default:
			return total, err
		}
	}
	return total, fmt.Errorf("heal %q: %w: not in sync after %d runs", repo, core.ErrConflict, maxHealRuns)
}

func addStats(dst *gsync.Stats, s gsync.Stats) {
	dst.Pages += s.Pages
	dst.Rounds += s.Rounds
	dst.Pushed += s.Pushed
	dst.Received += s.Received
	dst.BytesSent += s.BytesSent
	dst.BytesReceived += s.BytesReceived
}

// redactURL hides a password in a URL for logs.
func redactURL(s string) string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if u, err := url.Parse(strings.TrimSpace(part)); err == nil {
			part = u.Redacted()
		}
		out = append(out, part)
	}
	return strings.Join(out, ",")
}
