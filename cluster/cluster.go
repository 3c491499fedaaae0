package cluster

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	stdsync "sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
)

// Config configures a Node. The zero value of every field is a usable
// default; with neither NATSURL nor Peers the node runs alone.
type Config struct {
	// NATSURL is the NATS server (nats://host:4222, comma-separated for
	// several; credentials may be in the URL). Empty: no live fan-out.
	NATSURL string
	// Peers are the base URLs of the other nodes for node-to-node sync
	// (http://gateway-b:8080). The node's own URL may be listed: a node
	// recognizes itself by node id and skips it, so every node can share
	// one list.
	Peers []string
	// NodeToken is a bearer token for peer requests whose principal is a
	// node (auth.NodeRole from an issuer trusted with nodeTokens), from
	// the operator's own issuer. NodeTokenFile is the same, read from a
	// file at every use (a rotated secret is picked up). Without either,
	// tokens are minted with NodeKey.
	NodeToken     string
	NodeTokenFile string
	// NodeKey is the node issuer key shared by the nodes (LoadNodeKey):
	// the node trusts its tokens as node tokens (Issuers) and mints its
	// own peer tokens with it.
	NodeKey ed25519.PrivateKey
	// HealInterval is the period of full node-to-node reconciliation
	// (jittered by ±10%); default 30 s.
	HealInterval time.Duration
	// DirtyDelay is how long a repository that NATS could not deliver
	// whole (a commit missing its parents or its session, a dropped
	// message) waits before it is reconciled, so that messages still in
	// flight can land first; default 200 ms.
	DirtyDelay time.Duration
	// ReplicationWait bounds how long a write's acknowledgement waits for
	// the NATS server to confirm it holds the write; default 2 s; negative:
	// acknowledge once durable here, without waiting.
	ReplicationWait time.Duration
	// ReconnectWait is the pause between NATS reconnection attempts;
	// default 500 ms.
	ReconnectWait time.Duration
	// PublishBuffer and IngestBuffer bound the queues between storage and
	// NATS in either direction (batches of commits); default 4096 each.
	// A full queue drops, and reconciliation heals what was dropped.
	PublishBuffer, IngestBuffer int
	// HTTPClient talks to peers; default a client with a 30 s timeout.
	HTTPClient *http.Client
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Now is the clock (token minting); default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.HealInterval == 0 {
		c.HealInterval = 30 * time.Second
	}
	if c.DirtyDelay == 0 {
		c.DirtyDelay = 200 * time.Millisecond
	}
	if c.ReplicationWait == 0 {
		c.ReplicationWait = 2 * time.Second
	}
	if c.ReconnectWait == 0 {
		c.ReconnectWait = 500 * time.Millisecond
	}
	if c.PublishBuffer == 0 {
		c.PublishBuffer = 4096
	}
	if c.IngestBuffer == 0 {
		c.IngestBuffer = 4096
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Log keys.
const (
	logRepo = "repo"
	logPeer = "peer"
	logErr  = "err"
)

// Cluster is the scale-out side of one gateway node: it publishes the
// node's appends on NATS, ingests the other nodes' publications, and
// reconciles with its peers. Build it with New, give it to node.Open as the
// node's Observer and Barrier (and its Issuers to the HTTP face), open the
// node, then Start.
type Cluster struct {
	cfg   Config
	log   *slog.Logger
	peers []*peerState

	node   Node
	nodeID string

	nc    *nats.Conn
	sub   *nats.Subscription
	pubq  chan pubItem
	inq   chan inMsg
	ack   *acker
	dirty *dirtySet
	// fullHeal asks the heal loop for a full pass (NATS reconnected,
	// messages dropped).
	fullHeal chan struct{}

	stats  counters
	misses missCache

	ctx     context.Context // heal, ingest, flusher
	cancel  context.CancelFunc
	pubStop chan struct{} // publisher
	wg      stdsync.WaitGroup
	pubWG   stdsync.WaitGroup

	started   atomic.Bool
	closeOnce stdsync.Once
}

type peerState struct {
	*peer
	// down is set while the peer does not answer (logged on change).
	down atomic.Bool
}

// New checks cfg and returns a Node that is not started yet.
func New(cfg Config) (*Cluster, error) {
	cfg.setDefaults()
	n := &Cluster{
		cfg:      cfg,
		log:      cfg.Logger,
		dirty:    newDirtySet(),
		fullHeal: make(chan struct{}, 1),
		pubStop:  make(chan struct{}),
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	if len(cfg.Peers) > 0 {
		var tokens tokenSource
		switch {
		case cfg.NodeToken != "":
			tokens = staticToken(cfg.NodeToken)
		case cfg.NodeTokenFile != "":
			tokens = fileToken(cfg.NodeTokenFile)
		case cfg.NodeKey != nil:
			tokens = &mintedToken{key: cfg.NodeKey, now: cfg.Now, sub: func() string { return "node." + n.nodeID }}
		default:
			return nil, fmt.Errorf("%w: peers need node credentials: a node token or the node issuer key", core.ErrInvalid)
		}
		seen := map[string]bool{}
		for _, s := range cfg.Peers {
			base, err := ParsePeer(s)
			if err != nil {
				return nil, err
			}
			if !seen[base] {
				seen[base] = true
				n.peers = append(n.peers, &peerState{peer: &peer{base: base, client: cfg.HTTPClient, tokens: tokens}})
			}
		}
	}
	if cfg.NATSURL != "" {
		n.pubq = make(chan pubItem, cfg.PublishBuffer)
		n.inq = make(chan inMsg, cfg.IngestBuffer)
		n.ack = newAcker()
	}
	return n, nil
}

// Enabled reports whether the node has anything to do (NATS or peers).
func (n *Cluster) Enabled() bool { return n.cfg.NATSURL != "" || len(n.peers) > 0 }

// Issuers returns the token issuers the node's server must trust for node
// tokens: the node issuer, if the node has its key.
func (n *Cluster) Issuers() []auth.IssuerConfig {
	if n.cfg.NodeKey == nil || !n.Enabled() {
		return nil
	}
	return []auth.IssuerConfig{NodeIssuer(n.cfg.NodeKey)}
}

// Start connects to NATS (retrying in the background if it is not up) and
// starts the publisher, the ingester and the heal loop. nd is the opened
// node whose Observer and Barrier this cluster is.
func (n *Cluster) Start(nd Node) error {
	if !n.started.CompareAndSwap(false, true) {
		return errors.New("cluster: Start called twice")
	}
	n.node = nd
	n.nodeID = nd.ID()
	if n.cfg.NATSURL != "" {
		if err := n.connect(); err != nil {
			return err
		}
		n.pubWG.Add(1)
		go func() { defer n.pubWG.Done(); n.publishLoop() }()
		n.wg.Add(2)
		go func() { defer n.wg.Done(); n.ingestLoop(n.ctx) }()
		go func() { defer n.wg.Done(); n.ack.flushLoop(n.ctx, n.nc, n.cfg.ReplicationWait) }()
	}
	if len(n.peers) > 0 {
		n.wg.Add(1)
		go func() { defer n.wg.Done(); n.healLoop(n.ctx) }()
	}
	n.log.Info("cluster node started", "node", n.nodeID, "nats", n.cfg.NATSURL != "", "peers", len(n.peers), "heal_interval", n.cfg.HealInterval)
	return nil
}

// Close stops the heal loop and the ingester, publishes what is queued,
// and closes the NATS connection. Call it after the HTTP server stopped
// and before the node closes.
func (n *Cluster) Close() error {
	n.closeOnce.Do(func() {
		if n.sub != nil {
			_ = n.sub.Unsubscribe()
		}
		n.cancel()
		n.wg.Wait()
		close(n.pubStop)
		n.pubWG.Wait()
		if n.nc != nil {
			if n.nc.IsConnected() {
				_ = n.nc.FlushTimeout(2 * time.Second)
			}
			n.nc.Close()
		}
	})
	return nil
}

// HealAll reconciles every repository with every peer once, now, and
// returns the first error (peers that are down included).
func (n *Cluster) HealAll(ctx context.Context) error {
	return n.healPass(ctx, nil)
}

// requestFullHeal asks the heal loop for a full pass soon.
func (n *Cluster) requestFullHeal() {
	select {
	case n.fullHeal <- struct{}{}:
	default:
	}
}

// markDirty schedules repo for reconciliation after DirtyDelay.
func (n *Cluster) markDirty(repo string) { n.dirty.add(repo) }

// Stats counts what the cluster did since it started.
type Stats struct {
	Published      int64 // commits published on NATS
	PublishDropped int64 // commits not published (queue full, NATS refused, too large)
	Received       int64 // commits received from NATS
	Appended       int64 // of those, new here
	Rejected       int64 // of those, rejected (left to reconciliation)
	IngestDropped  int64 // commits dropped because the ingest queue was full
	BadMessages    int64 // messages that did not decode
	HealPasses     int64 // reconciliation passes done (full or of dirty repositories)
	HealPulled     int64 // commits received from peers by reconciliation
	HealPushed     int64 // commits sent to peers by reconciliation
	SessionLookups int64 // session records found on peers (LookupSession)
	HealErrors     int64 // failed repository heals (peer down included)
}

type counters struct {
	published, publishDropped, received, appended, rejected, ingestDropped, badMessages atomic.Int64
	healPasses, healPulled, healPushed, healErrors                                      atomic.Int64
	sessionLookups                                                                      atomic.Int64
}

// Stats returns the node's counters.
func (n *Cluster) Stats() Stats {
	c := &n.stats
	return Stats{
		Published: c.published.Load(), PublishDropped: c.publishDropped.Load(),
		Received: c.received.Load(), Appended: c.appended.Load(), Rejected: c.rejected.Load(),
		IngestDropped: c.ingestDropped.Load(), BadMessages: c.badMessages.Load(),
		HealPasses: c.healPasses.Load(), HealPulled: c.healPulled.Load(), HealPushed: c.healPushed.Load(), HealErrors: c.healErrors.Load(),
		SessionLookups: c.sessionLookups.Load(),
	}
}
