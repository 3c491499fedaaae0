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
type hub struct {
	mu     stdsync.Mutex
	byRepo map[string]map[*subscriber]struct{}
	closed bool
	// published is the highest sequence number published so far. Read
	// together with a subscription (under mu), it splits history exactly:
	// events up to it are in the durable log and indexed, events after it
	// arrive in the subscriber's queue.
	published uint64
}

type subscriber struct {
	repos []string
	limit int // most events queued before the subscriber is dropped

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
	dropped  bool // set under hub.mu: dropped for being slow
}

func newHub() *hub { return &hub{byRepo: map[string]map[*subscriber]struct{}{}} }

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
// before the subscription: later events arrive in the queue, earlier ones
// are replayed from the log.
func (h *hub) subscribe(repos []string, buf int) (*subscriber, uint64) {
	s := &subscriber{repos: repos, limit: max(buf, 1), wake: make(chan struct{}, 1), gone: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		s.close()
		return s, h.published
	}
	for _, r := range repos {
		m := h.byRepo[r]
		if m == nil {
			m = map[*subscriber]struct{}{}
			h.byRepo[r] = m
		}
		m[s] = struct{}{}
	}
	return s, h.published
}

func (s *subscriber) close() {
	s.goneOnce.Do(func() {
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
	for _, r := range s.repos {
		if m := h.byRepo[r]; m != nil {
			delete(m, s)
			if len(m) == 0 {
				delete(h.byRepo, r)
			}
		}
	}
}

// publish offers the events of repo up to sequence number last to every
// subscriber of repo; events builds them (in sequence order), and is
// called only when repo has subscribers, so appends nobody watches cost no
// encoding. Publishers call it in sequence order.
func (h *hub) publish(repo string, last uint64, events func() []*Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.published = max(h.published, last)
	subs := h.byRepo[repo]
	if len(subs) == 0 {
		return
	}
	evs := events()
	for s := range subs {
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
	return len(seen)
}

// close drops every subscriber; streams end, and later subscriptions are
// born closed.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for _, m := range h.byRepo {
		for s := range m {
			s.close()
		}
	}
	h.byRepo = map[string]map[*subscriber]struct{}{}
}
