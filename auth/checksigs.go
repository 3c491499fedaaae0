package auth

import (
	"crypto/ed25519"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/goat-gateway/goat-gateway/core"
)

// parallelSigsMin is the smallest batch whose signatures CheckSigs spreads
// over several cores: below it the goroutines cost more than they save.
const parallelSigsMin = 16

// CheckedSigs records the commits of a batch whose id recomputed and whose
// signature verified against their author session's public key, as
// CheckSigs found them. VerifyCommitChecked and
// VerifyReplicatedCommitChecked skip those two checks for a recorded
// commit (the same *core.Commit, with the same id, signature and session
// key) and do every other check as VerifyCommit does. The nil value
// records nothing.
type CheckedSigs struct {
	ok map[*core.Commit]checkedSig
}

type checkedSig struct {
	id  core.CommitID
	sig string
	pub string
}

// has reports whether c, as it is now, was checked against pub.
func (cs *CheckedSigs) has(c *core.Commit, pub ed25519.PublicKey) bool {
	if cs == nil {
		return false
	}
	e, ok := cs.ok[c]
	return ok && e.id == c.ID && e.sig == string(c.Sig) && e.pub == string(pub)
}

// Len is the number of commits recorded.
func (cs *CheckedSigs) Len() int {
	if cs == nil {
		return 0
	}
	return len(cs.ok)
}

// CheckSigs recomputes the ids of commits and verifies their Ed25519
// signatures against their author sessions (found with sessions), spread
// over the machine's cores: signature verification is most of the CPU a
// pushed commit costs, and a push's commits are independent. Only what
// passes is recorded; a merge commit, a commit skip returns true for (one
// already stored, say), one whose session is unknown and one that fails
// are left for the full check, which then reports why. The verification
// is crypto/ed25519's check (core.VerifyingKey, over the key the session
// directory decoded once), the same as VerifyCommit's, so a commit passes
// here exactly when its signature check would pass there.
func CheckSigs(commits []*core.Commit, sessions SessionLookup, skip func(*core.Commit) bool) *CheckedSigs {
	return CheckSigsIDsChecked(commits, nil, sessions, skip)
}

// CheckSigsIDsChecked is CheckSigs for a batch some of whose ids the
// caller has already checked against their content: idChecked[i] true
// says commits[i].ID is the SHA-256 of its content (as
// core.DecodeCanonicalCommitAt checks it, over the bytes received), and
// only its signature is verified. A nil idChecked checks every id.
func CheckSigsIDsChecked(commits []*core.Commit, idChecked []bool, sessions SessionLookup, skip func(*core.Commit) bool) *CheckedSigs {
	type job struct {
		c      *core.Commit
		pub    ed25519.PublicKey
		key    *core.VerifyingKey
		idDone bool
		ok     bool
	}
	jobs := make([]job, 0, len(commits))
	for i, c := range commits {
		if c == nil || c.IsMerge() || len(c.Sig) != ed25519.SignatureSize || (skip != nil && skip(c)) {
			continue
		}
		s, err := sessions.Session(c.Author)
		if err != nil || len(s.PublicKey) != ed25519.PublicKeySize {
			continue
		}
		k := s.verifyingKey()
		if k == nil {
			continue // no signature verifies: the full check says why
		}
		jobs = append(jobs, job{c: c, pub: s.PublicKey, key: k, idDone: i < len(idChecked) && idChecked[i]})
	}
	check := func(j *job) {
		if !j.idDone {
			id, err := j.c.ComputeID()
			if err != nil || id != j.c.ID {
				return
			}
		}
		j.ok = j.c.VerifySigOfIDKey(j.key) == nil
	}
	workers := 1
	if len(jobs) >= parallelSigsMin {
		workers = runtime.GOMAXPROCS(0)
	}
	if workers <= 1 {
		for i := range jobs {
			check(&jobs[i])
		}
	} else {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for i := int(next.Add(1) - 1); i < len(jobs); i = int(next.Add(1) - 1) {
					check(&jobs[i])
				}
			})
		}
		wg.Wait()
	}
	cs := &CheckedSigs{ok: make(map[*core.Commit]checkedSig, len(jobs))}
	for _, j := range jobs {
		if j.ok {
			cs.ok[j.c] = checkedSig{id: j.c.ID, sig: string(j.c.Sig), pub: string(j.pub)}
		}
	}
	return cs
}
