// Package merge is goat-gateway's deterministic N-way 3-way merge of item
// versions (DESIGN sections 3 and 4). It is pure: values in, values out; no
// clock, no I/O, no goroutines, no randomness. The caller brings the commit
// graph through the narrow Graph interface and stores the result.
//
// Guarantees:
//   - Determinism: Merge's result depends only on the commits reachable from
//     the heads, not on the order heads are given in, map iteration, the
//     platform or the language: every peer that merges the same heads builds
//     the byte-identical merge commit, so concurrent merges deduplicate.
//   - Verifiability: Verify accepts a merge commit exactly when recomputing
//     it from its parents gives the same id.
//   - Convergence: replicas holding the same commits have the same heads and
//     so build the same merge, whatever order they received commits in and
//     whatever intermediate merges they made on the way.
//   - Idempotence: merging a change twice applies it once (a head equal to
//     base or to an earlier head adds nothing); a single head needs no merge.
//   - Totality: every pair of values merges; a field whose values do not fit
//     its declared type falls back to the register rule; invalid UTF-8 is
//     read as U+FFFD and never panics.
//
// The algorithm, exactly enough for a port (docs/merge.md has the pseudo
// code, testdata/ the cross-language vectors):
//
//  1. Head order: heads sorted by (ts, id) ascending; ids compare as bytes.
//  2. Base: among the common ancestors of all heads (a commit is its own
//     ancestor) that are not ancestors of another common ancestor, the
//     greatest in head order; none: the empty item. Criss-cross histories
//     thus pick one base deterministically.
//  3. Schema: the item's namespace is the last head's. The merge commit's
//     schema is the newest version of that namespace among base and heads;
//     their values are upgraded to it (core.Registry.Upgrade). A base in
//     another namespace counts as the empty item and heads in another
//     namespace take no part in the value merge (they stay parents): a
//     change of namespace is a last-writer-wins change of the whole item.
//  4. Values: MergeValues, field by field: register (last changed head in
//     head order wins, absence being a value), set, map (register per key),
//     text (MergeText).
//  5. Commit: author "merge", no sig, parents sorted ascending, ts the
//     largest head ts, full data.
//  6. Many heads: a merge commit takes at most GroupSize (core.MaxParents)
//     heads. MergeAll merges more as a tree fixed by the set of heads:
//     sort by head order, merge consecutive groups of GroupSize (a group of
//     one is carried), repeat while more than GroupSize remain, then merge
//     those. Each commit of the tree is an ordinary merge that Verify
//     checks.
//
// Text is diffed per head against base by DiffText, a Myers diff over code
// points: strip the common prefix, then the common suffix; an empty side is
// a pure insertion or deletion; otherwise bisect (Myers' linear-space middle
// search, forward and reverse greedy searches confined to the edit grid, the
// larger x winning between the two moves onto a diagonal and the insertion
// on a tie, forward overlap checked when len(a)-len(b) is odd and reverse
// overlap when even, diagonals scanned from -d to d) splits the problem at
// the forward end of the overlap, and both halves are diffed the same way.
// A work budget (MaxDiffWork), shared by all text diffs of one merge in
// field-name order, bounds the cost; past it, subproblems are replaced whole.
// Runs of deletions and insertions between equal code points form one hunk
// whose insertion is anchored after its deletions. MergeText then deletes
// every base code point some head deletes, keeps every insertion, and
// orders insertions at one anchor by head order; it diffs only when two or
// more distinct heads changed the text.
package merge
