package node

import (
	"slices"
	"testing"
)

// A stream that begins after the split moved past records (markRepo for
// a stream of one repository, advance for one of several: before the
// writers are answered) and before their events are offered (publishRepo,
// publish: after the answer) replays them from the log: its split is past
// them, and the offer leaves them out of its queue. Streams that began
// before get them queued, exactly once.
func TestHub_StreamBetweenMarkAndOffer(t *testing.T) {
	h := newHub()
	events := func(seqs ...uint64) func() []*Event {
		return func() []*Event {
			var evs []*Event
			for _, s := range seqs {
				evs = append(evs, &Event{Seq: s, Repo: "r", Name: "commit"})
			}
			return evs
		}
	}
	type stream struct {
		name     string
		s        *subscriber
		from     uint64   // its split: it replays r's records up to it
		wantFrom uint64   // what the split must be
		want     []uint64 // queued events' seqs (0: outside the log)
	}
	subscribe := func(name string, repos ...string) *stream {
		s, from := h.subscribe(repos, 16)
		return &stream{name: name, s: s, from: from}
	}
	// One group (records 4 and 5 of r) as storage delivers it, then one
	// more (6), then a reset outside the log.
	before := subscribe("of r, before the group", "r")
	several := subscribe("of r and s, before the group", "r", "s")
	h.markRepo("r", 5)
	between := subscribe("of r, after markRepo", "r")
	h.advance("r", 5)
	afterAdvance := subscribe("of r, after advance", "r")
	severalBetween := subscribe("of r and s, after advance", "r", "s")
	h.publishRepo("r", events(4, 5))
	afterPublishRepo := subscribe("of r, after publishRepo", "r")
	severalAfterPublishRepo := subscribe("of r and s, after publishRepo", "r", "s")
	h.publish("r", events(4, 5))
	after := subscribe("of r, after the group", "r")
	severalAfter := subscribe("of r and s, after the group", "r", "s")
	h.markRepo("r", 6)
	h.advance("r", 6)
	h.publishRepo("r", events(6))
	h.publish("r", events(6))
	h.publishOutside("r", func(uint64) *Event { return &Event{Repo: "r", Name: "reset"} })

	before.want = []uint64{4, 5, 6, 0}
	several.want = []uint64{4, 5, 6, 0}
	streams := []*stream{between, afterAdvance, severalBetween, afterPublishRepo, severalAfterPublishRepo, after, severalAfter}
	for _, st := range streams {
		st.wantFrom, st.want = 5, []uint64{6, 0}
	}
	for _, st := range append(streams, before, several) {
		var got []uint64
		for {
			ev, ok := st.s.pop()
			if !ok {
				break
			}
			got = append(got, ev.Seq)
		}
		if st.from != st.wantFrom || !slices.Equal(got, st.want) {
			t.Errorf("stream %s: split %d, queued %v; want split %d, queued %v", st.name, st.from, got, st.wantFrom, st.want)
		}
	}
}
