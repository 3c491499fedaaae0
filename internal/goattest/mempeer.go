package goattest

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	stdsync "sync"

	"github.com/goat-gateway/goat-gateway/api"
	"github.com/goat-gateway/goat-gateway/core"
	gsync "github.com/goat-gateway/goat-gateway/sync"
)

// MemPeer is a peer of the sync protocol in memory, for tests that need a
// peer and no gateway: a gsync.Transport serving its own commit set (one
// repository) the way the gateway serves a repository, with every
// message going through its JSON encoding and the sync package's
// decoders. It is also a gsync.Local, so it can sit on either side.
type MemPeer struct {
	repo  string
	logID gsync.LogID
	srv   gsync.Server

	mu     stdsync.Mutex
	ids    []core.CommitID
	byID   map[core.CommitID]*core.Commit
	digest gsync.Digest
}

var (
	_ gsync.Transport = (*MemPeer)(nil)
	_ gsync.Local     = (*MemPeer)(nil)
)

// NewMemPeer returns an empty peer serving repo.
func NewMemPeer(repo string) *MemPeer {
	p := &MemPeer{repo: repo, byID: map[core.CommitID]*core.Commit{}, srv: gsync.Server{Rand: rand.Reader}}
	if _, err := rand.Read(p.logID[:]); err != nil {
		panic(err)
	}
	return p
}

// Add stores commits (in a topological order) and panics if one lacks a
// parent: seeding a peer with a broken graph is a broken test.
func (p *MemPeer) Add(commits ...*core.Commit) {
	if err := p.Ingest(context.Background(), commits); err != nil {
		panic(fmt.Sprintf("goattest: MemPeer.Add: %v", err))
	}
}

// Digest implements gsync.Set.
func (p *MemPeer) Digest() gsync.Digest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.digest
}

// Walk implements gsync.Set, in arrival order.
func (p *MemPeer) Walk(fn func(core.CommitID) bool) {
	p.mu.Lock()
	ids := p.ids[:len(p.ids):len(p.ids)]
	p.mu.Unlock()
	for _, id := range ids {
		if !fn(id) {
			return
		}
	}
}

// Get implements gsync.Set.
func (p *MemPeer) Get(id core.CommitID) (*core.Commit, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.byID[id]
	return c, ok
}

// Ingest implements gsync.Local.
func (p *MemPeer) Ingest(_ context.Context, commits []*core.Commit) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	missing := 0
	for _, c := range commits {
		if p.ingestLocked(c) == errMissing {
			missing++
		}
	}
	if missing > 0 {
		return fmt.Errorf("%w: %d commits", core.ErrMissingParents, missing)
	}
	return nil
}

var errMissing = fmt.Errorf("%w: a parent is not present", core.ErrMissingParents)

// ingestLocked stores c and returns the push status it earns, or an error
// for a commit it cannot store.
func (p *MemPeer) ingestLocked(c *core.Commit) error {
	if c.Repo != p.repo {
		return fmt.Errorf("%w: commit of %q pushed to %q", core.ErrInvalid, c.Repo, p.repo)
	}
	if _, ok := p.byID[c.ID]; ok {
		return errDuplicate
	}
	for _, par := range c.Parents {
		if _, ok := p.byID[par]; !ok {
			return errMissing
		}
	}
	p.byID[c.ID] = c
	p.ids = append(p.ids, c.ID)
	p.digest.Add(c.ID)
	return nil
}

var errDuplicate = errors.New("duplicate")

// Log implements gsync.Transport.
func (p *MemPeer) Log(_ context.Context, repo, cursor string, limit int) (*gsync.LogPage, error) {
	if repo != p.repo {
		return nil, fmt.Errorf("log %q: %w", repo, core.ErrNotFound)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var off uint64
	if cursor != "" {
		c, err := gsync.DecodeCursor(cursor)
		if err != nil {
			return nil, err
		}
		if err := c.For(p.logID, uint64(len(p.ids))); err != nil {
			return nil, err
		}
		off = c.Offset
	}
	if limit <= 0 || limit > gsync.MaxCommits {
		limit = gsync.MaxCommits
	}
	end := min(off+uint64(limit), uint64(len(p.ids)))
	page := &gsync.LogPage{Commits: []json.RawMessage{}}
	for _, id := range p.ids[off:end] {
		b, err := p.byID[id].MarshalJSON()
		if err != nil {
			return nil, err
		}
		page.Commits = append(page.Commits, b)
	}
	page.Next = gsync.EncodeCursor(p.logID, end)
	page.More = end < uint64(len(p.ids))
	return page, nil
}

// Sync implements gsync.Transport: it ingests the pushed commits with a
// verdict for each, as the gateway does, and answers the round.
func (p *MemPeer) Sync(_ context.Context, repo string, req *gsync.Request) (*gsync.Response, error) {
	if repo != p.repo {
		return nil, fmt.Errorf("sync %q: %w", repo, core.ErrNotFound)
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	dreq, err := gsync.DecodeRequest(b)
	if err != nil {
		return nil, err
	}
	var results []gsync.PushResult
	p.mu.Lock()
	for _, raw := range dreq.Commits {
		results = append(results, p.pushLocked(raw))
	}
	p.mu.Unlock()
	resp, err := p.srv.Answer(p, dreq)
	if err != nil {
		return nil, err
	}
	resp.Results = results
	rb, err := json.Marshal(resp)
	if err != nil {
		return nil, err
	}
	return gsync.DecodeResponse(rb)
}

func (p *MemPeer) pushLocked(raw json.RawMessage) gsync.PushResult {
	c, err := core.DecodeCommit(raw)
	if err != nil {
		return rejected(core.ZeroID.String(), err)
	}
	switch err := p.ingestLocked(c); {
	case err == nil:
		return gsync.PushResult{ID: c.ID.String(), Status: gsync.StatusAccepted}
	case err == errDuplicate:
		return gsync.PushResult{ID: c.ID.String(), Status: gsync.StatusDuplicate}
	default:
		return rejected(c.ID.String(), err)
	}
}

// rejected is the verdict on a commit the peer refused, with the problem
// type the gateway gives that error.
func rejected(id string, err error) gsync.PushResult {
	return gsync.PushResult{ID: id, Status: gsync.StatusRejected, Reason: err.Error(), ProblemType: api.ProblemFor(err).Type}
}
