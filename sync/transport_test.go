package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
)

// memTransport serves a memSet through a Server, with every message going
// through its JSON encoding and the package's decoders, and checks the
// protocol against the oracle on every round: a pushed commit is one the
// server lacks, an answered commit is one the client lacks.
type memTransport struct {
	tb     testing.TB
	srv    *Server
	server *memSet
	client *memSet // for the oracle checks; may be nil
	logID  LogID

	// repo, if set, is the one repository served: others are not found.
	repo string

	rounds      int
	commitBytes int64 // bytes of commits carried by sync rounds
	trace       []roundTrace
	// sync, if set, replaces the round (for fault injection).
	sync func(ctx context.Context, repo string, req *Request) (*Response, error)
}

type roundTrace struct {
	req  *Request
	resp *Response
}

func (m *memTransport) Sync(ctx context.Context, repo string, req *Request) (*Response, error) {
	m.tb.Helper()
	if m.sync != nil {
		return m.sync(ctx, repo, req)
	}
	if m.repo != "" && repo != m.repo {
		return nil, fmt.Errorf("sync %q: %w", repo, core.ErrNotFound)
	}
	m.rounds++
	b, err := json.Marshal(req)
	if err != nil {
		m.tb.Fatalf("marshal request: %v", err)
	}
	if got, want := len(b), req.EncodedLen(); got != want {
		m.tb.Fatalf("request is %d bytes, EncodedLen %d", got, want)
	}
	dreq, err := DecodeRequest(b)
	if err != nil {
		m.tb.Fatalf("decode request: %v", err)
	}
	pushed := make([]*core.Commit, len(dreq.Commits))
	for i, raw := range dreq.Commits {
		m.commitBytes += int64(len(raw))
		c, err := core.DecodeCommit(raw)
		if err != nil {
			m.tb.Fatalf("decode pushed commit: %v", err)
		}
		if m.client != nil && m.server.has(c.ID) {
			m.tb.Fatalf("round %d: pushed commit %s the server has", m.rounds, c.ID)
		}
		pushed[i] = c
	}
	// One verdict per pushed commit, as the gateway gives them.
	var results []PushResult
	for _, c := range pushed {
		r := PushResult{ID: c.ID.String(), Status: StatusAccepted}
		if m.server.has(c.ID) {
			r.Status = StatusDuplicate
		} else if err := m.server.Ingest(ctx, []*core.Commit{c}); errors.Is(err, core.ErrMissingParents) {
			r.Status, r.Reason, r.ProblemType = StatusRejected, err.Error(), problemMissingParents
		} else if err != nil {
			m.tb.Fatalf("server ingest: %v", err)
		}
		results = append(results, r)
	}
	resp, err := m.srv.Answer(m.server, dreq)
	if err != nil {
		return nil, err
	}
	resp.Results = results
	rb, err := json.Marshal(resp)
	if err != nil {
		m.tb.Fatalf("marshal response: %v", err)
	}
	if got, want := len(rb), resp.EncodedLen(); got != want {
		m.tb.Fatalf("response is %d bytes, EncodedLen %d", got, want)
	}
	dresp, err := DecodeResponse(rb)
	if err != nil {
		m.tb.Fatalf("decode response: %v", err)
	}
	for _, raw := range dresp.Commits {
		m.commitBytes += int64(len(raw))
		if m.client == nil {
			continue
		}
		var probe struct {
			ID core.CommitID `json:"id"`
		}
		if err := json.Unmarshal(raw, &probe); err != nil {
			m.tb.Fatal(err)
		}
		if m.client.has(probe.ID) {
			m.tb.Fatalf("round %d: answered commit %s the client has", m.rounds, probe.ID)
		}
	}
	m.trace = append(m.trace, roundTrace{req: dreq, resp: dresp})
	return dresp, nil
}

// problemMissingParents is the gateway's problem type for a commit whose
// parents are missing (api/problem.go; this package cannot import it).
const problemMissingParents = "https://goat-gateway.dev/problems/missing-parents"

// Log serves the server's log; only materialized commits can be served.
func (m *memTransport) Log(_ context.Context, repo string, cursor string, limit int) (*LogPage, error) {
	if m.repo != "" && repo != m.repo {
		return nil, fmt.Errorf("log %q: %w", repo, core.ErrNotFound)
	}
	var off uint64
	if cursor != "" {
		c, err := DecodeCursor(cursor)
		if err != nil {
			return nil, err
		}
		if err := c.For(m.logID, uint64(len(m.server.ids))); err != nil {
			return nil, err
		}
		off = c.Offset
	}
	page := &LogPage{}
	end := min(off+uint64(limit), uint64(len(m.server.ids)))
	for _, id := range m.server.ids[off:end] {
		c, ok := m.server.Get(id)
		if !ok {
			return nil, fmt.Errorf("log: ghost id %s", id)
		}
		b, err := c.MarshalJSON()
		if err != nil {
			return nil, err
		}
		page.Commits = append(page.Commits, b)
	}
	page.Next = EncodeCursor(m.logID, end)
	page.More = end < uint64(len(m.server.ids))
	return page, nil
}

// checkConverged compares both sides with the plain set-difference oracle:
// each must hold exactly the union of what they started with.
func checkConverged(tb testing.TB, client, server *memSet, ghosts int, union map[core.CommitID]bool) {
	tb.Helper()
	for name, s := range map[string]*memSet{"client": client, "server": server} {
		if got, want := len(s.ids), ghosts+len(union); got != want {
			tb.Fatalf("%s holds %d ids, want %d", name, got, want)
		}
		own := s.ownIDs()
		if got, want := len(own), len(union); got != want {
			tb.Fatalf("%s holds %d commits, want %d", name, got, want)
		}
		for id := range union {
			if !own[id] {
				tb.Fatalf("%s lacks %s", name, id)
			}
		}
	}
	if client.Digest() != server.Digest() {
		tb.Fatalf("digests differ: %v vs %v", client.Digest(), server.Digest())
	}
}

func unionOf(sets ...[]*core.Commit) map[core.CommitID]bool {
	u := map[core.CommitID]bool{}
	for _, s := range sets {
		for _, c := range s {
			u[c.ID] = true
		}
	}
	return u
}
