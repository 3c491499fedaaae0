package node

import "testing"

// A creation's reservation hands over to its sys.repos record without the
// count dropping or doubling, whichever of the creation and sysLoop gets
// there first (TestNode_RepoQuota/ConcurrentCreationsDoNotOvershoot is the
// same race through the node, where it shows only now and then).
func TestQuotas_ReserveRepo(t *testing.T) {
	count := func(q *quotas, owner string) int {
		q.mu.Lock()
		defer q.mu.Unlock()
		return q.repos[owner] + q.pending[owner]
	}
	check := func(t *testing.T, q *quotas, step string, want int) {
		t.Helper()
		if got := count(q, "alice"); got != want {
			t.Fatalf("after %s: alice counts %d, want %d", step, got, want)
		}
	}
	reserve := func(t *testing.T, q *quotas, repo string) *repoReservation {
		t.Helper()
		res, err := q.reserveRepo("alice", repo, 3)
		if err != nil {
			t.Fatalf("reserveRepo(%s): %v", repo, err)
		}
		return res
	}

	t.Run("NotedBeforeTheCreationReturns", func(t *testing.T) {
		q := newQuotas()
		res := reserve(t, q, "a")
		check(t, q, "the reservation", 1)
		q.noteRepo("a", "alice") // sysLoop, right after the append
		check(t, q, "the record noted", 1)
		q.recordedRepo(res)
		q.releaseRepo(res)
		check(t, q, "the creation returned", 1)
	})
	t.Run("NotedAfterTheCreationReturns", func(t *testing.T) {
		q := newQuotas()
		res := reserve(t, q, "a")
		q.recordedRepo(res)
		q.releaseRepo(res)
		check(t, q, "the creation returned", 1)
		q.noteRepo("a", "alice")
		check(t, q, "the record noted", 1)
	})
	t.Run("NothingRecorded", func(t *testing.T) {
		q := newQuotas()
		res := reserve(t, q, "a")
		q.releaseRepo(res)
		q.releaseRepo(res)
		check(t, q, "two releases", 0)
	})
	t.Run("SameNameTwice", func(t *testing.T) {
		// Two creations of one name: one writes the record, the other
		// finds the repository there and records nothing.
		q := newQuotas()
		won, lost := reserve(t, q, "a"), reserve(t, q, "a")
		check(t, q, "two reservations", 2)
		q.recordedRepo(won)
		q.noteRepo("a", "alice")
		check(t, q, "the record noted", 1)
		q.releaseRepo(lost)
		q.releaseRepo(won)
		check(t, q, "both returned", 1)
	})
	t.Run("QuotaHeldThroughTheHandOver", func(t *testing.T) {
		q := newQuotas()
		var rs []*repoReservation
		for _, repo := range []string{"a", "b", "c"} {
			rs = append(rs, reserve(t, q, repo))
		}
		q.noteRepo("a", "alice")
		if _, err := q.reserveRepo("alice", "d", 3); err == nil {
			t.Fatal("a fourth reservation while three are under way or recorded: want refused")
		}
		for _, res := range rs {
			q.releaseRepo(res)
		}
		if _, err := q.reserveRepo("alice", "d", 3); err != nil {
			t.Fatalf("with one recorded and two given back: %v", err)
		}
	})
}
