package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
	"github.com/goat-gateway/goat-gateway/node"
	"github.com/goat-gateway/goat-gateway/storage"
)

// eventCommit decodes the commit of a "commit" event and checks its repo.
func eventCommit(tb testing.TB, ev node.Event) *core.Commit {
	tb.Helper()
	if got, want := ev.Name, "commit"; got != want {
		tb.Fatalf("event name=%q, want %q", got, want)
	}
	var body struct {
		Commit json.RawMessage `json:"commit"`
		Repo   string          `json:"repo"`
	}
	if err := json.Unmarshal(ev.Data, &body); err != nil {
		tb.Fatalf("event data %s: %v", ev.Data, err)
	}
	if got, want := body.Repo, ev.Repo; got != want {
		tb.Fatalf("event data names repo %q, event %q", got, want)
	}
	c, err := core.DecodeCommit(body.Commit)
	if err != nil {
		tb.Fatalf("event commit: %v", err)
	}
	return c
}

// recvEvent returns sub's next event, waiting for one as a stream does
// (Ready, then Next).
func recvEvent(tb testing.TB, sub *node.Subscription, what string) node.Event {
	tb.Helper()
	for {
		if ev, ok := sub.Next(); ok {
			return *ev
		}
		goattest.Recv(tb, sub.Ready(), what)
	}
}

func TestNode_Subscribe(t *testing.T) {
	alice := user("alice")

	t.Run("AnAppendAfterSubscribeArrives", func(t *testing.T) {
		e := openDev(t)
		a := e.newAuthor(t, alice)
		e.createRepo(t, alice, "notes")
		sub, err := e.n.Subscribe(alice, []string{"notes"}, 8)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		if got, want := sub.Watermark, e.n.LastSeq(); got != want {
			t.Fatalf("watermark=%d, want the last seq %d", got, want)
		}
		if got, want := e.n.Subscribers(), 1; got != want {
			t.Fatalf("Subscribers()=%d, want %d", got, want)
		}
		c := a.commit(t, e.clock.UnixMilli(), "notes", "k", "", map[string]any{"x": "y"})
		res := e.mustAppend(t, "notes", node.OriginClient, c)
		ev := recvEvent(t, sub, "the event of the append")
		if ev.Seq != res[0].Seq || ev.Repo != "notes" || ev.ID != node.EventID(e.n.ID(), res[0].Seq) {
			t.Fatalf("event %+v, want seq %d of notes with id %s", ev, res[0].Seq, node.EventID(e.n.ID(), res[0].Seq))
		}
		if got := eventCommit(t, ev); got.ID != c.ID {
			t.Fatalf("event carries %s, want %s", got.ID, c.ID)
		}
	})

	t.Run("OnlyItsRepositories", func(t *testing.T) {
		e := openDev(t)
		a := e.newAuthor(t, alice)
		e.createRepo(t, alice, "notes")
		e.createRepo(t, alice, "other")
		sub, err := e.n.Subscribe(alice, []string{"notes"}, 8)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		ts := e.clock.UnixMilli()
		e.mustAppend(t, "other", node.OriginClient, a.commit(t, ts, "other", "k", "", map[string]any{}))
		c := a.commit(t, ts, "notes", "k", "", map[string]any{})
		e.mustAppend(t, "notes", node.OriginClient, c)
		if got := eventCommit(t, recvEvent(t, sub, "an event")); got.ID != c.ID {
			t.Fatalf("first event is for %s of %s, want %s of notes", got.ID, got.Repo, c.ID)
		}
	})

	t.Run("ABacklogIsSharedAndTakenAtOnce", func(t *testing.T) {
		e := openDev(t)
		a := e.newAuthor(t, alice)
		e.createRepo(t, alice, "notes")
		var subs [2]*node.Subscription
		for i := range subs {
			sub, err := e.n.Subscribe(alice, []string{"notes"}, 8)
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			subs[i] = sub
		}
		ts := e.clock.UnixMilli()
		var want []core.CommitID
		for _, key := range []string{"a", "b", "c"} {
			c := a.commit(t, ts, "notes", key, "", map[string]any{})
			e.mustAppend(t, "notes", node.OriginClient, c)
			want = append(want, c.ID)
		}
		// An append is answered before its events are offered: they are
		// all queued once the second subscription has the last of them
		// and the hub's lock has been taken since (one append's events
		// reach every subscription under it).
		var evs [2][]*node.Event
		for len(evs[1]) < len(want) {
			if ev, ok := subs[1].Next(); ok {
				evs[1] = append(evs[1], ev)
				continue
			}
			goattest.Recv(t, subs[1].Ready(), "the events, on the second subscription")
		}
		if sub, err := e.n.Subscribe(alice, []string{"notes"}, 8); err != nil {
			t.Fatal(err)
		} else {
			sub.Close()
		}
		// Three appends while nobody read the first: one wake-up, three
		// events.
		goattest.Recv(t, subs[0].Ready(), "the wake-up")
		select {
		case <-subs[0].Ready():
			t.Fatal("a second wake-up for events queued before the first was taken")
		default:
		}
		for ev, ok := subs[0].Next(); ok; ev, ok = subs[0].Next() {
			evs[0] = append(evs[0], ev)
		}
		if got := len(evs[0]); got != len(want) {
			t.Fatalf("took %d events, want %d", got, len(want))
		}
		encodes := 0
		frame := func(ev *node.Event) []byte { encodes++; return []byte(ev.ID) }
		for i, ev := range evs[0] {
			if got := eventCommit(t, *ev).ID; got != want[i] {
				t.Fatalf("event %d carries %s, want %s", i, got, want[i])
			}
			if evs[1][i] != ev {
				t.Fatalf("event %d is a copy per subscriber, want one event shared", i)
			}
			if got, want := string(ev.Encoded(frame)), ev.ID; got != want || string(evs[1][i].Encoded(frame)) != want {
				t.Fatalf("Encoded=%q, want %q", got, want)
			}
		}
		if got, want := encodes, len(want); got != want {
			t.Fatalf("encoded %d times for %d events shared by 2 subscribers, want once each", got, want)
		}
	})

	t.Run("EventsInSequenceOrderWithMerges", func(t *testing.T) {
		e := openDev(t)
		a := e.newAuthor(t, alice)
		e.createRepo(t, alice, "notes")
		sub, err := e.n.Subscribe(alice, []string{"notes"}, 16)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		ts := e.clock.UnixMilli()
		base := a.commit(t, ts, "notes", "k", "", map[string]any{"v": 0.0})
		l := a.commit(t, ts+1, "notes", "k", "", map[string]any{"v": 1.0}, base.ID)
		r := a.commit(t, ts+2, "notes", "k", "", map[string]any{"v": 2.0}, base.ID)
		e.mustAppend(t, "notes", node.OriginClient, base, l, r)
		var got []core.CommitID
		var prev uint64
		for range 4 { // base, l, r and the merge
			ev := recvEvent(t, sub, "an event")
			if ev.Seq <= prev {
				t.Fatalf("event seq %d after %d", ev.Seq, prev)
			}
			prev = ev.Seq
			got = append(got, eventCommit(t, ev).ID)
		}
		if head := e.peekValue(t, "notes", "k").Head; got[3] != head {
			t.Fatalf("last event is %s, want the merge commit %s", got[3], head)
		}
	})

	t.Run("LargeCommitsAreAnnouncedByID", func(t *testing.T) {
		e := open(t, node.Config{Dev: true, InlineLimit: 64})
		a := e.newAuthor(t, alice)
		e.createRepo(t, alice, "notes")
		sub, err := e.n.Subscribe(alice, []string{"notes"}, 8)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		c := a.commit(t, e.clock.UnixMilli(), "notes", "k", "", map[string]any{"text": strings.Repeat("x", 100)})
		e.mustAppend(t, "notes", node.OriginClient, c)
		ev := recvEvent(t, sub, "an event")
		var body struct {
			IDs  []string `json:"ids"`
			Repo string   `json:"repo"`
		}
		if err := json.Unmarshal(ev.Data, &body); err != nil {
			t.Fatal(err)
		}
		if ev.Name != "commits" || body.Repo != "notes" || !slices.Equal(body.IDs, []string{c.ID.String()}) {
			t.Fatalf("event %s %s, want commits {ids: [%s], repo: notes}", ev.Name, ev.Data, c.ID)
		}
	})

	t.Run("Refusals", func(t *testing.T) {
		e := openWithRules(t)
		e.createRepo(t, alice, "user.alice.notes")
		_, err := e.n.Subscribe(alice, nil, 8)
		wantErr(t, "no repositories", err, core.ErrInvalid)
		_, err = e.n.Subscribe(user("bob"), []string{"user.alice.notes"}, 8)
		wantErr(t, "bob subscribes to alice's repository", err, core.ErrNotFound)
		_, err = e.n.Subscribe(alice, []string{"user.alice.notes", "user.alice.missing"}, 8)
		wantErr(t, "a missing repository", err, core.ErrNotFound)
		if got := e.n.Subscribers(); got != 0 {
			t.Fatalf("Subscribers()=%d after refused subscriptions, want 0", got)
		}
	})

	t.Run("ASlowSubscriberIsDropped", func(t *testing.T) {
		e := openDev(t)
		a := e.newAuthor(t, alice)
		e.createRepo(t, alice, "notes")
		slow, err := e.n.Subscribe(alice, []string{"notes"}, 1)
		if err != nil {
			t.Fatal(err)
		}
		reader, err := e.n.Subscribe(alice, []string{"notes"}, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer reader.Close()
		ts := e.clock.UnixMilli()
		for i, key := range []string{"a", "b"} {
			e.mustAppend(t, "notes", node.OriginClient, a.commit(t, ts, "notes", key, "", map[string]any{}))
			recvEvent(t, reader, "the reader's event "+key)
			if i == 0 {
				select {
				case <-slow.Gone():
					t.Fatal("dropped with room left in its buffer")
				default:
				}
				if slow.Ended() {
					t.Fatal("Ended with Gone open")
				}
			}
		}
		goattest.Recv(t, slow.Gone(), "the slow subscriber to be dropped")
		if !slow.Ended() {
			t.Fatal("Gone closed, Ended false")
		}
		select {
		case <-reader.Gone():
			t.Fatal("a subscriber that reads was dropped with the slow one")
		default:
		}
		if got, want := e.n.Subscribers(), 1; got != want {
			t.Fatalf("Subscribers()=%d, want %d", got, want)
		}
	})

	t.Run("Close", func(t *testing.T) {
		e := openDev(t)
		e.createRepo(t, alice, "notes")
		sub, err := e.n.Subscribe(alice, []string{"notes"}, 1)
		if err != nil {
			t.Fatal(err)
		}
		sub.Close()
		sub.Close()
		goattest.Recv(t, sub.Gone(), "Gone to close")
		if !sub.Ended() {
			t.Fatal("Gone closed after Close, Ended false")
		}
		if got := e.n.Subscribers(); got != 0 {
			t.Fatalf("Subscribers()=%d after Close, want 0", got)
		}
	})
}

func TestNode_Replay(t *testing.T) {
	alice := user("alice")
	e := openDev(t)
	a := e.newAuthor(t, alice)
	e.createRepo(t, alice, "ra")
	e.createRepo(t, alice, "rb")
	ts := e.clock.UnixMilli()
	commit := func(repo, key string) (*core.Commit, uint64) {
		c := a.commit(t, ts, repo, key, "", map[string]any{})
		return c, e.mustAppend(t, repo, node.OriginClient, c)[0].Seq
	}
	_, s1 := commit("ra", "a1")
	lastID := node.EventID(e.n.ID(), s1)
	b1, _ := commit("rb", "b1")
	a2, _ := commit("ra", "a2")
	b2, _ := commit("rb", "b2")
	sub, err := e.n.Subscribe(alice, []string{"ra", "rb"}, 8)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	a3, s3 := commit("ra", "a3") // after the subscription: live, not replayed
	repos := []string{"ra", "rb"}

	replay := func(t *testing.T, repos []string, lastID string) []node.Event {
		t.Helper()
		var evs []node.Event
		if err := e.n.Replay(sub, repos, lastID, func(ev node.Event) error { evs = append(evs, ev); return nil }); err != nil {
			t.Fatalf("Replay after %s: %v", lastID, err)
		}
		return evs
	}

	t.Run("EmitsWhatWasMissedInSeqOrder", func(t *testing.T) {
		evs := replay(t, repos, lastID)
		want := []*core.Commit{b1, a2, b2}
		if len(evs) != len(want) {
			t.Fatalf("replayed %d events, want %d: %+v", len(evs), len(want), evs)
		}
		var prev uint64
		for i, ev := range evs {
			if got := eventCommit(t, ev); got.ID != want[i].ID {
				t.Fatalf("event %d is %s of %s, want %s of %s", i, got.ID, got.Repo, want[i].ID, want[i].Repo)
			}
			if ev.Seq <= prev || ev.Seq > sub.Watermark || ev.ID != node.EventID(e.n.ID(), ev.Seq) {
				t.Fatalf("event %d: seq %d id %s, after %d, watermark %d", i, ev.Seq, ev.ID, prev, sub.Watermark)
			}
			prev = ev.Seq
		}
	})

	t.Run("TheLiveEventFollows", func(t *testing.T) {
		ev := recvEvent(t, sub, "the live event")
		if got := eventCommit(t, ev); got.ID != a3.ID || ev.Seq != s3 {
			t.Fatalf("live event %s seq %d, want %s seq %d", got.ID, ev.Seq, a3.ID, s3)
		}
	})

	t.Run("FromTheWatermarkEmitsNothing", func(t *testing.T) {
		if evs := replay(t, repos, node.EventID(e.n.ID(), sub.Watermark)); len(evs) != 0 {
			t.Fatalf("replayed %+v, want nothing", evs)
		}
	})

	t.Run("OnlyTheNamedRepositories", func(t *testing.T) {
		evs := replay(t, []string{"ra"}, lastID)
		if len(evs) != 1 || eventCommit(t, evs[0]).ID != a2.ID {
			t.Fatalf("replayed %+v, want a2 alone", evs)
		}
	})

	resets := func(t *testing.T, evs []node.Event, repos ...string) {
		t.Helper()
		var got []string
		for _, ev := range evs {
			if ev.Name != "reset" || ev.ID != node.EventID(e.n.ID(), sub.Watermark) {
				t.Fatalf("event %+v, want a reset at the watermark", ev)
			}
			got = append(got, ev.Repo)
		}
		if !slices.Equal(got, repos) {
			t.Fatalf("resets for %v, want %v", got, repos)
		}
	}

	t.Run("AnotherNodesEventIDResetsEveryRepository", func(t *testing.T) {
		resets(t, replay(t, repos, "othernode.1"), repos...)
	})

	t.Run("AnIDBeyondTheWatermarkResets", func(t *testing.T) {
		resets(t, replay(t, repos, node.EventID(e.n.ID(), sub.Watermark+100)), repos...)
	})

	t.Run("AMissingRepositoryResets", func(t *testing.T) {
		evs := replay(t, []string{"gone"}, lastID)
		resets(t, evs, "gone")
	})

	t.Run("MalformedID", func(t *testing.T) {
		for _, id := range []string{"", "nodot", ".5", "node.x", "node.-1"} {
			err := e.n.Replay(sub, repos, id, func(node.Event) error { t.Fatalf("emitted for %q", id); return nil })
			wantErr(t, "Replay after "+id, err, core.ErrInvalid)
		}
	})
}

// Replay streams from the log: it emits its first event having read a
// page of each log, not the whole range to replay, and an emit that fails
// (a subscriber that does not read) ends it (issue 17, item 3).
func TestNode_ReplayStreams(t *testing.T) {
	alice := user("alice")
	e := openDev(t)
	a := e.newAuthor(t, alice)
	e.createRepo(t, alice, "big")
	e.createRepo(t, alice, "small")
	ts := e.clock.UnixMilli()
	const records, batch = 2000, 250
	pad := strings.Repeat("x", 2<<10)
	for i := 0; i < records; i += batch {
		var cs []*core.Commit
		for j := i; j < i+batch; j++ {
			cs = append(cs, a.commit(t, ts, "big", "k"+strconv.Itoa(j), "", map[string]any{"pad": pad}))
		}
		e.mustAppend(t, "big", node.OriginClient, cs...)
	}
	e.mustAppend(t, "small", node.OriginClient, a.commit(t, ts, "small", "s", "", map[string]any{}))
	sub, err := e.n.Subscribe(alice, []string{"big", "small"}, 8)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	from := node.EventID(e.n.ID(), 0)

	t.Run("MemoryIsAPageNotTheRange", func(t *testing.T) {
		errStop := errors.New("subscriber does not read")
		var before, atFirst runtime.MemStats
		runtime.ReadMemStats(&before)
		emitted := 0
		err := e.n.Replay(sub, []string{"big", "small"}, from, func(node.Event) error {
			emitted++
			runtime.ReadMemStats(&atFirst)
			return errStop
		})
		if !errors.Is(err, errStop) {
			t.Fatalf("Replay = %v, want the emit error", err)
		}
		if emitted != 1 {
			t.Fatalf("emitted %d events after the emit failed, want 1", emitted)
		}
		// The range is records x 2 KiB = 4 MiB; a page of each log is
		// a few hundred KiB.
		if got, limit := atFirst.TotalAlloc-before.TotalAlloc, uint64(records*len(pad)/4); got > limit {
			t.Fatalf("allocated %d bytes before the first event, want under %d: the replay is not streamed", got, limit)
		}
		t.Logf("allocated %d bytes before the first event of a %d-record range", atFirst.TotalAlloc-before.TotalAlloc, records)
	})

	t.Run("EveryRecordInSeqOrder", func(t *testing.T) {
		var prev uint64
		n := 0
		err := e.n.Replay(sub, []string{"big", "small"}, from, func(ev node.Event) error {
			if ev.Seq <= prev || ev.Seq > sub.Watermark {
				t.Fatalf("event seq %d after %d (watermark %d)", ev.Seq, prev, sub.Watermark)
			}
			prev = ev.Seq
			n++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := n, records+1; got != want {
			t.Fatalf("replayed %d events, want %d", got, want)
		}
	})
}

// A repository with more than 10,000 records to replay is reset, before
// any commit event, and the others are still replayed; one with exactly
// 10,000 is replayed whole. The streamed replay counts the range from the
// log's index; this holds it to the semantics of the replay it replaced.
func TestNode_ReplayTooFarBehind(t *testing.T) {
	const maxReplay = 10000
	alice := user("alice")
	e := openDev(t)
	a := e.newAuthor(t, alice)
	e.createRepo(t, alice, "far")
	e.createRepo(t, alice, "near")
	ts := e.clock.UnixMilli()
	fill := func(repo string, from, to int) {
		for i := from; i < to; i += 1000 {
			var cs []*core.Commit
			for j := i; j < min(i+1000, to); j++ {
				cs = append(cs, a.commit(t, ts, repo, "k"+strconv.Itoa(j), "", map[string]any{}))
			}
			e.mustAppend(t, repo, node.OriginClient, cs...)
		}
	}
	fill("near", 0, 1)
	fill("far", 0, maxReplay)
	from := node.EventID(e.n.ID(), 0)
	replay := func(t *testing.T) []node.Event {
		t.Helper()
		sub, err := e.n.Subscribe(alice, []string{"far", "near"}, 8)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		var evs []node.Event
		if err := e.n.Replay(sub, []string{"far", "near"}, from, func(ev node.Event) error { evs = append(evs, ev); return nil }); err != nil {
			t.Fatal(err)
		}
		return evs
	}

	t.Run("AtTheLimitReplaysAll", func(t *testing.T) {
		evs := replay(t)
		if got, want := len(evs), maxReplay+1; got != want {
			t.Fatalf("replayed %d events, want %d", got, want)
		}
		for _, ev := range evs {
			if ev.Name == "reset" {
				t.Fatalf("reset %s at the limit", ev.Data)
			}
		}
	})

	t.Run("PastTheLimitResetsFirst", func(t *testing.T) {
		fill("far", maxReplay, maxReplay+1)
		evs := replay(t)
		if len(evs) != 2 {
			t.Fatalf("replayed %d events, want a reset of far and near's commit", len(evs))
		}
		if evs[0].Name != "reset" || evs[0].Repo != "far" {
			t.Fatalf("first event %s of %s, want a reset of far", evs[0].Name, evs[0].Repo)
		}
		if evs[1].Name != "commit" || evs[1].Repo != "near" {
			t.Fatalf("second event %s of %s, want near's commit", evs[1].Name, evs[1].Repo)
		}
	})
}

func TestParseEventID(t *testing.T) {
	node1, seq, err := node.ParseEventID(node.EventID("n1", 42))
	if err != nil || node1 != "n1" || seq != 42 {
		t.Fatalf("ParseEventID(EventID(n1, 42)) = %q, %d, %v", node1, seq, err)
	}
}

// writeGate is an FS whose writes to one file wait, once armed, until the
// test opens the gate: a repository whose write is slow (a big batch, a
// slow disk).
type writeGate struct {
	storage.FS
	path    string
	armed   atomic.Bool
	entered chan struct{} // closed when a held write started
	open    chan struct{} // closed by the test to let it finish
	once    stdsync.Once
}

func newWriteGate(path string) *writeGate {
	return &writeGate{FS: storage.OSFS(), path: path, entered: make(chan struct{}), open: make(chan struct{})}
}

func (g *writeGate) OpenFile(name string, flag int, perm os.FileMode) (storage.File, error) {
	f, err := g.FS.OpenFile(name, flag, perm)
	if err != nil || name != g.path {
		return f, err
	}
	return gatedFile{File: f, g: g}, nil
}

type gatedFile struct {
	storage.File
	g *writeGate
}

func (f gatedFile) WriteAt(p []byte, off int64) (int, error) {
	if f.g.armed.Load() {
		f.g.once.Do(func() { close(f.g.entered) })
		<-f.g.open
	}
	return f.File.WriteAt(p, off)
}

// TestNode_SubscribeNotBehindOtherRepos is issue 17: a live event of
// repository B reaches B's stream while an earlier write to repository A
// is still under way, and its event id is still the node-wide sequence
// number. A stream of several repositories keeps node sequence order: it
// gets B's event after A's.
func TestNode_SubscribeNotBehindOtherRepos(t *testing.T) {
	dir := t.TempDir()
	const repoA, repoB, repoC = "user.alice.a", "user.alice.b", "user.alice.c"
	gate := newWriteGate(filepath.Join(dir, repoA+".log"))
	e := open(t, node.Config{Dev: true, DataDir: dir, FS: gate})
	var opened stdsync.Once
	openGate := func() { opened.Do(func() { close(gate.open) }) }
	t.Cleanup(openGate) // before the node closes, should the test fail
	alice := user("alice")
	a := e.newAuthor(t, alice)
	for _, r := range []string{repoA, repoB, repoC} {
		e.createRepo(t, alice, r)
	}
	subB, err := e.n.Subscribe(alice, []string{repoB}, 8)
	if err != nil {
		t.Fatal(err)
	}
	defer subB.Close()
	subBC, err := e.n.Subscribe(alice, []string{repoB, repoC}, 8)
	if err != nil {
		t.Fatal(err)
	}
	defer subBC.Close()

	gate.armed.Store(true)
	slowA := make(chan []node.Result, 1)
	ca := a.commit(t, t0.UnixMilli(), repoA, "k", "", map[string]any{"x": 1.0})
	go func() {
		res, _ := e.n.Ingest(context.Background(), repoA, []*core.Commit{ca}, node.OriginClient)
		slowA <- res
	}()
	goattest.Recv(t, gate.entered, "A's write started")
	cb := a.commit(t, t0.UnixMilli(), repoB, "k", "", map[string]any{"y": 1.0})
	resB := e.mustAppend(t, repoB, node.OriginClient, cb)

	ev := recvEvent(t, subB, "B's event while A's write is held")
	if got, want := eventCommit(t, ev).ID, cb.ID; got != want {
		t.Fatalf("B's stream got commit %s, want %s", got, want)
	}
	if got, want := ev.ID, node.EventID(e.n.ID(), resB[0].Seq); got != want {
		t.Fatalf("event id=%s, want %s (node-wide sequence number)", got, want)
	}
	if ev, ok := subBC.Next(); ok {
		t.Fatalf("the stream of B and C got %s before A's earlier write was done", ev.ID)
	}

	openGate()
	resA := <-slowA
	if len(resA) != 1 || resA[0].Status != node.Appended || resA[0].Seq >= resB[0].Seq {
		t.Fatalf("A's write=%+v, want appended before B's seq %d", resA, resB[0].Seq)
	}
	if got, want := eventCommit(t, recvEvent(t, subBC, "B's event on the stream of B and C")).ID, cb.ID; got != want {
		t.Fatalf("the stream of B and C got commit %s, want %s", got, want)
	}
}
