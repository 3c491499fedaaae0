package node

import (
	stdsync "sync"
)

// Event is one live event, already encoded (DESIGN section 5): Name is
// "commit" (Data {"commit", "repo"}) or "commits" (Data {"ids", "repo"})
// for appends, and the HTTP face adds "reset", "ready" and "expired".
type Event struct {
	Seq  uint64 // node-wide sequence number; 0 for events outside the log
	ID   string // the event id: "<node>.<seq>"
	Repo string
	Name string
	Data []byte
}

// hub fans events out to live subscribers without ever blocking the
// publisher: each subscriber has a bounded buffer, and one whose buffer is
// full is dropped (its stream ends; the client reconnects with
// Last-Event-ID and replays from the durable log). A slow client therefore
// never delays ingestion or the other subscribers (litefs does the same).
type hub struct {
	mu     stdsync.Mutex
	byRepo map[string]map[*subscriber]struct{}
	closed bool
	// published is the highest sequence number published so far. Read
	// together with a subscription (under mu), it splits history exactly:
	// events up to it are in the durable log and indexed, events after it
	// arrive on the subscriber's channel.
	published uint64
}

type subscriber struct {
	repos []string
	ch    chan Event
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

// subscribe registers interest in repos with a buffer of size buf. It
// returns the sequence number of the last event published before the
// subscription: later events arrive on the channel, earlier ones are
// replayed from the log.
func (h *hub) subscribe(repos []string, buf int) (*subscriber, uint64) {
	s := &subscriber{repos: repos, ch: make(chan Event, buf), gone: make(chan struct{})}
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

func (s *subscriber) close() { s.goneOnce.Do(func() { close(s.gone) }) }

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

// publish offers ev to every subscriber of ev.Repo. Publishers call it in
// sequence order.
func (h *hub) publish(ev Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ev.Seq > h.published {
		h.published = ev.Seq
	}
	for s := range h.byRepo[ev.Repo] {
		select {
		case s.ch <- ev:
		default:
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
