package node

import (
	"context"
	"errors"
	"fmt"
	stdsync "sync"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/storage"
)

// Quotas per owner (the principal's sub; anonymous callers count as one
// owner): how many repositories they created, and how many sessions they
// hold live. Both answer core.ErrRateLimited with the quota in the detail.
//
// Where the counts live: a session record names its owner, so live
// sessions are counted from the session directory itself. A repository
// log does not, so every repository a caller creates gets a record in the
// system repository sys.repos (item = repository name, data {"owner":
// sub}), written by this node like a session record. It survives restarts
// (loaded with the other system repositories at Open) and replicates to the
// other nodes like any system record, so a cluster counts an owner's
// creations on every node. Repositories created by nodes, by replication
// or before this record existed have no owner and count for nobody.

// ReposRepo is the system repository recording who created which
// repository, for the per-owner quota.
const ReposRepo = "sys.repos"

// Default quotas: far above what one user of a normal app needs.
const (
	DefaultMaxReposPerOwner    = 1000
	DefaultMaxSessionsPerOwner = 100
)

// anonymousOwner is the quota owner of callers without a token; a token's
// sub cannot be empty, so it names no one else.
const anonymousOwner = ""

func quotaOwner(p auth.Principal) string {
	if p.Anonymous {
		return anonymousOwner
	}
	return p.Sub
}

// quotas holds the per-owner indexes the quotas are checked against.
type quotas struct {
	mu       stdsync.Mutex
	repoOf   map[string]string              // repository -> owner
	repos    map[string]int                 // owner -> repositories recorded
	pending  map[string]int                 // owner -> creations under way
	sessions map[string]map[string]struct{} // owner -> session ids
	// reserved holds, by repository, the creations of it under way. A
	// reservation counts in pending until the sys.repos record of the
	// repository is noted (noteRepo ends every reservation of the name
	// under the same lock: the record counts in their place) or the
	// creation gives it back without having written one, so the count
	// neither drops nor doubles while sysLoop notes a record.
	reserved map[string]map[*repoReservation]struct{}
}

// repoReservation is one creation of an owner's quota under way.
type repoReservation struct {
	owner, repo string
	recorded    bool // its record is written: only noteRepo ends it
	done        bool
}

func newQuotas() *quotas {
	return &quotas{repoOf: map[string]string{}, repos: map[string]int{}, pending: map[string]int{}, sessions: map[string]map[string]struct{}{}, reserved: map[string]map[*repoReservation]struct{}{}}
}

// noteRepo records that owner created repo (from sys.repos). The
// creations of repo under way end here, under the same lock: the
// repository exists, and its record counts in their place.
func (q *quotas) noteRepo(repo, owner string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for res := range q.reserved[repo] {
		q.releaseLocked(res)
	}
	if old, ok := q.repoOf[repo]; ok {
		if old == owner {
			return
		}
		q.repos[old]--
	}
	q.repoOf[repo] = owner
	q.repos[owner]++
}

// ownerOf returns the recorded owner of repo.
func (q *quotas) ownerOf(repo string) (string, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	owner, ok := q.repoOf[repo]
	return owner, ok
}

// forgetRepo stops counting repo for its owner (it was deleted).
func (q *quotas) forgetRepo(repo string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if owner, ok := q.repoOf[repo]; ok {
		delete(q.repoOf, repo)
		if q.repos[owner]--; q.repos[owner] <= 0 {
			delete(q.repos, owner)
		}
	}
}

// reserveRepo takes one creation of repo from owner's quota, counting
// creations under way so that a burst of concurrent creations cannot
// overshoot it. The caller ends the reservation with releaseRepo, which
// gives it back unless recordedRepo said its record was written.
func (q *quotas) reserveRepo(owner, repo string, max int) (*repoReservation, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if max > 0 && q.repos[owner]+q.pending[owner] >= max {
		return nil, fmt.Errorf("%w: this caller has created %d repositories, the most allowed per owner; reuse one of them (the quota is the gateway's max-repos-per-owner setting)", core.ErrRateLimited, q.repos[owner])
	}
	q.pending[owner]++
	res := &repoReservation{owner: owner, repo: repo}
	if q.reserved[repo] == nil {
		q.reserved[repo] = map[*repoReservation]struct{}{}
	}
	q.reserved[repo][res] = struct{}{}
	return res, nil
}

// recordedRepo says res's creation wrote its sys.repos record: res
// counts until noteRepo notes the record (if it already has, res has
// ended).
func (q *quotas) recordedRepo(res *repoReservation) {
	q.mu.Lock()
	defer q.mu.Unlock()
	res.recorded = true
}

// releaseRepo gives res back if its creation wrote no record; it does
// nothing once noteRepo ended res.
func (q *quotas) releaseRepo(res *repoReservation) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !res.recorded {
		q.releaseLocked(res)
	}
}

func (q *quotas) releaseLocked(res *repoReservation) {
	if res.done {
		return
	}
	res.done = true
	if q.pending[res.owner]--; q.pending[res.owner] <= 0 {
		delete(q.pending, res.owner)
	}
	if set := q.reserved[res.repo]; set != nil {
		if delete(set, res); len(set) == 0 {
			delete(q.reserved, res.repo)
		}
	}
}

// reposOf returns how many repositories owner created.
func (q *quotas) reposOf(owner string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.repos[owner]
}

// noteSession indexes a session by its owner.
func (q *quotas) noteSession(owner, id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	ids := q.sessions[owner]
	if ids == nil {
		ids = map[string]struct{}{}
		q.sessions[owner] = ids
	}
	ids[id] = struct{}{}
}

// sessionIDs returns the ids of owner's sessions, live or not.
func (q *quotas) sessionIDs(owner string) []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]string, 0, len(q.sessions[owner]))
	for id := range q.sessions[owner] {
		out = append(out, id)
	}
	return out
}

// noteSessionRecord indexes the session record id by its owner, once the
// directory holds it.
func (n *Node) noteSessionRecord(id string) {
	if s, err := n.sessions.Session(id); err == nil && !s.Node {
		n.quotas.noteSession(s.Owner, id)
	}
}

// liveSessions counts owner's sessions that are neither expired nor
// revoked now.
func (n *Node) liveSessions(owner string) int {
	live := 0
	at := n.now()
	for _, id := range n.quotas.sessionIDs(owner) {
		if _, err := n.sessions.Lookup(id, at); err == nil {
			live++
		}
	}
	return live
}

// checkSessionQuota refuses a new session for owner past the quota. The
// caller holds sessMu, so the count cannot change before its write.
func (n *Node) checkSessionQuota(owner string) error {
	max := n.cfg.MaxSessionsPerOwner
	if max <= 0 {
		return nil
	}
	if live := n.liveSessions(owner); live >= max {
		return fmt.Errorf("%w: this caller holds %d live sessions, the most allowed per owner; reuse a session key or revoke one (DELETE /v1/sessions/{id}) first", core.ErrRateLimited, live)
	}
	return nil
}

// LiveSessions returns how many live sessions owner holds (for operators
// and tests).
func (n *Node) LiveSessions(owner string) int { return n.liveSessions(owner) }

// ReposCreatedBy returns how many repositories owner created, as the quota
// counts them (for operators and tests).
func (n *Node) ReposCreatedBy(owner string) int { return n.quotas.reposOf(owner) }

// ensureForClient opens repo for p, creating it if absent within p's
// repository quota, and records the creation in sys.repos. The record is
// written after the repository exists: a crash between the two leaves a
// repository that counts for nobody, never a quota spent on nothing.
func (n *Node) ensureForClient(ctx context.Context, p auth.Principal, repo string) (*storage.Repo, func(), bool, error) {
	if r, release, err := n.store.Repo(repo); err == nil || !errors.Is(err, core.ErrNotFound) {
		return r, release, false, err
	}
	owner := quotaOwner(p)
	res, err := n.quotas.reserveRepo(owner, repo, n.cfg.MaxReposPerOwner)
	if err != nil {
		return nil, nil, false, err
	}
	// Given back unless a record was written (recordedRepo), which then
	// counts in its place.
	defer n.quotas.releaseRepo(res)
	rec := map[string]any{"owner": owner}
	// A deleted repository's new life is recorded before it exists, and
	// held on the Barrier: the record must reach the other nodes before
	// the repository's announcement, which they refuse while the name is
	// deleted (deleterepo.go).
	life, _ := n.lives.get(repo)
	if life.deleted {
		rec["generation"] = float64(n.generationFor(repo))
		if err := n.putSystem(ctx, ReposRepo, repo, core.AnySchema, rec, true); err != nil {
			return nil, nil, false, err
		}
		n.quotas.recordedRepo(res)
	}
	r, release, created, err := n.ensure(repo, OriginClient)
	if err != nil {
		return nil, nil, false, err
	}
	if created && !life.deleted {
		// Not held on the Barrier: the caller's acknowledgement waits for
		// the creation, and the record replicates like any other. It
		// names the life the log was created in (a deletion applied
		// since lives was read above starts the next one).
		if gen, err := n.store.Generation(repo); err == nil && gen > 0 {
			rec["generation"] = float64(gen)
		}
		if err := n.putSystem(ctx, ReposRepo, repo, core.AnySchema, rec, false); err != nil {
			n.log.Warn("repository created without its owner record", "repo", repo, "err", err)
		} else {
			n.quotas.recordedRepo(res)
		}
	}
	return r, release, created, nil
}
