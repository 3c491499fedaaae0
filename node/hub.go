package node

import (
	stdsync "sync"
	"sync/atomic"
)

// Event is one live event, already encoded (DESIGN section 5): Name is
// "commit" (Data {"commit", "repo"}) or "commits" (Data {"ids", "repo"})
// for appends, and the HTTP face adds "reset", "ready" and "expired".
//
// A live event is built once per append and shared by every subscriber
// it reaches: read it, never modify it.
type Event struct {
	Seq  uint64 // node-wide sequence number; 0 for events outside the log
	ID   string // the event id: "<node>.<seq>"
	Repo string
	Name string
	Data []byte

	memo *eventMemo // shared by the copies of one event
}

// eventMemo holds what Encoded computed once for an event.
type eventMemo struct {
	once stdsync.Once
	b    []byte
}

// Encoded returns encode(e), computed once for a live event however many
// subscribers it reaches (the HTTP face frames each event once, not once
// per stream). encode must depend only on e; the result is shared:
// callers must not modify it. For an event built outside the hub it is
// encode(e).
func (e *Event) Encoded(encode func(*Event) []byte) []byte {
	if e.memo == nil {
		return encode(e)
	}
	e.memo.once.Do(func() { e.memo.b = encode(e) })
	return e.memo.b
}

// hub fans events out to live subscribers without ever blocking the
// publisher: each subscriber has a bounded queue, and one whose queue is
// full is dropped (its stream ends; the client reconnects with
// Last-Event-ID and replays from the durable log). A slow client therefore
// never delays ingestion or the other subscribers (litefs does the same).
//
// The cost per subscriber is what fan-out to thousands of streams is made
// of, so it is kept small: an event is built once and queued to each
// subscriber as a pointer; a subscriber's queue is a slice that grows only
// as far as its backlog does (nothing is reserved up front), and the
// publisher wakes a subscriber at most once however many events it queues
// before the subscriber runs (a wake-up channel of one slot), so a group
// commit of many records costs each stream one wake-up and one write.
//
// Events reach subscribers on two paths (issue 17: one repository's big
// write or slow fsync must not delay another's live events). A stream of
// one repository is fed as soon as that repository's records are durable,
// in its own sequence order: markRepo moves its split point before the
// writers are answered (storage's OnIndexed), publishRepo offers the events
// after (storage's OnDurable), so that a writer's answer does not wait for
// the fan-out to thousands of streams. Its event ids increase on the wire
// because they do along one log. A stream of several repositories is fed
// in node sequence order, which keeps its event ids increasing across its
// repositories, so that Last-Event-ID replay neither loses nor repeats an
// event: advance moves its split before the writers are answered
// (storage's OnAppend), publish offers the events after (AfterAppend).
type hub struct {
	mu     stdsync.Mutex
	byRepo map[string]map[*subscriber]struct{} // streams of several repositories
	single map[string]map[*subscriber]struct{} // streams of one repository
	closed bool
	// published is the highest sequence number advance has passed, in node
	// sequence order: every record up to it is in the durable log and
	// indexed. Read together with a subscription (under mu), it splits a
	// stream of several repositories' history exactly: events up to it are
	// replayed from the log, events after it arrive in the queue.
	published uint64
	// ahead is, per repository, the highest sequence number markRepo
	// passed, while that is above published (entries at or below it say
	// nothing more and are deleted as publish catches up). A stream of one
	// repository r splits at max(published, ahead[r]): r's records up to
	// it are durable and indexed (one log is delivered in order) and are
	// replayed; r's records after it have not been offered yet. Between
	// markRepo and publishRepo a new stream's split is past records not yet
	// offered: publishRepo leaves them out of its queue (subscriber.from).
	ahead map[string]uint64
}

type subscriber struct {
	repos []string
	limit int    // most events queued before the subscriber is dropped
	from  uint64 // the split: events up to it are the consumer's to replay, never queued

	qmu   stdsync.Mutex
	queue []*Event // published, not yet taken; under qmu
	// wake has a value when events were queued since the consumer last
	// looked.
	wake chan struct{}
	// notify, when set, is called instead of a send on wake when events
	// are queued and when the subscriber goes: a consumer that is not a
	// goroutine of its own (the HTTP face's fan-out writers) is told
	// without a channel to wait on. It runs under the hub's lock, so it
	// must be quick and must never block.
	notify atomic.Pointer[func()]

	// taken is the consumer's side: events taken from queue, not yet
	// returned by next. Only the consumer touches it.
	taken []*Event
	next  int

	// gone is closed when the hub drops the subscriber (slow, or the hub
	// closed); the stream handler then ends the response.
	gone     chan struct{}
	goneOnce stdsync.Once
	over     atomic.Bool // gone is closed: a look without touching the channel
	dropped  bool        // set under hub.mu: dropped for being slow
}

func newHub() *hub {
	return &hub{byRepo: map[string]map[*subscriber]struct{}{}, single: map[string]map[*subscriber]struct{}{}, ahead: map[string]uint64{}}
}

// resume starts the published watermark at seq, the last sequence number
// of the durable log when the node opens (DESIGN section 5: event ids
// survive a restart).
func (h *hub) resume(seq uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.published = max(h.published, seq)
}

// subscribe registers interest in repos with a queue of at most buf
// events. It returns the sequence number of the last event published
// before the subscription for those repositories: later events arrive in
// the queue, earlier ones are replayed from the log. A subscription to
// one repository is fed as soon as that repository's records are
// durable (publishRepo), one to several in node sequence order (publish).
func (h *hub) subscribe(repos []string, buf int) (*subscriber, uint64) {
	s := &subscriber{repos: repos, limit: max(buf, 1), wake: make(chan struct{}, 1), gone: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	watermark := h.published
	if len(repos) == 1 {
		watermark = max(watermark, h.ahead[repos[0]])
	}
	s.from = watermark
	if h.closed {
		s.close()
		return s, watermark
	}
	subs := h.byRepo
	if len(repos) == 1 {
		subs = h.single
	}
	for _, r := range repos {
		m := subs[r]
		if m == nil {
			m = map[*subscriber]struct{}{}
			subs[r] = m
		}
		m[s] = struct{}{}
	}
	return s, watermark
}

func (s *subscriber) close() {
	s.goneOnce.Do(func() {
		s.over.Store(true)
		close(s.gone)
		if f := s.notify.Load(); f != nil {
			(*f)()
		}
	})
}

// offer queues evs (in sequence order) and wakes the consumer; it reports
// false, queueing nothing, when they do not fit.
func (s *subscriber) offer(evs []*Event) bool {
	s.qmu.Lock()
	if len(s.queue)+len(evs) > s.limit {
		s.qmu.Unlock()
		return false
	}
	s.queue = append(s.queue, evs...)
	s.qmu.Unlock()
	if f := s.notify.Load(); f != nil {
		(*f)()
		return true
	}
	select {
	case s.wake <- struct{}{}:
	default: // already awake or due to look
	}
	return true
}

// pop returns the next queued event, taking the whole queue at once when
// the consumer's side is empty. Consumer only.
func (s *subscriber) pop() (*Event, bool) {
	if s.next == len(s.taken) {
		clear(s.taken)
		spare := s.taken[:0]
		if cap(spare) > 64 {
			spare = nil // a burst is over: do not keep its room
		}
		s.qmu.Lock()
		s.taken, s.queue = s.queue, spare
		s.qmu.Unlock()
		s.next = 0
		if len(s.taken) == 0 {
			return nil, false
		}
	}
	ev := s.taken[s.next]
	s.taken[s.next] = nil
	s.next++
	return ev, true
}

// unsubscribe removes s; it is safe to call more than once.
func (h *hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	h.removeLocked(s)
	h.mu.Unlock()
	s.close()
}

func (h *hub) removeLocked(s *subscriber) {
	subs := h.byRepo
	if len(s.repos) == 1 {
		subs = h.single
	}
	for _, r := range s.repos {
		if m := subs[r]; m != nil {
			delete(m, s)
			if len(m) == 0 {
				delete(subs, r)
			}
		}
	}
}

// advance moves the split of new streams of several repositories past
// the records of repo up to sequence number last, which are durable and
// indexed. Publishers call it in node sequence order, after markRepo for
// the same records, and then publish.
func (h *hub) advance(repo string, last uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.published = max(h.published, last)
	if a, ok := h.ahead[repo]; ok && a <= h.published {
		delete(h.ahead, repo)
	}
}

// publish offers events (of repo) to every subscriber of several
// repositories that include repo; events builds them (in sequence order),
// and is called only when there are such subscribers, so appends nobody
// watches cost no encoding. Publishers call it in node sequence order,
// after advance for the same records (a stream that began between the two
// replays them instead).
func (h *hub) publish(repo string, events func() []*Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.offerLocked(h.byRepo[repo], events)
}

// markRepo moves the split of new streams of repo alone past its records
// up to sequence number last, which are durable and indexed. Publishers
// call it in repo's sequence order, without waiting for other
// repositories' earlier records, and then publishRepo for the same records.
func (h *hub) markRepo(repo string, last uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if last > h.published {
		h.ahead[repo] = max(h.ahead[repo], last)
	}
}

// publishRepo offers events (of repo, built by events in sequence order)
// to every subscriber of repo alone, as publish does. Publishers call it
// after markRepo for the same records (a stream that began between the
// two replays them instead), in repo's sequence order.
func (h *hub) publishRepo(repo string, events func() []*Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.offerLocked(h.single[repo], events)
}

// publishOutside offers an event outside the log (a deleted repository's
// reset, Seq 0) to every subscriber of repo, of it alone or of several.
// build gets the watermark each kind of subscriber is at (its event id:
// a client that reconnects with it is neither replayed twice nor told it
// came from another event log).
func (h *hub) publishOutside(repo string, build func(watermark uint64) *Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.offerLocked(h.byRepo[repo], func() []*Event { return []*Event{build(h.published)} })
	single := max(h.published, h.ahead[repo])
	h.offerLocked(h.single[repo], func() []*Event { return []*Event{build(single)} })
}

// offerLocked offers events to subs, dropping those that cannot take
// them; h.mu is held. A subscriber is offered only the events after its
// split (the log's events up to it are its to replay).
func (h *hub) offerLocked(subs map[*subscriber]struct{}, events func() []*Event) {
	if len(subs) == 0 {
		return
	}
	evs := events()
	for s := range subs {
		evs := evs
		for len(evs) > 0 && evs[0].Seq != 0 && evs[0].Seq <= s.from {
			evs = evs[1:]
		}
		if len(evs) == 0 {
			continue
		}
		if !s.offer(evs) {
			s.dropped = true
			h.removeLocked(s)
			s.close()
		}
	}
}

// subscribers returns the number of live subscriptions (for metrics).
func (h *hub) subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	seen := map[*subscriber]struct{}{}
	for _, m := range h.byRepo {
		for s := range m {
			seen[s] = struct{}{}
		}
	}
	n := len(seen)
	for _, m := range h.single {
		n += len(m)
	}
	return n
}

// close drops every subscriber; streams end, and later subscriptions are
// born closed.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for _, subs := range []map[string]map[*subscriber]struct{}{h.byRepo, h.single} {
		for _, m := range subs {
			for s := range m {
				s.close()
			}
		}
	}
	h.byRepo = map[string]map[*subscriber]struct{}{}
	h.single = map[string]map[*subscriber]struct{}{}
}
