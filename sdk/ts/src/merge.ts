// The deterministic merge (DESIGN section 4), ported from docs/merge.md so
// that a merge commit built here is byte-identical to the Go side's
// (merge/): same base, same head order, same Myers diff with the same
// tie-breaks and the same counted work budget. The vectors in
// merge/testdata/ are the contract.

import { isMerge, parseSchemaRef, seal, compareCommits, MaxParents, type Commit } from "./commit.js";
import { applyDelta, asMap, asSet } from "./delta.js";
import { GoatError } from "./errors.js";
import { compareStrings, equalJSON, has, type JSONObject, type JSONValue } from "./json.js";
import { fieldType, type Registry, type Schema } from "./schema.js";

/** MaxDiffWork is the work budget of one merge (docs/merge.md). */
export const MaxDiffWork = 2 ** 23;

/** A hunk of a text diff, in base code point coordinates. */
export interface Splice {
  at: number;
  del: number;
  ins: string;
}

interface Budget {
  work: number;
}

const codePoints = (s: string): number[] => {
  const out: number[] = [];
  for (const ch of s) out.push(ch.codePointAt(0)!);
  return out;
};

/** diffText returns the edit script of head against base (merge.DiffText). */
export function diffText(base: string, head: string, budget: Budget = { work: 0 }): Splice[] {
  const A = codePoints(base), B = codePoints(head);
  const hunks: Splice[] = [];
  let pos = 0;
  let open: { at: number; del: number; ins: number[] } | null = null;
  const close = () => {
    if (open) {
      hunks.push({ at: open.at, del: open.del, ins: String.fromCodePoint(...open.ins) });
      open = null;
    }
  };
  const equal = (n: number) => {
    if (n > 0) {
      close();
      pos += n;
    }
  };
  const del = (n: number) => {
    if (n > 0) {
      open ??= { at: pos, del: 0, ins: [] };
      open.del += n;
      pos += n;
    }
  };
  const ins = (a: number[], from: number, to: number) => {
    if (to > from) {
      open ??= { at: pos, del: 0, ins: [] };
      for (let i = from; i < to; i++) open.ins.push(a[i]);
    }
  };

  // diff works on A[a0:a1] and B[b0:b1] without copying.
  const diff = (a0: number, a1: number, b0: number, b1: number): void => {
    let p = 0;
    while (a0 + p < a1 && b0 + p < b1 && A[a0 + p] === B[b0 + p]) p++;
    equal(p);
    a0 += p;
    b0 += p;
    let q = 0;
    while (q < a1 - a0 && q < b1 - b0 && A[a1 - 1 - q] === B[b1 - 1 - q]) q++;
    a1 -= q;
    b1 -= q;
    if (a1 === a0) ins(B, b0, b1);
    else if (b1 === b0) del(a1 - a0);
    else {
      const r = bisect(a0, a1, b0, b1);
      if (r) {
        diff(a0, a0 + r[0], b0, b0 + r[1]);
        diff(a0 + r[0], a1, b0 + r[1], b1);
      } else {
        del(a1 - a0);
        ins(B, b0, b1);
      }
    }
    equal(q);
  };

  const bisect = (a0: number, a1: number, b0: number, b1: number): [number, number] | null => {
    const N = a1 - a0, M = b1 - b0, D = N - M, odd = (D & 1) !== 0;
    const dmax = Math.floor((N + M + 1) / 2);
    const off = dmax + 1;
    const F = new Int32Array(2 * off + 1).fill(-1);
    const R = new Int32Array(2 * off + 1).fill(-1);
    const move = (V: Int32Array, d: number, k: number): number => {
      if (d === 0) return 0;
      let i = -1, dl = -1;
      if (k + 1 <= d - 1 && V[off + k + 1] >= 0 && V[off + k + 1] - k <= M) i = V[off + k + 1];
      if (k - 1 >= -(d - 1) && V[off + k - 1] >= 0 && V[off + k - 1] + 1 <= N) dl = V[off + k - 1] + 1;
      return dl > i ? dl : i;
    };
    for (let d = 0; d <= dmax; d++) {
      for (let k = -d; k <= d; k += 2) {
        let x = move(F, d, k);
        budget.work++;
        if (x >= 0) {
          const x0 = x;
          let y = x - k;
          while (x < N && y < M && A[a0 + x] === B[b0 + y]) {
            x++;
            y++;
          }
          budget.work += x - x0;
        }
        F[off + k] = x;
        const c = D - k;
        if (x >= 0 && odd && -(d - 1) <= c && c <= d - 1 && R[off + c] >= 0 && x + R[off + c] >= N) return [x, x - k];
        if (budget.work > MaxDiffWork) return null;
      }
      for (let c = -d; c <= d; c += 2) {
        let x = move(R, d, c);
        budget.work++;
        if (x >= 0) {
          const x0 = x;
          let y = x - c;
          while (x < N && y < M && A[a1 - 1 - x] === B[b1 - 1 - y]) {
            x++;
            y++;
          }
          budget.work += x - x0;
        }
        R[off + c] = x;
        const k = D - c;
        if (x >= 0 && !odd && -d <= k && k <= d && F[off + k] >= 0 && F[off + k] + x >= N) return [F[off + k], F[off + k] - k];
        if (budget.work > MaxDiffWork) return null;
      }
    }
    return null;
  };

  diff(0, A.length, 0, B.length);
  close();
  return hunks;
}

/** mergeText merges text heads (in head order) against base (merge.MergeText). */
export function mergeText(base: string, heads: readonly string[], budget: Budget = { work: 0 }): string {
  const kept: string[] = [];
  for (const h of heads) if (h !== base && !kept.includes(h)) kept.push(h);
  if (kept.length === 0) return base;
  if (kept.length === 1) return kept[0];
  const b = Array.from(base);
  const deleted = new Uint8Array(b.length);
  const inserts: string[][] = Array.from({ length: b.length + 1 }, () => []);
  for (const h of kept) {
    for (const s of diffText(base, h, budget)) {
      deleted.fill(1, s.at, s.at + s.del);
      inserts[s.at + s.del].push(s.ins);
    }
  }
  let out = "";
  for (let g = 0; g <= b.length; g++) {
    out += inserts[g].join("");
    if (g < b.length && !deleted[g]) out += b[g];
  }
  return out;
}

/** mergeSet merges sets: (b - union(b - v_i)) + union(v_i - b), sorted. */
export function mergeSet(base: readonly string[], heads: readonly (readonly string[])[]): string[] {
  const inBase = new Set(base);
  const removed = new Set<string>(), added = new Set<string>();
  for (const h of heads) {
    const inHead = new Set(h);
    for (const e of h) if (!inBase.has(e)) added.add(e);
    for (const e of inBase) if (!inHead.has(e)) removed.add(e);
  }
  const out = [...base.filter((e) => !removed.has(e)), ...added];
  return [...new Set(out)].sort(compareStrings);
}

/** mergeMap merges maps per key by the register rule, absence being a value. */
export function mergeMap(base: JSONObject, heads: readonly JSONObject[]): JSONObject {
  const out: JSONObject = { ...base };
  const keys = new Set<string>(Object.keys(base));
  for (const h of heads) for (const k of Object.keys(h)) keys.add(k);
  for (const k of keys) {
    const inB = has(base, k);
    for (let i = heads.length - 1; i >= 0; i--) {
      const inH = has(heads[i], k);
      if (inH === inB && (!inH || equalJSON(heads[i][k], base[k]))) continue;
      if (inH) out[k] = heads[i][k];
      else delete out[k];
      break;
    }
  }
  return out;
}

/** mergeValues merges item values field by field (merge.MergeValues): heads in head order, already upgraded to schema. */
export function mergeValues(schema: Schema | undefined, base: JSONObject | undefined | null, heads: readonly JSONObject[]): JSONObject {
  const b0 = base ?? {};
  const names = new Set<string>(Object.keys(b0));
  for (const h of heads) for (const k of Object.keys(h)) names.add(k);
  const budget: Budget = { work: 0 };
  const out: JSONObject = {};
  for (const name of [...names].sort(compareStrings)) {
    const inB = has(b0, name), b = b0[name];
    const vals: JSONValue[] = [];
    let changed = 0, last: JSONValue | undefined, lastIn = false;
    for (const h of heads) {
      const inH = has(h, name);
      if (inH === inB && (!inH || equalJSON(h[name], b))) continue;
      changed++;
      last = h[name];
      lastIn = inH;
      if (inH) vals.push(h[name]);
    }
    let v: JSONValue | undefined = b, present = inB;
    if (changed === 1 || (changed > 1 && vals.length < changed)) {
      v = last;
      present = lastIn;
    } else if (changed > 1) {
      const ft = schema ? fieldType(schema, name) : "json";
      const m = mergeTyped(ft, b, inB, vals, budget);
      if (m !== undefined) {
        v = m;
        present = true;
      } else {
        v = last;
        present = lastIn;
      }
    }
    if (present) out[name] = v as JSONValue;
  }
  return out;
}

function mergeTyped(ft: string, b: JSONValue | undefined, inB: boolean, vals: JSONValue[], budget: Budget): JSONValue | undefined {
  switch (ft) {
    case "set": {
      const bs = inB ? asSet(b) : [];
      const hs = vals.map(asSet);
      if (!bs || hs.some((h) => !h)) return undefined;
      return mergeSet(bs, hs as string[][]);
    }
    case "map": {
      const bm = inB ? asMap(b) : {};
      const hm = vals.map(asMap);
      if (!bm || hm.some((h) => !h)) return undefined;
      return mergeMap(bm, hm as JSONObject[]);
    }
    case "text": {
      if (inB && typeof b !== "string") return undefined;
      if (!vals.every((v) => typeof v === "string")) return undefined;
      return mergeText(inB ? (b as string) : "", vals as string[], budget);
    }
  }
  return undefined;
}

/** The commits a merge may read: any commit by id. */
export type Graph = (id: string) => Commit | undefined;

function missing(msg: string): never {
  throw new GoatError("missing-parents", msg);
}

interface Walk {
  heads: Commit[];
  count: Map<string, number>;
  nodes: Map<string, Commit>;
}

function walk(g: Graph, headIds: readonly string[]): Walk {
  if (headIds.length === 0) throw new GoatError("invalid", "no heads");
  const heads = headIds.map((h) => g(h) ?? missing(`head ${h}`));
  const count = new Map<string, number>(), nodes = new Map<string, Commit>();
  for (const h of heads) {
    if (count.has(h.id)) throw new GoatError("invalid", `head ${h.id} is repeated or an ancestor of another head`);
    const seen = new Set<string>([h.id]);
    const stack = [h];
    nodes.set(h.id, h);
    while (stack.length) {
      const c = stack.pop()!;
      for (const p of c.parents) {
        if (seen.has(p)) continue;
        seen.add(p);
        const pc = nodes.get(p) ?? g(p) ?? missing(`${p}, ancestor of head ${h.id}`);
        nodes.set(p, pc);
        stack.push(pc);
      }
    }
    for (const id of seen) count.set(id, (count.get(id) ?? 0) + 1);
  }
  for (const h of heads) if (count.get(h.id)! > 1) throw new GoatError("invalid", `head ${h.id} is repeated or an ancestor of another head`);
  return { heads, count, nodes };
}

function bestBase(w: Walk): Commit | undefined {
  const k = w.heads.length;
  const inner = new Set<string>();
  for (const [id, n] of w.count) if (n === k) for (const p of w.nodes.get(id)!.parents) inner.add(p);
  let best: Commit | undefined;
  for (const [id, n] of w.count) {
    if (n !== k || inner.has(id)) continue;
    const c = w.nodes.get(id)!;
    if (!best || compareCommits(c, best) > 0) best = c;
  }
  return best;
}

/** mergeBase returns the best common ancestor of heads (merge.Base), or undefined for disjoint roots. */
export function mergeBase(g: Graph, heads: readonly string[]): string | undefined {
  return bestBase(walk(g, heads))?.id;
}

/** valueOf resolves a commit's full data (its own, or its delta applied to the delta's base). */
export function valueOf(g: Graph, c: Commit): JSONObject {
  if (c.data) return c.data;
  if (!c.delta) throw new GoatError("invalid", `commit ${c.id} has neither data nor delta`);
  const b = g(c.delta.base) ?? missing(`delta base ${c.delta.base} of ${c.id}`);
  if (!b.data) throw new GoatError("invalid", `delta base ${b.id} of ${c.id} has no full data`);
  return applyDelta(b.data, c.delta);
}

/** The unsealed merge of heads, and the inputs it came from. */
export interface MergePlan {
  repo: string;
  key: string;
  parents: string[];
  ts: number;
  schema: string;
  data: JSONObject;
}

/** planMerge computes the merge of heads without hashing it (merge.Merge up to Seal). */
export function planMerge(g: Graph, reg: Registry, repo: string, key: string, headIds: readonly string[]): MergePlan {
  if (headIds.length < 2) throw new GoatError("invalid", `a merge needs at least two heads, got ${headIds.length}`);
  if (headIds.length > MaxParents) throw new GoatError("too-large", `${headIds.length} heads, more than ${MaxParents}`);
  const w = walk(g, headIds);
  const ordered = [...w.heads].sort(compareCommits);
  for (const h of ordered) if (h.repo !== repo || h.key !== key) throw new GoatError("invalid", `head ${h.id} is ${h.repo}/${h.key}, not ${repo}/${key}`);
  const last = ordered[ordered.length - 1];
  let base = bestBase(w);
  const { ns } = parseSchemaRef(last.schema);
  let version = parseSchemaRef(last.schema).version;
  const inNS = (c: Commit) => parseSchemaRef(c.schema).ns === ns;
  if (base && !inNS(base)) base = undefined;
  const kept = ordered.filter(inNS);
  for (const c of [base, ...kept]) if (c) version = Math.max(version, parseSchemaRef(c.schema).version);
  const target = `${ns}/${version}`;
  const schema = reg.get(target);
  const at = (c: Commit) => {
    const d = valueOf(g, c);
    return c.schema === target ? d : reg.upgrade(d, c.schema, target);
  };
  return {
    repo,
    key,
    parents: [...headIds].sort(compareStrings),
    ts: last.ts,
    schema: target,
    data: mergeValues(schema, base ? at(base) : undefined, kept.map(at)),
  };
}

/** mergeCommit builds the merge commit of heads (merge.Merge): every peer builds the same bytes. */
export async function mergeCommit(g: Graph, reg: Registry, repo: string, key: string, heads: readonly string[]): Promise<Commit> {
  const p = planMerge(g, reg, repo, key, heads);
  return seal({ repo: p.repo, key: p.key, parents: p.parents, author: "merge", ts: p.ts, schema: p.schema, data: p.data });
}

/** GroupSize is the most heads one merge commit takes (merge.GroupSize): a commit has at most MaxParents parents. */
export const GroupSize = MaxParents;

/**
 * mergeAll returns the merge commits that reduce heads to one (merge.MergeAll), in the order to
 * store them; the last is the new head. Up to GroupSize heads that is mergeCommit's one commit;
 * past it, a tree fixed by the set of heads (docs/merge.md, "Many heads"): sort the level by
 * (ts, id), cut it into consecutive groups of GroupSize, merge each group of two or more (a group
 * of one is carried as is), repeat while the level has more than GroupSize commits, then merge it.
 */
export async function mergeAll(g: Graph, reg: Registry, repo: string, key: string, headIds: readonly string[]): Promise<Commit[]> {
  if (headIds.length <= GroupSize) return [await mergeCommit(g, reg, repo, key, headIds)];
  // The groups alone would not see a head that is an ancestor of a head in another group.
  let level = walk(g, headIds).heads;
  const made = new Map<string, Commit>();
  const view: Graph = (id) => made.get(id) ?? g(id);
  const out: Commit[] = [];
  while (level.length > GroupSize) {
    level = [...level].sort(compareCommits);
    const next: Commit[] = [];
    for (let i = 0; i < level.length; i += GroupSize) {
      const group = level.slice(i, i + GroupSize);
      if (group.length === 1) {
        next.push(group[0]);
        continue;
      }
      const m = await mergeCommit(view, reg, repo, key, group.map((c) => c.id));
      made.set(m.id, m);
      out.push(m);
      next.push(m);
    }
    level = next;
  }
  out.push(await mergeCommit(view, reg, repo, key, level.map((c) => c.id)));
  return out;
}

/** verifyMerge checks that a merge commit is the merge of its parents (merge.Verify). */
export async function verifyMerge(g: Graph, reg: Registry, c: Commit): Promise<void> {
  if (!isMerge(c)) throw new GoatError("invalid", `commit ${c.id} is not a merge commit`);
  const m = await mergeCommit(g, reg, c.repo, c.key, c.parents);
  if (m.id !== c.id) throw new GoatError("invalid", `merge commit ${c.id} differs from the recomputed merge ${m.id} of its parents`);
}

/**
 * View selects what one reader sees of an item's commit graph (merge.View; DESIGN section 2,
 * "Schema branches" and "Time travel"): commits at most the reader's version of their namespace
 * (versions, capped by the registry's newest readable version), with ts at most asOf when given,
 * and whose parents are all visible.
 */
export interface View {
  versions?: Record<string, number>;
  asOf?: number;
}

/** viewCap returns the newest version of ns that v reads, or undefined when nothing caps it. */
export function viewCap(reg: Registry, v: View, ns: string): number | undefined {
  const c = reg.cap(ns), w = v.versions?.[ns];
  if (w === undefined) return c;
  return c === undefined ? w : Math.min(c, w);
}

/** unrestricted reports whether v sees every commit (no cap below the newest, nothing retired, no time). */
export function unrestricted(reg: Registry, v: View): boolean {
  if (v.asOf !== undefined || reg.anyRetired()) return false;
  for (const [ns, w] of Object.entries(v.versions ?? {})) {
    const c = reg.cap(ns);
    if (c === undefined || w < c) return false;
  }
  return true;
}

function ownVisible(reg: Registry, v: View, c: Commit): boolean {
  if (v.asOf !== undefined && c.ts > v.asOf) return false;
  const { ns, version } = parseSchemaRef(c.schema);
  const cap = viewCap(reg, v, ns);
  return cap === undefined || version <= cap;
}

/** viewHeads returns the heads of the sub-graph v sees of an item whose heads are heads (merge.Heads), sorted. */
export function viewHeads(g: Graph, reg: Registry, heads: readonly string[], v: View): string[] {
  const visible = new Map<string, boolean>(), inner = new Set<string>();
  const get = (id: string) => g(id) ?? missing(`commit ${id}`);
  const isVisible = (id: string): boolean => {
    const stack = [get(id)];
    while (stack.length) {
      const c = stack[stack.length - 1];
      if (visible.has(c.id)) {
        stack.pop();
        continue;
      }
      let vis = ownVisible(reg, v, c) && c.parents.every((p) => visible.get(p) !== false);
      if (!vis) {
        visible.set(c.id, false);
        stack.pop();
        continue;
      }
      const todo = c.parents.filter((p) => !visible.has(p));
      if (todo.length) {
        for (const p of todo) stack.push(get(p));
        continue;
      }
      visible.set(c.id, true);
      for (const p of c.parents) inner.add(p);
      stack.pop();
    }
    return visible.get(id)!;
  };
  const cands: string[] = [];
  const seen = new Set<string>();
  const stack = [...heads];
  while (stack.length) {
    const id = stack.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    if (isVisible(id)) cands.push(id);
    else stack.push(...get(id).parents);
  }
  return cands.filter((id) => !inner.has(id)).sort(compareStrings);
}

/** A value as one View sees it (merge.Resolved). */
export interface Resolved {
  heads: string[];
  /** The one visible head, or the merge commit of several (stored or not, the same bytes). */
  head: string;
  ts: number;
  schema: string;
  data: JSONObject;
}

/** readAt returns commit c's value upgraded to the newest version v reads (merge.ValueAt); a commit newer than v's branch is a GoatError "schema". */
export function readAt(g: Graph, reg: Registry, c: Commit, v: View): { schema: string; data: JSONObject } {
  const { ns, version } = parseSchemaRef(c.schema);
  const cap = viewCap(reg, v, ns);
  if (cap !== undefined && version > cap) throw new GoatError("schema", `commit ${c.id} is at ${c.schema}, newer than this reader's ${ns}/${cap}`);
  const target = cap === undefined ? c.schema : `${ns}/${cap}`;
  const d = valueOf(g, c);
  return { schema: target, data: c.schema === target ? d : reg.upgrade(d, c.schema, target) };
}

/** resolve returns an item as v sees it (merge.Resolve): the merge of its visible heads, upgraded; undefined if none. */
export async function resolve(g: Graph, reg: Registry, repo: string, key: string, heads: readonly string[], v: View): Promise<Resolved | undefined> {
  const vh = viewHeads(g, reg, heads, v);
  if (vh.length === 0) return undefined;
  let head = g(vh[0])!;
  let view = g;
  if (vh.length > 1) {
    const ms = await mergeAll(g, reg, repo, key, vh);
    const made = new Map(ms.map((m) => [m.id, m]));
    view = (id) => made.get(id) ?? g(id);
    head = ms[ms.length - 1];
  }
  const r = readAt(view, reg, head, v);
  return { heads: vh, head: head.id, ts: head.ts, ...r };
}
