package sync

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	"github.com/goat-gateway/goat-gateway/core"
)

// Version 2 rounds (docs/sync.md "Version 2"). A heal is at most three
// requests when the divergence fits one response and one push:
//
//  1. digest only ({"v": 2}); the server answers inSync, or its Summary
//     (layout and per-partition count and 8 bytes of XOR);
//  2. the client's full digests of the partitions that differ, a filter
//     over its ids of those partitions (sized from the counts just
//     learned), a small invertible Table of its short ids per partition
//     both sides hold ids in (alone, outside the filter, where the counts
//     show a small divergence in a large partition), and its commits of
//     partitions the server has none of (a client's new commits, newer than
//     anything the server holds, land in the last window, empty on the
//     server); the server answers its commits the filter or the tables show
//     the client lacks (rest: the short ids of those a limit cut), the
//     client's ids it lacks, decoded from the tables (want), and, for each
//     partition whose table does not peel, the exact list of its ids there;
//  3. the client, now knowing exactly what differs, pushes what the server
//     wants or its lists lack and names by short id the commits it still
//     lacks; the server answers them.
//
// Nothing probabilistic is left after round 2: decoded tables and lists
// make round 3 exact, so a false positive costs a table entry or a list,
// not another filter round.

// answer2 answers a version 2 request; set includes req.Commits.
func (s *Server) answer2(set Set, req *Request) (*Response, error) {
	sd, cd := set.Digest(), req.digest()
	resp := &Response{Count: sd.Count, Digest: sd.XOR, Commits: []json.RawMessage{}}
	if sd == cd {
		resp.InSync = true
		return resp, nil
	}
	limit := min(orDefault(s.StreamLimit, MaxStream), orDefault(req.Limit, DefaultLimit))
	maxBytes := orDefault(s.MaxBytes, StreamMaxBytes)
	switch {
	case req.Parts != nil:
		return resp, s.answerParts(set, req, resp, limit, maxBytes)
	case len(req.Need) > 0:
		need := make(map[ShortID]bool, len(req.Need))
		for _, x := range req.Need {
			need[x] = true
		}
		var ids []core.CommitID
		set.Walk(func(id core.CommitID) bool {
			if need[ShortOf(id)] {
				ids = append(ids, id)
			}
			return true
		})
		return resp, fill(set, ids, resp, limit, maxBytes)
	default:
		sum, err := s.summary(set)
		if sum != nil {
			sum.V = req.V
		}
		resp.Parts = sum
		return resp, err
	}
}

// summary computes the server's layout and partition sums.
func (s *Server) summary(set Set) (*Summary, error) {
	ts := make([]int64, 0, set.Digest().Count)
	walkTS(set, func(_ core.CommitID, t int64) bool {
		ts = append(ts, t)
		return true
	})
	l := s.Layout.BuildLayout(ts)
	sums := partSums(set, &l)
	out := &Summary{Layout: l, Sums: make([]PartSum, len(sums))}
	for i, d := range sums {
		if d.Count > 1<<32-1 {
			return nil, fmt.Errorf("sync: summary: %w: partition of %d ids", core.ErrTooLarge, d.Count)
		}
		out.Sums[i] = PartSum{Count: uint32(d.Count), XOR8: xor8(d.XOR)}
	}
	return out, nil
}

// answerParts answers the second round: commits of the differing
// partitions absent from the client's filter; for each partition whose
// digest would still differ, the client's table decoded (the ids the client
// holds alone, named in want, and the server's ids a false positive hid,
// sent), or, when there is no table or it does not peel, the exact list of
// the server's ids there.
func (s *Server) answerParts(set Set, req *Request, resp *Response, limit, maxBytes int) error {
	l := &req.Parts.Layout
	pos := make([]int32, l.Parts())
	for i := range pos {
		pos[i] = -1
	}
	for k, x := range req.Parts.Diff {
		pos[x.Index] = int32(k)
	}
	type part struct {
		all, absent Digest
		ids         []ShortID
		table       *Table // the client's, minus the server's ids it believes the client holds
		positive    []walked
	}
	parts := make([]part, len(req.Parts.Diff))
	for k := range parts {
		if req.Parts.Tables != nil && req.Parts.Tables[k] != nil {
			t := req.Parts.Tables[k]
			parts[k].table = &Table{M: t.M, Cells: slices.Clone(t.Cells), Only: t.Only, Narrow: t.Narrow}
		}
	}
	var send []walked // in walk order
	at := 0
	walkTS(set, func(id core.CommitID, ts int64) bool {
		at++
		k := pos[l.Index(id, ts)]
		if k < 0 {
			return true
		}
		p := &parts[k]
		p.all.Add(id)
		short := ShortOf(id)
		p.ids = append(p.ids, short)
		if p.table != nil && p.table.Only {
			// Not in the filter: the table alone tells both sides.
			p.table.Add(short, -1)
			p.positive = append(p.positive, walked{at, id})
		} else if req.Filter == nil || req.Parts.Diff[k].Digest.Count == 0 || !req.Filter.Test(id) {
			// (A client with nothing in the partition lacks all of it,
			// whatever the filter's false positives say.)
			p.absent.Add(id)
			send = append(send, walked{at, id})
		} else if p.table != nil {
			p.table.Add(short, -1)
			p.positive = append(p.positive, walked{at, id})
		}
		return true
	})
	var hidden []walked
	for k, x := range req.Parts.Diff {
		// What the client will hold in the partition once it has the
		// absent commits, if it had nothing the server lacks and the
		// filter hid nothing: exactly the server's ids.
		p := &parts[k]
		shared := Digest{Count: p.all.Count - p.absent.Count, XOR: p.all.XOR}
		xorSum(&shared.XOR, p.absent.XOR)
		if shared == x.Digest && (p.table == nil || !p.table.Only) {
			continue
		}
		if p.table != nil {
			if plus, minus, ok := p.table.Decode(); ok {
				if h, ok := findShort(p.positive, minus); ok {
					resp.Want = append(resp.Want, plus...)
					hidden = append(hidden, h...)
					continue
				}
			}
		}
		resp.Lists = append(resp.Lists, PartList{Part: x.Index, IDs: p.ids})
	}
	if len(hidden) > 0 {
		send = append(send, hidden...)
		slices.SortFunc(send, func(a, b walked) int { return a.at - b.at })
	}
	ids := make([]core.CommitID, len(send))
	for i, h := range send {
		ids[i] = h.id
	}
	return fill(set, ids, resp, limit, maxBytes)
}

// walked is an id with its position in a walk.
type walked struct {
	at int
	id core.CommitID
}

// findShort returns the entries of hs whose short ids are in want, and
// false unless every wanted short id was found.
func findShort(hs []walked, want []ShortID) ([]walked, bool) {
	if len(want) == 0 {
		return nil, true
	}
	w := make(map[ShortID]bool, len(want))
	for _, s := range want {
		w[s] = true
	}
	var out []walked
	for _, h := range hs {
		if s := ShortOf(h.id); w[s] {
			out = append(out, h)
			delete(w, s)
		}
	}
	return out, len(w) == 0
}

// fill adds the commits of ids (in set order) to resp up to the limits and
// names the others in resp.Rest.
func fill(set Set, ids []core.CommitID, resp *Response, limit, maxBytes int) error {
	size := 0
	for i, id := range ids {
		if len(resp.Commits) == limit {
			resp.Rest = shortIDs(ids[i:])
			break
		}
		c, ok := set.Get(id)
		if !ok {
			return fmt.Errorf("sync: answer: %w: walked commit %s is not in the set", core.ErrNotFound, id)
		}
		b, err := c.MarshalJSON()
		if err != nil {
			return fmt.Errorf("sync: answer: commit %s: %w", id, err)
		}
		if len(resp.Commits) > 0 && size+len(b) > maxBytes {
			resp.Rest = shortIDs(ids[i:])
			break
		}
		resp.Commits = append(resp.Commits, b)
		size += len(b)
	}
	resp.More = len(resp.Rest) > 0
	return nil
}

func shortIDs(ids []core.CommitID) []ShortID {
	out := make([]ShortID, len(ids))
	for i, id := range ids {
		out[i] = ShortOf(id)
	}
	return out
}

// client2 is what a version 2 client remembers between rounds.
type client2 struct {
	layout   *Layout         // of the last summary
	count    int64           // the local count the last request sent
	pending  []core.CommitID // local commits the server lacks, not pushed yet
	deferred []core.CommitID // ones whose parents the server may lack: pushed with them
	need     []ShortID       // commits the client lacks, not asked for yet
	restarts int
}

// maxRestarts is how often a version 2 heal starts over (after a round
// leaves nothing to push or ask for but the digests still differ: the
// server changed meanwhile, or short ids or 8-byte partition sums collided)
// before the client falls back to version 1, which needs neither.
const maxRestarts = 2

func (c *Client) next2(local Set, resp *Response) (*Request, bool, error) {
	ld, sd := local.Digest(), resp.digest()
	if resp.InSync || ld == sd {
		c.v2 = client2{}
		return nil, true, nil
	}
	req := &Request{Count: ld.Count, Digest: ld.XOR, Limit: c.limit(), V: c.version()}
	st := &c.v2
	sent := st.count
	st.count = ld.Count
	if int64(len(resp.Commits)) > ld.Count-sent {
		// Some commits could not be ingested (a parent hidden by a false
		// positive, or cut): ask for them again, with their parents.
		st.need = append(st.need, notHeld(local, resp.Commits)...)
	}
	// A summary comes with any answer that leaves the sets different and
	// had no need to serve; while pushes or needs are outstanding the
	// client goes on with them instead (a summary now would only repeat
	// round 2 for what it already knows).
	if resp.Parts != nil && len(st.pending) == 0 && len(st.need) == 0 && len(resp.Rest) == 0 {
		ok, err := c.partsRequest(local, resp.Parts, req)
		if err != nil || ok {
			return req, false, err
		}
		return c.restart(local), false, nil
	}
	// The answer to round 2 or to a need round: what a limit cut, and the
	// exact lists, tell the client everything it lacks and holds alone.
	seen := make(map[ShortID]bool, len(resp.Rest)+len(st.need))
	need := make([]ShortID, 0, len(resp.Rest)+len(st.need))
	for _, x := range append(resp.Rest, st.need...) {
		if !seen[x] {
			seen[x] = true
			need = append(need, x)
		}
	}
	if len(resp.Lists) > 0 || len(resp.Want) > 0 {
		st.pending = c.listed(local, resp.Lists, resp.Want, st.pending, seen, &need)
	}
	st.need = need
	if err := c.push(local, req); err != nil {
		return nil, false, err
	}
	n := min(len(st.need), max(req.Limit, DefaultLimit))
	req.Need, st.need = st.need[:n:n], st.need[n:]
	if len(req.Commits) == 0 && len(req.Need) == 0 {
		return c.restart(local), false, nil
	}
	return req, false, nil
}

// parentsSure reports whether the server surely holds id's parents, or
// gets them earlier in the same push: each is in a partition whose sums
// agree, or already pushed.
func parentsSure(local Set, l *Layout, inDiff []bool, pushed map[core.CommitID]bool, id core.CommitID) bool {
	c, ok := local.Get(id)
	if !ok {
		return false
	}
	for _, par := range c.Parents {
		if pushed[par] {
			continue
		}
		pc, ok := local.Get(par)
		if !ok || inDiff[l.Index(par, pc.TS)] {
			return false
		}
	}
	return true
}

// notHeld returns the short ids of the commits of raw that local lacks.
func notHeld(local Set, raw []json.RawMessage) []ShortID {
	var out []ShortID
	for _, b := range raw {
		var c struct {
			ID core.CommitID `json:"id"`
		}
		if json.Unmarshal(b, &c) != nil {
			continue // not a commit the driver could ingest either
		}
		if _, ok := local.Get(c.ID); !ok {
			out = append(out, ShortOf(c.ID))
		}
	}
	return out
}

// listed folds the server's exact partition lists and its wants in: local
// ids of listed partitions missing from their list, and wanted ones, are
// the client's own (to push, in walk order); listed ids the client lacks
// are needed.
func (c *Client) listed(local Set, lists []PartList, want []ShortID, pending []core.CommitID, seen map[ShortID]bool, need *[]ShortID) []core.CommitID {
	l := c.v2.layout
	if l == nil {
		return pending // lists without a round 2 before: nothing to match
	}
	wanted := make(map[ShortID]bool, len(want))
	for _, s := range want {
		wanted[s] = true
	}
	byPart := make(map[int]map[ShortID]bool, len(lists))
	for _, x := range lists {
		m := make(map[ShortID]bool, len(x.IDs))
		for _, id := range x.IDs {
			m[id] = true
		}
		byPart[x.Part] = m
	}
	// Everything to push, the commits still pending and those deferred
	// from round 2 included, goes in log order (a topological order), so
	// that the server never sees a commit before its parents.
	queued := make(map[core.CommitID]bool, len(pending)+len(c.v2.deferred))
	for _, id := range pending {
		queued[id] = true
	}
	for _, id := range c.v2.deferred {
		queued[id] = true
	}
	c.v2.deferred = nil
	ordered := make([]core.CommitID, 0, len(queued))
	held := map[ShortID]bool{}
	walkTS(local, func(id core.CommitID, ts int64) bool {
		s := ShortOf(id)
		if queued[id] || wanted[s] {
			ordered = append(ordered, id)
			if !wanted[s] {
				if m, ok := byPart[l.Index(id, ts)]; ok && m[s] {
					held[s] = true
				}
			}
			return true
		}
		m, ok := byPart[l.Index(id, ts)]
		if !ok {
			return true
		}
		held[s] = true
		if !m[s] {
			ordered = append(ordered, id)
		}
		return true
	})
	pending = ordered
	for _, x := range lists {
		for _, id := range x.IDs {
			if !held[id] && !seen[id] {
				seen[id] = true
				*need = append(*need, id)
			}
		}
	}
	return pending
}

// partsRequest builds round 2 from the server's summary. It reports false
// when no partition differs although the digests do (8-byte sums collided).
func (c *Client) partsRequest(local Set, sum *Summary, req *Request) (bool, error) {
	st := &c.v2
	l := &Layout{Cuts: sum.Cuts, Bits: sum.Bits}
	mine := partSums(local, l)
	narrow := c.version() == Version3
	inDiff := make([]bool, len(mine))
	var (
		diff   []PartDigest
		tables []*Table
		n, d   int64
		empty  bool // some differing partition is empty on the server
		anyTab bool
	)
	tabOf := make(map[int]*Table)
	for i, m := range mine {
		s := sum.Sums[i]
		if m.Count == int64(s.Count) && xor8(m.XOR) == s.XOR8 {
			continue
		}
		inDiff[i] = true
		diff = append(diff, PartDigest{Index: i, Digest: m})
		var t *Table
		switch sc := int64(s.Count); {
		case sc > 0 && m.Count > 0 && tableOnly(m.Count, sc, narrow):
			// A small divergence in a large partition: a table alone.
			t = NewTable(tableSize(m.Count, sc, true))
			t.Only = true
		case sc > 0 && m.Count > 0:
			// The filter finds the server's extras; the table the client's.
			t = NewTable(tableSize(m.Count, sc, false))
			n += m.Count
			d += max(sc-m.Count, 1)
		case sc > 0:
			d += sc // the client holds nothing here: no filter needed for it
		default:
			empty = true
			n += m.Count // pushed, and covered by the filter like any other
		}
		if t != nil {
			t.Narrow = narrow
			tabOf[i] = t
			anyTab = true
		}
		tables = append(tables, t)
	}
	if len(diff) == 0 {
		return false, nil
	}
	walkDiff := func(fn func(core.CommitID) bool) {
		walkTS(local, func(id core.CommitID, ts int64) bool {
			if p := l.Index(id, ts); inDiff[p] && (tabOf[p] == nil || !tabOf[p].Only) {
				return fn(id)
			}
			return true
		})
	}
	st.pending, st.deferred, st.need = st.pending[:0], nil, nil
	if empty || anyTab {
		// A commit of a partition the server holds nothing of is pushed
		// now only if the server surely has its parents, or gets them
		// first in this push: a parent in a differing partition may be
		// missing there (round 3 learns which), so the commit waits for
		// round 3 and goes after it in log order.
		pushed := map[core.CommitID]bool{}
		walkTS(local, func(id core.CommitID, ts int64) bool {
			p := l.Index(id, ts)
			if !inDiff[p] {
				return true
			}
			if sum.Sums[p].Count == 0 {
				if parentsSure(local, l, inDiff, pushed, id) {
					pushed[id] = true
					st.pending = append(st.pending, id)
				} else {
					st.deferred = append(st.deferred, id)
				}
			} else if t := tabOf[p]; t != nil {
				t.Add(ShortOf(id), 1)
			}
			return true
		})
	}
	echo := Layout{Cuts: sum.Cuts, Bits: sum.Bits}
	if narrow {
		echo = reduceLayout(l, inDiff, diff)
	}
	st.layout = &echo
	req.Parts = &PartDiff{Layout: echo, Diff: diff, V: c.version()}
	if anyTab {
		req.Parts.Tables = tables
	}
	if n > 0 {
		window := int64(orDefault(c.limit(), DefaultLimit))
		f, err := BuildFilter(walkDiff, n, c.Policy.Rate(d, window), c.Rand)
		if err != nil {
			return false, err
		}
		req.Filter = f
	}
	return true, c.push(local, req)
}

// reduceLayout returns the layout a version 3 client echoes: l with every
// run of windows holding no differing partition merged into one window of
// 0 prefix bits, so that only the cuts bounding a differing window remain
// (cut i, between windows i and i+1, stays exactly when window i or i+1
// holds a differing partition). It renumbers diff's indexes (ascending, of
// l) into the reduced layout in place. The server needs nothing else: it
// reconciles the partitions named in diff, which keep their ids.
func reduceLayout(l *Layout, inDiff []bool, diff []PartDigest) Layout {
	l.init()
	windows := len(l.Bits)
	differs := make([]bool, windows)
	for w := range windows {
		differs[w] = slices.Contains(inDiff[l.offs[w]:l.offs[w+1]], true)
	}
	out := Layout{Cuts: []int64{}}
	shift := make([]int, windows) // reduced index of window w's first partition minus l's
	next := 0                     // reduced index of the next window's first partition
	for w := range windows {
		if w > 0 {
			if differs[w-1] || differs[w] {
				out.Cuts = append(out.Cuts, l.Cuts[w-1])
			} else {
				shift[w] = next - 1 - l.offs[w] // merged into the window before
				continue
			}
		}
		b := uint8(0)
		if differs[w] {
			b = l.Bits[w]
		}
		out.Bits = append(out.Bits, b)
		shift[w] = next - l.offs[w]
		next += 1 << b
	}
	for k := range diff {
		i := diff[k].Index
		w := sort.Search(windows, func(w int) bool { return l.offs[w+1] > i })
		diff[k].Index = i + shift[w]
	}
	return out
}

// push moves pending commits into req, up to the push caps.
func (c *Client) push(local Set, req *Request) error {
	st := &c.v2
	pushLimit := min(orDefault(c.PushLimit, MaxStream), MaxStream)
	pushBytes := orDefault(c.PushBytes, StreamPushBytes)
	if req.Filter != nil {
		// Keep the request under the API's body limit with the filter.
		pushBytes = min(pushBytes, max(MaxRequestBytes-req.Filter.EncodedLen()-(1<<20), 1))
	}
	size, n := 0, 0
	for ; n < len(st.pending) && len(req.Commits) < pushLimit; n++ {
		id := st.pending[n]
		cm, ok := local.Get(id)
		if !ok {
			continue
		}
		b, err := cm.MarshalJSON()
		if err != nil {
			return fmt.Errorf("sync: push commit %s: %w", id, err)
		}
		if len(req.Commits) > 0 && size+len(b) > pushBytes {
			break
		}
		req.Commits = append(req.Commits, b)
		size += len(b)
	}
	st.pending = st.pending[n:]
	return nil
}

// restart begins the heal again with a digest round, or in version 1 after
// maxRestarts.
func (c *Client) restart(local Set) *Request {
	r := c.v2.restarts + 1
	if r > maxRestarts {
		c.V1 = true
		return c.Start(local)
	}
	req := c.Start(local)
	c.v2.restarts = r
	return req
}
