package auth

import (
	"fmt"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
)

// MaxFutureSkew is how far ahead of the receiving node's clock a new
// commit's ts may be. Without a bound, a writer could pick a ts that wins
// every last-writer-wins register until that date.
const MaxFutureSkew = 5 * time.Minute

// VerifyCommit decides whether a new commit may enter this node: a commit
// pushed by a client (POST commits, a sync round) or created by the
// gateway. It checks, in order:
//
//  1. c is not a merge commit (those are verified by recomputing them from
//     their parents, in the merge package);
//  2. the session c.Author names exists, c's id recomputes, and c.Sig is
//     that session's signature of the id: the author field is the signing
//     session, so a commit signed by any other key fails here, and since
//     the repository is part of the id, so does one replayed into another
//     repository;
//  3. the session was valid at c.TS and is still valid now: a revoked or
//     expired session gets nothing new in, whatever ts it claims;
//  4. c.TS is at most MaxFutureSkew ahead of now;
//  5. mayWrite allows the session's principal (owner and the roles it
//     registered with) to write c.Repo. Pass Rules.CanWrite.
//
// The caller must also check that c.Repo is the repository it is writing
// to. Errors wrap core.ErrInvalid, core.ErrBadSignature,
// core.ErrUnauthenticated (unknown, expired or revoked session; also
// ErrSessionExpired, ErrSessionRevoked or core.ErrNotFound) or
// core.ErrForbidden.
func VerifyCommit(c *core.Commit, sessions SessionLookup, now time.Time, mayWrite func(p Principal, repo string) bool) error {
	return VerifyCommitChecked(c, sessions, now, mayWrite, nil)
}

// VerifyCommitChecked is VerifyCommit for a commit of a batch whose
// signatures CheckSigs checked beforehand (in parallel): if checked
// records c against its session's key, step 2's id and signature checks
// are not repeated; everything else is checked as VerifyCommit does.
func VerifyCommitChecked(c *core.Commit, sessions SessionLookup, now time.Time, mayWrite func(p Principal, repo string) bool, checked *CheckedSigs) error {
	s, err := verifySigned(c, sessions, checked)
	if err != nil {
		return err
	}
	if err := s.ValidAt(now); err != nil {
		return fmt.Errorf("commit %s: %w", c.ID, err)
	}
	if ts := time.UnixMilli(c.TS); ts.After(now.Add(MaxFutureSkew)) {
		return fmt.Errorf("%w: commit %s: ts %s is more than %s ahead of this node's clock", core.ErrInvalid, c.ID, formatDate(ts), MaxFutureSkew)
	}
	if mayWrite == nil || !mayWrite(s.Principal(), c.Repo) {
		return fmt.Errorf("%w: commit %s: %s (session %s) may not write %s", core.ErrForbidden, c.ID, s.Owner, s.ID, c.Repo)
	}
	return nil
}

// VerifyReplicatedCommit decides whether a commit that already exists in
// the system may be copied here: one received from another gateway node
// (node-to-node sync, NATS), or by an SDK from its gateway. It checks steps
// 1 to 3 of VerifyCommit except "valid now": a session revoked or expired
// since keeps its earlier commits replicating, or replicas would diverge
// forever. Authorization is not rechecked: the node that first ingested the
// commit checked it with VerifyCommit, and a later rules change is not
// retroactive.
//
// A commit claiming a ts from before its session's revocation can be forged
// by whoever stole the revoked key, so this must never be used for commits
// a client pushes, only for commits from a principal with Node set.
func VerifyReplicatedCommit(c *core.Commit, sessions SessionLookup) error {
	return VerifyReplicatedCommitChecked(c, sessions, nil)
}

// VerifyReplicatedCommitChecked is VerifyReplicatedCommit with the
// signature checks CheckSigs made beforehand (see VerifyCommitChecked).
func VerifyReplicatedCommitChecked(c *core.Commit, sessions SessionLookup, checked *CheckedSigs) error {
	_, err := verifySigned(c, sessions, checked)
	return err
}

// verifySigned checks steps 1 to 3 of VerifyCommit, "valid now" excepted,
// and returns the signing session. The id and signature checks are
// skipped when checked records c against the session's key.
func verifySigned(c *core.Commit, sessions SessionLookup, checked *CheckedSigs) (Session, error) {
	if c.IsMerge() {
		return Session{}, fmt.Errorf("%w: commit %s: merge commits are verified by recomputation (merge package), not by signature", core.ErrInvalid, c.ID)
	}
	s, err := sessions.Session(c.Author)
	if err != nil {
		return Session{}, fmt.Errorf("%w: commit %s: author session: %w", core.ErrUnauthenticated, c.ID, err)
	}
	if !checked.has(c, s.PublicKey) {
		if err := c.VerifySig(s.PublicKey); err != nil {
			return Session{}, fmt.Errorf("commit %s by session %s: %w", c.ID, s.ID, err)
		}
	}
	if err := s.ValidAt(time.UnixMilli(c.TS)); err != nil {
		return Session{}, fmt.Errorf("commit %s signed at ts %s: %w", c.ID, formatDate(time.UnixMilli(c.TS)), err)
	}
	return s, nil
}
