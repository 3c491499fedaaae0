package cluster

import (
	"context"
	"errors"
	"fmt"
	stdsync "sync"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/node"
)

var _ node.SessionSource = (*Cluster)(nil)

// Session lookups on peers (issue 18): a session registered on one node
// reaches the others through sys.sessions (NATS, then reconciliation), and
// a commit it signed can arrive first, on another repository's subject or
// in a client's push to another node. Before rejecting such a commit, the
// node asks its peers for the record (GET /v1/sessions/{id}) and verifies
// it against the root keys, which the nodes of one deployment share.
const (
	// lookupTimeout bounds one peer's answer.
	lookupTimeout = 2 * time.Second
	// missTTL is how long an id no peer knows is not asked again, so
	// commits with made-up authors cannot make every push cost a round
	// of peer requests.
	missTTL = 10 * time.Second
	// maxMisses bounds the remembered misses.
	maxMisses = 10_000
)

// missCache remembers ids no peer knew.
type missCache struct {
	mu stdsync.Mutex
	at map[string]time.Time
}

func (m *missCache) recent(id string, now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.at[id]
	return ok && now.Sub(t) < missTTL
}

func (m *missCache) note(id string, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.at == nil || len(m.at) >= maxMisses {
		m.at = map[string]time.Time{}
	}
	m.at[id] = now
}

// LookupSession implements node.SessionSource: the first peer that has the
// record answers it. The node verifies it before using it. Without peers,
// or when none has it, the error wraps core.ErrNotFound.
func (n *Cluster) LookupSession(ctx context.Context, id string) (core.SessionRecord, error) {
	now := n.cfg.Now()
	if len(n.peers) == 0 || n.misses.recent(id, now) {
		return core.SessionRecord{}, fmt.Errorf("session %s: %w on peers", id, core.ErrNotFound)
	}
	var errs []error
	for _, p := range n.peers {
		if p.down.Load() {
			continue
		}
		c, err := p.conn()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, lookupTimeout)
		rec, _, err := c.SessionRecord(pctx, id)
		cancel()
		if err == nil {
			n.stats.sessionLookups.Add(1)
			return rec, nil
		}
		errs = append(errs, fmt.Errorf("peer %s: %w", p.base, err))
	}
	n.misses.note(id, now)
	return core.SessionRecord{}, fmt.Errorf("session %s: %w on peers: %w", id, core.ErrNotFound, errors.Join(errs...))
}
