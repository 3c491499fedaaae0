package merge

import (
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/goat-gateway/goat-gateway/core"
)

// The simulation: a few replicas edit every field type of a few items
// concurrently (text with astral-plane characters, schema versions 1 and 2,
// tombstones, removed fields, disjoint roots, deltas), exchange random
// subsets of commits in random orders, merge automatically whenever a key
// has several heads (sometimes after every commit, sometimes after a
// batch), and verify every merge commit they receive by recomputing it.
// Finally everyone receives everything. Then all replicas must hold the same
// commits, one head per key with the same id, the same value, and merging
// again must produce nothing.
//
//	go test ./merge -run TestSimulation -sim.n=100000        # more cases
//	go test ./merge -run TestSimulation -sim.seed=42 -sim.n=1 -v  # replay one
var (
	simN    = flag.Int("sim.n", 1500, "number of seeded simulation cases")
	simSeed = flag.Uint64("sim.seed", 1, "seed of the first simulation case")
)

func TestSimulation(t *testing.T) {
	reg := testRegistry(t)
	stats := simStats{}
	for i := 0; i < *simN; i++ {
		seed := *simSeed + uint64(i)
		s := newSim(t, reg, seed)
		if err := s.run(); err != nil {
			t.Fatalf("seed %d: %v\nreplay: go test ./merge -run TestSimulation -sim.seed=%d -sim.n=1 -v", seed, err, seed)
		}
		stats.add(s.stats)
	}
	t.Logf("%d cases: %+v", *simN, stats)
	// The simulation must exercise what it claims to.
	if *simN >= 200 {
		for name, n := range map[string]int{
			"merges": stats.merges, "verified": stats.verified, "deduplicated": stats.deduplicated,
			"disjoint roots": stats.disjoint, "criss-cross": stats.crissCross, "upgrades": stats.upgrades,
			"deltas": stats.deltas, "n-way": stats.nway,
		} {
			if n == 0 {
				t.Errorf("no %s in %d cases", name, *simN)
			}
		}
	}
}

type simStats struct {
	commits, merges, verified, deduplicated int
	disjoint, crissCross, upgrades, deltas  int
	nway                                    int
}

func (s *simStats) add(o simStats) {
	s.commits += o.commits
	s.merges += o.merges
	s.verified += o.verified
	s.deduplicated += o.deduplicated
	s.disjoint += o.disjoint
	s.crissCross += o.crissCross
	s.upgrades += o.upgrades
	s.deltas += o.deltas
	s.nway += o.nway
}

var simKeys = []string{"k1", "k2"}

type sim struct {
	tb       testing.TB
	reg      *core.Registry
	rng      *rand.Rand
	replicas []*replica
	stats    simStats
}

// replica is a peer: its commits, the heads of each key, and what it writes.
type replica struct {
	s       *sim
	name    string
	g       memGraph
	heads   map[string][]core.CommitID
	eager   bool // merge after every received commit, not after the batch
	version int  // note schema version it writes
	clock   int64
}

func newSim(tb testing.TB, reg *core.Registry, seed uint64) *sim {
	s := &sim{tb: tb, reg: reg, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	n := 2 + s.rng.IntN(3)
	for i := 0; i < n; i++ {
		s.replicas = append(s.replicas, &replica{
			s: s, name: fmt.Sprintf("s_r%d", i), g: memGraph{}, heads: map[string][]core.CommitID{},
			eager: s.rng.IntN(2) == 0, version: 1 + s.rng.IntN(2), clock: int64(1000 + s.rng.IntN(20)),
		})
	}
	return s
}

func (s *sim) run() error {
	steps := 10 + s.rng.IntN(30)
	for i := 0; i < steps; i++ {
		switch x := s.rng.IntN(10); {
		case x < 5:
			r := s.replicas[s.rng.IntN(len(s.replicas))]
			if err := r.edit(simKeys[s.rng.IntN(len(simKeys))]); err != nil {
				return err
			}
		default:
			src := s.replicas[s.rng.IntN(len(s.replicas))]
			dst := s.replicas[s.rng.IntN(len(s.replicas))]
			if src != dst {
				if err := dst.receive(src.missing(dst, 0.3+0.7*s.rng.Float64())); err != nil {
					return err
				}
			}
		}
	}
	// Everyone gets everything, in a random order, then merges once.
	all := memGraph{}
	for _, r := range s.replicas {
		maps.Copy(all, r.g)
	}
	for _, r := range s.replicas {
		r.eager = false
		if err := r.receive(r.lacking(all)); err != nil {
			return err
		}
	}
	// The final merges are identical, so one more round adds nothing new
	// beyond them.
	for _, r := range s.replicas {
		maps.Copy(all, r.g)
	}
	for _, r := range s.replicas {
		if err := r.receive(r.lacking(all)); err != nil {
			return err
		}
	}
	return s.check(all)
}

func (s *sim) check(all memGraph) error {
	first := s.replicas[0]
	for _, r := range s.replicas {
		if len(r.g) != len(all) {
			return fmt.Errorf("%s has %d commits, the union has %d: final merges differ", r.name, len(r.g), len(all))
		}
		for _, key := range simKeys {
			if len(r.heads[key]) > 1 {
				return fmt.Errorf("%s: key %s still has %d heads", r.name, key, len(r.heads[key]))
			}
			if !slices.Equal(r.heads[key], first.heads[key]) {
				return fmt.Errorf("key %s: %s has head %v, %s has %v", key, r.name, r.heads[key], first.name, first.heads[key])
			}
			if len(r.heads[key]) == 0 {
				continue
			}
			a, _ := r.value(r.heads[key][0])
			b, _ := first.value(first.heads[key][0])
			if !core.EqualJSON(a, b) {
				return fmt.Errorf("key %s: values differ: %v vs %v", key, a, b)
			}
		}
		// Merging again is a no-op.
		before := len(r.g)
		if err := r.autoMerge(); err != nil {
			return err
		}
		if len(r.g) != before {
			return fmt.Errorf("%s: merging merged heads made a new commit", r.name)
		}
	}
	// A newcomer that ingests every commit in another order and merges
	// recomputes every merge commit identically (Verify) and ends at the
	// same heads.
	fresh := &replica{s: s, name: "s_fresh", g: memGraph{}, heads: map[string][]core.CommitID{}, version: 1}
	if err := fresh.receive(fresh.lacking(all)); err != nil {
		return err
	}
	for _, key := range simKeys {
		if !slices.Equal(fresh.heads[key], first.heads[key]) {
			return fmt.Errorf("key %s: a fresh replica has heads %v, want %v", key, fresh.heads[key], first.heads[key])
		}
	}
	return nil
}

// missing returns a random subset (fraction p) of r's commits that dst
// lacks, in random order.
func (r *replica) missing(dst *replica, p float64) []*core.Commit {
	var out []*core.Commit
	for _, c := range dst.lacking(r.g) {
		if r.s.rng.Float64() < p {
			out = append(out, c)
		}
	}
	return out
}

// lacking returns the commits of g that r does not have, shuffled.
func (r *replica) lacking(g memGraph) []*core.Commit {
	var out []*core.Commit
	for _, c := range g {
		if _, ok := r.g[c.ID]; !ok {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b *core.Commit) int { return a.ID.Compare(b.ID) })
	r.s.rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// receive ingests a batch in its order, postponing commits whose parents or
// delta base have not arrived; commits that never become ingestible are
// dropped (a later exchange brings them again).
func (r *replica) receive(batch []*core.Commit) error {
	for progress := true; progress && len(batch) > 0; {
		progress = false
		rest := batch[:0]
		for _, c := range batch {
			if !r.ready(c) {
				rest = append(rest, c)
				continue
			}
			progress = true
			if _, ok := r.g[c.ID]; ok {
				continue
			}
			if c.IsMerge() {
				if err := Verify(r.g, r.s.reg, c); err != nil {
					return fmt.Errorf("%s rejects merge commit %s: %w", r.name, c.ID, err)
				}
				r.s.stats.verified++
			}
			r.ingest(c)
			if r.eager {
				if err := r.autoMerge(); err != nil {
					return err
				}
			}
		}
		batch = rest
	}
	return r.autoMerge()
}

func (r *replica) ready(c *core.Commit) bool {
	for _, p := range c.Parents {
		if _, ok := r.g[p]; !ok {
			return false
		}
	}
	if c.Delta != nil {
		if _, ok := r.g[c.Delta.Base]; !ok {
			return false
		}
	}
	return true
}

func (r *replica) ingest(c *core.Commit) {
	r.g[c.ID] = c
	hs := slices.DeleteFunc(r.heads[c.Key], func(h core.CommitID) bool { return slices.Contains(c.Parents, h) })
	r.heads[c.Key] = append(hs, c.ID)
	r.s.stats.commits++
}

// autoMerge merges every key that has several heads.
func (r *replica) autoMerge() error {
	for _, key := range simKeys {
		hs := r.heads[key]
		if len(hs) < 2 {
			continue
		}
		if _, ok, err := Base(r.g, hs); err != nil {
			return err
		} else if !ok {
			r.s.stats.disjoint++
		}
		if r.crissCross(hs) {
			r.s.stats.crissCross++
		}
		if len(hs) > 2 {
			r.s.stats.nway++
		}
		m, err := Merge(r.g, r.s.reg, testRepo, key, hs)
		if err != nil {
			return fmt.Errorf("%s: merge %s: %w", r.name, key, err)
		}
		// A graph with Ancestors (storage's index) merges identically.
		whole := 0
		if mi, err := Merge(indexedGraph{r.g, &whole}, r.s.reg, testRepo, key, hs); err != nil || mi.ID != m.ID {
			return fmt.Errorf("%s: merge %s with Ancestors: %v (%v), without %s", r.name, key, mi, err, m.ID)
		}
		if _, ok := r.g[m.ID]; ok {
			return fmt.Errorf("%s: merge %s of its own heads already exists", r.name, m.ID)
		}
		r.ingest(m)
		r.s.stats.merges++
		for _, other := range r.s.replicas {
			if _, ok := other.g[m.ID]; ok && other != r {
				r.s.stats.deduplicated++ // another replica built the same commit
				break
			}
		}
	}
	return nil
}

// crissCross reports whether heads have more than one maximal common
// ancestor (a brute force over ancestor sets, independent of Base).
func (r *replica) crissCross(heads []core.CommitID) bool {
	anc := func(id core.CommitID) map[core.CommitID]bool {
		seen := map[core.CommitID]bool{}
		stack := []core.CommitID{id}
		for len(stack) > 0 {
			x := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if !seen[x] {
				seen[x] = true
				stack = append(stack, r.g[x].Parents...)
			}
		}
		return seen
	}
	common := anc(heads[0])
	for _, h := range heads[1:] {
		a := anc(h)
		maps.DeleteFunc(common, func(id core.CommitID, _ bool) bool { return !a[id] })
	}
	maximal := 0
	for c := range common {
		inner := false
		for d := range common {
			if d != c && anc(d)[c] {
				inner = true
				break
			}
		}
		if !inner {
			maximal++
		}
	}
	return maximal > 1
}

// value returns a commit's full data and schema.
func (r *replica) value(id core.CommitID) (map[string]any, string) {
	c := r.g[id]
	if c.Data != nil {
		return c.Data, c.Schema
	}
	d, err := core.ApplyDelta(r.g[c.Delta.Base].Data, c.Delta)
	if err != nil {
		r.s.tb.Fatalf("apply delta: %v", err)
	}
	return d, c.Schema
}

// edit writes a new version of key on top of r's single head (or a new
// root), changing a few random fields.
func (r *replica) edit(key string) error {
	rng := r.s.rng
	r.clock += int64(rng.IntN(3)) - 0 // equal timestamps happen
	if rng.IntN(10) == 0 {
		r.clock -= int64(rng.IntN(5)) // and clock skew
	}
	if rng.IntN(15) == 0 && r.version == 1 {
		r.version = 2
	}
	var parents []core.CommitID
	cur := map[string]any{}
	curSchema := ""
	var head *core.Commit
	if hs := r.heads[key]; len(hs) == 1 {
		head = r.g[hs[0]]
		parents = slices.Clone(hs)
		cur, curSchema = r.value(hs[0])
		if _, v, _ := core.ParseSchemaRef(curSchema); v > r.version {
			r.version = v
		}
	} else if len(hs) > 1 {
		return fmt.Errorf("%s: key %s has %d heads after merging", r.name, key, len(hs))
	}
	schema := core.SchemaRef("note", r.version)
	if curSchema != "" && curSchema != schema {
		up, err := r.s.reg.Upgrade(cur, curSchema, schema)
		if err != nil {
			return err
		}
		cur = up
		r.s.stats.upgrades++
	}
	next := core.CloneObject(cur)
	if head == nil {
		// A long text, so that small edits of it travel as deltas.
		b := make([]rune, 40+rng.IntN(80))
		for i := range b {
			b[i] = simAlphabet[rng.IntN(len(simAlphabet))]
		}
		next["body"] = string(b)
	}
	for n := 1 + rng.IntN(3); n > 0; n-- {
		r.editField(next)
	}
	c := &core.Commit{Repo: testRepo, Key: key, Parents: parents, Author: r.name, TS: max(r.clock, 0), Schema: schema, Data: next}
	if head != nil && head.Data != nil && curSchema == schema && rng.IntN(2) == 0 {
		s, _ := r.s.reg.Get(schema)
		if data, delta := core.Encode(s, head.ID, head.Data, next); delta != nil {
			c.Data, c.Delta = data, delta
			r.s.stats.deltas++
		}
	}
	if err := c.Seal(); err != nil {
		return fmt.Errorf("%s: seal edit: %w", r.name, err)
	}
	r.ingest(c)
	return nil
}

var (
	simAlphabet = []rune("ab ,😀🎉\U0001F468\u200d\U00010348é")
	simTags     = []string{"a", "b", "z", "😀", "～", "tag two"}
)

func (r *replica) editField(v map[string]any) {
	rng := r.s.rng
	str := func(n int) string {
		b := make([]rune, n)
		for i := range b {
			b[i] = simAlphabet[rng.IntN(len(simAlphabet))]
		}
		return string(b)
	}
	title := "title"
	if r.version == 2 {
		title = "name"
	}
	switch rng.IntN(12) {
	case 0:
		v[title] = str(1 + rng.IntN(4))
	case 1:
		if r.version == 2 {
			v["prio"] = float64(rng.IntN(5))
		} else {
			v["n"] = float64(rng.IntN(5))
		}
	case 2:
		v["done"] = rng.IntN(2) == 0
	case 3:
		v["due"] = fmt.Sprintf("2026-%02d-%02dT10:00:00.000Z", 1+rng.IntN(12), 1+rng.IntN(28))
	case 4:
		v["raw"] = []any{float64(rng.IntN(3)), map[string]any{"k": str(1)}, nil}[rng.IntN(3)]
	case 5, 6:
		tags, _ := core.AsSet(v["tags"])
		e := simTags[rng.IntN(len(simTags))]
		if slices.Contains(tags, e) {
			tags = slices.DeleteFunc(slices.Clone(tags), func(x string) bool { return x == e })
		} else {
			tags = append(slices.Clone(tags), e)
			slices.SortFunc(tags, core.CompareStrings)
		}
		v["tags"] = core.SetValue(tags)
	case 7:
		attrs, ok := core.AsMap(v["attrs"])
		attrs = maps.Clone(attrs)
		if !ok {
			attrs = map[string]any{}
		}
		k := []string{"x", "y", "😀"}[rng.IntN(3)]
		if _, in := attrs[k]; in && rng.IntN(2) == 0 {
			delete(attrs, k)
		} else {
			attrs[k] = []any{str(1), float64(rng.IntN(3)), rng.IntN(2) == 0}[rng.IntN(3)]
		}
		v["attrs"] = attrs
	case 8, 9, 10:
		body := []rune(fmt.Sprint(v["body"]))
		if _, ok := v["body"].(string); !ok {
			body = nil
		}
		at := rng.IntN(len(body) + 1)
		del := min(rng.IntN(4), len(body)-at)
		ins := []rune(str(rng.IntN(5)))
		v["body"] = string(slices.Concat(body[:at], ins, body[at+del:]))
	case 11:
		switch rng.IntN(3) {
		case 0:
			v["isDeleted"] = !core.IsDeleted(v)
		default:
			// Remove a field altogether.
			names := slices.Sorted(maps.Keys(v))
			if len(names) > 0 {
				delete(v, names[rng.IntN(len(names))])
			}
		}
	}
}

// TestSimulation_Replay is a fixed case that prints what happened, as a
// smoke test of the simulation itself.
func TestSimulation_Replay(t *testing.T) {
	s := newSim(t, testRegistry(t), 7)
	if err := s.run(); err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	for _, key := range simKeys {
		if hs := s.replicas[0].heads[key]; len(hs) == 1 {
			v, schema := s.replicas[0].value(hs[0])
			fmt.Fprintf(&sb, "%s %s %s\n", key, schema, core.MustCanonical(v))
		}
	}
	t.Logf("%d replicas, %+v\n%s", len(s.replicas), s.stats, sb.String())
	if s.stats.merges == 0 {
		t.Fatalf("seed 7 made no merges")
	}
}
