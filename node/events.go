package node

import (
	"fmt"
	"slices"
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

// commitEvent encodes one record as a live event: the commit inline, or
// only its id when it is larger than the inline limit.
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

// Events delivers the subscription's events in sequence order.
func (s *Subscription) Events() <-chan Event { return s.sub.ch }

// Gone is closed when the subscription ends: it fell behind by more than
// its buffer, or the node is shutting down.
func (s *Subscription) Gone() <-chan struct{} { return s.sub.gone }

// Close ends the subscription; it is safe to call more than once.
func (s *Subscription) Close() { s.h.unsubscribe(s.sub) }

// Subscribe opens a live feed of the appends to repos for p, who must be
// allowed to read each of them (core.ErrNotFound otherwise), with a buffer
// of buf events: a subscriber that falls further behind is dropped.
func (n *Node) Subscribe(p auth.Principal, repos []string, buf int) (*Subscription, error) {
	if len(repos) == 0 {
		return nil, fmt.Errorf("%w: repo: name at least one repository", core.ErrInvalid)
	}
	for _, name := range repos {
		if err := n.Authorize(p, name, false); err != nil {
			return nil, err
		}
		_, release, err := n.store.Repo(name)
		if err != nil {
			return nil, err
		}
		release()
	}
	sub, watermark := n.hub.subscribe(repos, buf)
	return &Subscription{h: n.hub, sub: sub, Watermark: watermark}, nil
}

// Replay emits, in sequence order, the events of repos with sequence
// numbers in (after, s.Watermark], as a subscriber that saw event
// `lastID` missed them. A repository too far behind, or whose log cannot
// be read, gets a reset event instead; so does every repository when
// lastID is from another node or an older event log.
func (n *Node) Replay(s *Subscription, repos []string, lastID string, emit func(Event)) error {
	lastNode, after, err := ParseEventID(lastID)
	if err != nil {
		return err
	}
	node := n.ID()
	position := EventID(node, s.Watermark)
	if lastNode != node || after > s.Watermark {
		for _, repo := range repos {
			emit(ResetEvent(position, repo, "event id from another event log"))
		}
		return nil
	}
	var evs []Event
	for _, name := range repos {
		r, release, err := n.store.Repo(name)
		if err != nil {
			emit(ResetEvent(position, name, "repository unavailable"))
			continue
		}
		from := r.FirstAfterSeq(after)
		var recs []storage.Record
		tooFar := false
		for off := from; ; {
			page, err := r.ReadLog(off, 1000)
			if err != nil {
				release()
				return err
			}
			for _, rec := range page {
				if rec.Seq > s.Watermark {
					break
				}
				recs = append(recs, rec)
			}
			if len(page) < 1000 || page[len(page)-1].Seq > s.Watermark {
				break
			}
			if len(recs) > maxReplay {
				tooFar = true
				break
			}
			off += int64(len(page))
		}
		release()
		if tooFar || len(recs) > maxReplay {
			emit(ResetEvent(position, name, "too far behind to replay; reconcile"))
			continue
		}
		for _, rec := range recs {
			evs = append(evs, n.commitEvent(node, name, rec))
		}
	}
	slices.SortFunc(evs, func(a, b Event) int {
		switch {
		case a.Seq < b.Seq:
			return -1
		case a.Seq > b.Seq:
			return 1
		}
		return 0
	})
	for _, ev := range evs {
		emit(ev)
	}
	return nil
}
