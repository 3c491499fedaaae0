package node

import (
	"slices"
	"testing"
)

// A stream of one repository that begins after markRepo and before
// publishRepo (the records are durable and their writers answered, their
// events not offered yet) replays them from the log: its split is past
// them, and publishRepo leaves them out of its queue. Streams that began
// before get them queued, exactly once; so does a stream of several
// repositories, from publish.
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
	before := subscribe("before the mark", "r")
	several := subscribe("of several repositories", "r", "s")
	h.markRepo("r", 5) // records 4 and 5 of r
	between := subscribe("between mark and offer", "r")
	h.publish("r", 5, events(4, 5))
	afterPublish := subscribe("after publish, before publishRepo", "r")
	h.publishRepo("r", events(4, 5))
	after := subscribe("after publishRepo", "r")
	h.markRepo("r", 6)
	h.publish("r", 6, events(6))
	h.publishRepo("r", events(6))
	h.publishOutside("r", func(uint64) *Event { return &Event{Repo: "r", Name: "reset"} })

	before.want = []uint64{4, 5, 6, 0}
	several.want = []uint64{4, 5, 6, 0}
	for _, st := range []*stream{between, afterPublish, after} {
		st.wantFrom, st.want = 5, []uint64{6, 0}
	}
	for _, st := range []*stream{before, several, between, afterPublish, after} {
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
