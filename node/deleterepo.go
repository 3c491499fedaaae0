package node

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"strings"
	stdsync "sync"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/storage"
)

// Deleting a repository (DESIGN section 10: role admin; the log is moved
// aside, not erased).
//
// The deletion is a record in sys.repos, so that it survives restarts and
// replicates: the repository's item there becomes a tombstone
// ({"isDeleted": true, "generation": g, ...}). Every node that applies it
// (this one at once, peers when the record reaches them, any node at its
// next start) retires its own log of the repository into the data
// directory's deleted/ directory (storage.Store.Retire), tells the live
// streams subscribed to it (a reset event with code "deleted"), and from
// then on refuses to create the name for another node (replication,
// announcements, reconciliation), so that a peer that still had the
// repository cannot bring it back.
//
// A client may create the name again (createRepo or a first write, as for
// any new repository): that starts generation g+1, recorded in sys.repos
// as the creation's record ({"owner", "generation": g+1}), and empty. Each
// node records the generation of its own log next to it
// (storage.Store.SetGeneration), so that a node that missed both the
// deletion and the re-creation (it was down) finds its log older than the
// name's generation and retires it rather than merging the old life into
// the new one. docs/decisions.md has the reasoning.

// repoLife is what sys.repos says of one repository name.
type repoLife struct {
	gen     uint64
	deleted bool
}

// repoLives indexes sys.repos by name, and serialises per name what
// compares this node's log of a name with its record: applying a record
// (which retires a log older than the record) and creating a log (which
// records the log's generation first, from the record). Without that,
// sysLoop could read the generation of a log not created yet (0), a
// replica's creation then create the new life's log, and sysLoop retire it
// as older than the record it was applying: the re-created repository
// gone from one node for good (TestNode_LifeOfANameIsSerialised). The
// locks are striped: creations and records are rare, and two names that
// share a stripe only wait for each other's few file operations.
type repoLives struct {
	mu    stdsync.Mutex
	m     map[string]repoLife
	seed  maphash.Seed
	names [64]stdsync.Mutex
}

func newRepoLives() *repoLives { return &repoLives{m: map[string]repoLife{}, seed: maphash.MakeSeed()} }

// lock takes the lock of name's life and returns its unlock.
func (l *repoLives) lock(name string) func() {
	mu := &l.names[maphash.String(l.seed, name)%uint64(len(l.names))]
	mu.Lock()
	return mu.Unlock
}

func (l *repoLives) get(name string) (repoLife, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok := l.m[name]
	return v, ok
}

func (l *repoLives) set(name string, v repoLife) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.m[name] = v
}

// genOf reads a record's generation (JSON numbers decode as float64).
func genOf(data map[string]any) uint64 {
	if f, ok := data["generation"].(float64); ok && f > 0 && f < 1<<53 {
		return uint64(f)
	}
	return 0
}

// deletedError refuses to create a deleted repository for another node.
func deletedError(repo string) error {
	return fmt.Errorf("%w: repository %q was deleted", core.ErrNotFound, repo)
}

// repoFor opens repo for p, who passed Authorize: a deleted name that was
// not created again is core.ErrDeleted (410) for a caller who may read it,
// and stays core.ErrNotFound (404) for everyone else, which is the rules'
// decision between 404 and 403 too: a caller who may not read a name is
// not told whether it ever existed. Streams that missed the deletion's
// reset (it is not in the log) learn it here on their next request.
func (n *Node) repoFor(p auth.Principal, repo string) (*storage.Repo, func(), error) {
	r, release, err := n.store.Repo(repo)
	if err != nil {
		return nil, nil, n.goneFor(p, repo, err)
	}
	return r, release, nil
}

// goneFor turns err, a failure to open repo, into core.ErrDeleted when
// sys.repos records repo deleted and p may read it.
func (n *Node) goneFor(p auth.Principal, repo string, err error) error {
	if !errors.Is(err, core.ErrNotFound) || !n.CanRead(p, repo) {
		return err
	}
	if life, ok := n.lives.get(repo); !ok || !life.deleted {
		return err
	}
	return fmt.Errorf("%w: %s (DELETE /v1/repos/{repo}); createRepo starts it again, empty", core.ErrDeleted, repo)
}

// checkNotDeleted refuses to create repo for another node (or for this
// node's own bookkeeping) when sys.repos records it deleted: the peer that
// offers it has not applied the deletion yet. The caller holds the lock
// of repo's life.
func (n *Node) checkNotDeleted(repo string) error {
	if life, ok := n.lives.get(repo); !ok || !life.deleted {
		return nil
	}
	// The record may have changed since it was applied (sysLoop runs
	// behind the appends): a re-creation's record precedes its
	// announcement, so the stored value is the one to go by.
	r, release, err := n.store.Repo(ReposRepo)
	if err != nil {
		return err
	}
	v, err := r.Value(repo)
	release()
	if err != nil || v.Deleted {
		return deletedError(repo)
	}
	n.applyRepoValue(repo, v.Data, v.Deleted)
	return nil
}

// generationFor returns the generation a log of repo created now belongs
// to: the recorded one, or the next one for a deleted name (a client's
// creation starts a new life; other origins were refused before).
func (n *Node) generationFor(repo string) uint64 {
	life, _ := n.lives.get(repo)
	if life.deleted {
		return life.gen + 1
	}
	return life.gen
}

// applyRepoRecord puts repo's record in sys.repos (r) in effect as it is
// stored now: read under the lock of repo's life, so that a record read
// before a newer one arrived is never applied after it.
func (n *Node) applyRepoRecord(r *storage.Repo, repo string) {
	unlock := n.lives.lock(repo)
	defer unlock()
	v, err := r.Value(repo)
	if err != nil {
		n.log.Warn("repository record unreadable", "repo", repo, "err", err)
		return
	}
	n.applyRepoValue(repo, v.Data, v.Deleted)
}

// applyRepoValue puts a sys.repos record in effect: the quota counts, and
// this node's log of the name, retired if the record says it was deleted
// or belongs to an older life. The caller holds the lock of repo's life
// (or is Open, loading).
func (n *Node) applyRepoValue(repo string, data map[string]any, deleted bool) {
	gen := genOf(data)
	n.lives.set(repo, repoLife{gen: gen, deleted: deleted})
	if deleted {
		n.quotas.forgetRepo(repo)
	} else if owner, ok := data["owner"].(string); ok {
		n.quotas.noteRepo(repo, owner)
	}
	local, err := n.store.Generation(repo)
	if err != nil {
		n.log.Warn("repository generation unreadable", "repo", repo, "err", err)
		return
	}
	if local > gen || (local == gen && !deleted) {
		return
	}
	if deleted && local == gen && n.loading && n.store.Exists(repo) {
		// At start, a log under its own tombstone was moved back by an
		// operator (or a crash came between the record and the move,
		// before the deletion was acknowledged): restore it.
		n.restored = append(n.restored, repo)
		return
	}
	if err := n.retireLocal(repo); err != nil && !errors.Is(err, core.ErrNotFound) {
		n.log.Warn("retire deleted repository", "repo", repo, "err", err)
	}
}

// retireLocal moves this node's log of repo aside and resets the live
// streams subscribed to it.
func (n *Node) retireLocal(repo string) error {
	dir, err := n.store.Retire(repo, n.now())
	if err != nil {
		return err
	}
	n.log.Info("repository deleted: log moved aside", "repo", repo, "dir", dir)
	node := n.ID()
	n.hub.publishOutside(repo, func(watermark uint64) *Event {
		ev := DeletedEvent(EventID(node, watermark), repo)
		return &ev
	})
	return nil
}

// DeletedReason is the reason of the reset event that tells a live stream
// its repository was deleted.
const DeletedReason = "the repository was deleted"

// DeletedEvent is the reset event telling a subscriber that repo was
// deleted: healing it answers 410 repo-deleted (404 to who may not read
// it) until it is created again.
func DeletedEvent(id, repo string) Event {
	ev := ResetEvent(id, repo, DeletedReason)
	ev.Data = []byte(`{"code":"deleted",` + string(ev.Data[1:]))
	return ev
}

// DeleteRepo deletes repo for p, who needs role admin (DESIGN section 10):
// see the comment at the top of this file. A repository p may not read,
// or that does not exist, is core.ErrNotFound; one p may read without
// role admin is core.ErrForbidden, and so is a system repository.
func (n *Node) DeleteRepo(ctx context.Context, p auth.Principal, repo string) error {
	if err := n.Authorize(p, repo, false); err != nil {
		return err
	}
	_, release, err := n.repoFor(p, repo)
	switch {
	case err == nil:
		release()
	case errors.Is(err, core.ErrCorrupt): // damaged: deleting it is an operator's way out
	default:
		return err
	}
	if repo == "sys" || strings.HasPrefix(repo, "sys.") {
		return fmt.Errorf("%w: %s is a system repository and cannot be deleted", core.ErrForbidden, repo)
	}
	if !p.Node && !p.HasRole(auth.AdminRole) {
		return fmt.Errorf("%w: deleting a repository needs role %s", core.ErrForbidden, auth.AdminRole)
	}
	gen, err := n.store.Generation(repo)
	if err != nil {
		return err
	}
	data := map[string]any{
		core.DeletedField: true,
		"generation":      float64(gen),
		"deletedAt":       float64(n.now().UnixMilli()),
	}
	if p.Sub != "" {
		data["deletedBy"] = p.Sub
	}
	if owner, ok := n.quotas.ownerOf(repo); ok {
		data["owner"] = owner
	}
	// The record first: a crash after it leaves a log that the next start
	// retires (its record applied at load); a crash before it, the repository
	// as it was. Writing it applies it here, which retires the log.
	if err := n.writeSystem(ctx, ReposRepo, repo, core.AnySchema, data); err != nil {
		return err
	}
	// Applying the record retired the log; this reports a retirement that
	// failed, unless a client created the name again meanwhile.
	unlock := n.lives.lock(repo)
	defer unlock()
	if local, err := n.store.Generation(repo); err != nil || local > gen {
		return err
	}
	if err := n.retireLocal(repo); err != nil && !errors.Is(err, core.ErrNotFound) {
		return err
	}
	return nil
}

// restoreRepos gives the repositories found at start under their own
// tombstone (restored by an operator) a new generation and a live record,
// so that this node serves them and the others take them again.
func (n *Node) restoreRepos() {
	for _, repo := range n.restored {
		life, _ := n.lives.get(repo)
		rec := map[string]any{"generation": float64(life.gen + 1), "restoredAt": float64(n.now().UnixMilli())}
		if r, release, err := n.store.Repo(ReposRepo); err == nil {
			if v, err := r.Value(repo); err == nil {
				if owner, ok := v.Data["owner"].(string); ok {
					rec["owner"] = owner
				}
			}
			release()
		}
		if err := n.store.SetGeneration(repo, life.gen+1); err != nil {
			n.log.Warn("restore a deleted repository", "repo", repo, "err", err)
			continue
		}
		if err := n.putSystem(n.ctx, ReposRepo, repo, core.AnySchema, rec, false); err != nil {
			n.log.Warn("restore a deleted repository", "repo", repo, "err", err)
			continue
		}
		n.log.Info("deleted repository restored: its log was moved back", "repo", repo, "generation", life.gen+1)
	}
	n.restored = nil
}
