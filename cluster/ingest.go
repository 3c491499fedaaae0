package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	stdsync "sync"

	"github.com/nats-io/nats.go"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/node"
)

// inMsg is one decoded message from another node.
type inMsg struct {
	repo    string
	commits []*core.Commit
}

// Ingest batching: the ingester drains up to maxDrain queued messages at a
// time and appends each repository's commits in one call (one group
// commit), at most ingestParallel repositories at once.
const (
	maxDrain       = 256
	ingestParallel = 4
)

// connect opens the NATS connection and subscribes. An unreachable server
// is not an error: the client keeps trying, and every (re)connection
// triggers a full reconciliation for what was missed meanwhile.
func (n *Cluster) connect() error {
	opts := []nats.Option{
		nats.Name("goat-gateway " + n.nodeID),
		nats.NoEcho(), // a node never ingests its own publications
		nats.MaxReconnects(-1),
		nats.ReconnectWait(n.cfg.ReconnectWait),
		nats.RetryOnFailedConnect(true),
		nats.ConnectHandler(func(nc *nats.Conn) {
			n.log.Info("nats connected", "url", nc.ConnectedUrlRedacted())
			n.requestFullHeal()
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			n.log.Info("nats reconnected; reconciling with peers", "url", nc.ConnectedUrlRedacted())
			n.requestFullHeal()
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				n.log.Warn("nats disconnected", logErr, err)
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrSlowConsumer) {
				n.requestFullHeal()
			}
			n.log.Warn("nats", logErr, err)
		}),
	}
	nc, err := nats.Connect(n.cfg.NATSURL, opts...)
	if err != nil {
		return fmt.Errorf("nats %s: %w", redactURL(n.cfg.NATSURL), err)
	}
	sub, err := nc.Subscribe(subscribeSubject, n.onMessage)
	if err != nil {
		nc.Close()
		return fmt.Errorf("nats subscribe: %w", err)
	}
	// The ingester drains its own bounded queue; this only bounds what
	// waits for the callback.
	_ = sub.SetPendingLimits(65536, 256<<20)
	n.nc, n.sub = nc, sub
	return nil
}

// onMessage decodes a message and queues it for the ingester; a full
// queue drops it and marks the repository for reconciliation.
func (n *Cluster) onMessage(m *nats.Msg) {
	repo, commits, err := DecodeMessage(m.Subject, m.Data)
	if err != nil {
		n.stats.badMessages.Add(1)
		n.log.Debug("bad message", "subject", m.Subject, logErr, err)
		if repo, rerr := RepoOfSubject(m.Subject); rerr == nil {
			n.markDirty(repo)
		}
		return
	}
	n.stats.received.Add(int64(len(commits)))
	select {
	case n.inq <- inMsg{repo: repo, commits: commits}:
	default:
		n.stats.ingestDropped.Add(int64(len(commits)))
		n.markDirty(repo)
	}
}

// ingestLoop appends received commits until ctx is done. sys.sessions goes
// first, then sys.schemas, then the other repositories in parallel, so that
// a session arriving in the same drain as the commits it signed is known
// before they are verified.
func (n *Cluster) ingestLoop(ctx context.Context) {
	for {
		var first inMsg
		select {
		case <-ctx.Done():
			return
		case first = <-n.inq:
		}
		byRepo := map[string][]*core.Commit{first.repo: first.commits}
	drain:
		for i := 1; i < maxDrain; i++ {
			select {
			case m := <-n.inq:
				byRepo[m.repo] = append(byRepo[m.repo], m.commits...)
			default:
				break drain
			}
		}
		// sys.repos before the repositories too: the record of a deleted
		// repository's re-creation precedes its announcement.
		for _, sys := range []string{auth.SessionsRepo, auth.SchemasRepo, node.ReposRepo} {
			if cs, ok := byRepo[sys]; ok {
				n.ingestMessage(ctx, sys, cs)
				delete(byRepo, sys)
			}
		}
		repos := make([]string, 0, len(byRepo))
		for r := range byRepo {
			repos = append(repos, r)
		}
		slices.Sort(repos)
		sem := make(chan struct{}, ingestParallel)
		var wg stdsync.WaitGroup
		for _, r := range repos {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				n.ingestMessage(ctx, r, byRepo[r])
			}()
		}
		wg.Wait()
	}
}

// ingestMessage appends commits received over NATS. Anything rejected
// (a parent or the session not here yet, or a bad commit) marks the
// repository for reconciliation, which fetches what was missing.
func (n *Cluster) ingestMessage(ctx context.Context, repo string, commits []*core.Commit) {
	if len(commits) == 0 { // an announcement: the repository exists
		if _, err := n.node.Ensure(ctx, repo, node.OriginReplica); err != nil {
			n.log.Warn("create announced repository", logRepo, repo, logErr, err)
		}
		return
	}
	res, err := n.node.Ingest(ctx, repo, commits, node.OriginReplica)
	if err != nil {
		if ctx.Err() == nil {
			n.log.Warn("ingest replicated commits", logRepo, repo, logErr, err)
			n.markDirty(repo)
		}
		return
	}
	var appended, rejected int64
	var why error
	for _, x := range res {
		switch x.Status {
		case node.Appended:
			appended++
		case node.Rejected:
			rejected++
			why = x.Err
		}
	}
	n.stats.appended.Add(appended)
	if rejected > 0 {
		n.stats.rejected.Add(rejected)
		n.log.Debug("replicated commits rejected; reconciling", logRepo, repo, "rejected", rejected, logErr, why)
		n.markDirty(repo)
	}
}
