package node

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/storage"
)

// maxReplay bounds the records replayed after an event id per repository;
// a subscriber further behind gets `reset` and heals by reconciliation,
// which is cheaper for it and for us than a long replay.
const maxReplay = 10000

// commitEvent encodes one record as an event: the commit inline, or only
// its id when it is larger than the inline limit.
func (n *Node) commitEvent(node, repo string, rec storage.Record) Event {
	var data []byte
	name := "commit"
	if len(rec.JSON) <= n.cfg.InlineLimit {
		data = make([]byte, 0, len(rec.JSON)+len(repo)+24)
		data = append(data, `{"commit":`...)
		data = append(data, rec.JSON...)
		data = append(data, `,"repo":`...)
		data = strconv.AppendQuote(data, repo)
		data = append(data, '}')
	} else {
		name = "commits"
		data = fmt.Appendf(nil, `{"ids":[%q],"repo":%q}`, rec.ID.String(), repo)
	}
	return Event{Seq: rec.Seq, Repo: repo, Name: name, Data: data, ID: EventID(node, rec.Seq)}
}

// liveEvents encodes appended records as the live events every subscriber
// of repo shares (see Event.Encoded).
func (n *Node) liveEvents(node, repo string, recs []storage.Record) []*Event {
	evs := make([]*Event, len(recs))
	for i, rec := range recs {
		ev := n.commitEvent(node, repo, rec)
		ev.memo = &eventMemo{}
		evs[i] = &ev
	}
	return evs
}

// EventID is the id of the event of sequence number seq on node:
// "<node>.<seq>".
func EventID(node string, seq uint64) string { return node + "." + strconv.FormatUint(seq, 10) }

// ParseEventID splits "<node>.<seq>".
func ParseEventID(id string) (node string, seq uint64, err error) {
	node, s, ok := strings.Cut(id, ".")
	if !ok || node == "" {
		return "", 0, fmt.Errorf("%w: event id %q is not <node>.<seq>", core.ErrInvalid, id)
	}
	seq, err = strconv.ParseUint(s, 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("%w: event id %q has a bad sequence number", core.ErrInvalid, id)
	}
	return node, seq, nil
}

// ResetEvent is the event telling a subscriber to reconcile repo.
func ResetEvent(id, repo, reason string) Event {
	return Event{ID: id, Repo: repo, Name: "reset", Data: []byte(`{"reason":` + strconv.Quote(reason) + `,"repo":` + strconv.Quote(repo) + `}`)}
}

// Subscription is a live feed of the appends to some repositories.
type Subscription struct {
	h   *hub
	sub *subscriber
	// Watermark is the sequence number of the last event published before
	// the subscription: later events arrive on Events, earlier ones are
	// replayed from the log (Replay).
	Watermark uint64
}

// Ready has a value when events may be waiting: call Next until it
// reports none, then wait on Ready again. Many events published while the
// consumer was busy cost it one wake-up.
func (s *Subscription) Ready() <-chan struct{} { return s.sub.wake }

// Next returns the subscription's next event, in sequence order, or false
// when none is waiting. The event is shared with the other subscribers:
// read it, never modify it. Call it from one goroutine at a time.
func (s *Subscription) Next() (*Event, bool) { return s.sub.pop() }

// Notify has f called, instead of a value on Ready, whenever events are
// queued and when the subscription ends (Gone is then closed): for a
// consumer that waits on many subscriptions without a goroutine each. f
// runs on the publisher's path, under the hub's lock: it must be quick,
// must not block and must not call back into the node. Events queued
// before Notify are not announced again: call Next once after it.
func (s *Subscription) Notify(f func()) { s.sub.notify.Store(&f) }

// Gone is closed when the subscription ends: it fell behind by more than
// its buffer, or the node is shutting down.
func (s *Subscription) Gone() <-chan struct{} { return s.sub.gone }

// Ended reports whether Gone is closed, for a consumer that looks at many
// subscriptions in turn (a look at a channel of each costs a cache miss
// more).
func (s *Subscription) Ended() bool { return s.sub.over.Load() }

// Close ends the subscription; it is safe to call more than once.
func (s *Subscription) Close() { s.h.unsubscribe(s.sub) }

// Subscribe opens a live feed of the appends to repos for p, who must be
// allowed to read each of them (core.ErrNotFound otherwise), with a buffer
// of buf events: a subscriber that falls further behind is dropped. The
// buffer is a limit, not a reservation: a subscriber that keeps up holds
// a few pointers.
func (n *Node) Subscribe(p auth.Principal, repos []string, buf int) (*Subscription, error) {
	if len(repos) == 0 {
		return nil, fmt.Errorf("%w: repo: name at least one repository", core.ErrInvalid)
	}
	for _, name := range repos {
		if err := n.Authorize(p, name, false); err != nil {
			return nil, err
		}
		_, release, err := n.repoFor(p, name)
		if err != nil {
			return nil, err
		}
		release()
	}
	sub, watermark := n.hub.subscribe(repos, buf)
	return &Subscription{h: n.hub, sub: sub, Watermark: watermark}, nil
}

// replayPage is how many records Replay reads from one repository's log
// at a time: a replay holds at most len(repos) pages, however much it
// replays.
const replayPage = 64

// replayCursor is one repository's place in a replay: the records of
// offsets [off, end) are still to come, page first.
type replayCursor struct {
	name     string
	r        *storage.Repo
	off, end int64
	page     []storage.Record
	release  func()
}

// Replay emits, in sequence order, the events of repos with sequence
// numbers in (after, s.Watermark], as a subscriber that saw event
// `lastID` missed them. A repository too far behind, or whose log cannot
// be read, gets a reset event instead (before any commit event); so does
// every repository when lastID is from another node or an older event
// log.
//
// Replay streams: it merges the repositories' logs by sequence number a
// page at a time and emits as it goes, so its memory is O(len(repos) x
// replayPage) records however far behind the subscriber is, and a
// subscriber that does not read stops it at its first failed write: an
// error from emit ends the replay and is returned.
func (n *Node) Replay(s *Subscription, repos []string, lastID string, emit func(Event) error) error {
	lastNode, after, err := ParseEventID(lastID)
	if err != nil {
		return err
	}
	node := n.ID()
	position := EventID(node, s.Watermark)
	if lastNode != node || after > s.Watermark {
		for _, repo := range repos {
			if err := emit(ResetEvent(position, repo, "event id from another event log")); err != nil {
				return err
			}
		}
		return nil
	}
	var cursors []*replayCursor
	defer func() {
		for _, c := range cursors {
			c.release()
		}
	}()
	for _, name := range repos {
		r, release, err := n.store.Repo(name)
		if err != nil {
			if err := emit(ResetEvent(position, name, "repository unavailable")); err != nil {
				return err
			}
			continue
		}
		// Sequence numbers grow along a log, so the records to replay
		// are one range of offsets, counted without reading them.
		from, end := r.FirstAfterSeq(after), r.FirstAfterSeq(s.Watermark)
		if end-from > maxReplay {
			release()
			if err := emit(ResetEvent(position, name, "too far behind to replay; reconcile")); err != nil {
				return err
			}
			continue
		}
		cursors = append(cursors, &replayCursor{name: name, r: r, off: from, end: end, release: release})
	}
	for {
		var next *replayCursor
		for _, c := range cursors {
			if len(c.page) == 0 && c.off < c.end {
				page, err := c.r.ReadLog(c.off, int(min(replayPage, c.end-c.off)))
				if err != nil {
					return err
				}
				if len(page) == 0 { // the log is shorter than its index said
					c.end = c.off
				}
				c.page, c.off = page, c.off+int64(len(page))
			}
			if len(c.page) > 0 && (next == nil || c.page[0].Seq < next.page[0].Seq) {
				next = c
			}
		}
		if next == nil {
			return nil
		}
		rec := next.page[0]
		next.page = next.page[1:]
		if err := emit(n.commitEvent(node, next.name, rec)); err != nil {
			return err
		}
	}
}
