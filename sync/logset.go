package sync

import (
	"context"

	"github.com/goat-gateway/goat-gateway/core"
)

// Log is what a repository log offers the protocol: the node's storage and
// the Go SDK's replica are both a storage.Repo, which implements it.
type Log interface {
	// State returns the count and XOR of the ids, as of one instant.
	State() (count int, digest [32]byte)
	// LogLen returns the number of records in the log.
	LogLen() int64
	// EachID calls fn for the records from offset from on, in log order
	// (a topological order), until fn returns false.
	EachID(from int64, fn func(offset int64, id core.CommitID) bool)
	// Commit returns a stored commit.
	Commit(id core.CommitID) (*core.Commit, bool)
}

// TSLog is an optional interface of a Log that gives each record's ts
// without loading the commit (storage.Repo does), for version 2's time
// partitions.
type TSLog interface {
	EachIDTS(from int64, fn func(offset int64, id core.CommitID, ts int64) bool)
}

// LogSet is the one adapter from a repository log to a Set and a Local.
//
// Made by SetOf it is a snapshot, for the server's side of one round:
// Digest is the state when it was made and Walk stops at the records the
// log had then, so the answer is consistent while other writers append.
//
// Made by LocalOf it is live, for the driver's side of a heal: Digest and
// Walk see every record, those the heal itself ingested included.
type LogSet struct {
	log    Log
	digest Digest
	end    int64
	ingest func(context.Context, []*core.Commit) error
}

var (
	_ Local    = (*LogSet)(nil)
	_ TSWalker = (*LogSet)(nil)
)

// SetOf returns a snapshot Set of log.
func SetOf(log Log) *LogSet {
	end := log.LogLen()
	count, xor := log.State()
	return &LogSet{log: log, end: end, digest: Digest{Count: int64(count), XOR: Sum(xor)}}
}

// LocalOf returns a live Local of log whose Ingest is ingest.
func LocalOf(log Log, ingest func(context.Context, []*core.Commit) error) *LogSet {
	return &LogSet{log: log, end: -1, ingest: ingest}
}

// Digest implements Set.
func (s *LogSet) Digest() Digest {
	if s.end < 0 {
		count, xor := s.log.State()
		return Digest{Count: int64(count), XOR: Sum(xor)}
	}
	return s.digest
}

// Walk implements Set.
func (s *LogSet) Walk(fn func(core.CommitID) bool) {
	s.log.EachID(0, func(off int64, id core.CommitID) bool { return (s.end < 0 || off < s.end) && fn(id) })
}

// WalkTS implements TSWalker.
func (s *LogSet) WalkTS(fn func(core.CommitID, int64) bool) {
	if tl, ok := s.log.(TSLog); ok {
		tl.EachIDTS(0, func(off int64, id core.CommitID, ts int64) bool { return (s.end < 0 || off < s.end) && fn(id, ts) })
		return
	}
	s.Walk(func(id core.CommitID) bool {
		var ts int64
		if c, ok := s.log.Commit(id); ok {
			ts = c.TS
		}
		return fn(id, ts)
	})
}

// Get implements Set.
func (s *LogSet) Get(id core.CommitID) (*core.Commit, bool) { return s.log.Commit(id) }

// Ingest implements Local; a LogSet made by SetOf refuses to ingest.
func (s *LogSet) Ingest(ctx context.Context, commits []*core.Commit) error {
	if s.ingest == nil {
		return core.ErrForbidden
	}
	return s.ingest(ctx, commits)
}
