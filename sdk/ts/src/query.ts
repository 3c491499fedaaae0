// Live queries, incremental and composable.
//
// A LiveQuery keeps the items of its source that pass `where`, in `sort`
// order, and its result is the first `limit` of them. Its source is a
// replica or another LiveQuery (composition: a query over a query's
// results). While it has subscribers it is attached: every batch of changes
// the source reports names the keys that changed, and only those are read,
// filtered and moved (a binary search in the sorted array), so a batch
// costs O(changed × log n), not a re-run over every item. A query reports
// to its own subscribers only the keys whose presence or value in its
// result changed, so a query over it does work in proportion to what
// changed upstream. Without subscribers it is detached and recomputes from
// scratch on read when its source's version moved (so a render that reads
// before subscribing sees current data, and an abandoned query holds no
// subscription).
//
// Snapshots are stable: results() returns the same array until the result
// changes, and an item whose value did not change keeps its object, which
// is what React's useSyncExternalStore and memoization need.
//
// `where` and `sort` must be pure functions of the items they are given.

import { compareStrings, equalJSON, type JSONObject } from "./json.js";
import { parseSchemaRef } from "./commit.js";
import type { Schema } from "./schema.js";

/** An item as readers see it. */
export interface Item<T extends JSONObject = JSONObject> {
  key: string;
  /** The value, upgraded to the newest schema version known, with defaults filled in. */
  value: T;
  /** The schema the value is at. */
  schema: string;
  /** The item's head commit ids (more than one while a merge is pending); empty for a write not sealed yet. */
  heads: string[];
  /** Largest ts among the heads (or the pending write's). */
  ts: number;
  deleted: boolean;
  /** True while the latest local write is not acknowledged by the gateway. */
  pending: boolean;
}

/** A query: a filter, an order and a limit, over a replica or another query. */
export interface Query<T extends JSONObject = JSONObject> {
  /** Only items of this schema's namespace (a Schema or "ns" or "ns/version"). */
  schema?: Schema | string;
  /** Keep items this returns true for (deleted items are never listed). */
  where?: (item: Item<T>) => boolean;
  /** Order (default: the source query's order, or by key over a replica); ties are ordered by key. */
  sort?: (a: Item<T>, b: Item<T>) => number;
  /** At most this many items (the first in sort order). */
  limit?: number;
}

/**
 * What a query reads: a replica or another query. version moves whenever
 * the items change; subscribe reports the keys that changed, once per batch.
 */
export interface Source<T extends JSONObject = JSONObject> {
  /** The current version; reading it brings a detached source up to date. */
  readonly version: number;
  /** The live (not deleted) item under key, or undefined. */
  lookup(key: string): Item<T> | undefined;
  /** Every live item. */
  all(): Iterable<Item<T>>;
  subscribe(listener: (keys: Set<string>) => void): () => void;
}

/** sameItem reports whether b shows nothing new over a. */
export function sameItem(a: Item, b: Item): boolean {
  return (
    a === b ||
    (a.key === b.key &&
      a.ts === b.ts &&
      a.pending === b.pending &&
      a.schema === b.schema &&
      a.deleted === b.deleted &&
      a.heads.length === b.heads.length &&
      a.heads.every((h, i) => h === b.heads[i]) &&
      equalJSON(a.value, b.value))
  );
}

/** LiveQuery is a query kept up to date. Get one from replica.query() or query.query(). */
export class LiveQuery<T extends JSONObject = JSONObject> implements Source<T> {
  private members = new Map<string, Item<T>>();
  private sorted: Item<T>[] = [];
  private snapshot: Item<T>[] | undefined;
  private inResult = new Set<string>();
  private listeners = new Set<(keys: Set<string>) => void>();
  private detach: (() => void) | undefined;
  /** The source's version this query last caught up with. */
  private seen = -1;
  private ver = 0;
  /** @internal the total order of the result. */
  readonly cmp: (a: Item<T>, b: Item<T>) => number;
  private readonly ns: string | undefined;
  /** How many items `where` was asked about (for tests of incrementality). */
  evaluated = 0;

  constructor(
    private readonly source: Source<T>,
    private readonly q: Query<T> = {},
  ) {
    const sort = q.sort;
    // Without a sort of its own, a query over a query keeps that query's order.
    this.cmp = sort
      ? (a, b) => sort(a, b) || compareStrings(a.key, b.key)
      : source instanceof LiveQuery
        ? (source.cmp as (a: Item<T>, b: Item<T>) => number)
        : (a, b) => compareStrings(a.key, b.key);
    const s = q.schema;
    this.ns = s === undefined ? undefined : typeof s === "string" ? (s.includes("/") ? parseSchemaRef(s).ns : s) : s.ns;
    if (q.limit !== undefined && !(Number.isInteger(q.limit) && q.limit >= 0)) throw new RangeError("limit must be a whole number");
  }

  /** results is the current result, in order; the same array until it changes. */
  results(): Item<T>[] {
    this.refresh();
    if (!this.snapshot) this.snapshot = this.q.limit === undefined ? this.sorted.slice() : this.sorted.slice(0, this.q.limit);
    return this.snapshot;
  }

  /** query builds a query over this query's results. */
  query<U extends JSONObject = T>(q: Query<U> = {}): LiveQuery<U> {
    return new LiveQuery<U>(this as unknown as Source<U>, q);
  }

  /**
   * subscribe calls listener with the keys whose presence or value in the
   * result changed, after every batch that changed the result. It returns
   * the unsubscribe function.
   */
  subscribe(listener: (keys: Set<string>) => void): () => void {
    this.listeners.add(listener);
    if (!this.detach) this.attach();
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0 && this.detach) {
        this.detach();
        this.detach = undefined;
      }
    };
  }

  /** live calls cb with the result now and after every change of it; it returns the unsubscribe function. */
  live(cb: (items: Item<T>[]) => void): () => void {
    const stop = this.subscribe(() => cb(this.results()));
    cb(this.results());
    return stop;
  }

  get version(): number {
    this.refresh();
    return this.ver;
  }

  lookup(key: string): Item<T> | undefined {
    this.refresh();
    return this.inResult.has(key) ? this.members.get(key) : undefined;
  }

  *all(): Iterable<Item<T>> {
    yield* this.results();
  }

  // ---- maintenance ----------------------------------------------------------

  private attach(): void {
    this.detach = this.source.subscribe((keys) => this.apply(keys));
    this.recomputeIfMoved();
  }

  /** refresh brings a detached query up to date; an attached one is kept so by apply. */
  private refresh(): void {
    if (!this.detach) this.recomputeIfMoved();
  }

  /** recomputeIfMoved recomputes from scratch when the source moved unseen. */
  private recomputeIfMoved(): void {
    const v = this.source.version;
    if (v === this.seen) return;
    this.seen = v;
    const before = this.members;
    const beforeResult = this.inResult;
    this.members = new Map();
    for (const it of this.source.all()) {
      if (!this.passes(it)) continue;
      const old = before.get(it.key);
      this.members.set(it.key, old && sameItem(old, it) ? old : it);
    }
    this.sorted = [...this.members.values()].sort(this.cmp);
    const lim = Math.min(this.q.limit ?? this.sorted.length, this.sorted.length);
    const now = new Set<string>();
    let changed = false;
    for (let i = 0; i < lim; i++) {
      const it = this.sorted[i];
      now.add(it.key);
      if (before.get(it.key) !== it || !beforeResult.has(it.key)) changed = true;
    }
    if (now.size !== beforeResult.size) changed = true;
    this.inResult = now;
    // Nobody is told: a detached query has no listeners, and one being
    // attached is read by its new subscriber right after.
    if (changed || this.snapshot === undefined) {
      this.ver++;
      this.snapshot = undefined;
    }
  }

  /** apply updates the query for the keys its source reports changed. */
  private apply(keys: Set<string>): void {
    this.seen = this.source.version;
    const prev = new Map<string, Item<T> | undefined>();
    for (const k of keys) {
      const old = this.members.get(k);
      const it = this.source.lookup(k);
      const nu = it && this.passes(it) ? (old && sameItem(old, it) ? old : it) : undefined;
      if (nu === old) continue;
      prev.set(k, old);
      if (old) this.sorted.splice(this.indexOf(old), 1);
      if (nu) {
        this.sorted.splice(this.insertionPoint(nu), 0, nu);
        this.members.set(k, nu);
      } else this.members.delete(k);
    }
    if (prev.size === 0) return;
    const changed = new Set<string>();
    if (this.q.limit === undefined) {
      // Every member is in the result: what changed is what moved.
      for (const k of prev.keys()) {
        changed.add(k);
        if (this.members.has(k)) this.inResult.add(k);
        else this.inResult.delete(k);
      }
    } else {
      // The first limit: keys can enter or leave without changing.
      const now = new Set<string>();
      for (let i = 0; i < Math.min(this.q.limit, this.sorted.length); i++) {
        const k = this.sorted[i].key;
        now.add(k);
        if (!this.inResult.has(k) || prev.has(k)) changed.add(k);
      }
      for (const k of this.inResult) if (!now.has(k)) changed.add(k);
      this.inResult = now;
    }
    if (changed.size === 0) return; // changes past the limit
    this.ver++;
    this.snapshot = undefined;
    for (const l of [...this.listeners]) l(changed);
  }

  private passes(it: Item<T>): boolean {
    if (it.deleted) return false;
    if (this.ns !== undefined && parseSchemaRef(it.schema).ns !== this.ns) return false;
    if (!this.q.where) return true;
    this.evaluated++;
    return this.q.where(it);
  }

  private insertionPoint(it: Item<T>): number {
    let lo = 0,
      hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.cmp(this.sorted[mid], it) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private indexOf(it: Item<T>): number {
    const i = this.insertionPoint(it);
    if (this.sorted[i] === it) return i;
    // A sort that is not a total order over values: fall back to a scan.
    return this.sorted.indexOf(it);
  }
}
