// A local replica of one repository: the commit graph, each item's heads
// and value, the set digest, local writes and live queries.
//
// Reads and writes are synchronous on local state. A write shows at once
// (it is held as a pending value) and is sealed (hashed and signed with
// WebCrypto, which is asynchronous) in write order right after; the sealed
// commit joins the graph and the offline queue (RepoMeta.unpushed), which
// the client pushes whenever it is online. The parents of a write are the
// heads the writer saw, so concurrent edits merge 3-way exactly as on the
// Go side. Values of items with several heads are the deterministic merge
// of those heads (merge.ts); the gateway writes the merge commit itself and
// it arrives like any other commit. A write on more heads than a commit may
// name (256) first merges them in groups (mergeAll), the same commits the
// gateway makes, and pushes them before it.

import { decodeCommit, isDeleted, isMerge, parseSchemaRef, signCommit, validKey, compareCommits, type Commit, type UnsealedCommit } from "./commit.js";
import { encode } from "./delta.js";
import { Digest } from "./digest.js";
import { GoatError } from "./errors.js";
import { canonicalize, clone, compareStrings, equalJSON, isObject, type JSONObject } from "./json.js";
import { mergeAll, planMerge, readAt, resolve, valueOf, verifyMerge, viewCap, viewHeads, GroupSize, type Graph, type View } from "./merge.js";
import { AnySchema, validate, withDefaults, type Registry, type Schema } from "./schema.js";
import type { Local } from "./sync.js";
import { emptyMeta, type Persistence, type RepoMeta } from "./store.js";
import { LiveQuery, type Item, type Query, type Source } from "./query.js";

export type { Item, Query } from "./query.js";

/** What a replica needs from its client. */
export interface ReplicaContext {
  registry: Registry;
  persistence: Persistence;
  /** The signing session (id and private key). */
  session(): Promise<{ id: string; privateKey: CryptoKey }>;
  /** Called after a local commit is sealed, so the client can push. */
  onLocalCommit(repo: Replica): void;
  /** Called when ingesting found commits with missing parents (a heal is due). */
  onGap(repo: Replica): void;
  /** Called with commits new to this replica (local writes and ingested ones), for the tabs that follow this one. */
  onAdded?(repo: Replica, commits: Commit[]): void;
  /** Called with the ids of local commits the gateway now holds. */
  onAcknowledged?(repo: Replica, ids: string[]): void;
  /** Loads unknown schemas (from the gateway) before values of that schema are read. */
  ensureSchemas(refs: string[]): Promise<void>;
  /**
   * verify checks received non-merge commits against their authors'
   * session records (trust.ts) and returns the reason of each that fails,
   * by id; it throws when it cannot check (gateway unreachable). Absent:
   * nothing is checked.
   */
  verify?(commits: Commit[]): Promise<Map<string, string>>;
  /** Called when a commit is quarantined. */
  onQuarantine?(repo: Replica): void;
  /** The branch this client reads and writes (schema versions it knows; DESIGN section 2). */
  view?(): View;
  now(): number;
  log(msg: string, ...args: unknown[]): void;
}

interface KeyState {
  heads: string[];
  /** The value on the client's branch, and that branch's heads. */
  cached?: { value: JSONObject; schema: string; ts: number; heads: string[] } | null;
}

/** One commit of an item with the item's value after it (time travel). */
export interface Version<T extends JSONObject = JSONObject> {
  commit: Commit;
  /** The value as of commit: its data (a delta applied), upgraded to the client's branch, defaults filled in. */
  value: T;
  schema: string;
  deleted: boolean;
}

interface PendingWrite {
  key: string;
  schema: string;
  data: JSONObject;
  ts: number;
  parents: string[];
  after?: PendingWrite;
  commit?: Commit;
  error?: unknown;
}

/** Replica is one repository's local state. Get one from Goat.repo(). */
export class Replica implements Source {
  private commits = new Map<string, Commit>();
  private order: string[] = [];
  private keyState = new Map<string, KeyState>();
  private dig = new Digest();
  private meta: RepoMeta = emptyMeta();
  private unpushed = new Set<string>();
  private pendingByKey = new Map<string, PendingWrite>();
  private sealing: Promise<void> = Promise.resolve();
  private listeners = new Set<(keys: Set<string>) => void>();
  private changed = new Set<string>();
  private notifyScheduled = false;
  private ver = 0;
  private persistQueue: Promise<void> = Promise.resolve();
  private ingesting: Promise<void> = Promise.resolve();
  private readonly graph: Graph = (id) => this.commits.get(id);
  // Received commits that failed verification: never applied or shown,
  // but counted as held for sync (digest, filters) so the gateway does not
  // send them again in every round. They come after every held commit in
  // ids(), which stays topological: no held commit descends from one.
  private quarantine = new Map<string, { commit: Commit; reason: string }>();
  private syncDig = new Digest();

  /** @internal */
  constructor(readonly name: string, private readonly ctx: ReplicaContext) {}

  /** @internal load restores the saved state (trusted: it was verified when first stored). */
  async load(): Promise<void> {
    const { commits, meta } = await this.ctx.persistence.load(this.name);
    const refs = new Set<string>();
    for (const c of commits) refs.add(c.schema);
    // Not awaited: a reload must show local state before the network
    // answers; values are recomputed (invalidate) when schemas arrive.
    void this.ctx.ensureSchemas([...refs]).catch(() => {});
    const rejected = new Set(meta.rejected ?? []);
    for (const c of topological(commits)) if (!this.commits.has(c.id) && !rejected.has(c.id)) this.addToGraph(c);
    this.meta = meta;
    this.unpushed = new Set(meta.unpushed.filter((id) => this.commits.has(id)));
    for (const k of this.keyState.keys()) this.changed.add(k);
    this.scheduleNotify();
  }

  // ---- reads --------------------------------------------------------------

  /** get returns an item's value, or undefined if it does not exist or is deleted. */
  get<T extends JSONObject = JSONObject>(key: string): T | undefined {
    const it = this.item<T>(key);
    return it && !it.deleted ? it.value : undefined;
  }

  /** item returns an item with its metadata (deleted items too), or undefined. */
  item<T extends JSONObject = JSONObject>(key: string): Item<T> | undefined {
    const p = this.pendingByKey.get(key);
    if (p) {
      const ks = this.keyState.get(key);
      return this.view(key, p.data, p.schema, p.ts, ks?.heads ?? [], true) as Item<T>;
    }
    const ks = this.keyState.get(key);
    if (!ks) return undefined;
    const v = this.value(key, ks);
    if (!v) return undefined;
    return this.view(key, v.value, v.schema, v.ts, v.heads, v.heads.some((h) => this.unpushed.has(h))) as Item<T>;
  }

  private branch(): View {
    return this.ctx.view?.() ?? {};
  }

  private view(key: string, data: JSONObject, schema: string, ts: number, heads: string[], pending: boolean): Item {
    const { ns, version } = parseSchemaRef(schema);
    const cap = viewCap(this.ctx.registry, this.branch(), ns);
    let value = data, at = schema;
    if (cap !== undefined && cap > version && this.ctx.registry.has(schema) && this.ctx.registry.has(`${ns}/${cap}`)) {
      value = this.ctx.registry.upgrade(data, schema, `${ns}/${cap}`);
      at = `${ns}/${cap}`;
    }
    if (this.ctx.registry.has(at)) value = withDefaults(this.ctx.registry.get(at), value);
    return { key, value: clone(value), schema: at, heads: [...heads], ts, deleted: isDeleted(value), pending };
  }

  /**
   * branchHeads returns the heads of key that this client's branch sees: all of them when it sees
   * each one itself (writers never write below a parent's version, so then it sees their
   * ancestors too), else those of the visible sub-graph (merge.Heads).
   */
  private branchHeads(heads: string[]): string[] {
    const v = this.branch();
    const sees = (c: Commit) => {
      const { ns, version } = parseSchemaRef(c.schema);
      const cap = viewCap(this.ctx.registry, v, ns);
      return cap === undefined || version <= cap;
    };
    if (heads.every((h) => sees(this.commits.get(h)!))) return heads;
    return viewHeads(this.graph, this.ctx.registry, heads, v);
  }

  private value(key: string, ks: KeyState): { value: JSONObject; schema: string; ts: number; heads: string[] } | null {
    if (ks.cached !== undefined) return ks.cached;
    let r: KeyState["cached"] = null;
    let heads = ks.heads;
    try {
      heads = this.branchHeads(ks.heads);
      if (heads.length === 1) {
        const c = this.commits.get(heads[0])!;
        r = { value: valueOf(this.graph, c), schema: c.schema, ts: c.ts, heads };
      } else if (heads.length > 1 && heads.length <= GroupSize) {
        const p = planMerge(this.graph, this.ctx.registry, this.name, key, heads);
        r = { value: p.data, schema: p.schema, ts: p.ts, heads };
      } else if (heads.length > GroupSize) {
        throw new GoatError("too-large", `${heads.length} heads: shown as the newest until the gateway's merges arrive`);
      }
    } catch (e) {
      // An unknown schema (not loaded yet) or a bad delta: fall back to the
      // newest head's own value rather than hiding the item.
      this.ctx.log("value of %s/%s: %s", this.name, key, (e as Error).message);
      const newest = heads.map((h) => this.commits.get(h)!).sort(compareCommits).pop();
      if (newest?.data) r = { value: newest.data, schema: newest.schema, ts: newest.ts, heads };
    }
    ks.cached = r;
    return r;
  }

  /** keys returns the keys of items that exist (not deleted), sorted. */
  keys(): string[] {
    return [...this.all()].map((it) => it.key);
  }

  /** items returns the items that exist, by key, optionally filtered, sorted and limited. */
  items<T extends JSONObject = JSONObject>(q: Query<T> = {}): Item<T>[] {
    return new LiveQuery<T>(this as unknown as Source<T>, q).results();
  }

  /**
   * query returns a live query over this replica: its results() are kept
   * up to date incrementally while it has subscribers, and other queries
   * can be built on it (query.ts).
   */
  query<T extends JSONObject = JSONObject>(q: Query<T> = {}): LiveQuery<T> {
    return new LiveQuery<T>(this as unknown as Source<T>, q);
  }

  /** version moves with every change of any item (Source). */
  get version(): number {
    return this.ver;
  }

  /** lookup returns the item under key unless it is absent or deleted (Source). */
  lookup(key: string): Item | undefined {
    const it = this.item(key);
    return it && !it.deleted ? it : undefined;
  }

  /** all yields every item that exists, by key (Source). */
  *all(): Iterable<Item> {
    const all = new Set<string>([...this.keyState.keys(), ...this.pendingByKey.keys()]);
    for (const k of [...all].sort(compareStrings)) {
      const it = this.item(k);
      if (it && !it.deleted) yield it;
    }
  }

  // ---- writes -------------------------------------------------------------

  /**
   * put writes an item's whole value (validated against schema, default
   * any/1). It is visible to reads at once and sealed, stored and pushed in
   * the background; `await replica.flush()` waits for the sealing.
   */
  put(key: string, value: JSONObject, schema?: string): void {
    if (!validKey(key)) throw new GoatError("invalid", `item key ${JSON.stringify(key)} must match ^[A-Za-z0-9._~:@-]{1,200}$`);
    if (!isObject(value)) throw new GoatError("invalid", "value must be a JSON object");
    const cur = this.item(key);
    let ref = schema ?? cur?.schema ?? AnySchema;
    let s: Schema = this.ctx.registry.get(ref);
    const cap = this.ctx.registry.cap(s.ns);
    if (cap !== undefined && s.version > cap) {
      throw new GoatError("schema", `${ref} was retired (rolled back): write at ${s.ns}/${cap}, or republish ${ref}`, undefined, "https://goat-gateway.dev/problems/schema-retired");
    }
    let data = clone(value);
    canonicalize(data); // refuses what is not JSON, now rather than when sealing
    validate(s, data);
    // A write never moves an item back to an older version: at a parent's newer version, upgrade it.
    const newer = Math.max(0, ...(this.pendingByKey.has(key) ? [] : (cur?.heads ?? [])).map((h) => this.commits.get(h)!).filter((c) => parseSchemaRef(c.schema).ns === s.ns).map((c) => parseSchemaRef(c.schema).version));
    if (newer > s.version) {
      data = this.ctx.registry.upgrade(data, ref, `${s.ns}/${newer}`);
      ref = `${s.ns}/${newer}`;
      s = this.ctx.registry.get(ref);
    }
    if (cur && !this.pendingByKey.has(key) && cur.heads.length === 1) {
      const c = this.commits.get(cur.heads[0])!;
      if (c.schema === ref && equalJSON(valueOf(this.graph, c), data)) return; // nothing changes
    }
    const prev = this.pendingByKey.get(key);
    if (prev && prev.schema === ref && equalJSON(prev.data, data)) return; // the same write again
    const w: PendingWrite = {
      key,
      schema: ref,
      data,
      ts: Math.max(this.ctx.now(), prev?.ts ?? 0),
      // The heads of the client's branch (the item's as read): a write on an old branch merges with newer ones on the gateway.
      parents: prev ? [] : [...(cur?.heads ?? [])].sort(compareStrings),
      after: prev,
    };
    this.pendingByKey.set(key, w);
    this.markChanged(key);
    this.sealing = this.sealing.then(() => this.seal(w));
  }

  /** update writes fn(current value) (current is {} for a new item). */
  update(key: string, fn: (cur: JSONObject) => JSONObject, schema?: string): void {
    this.put(key, fn(clone(this.get(key) ?? {})), schema);
  }

  /** delete writes a tombstone: the current value with isDeleted: true. */
  delete(key: string): void {
    const cur = this.item(key);
    if (!cur || cur.deleted) return;
    this.put(key, { ...cur.value, isDeleted: true }, cur.schema);
  }

  /** flush resolves when every write made so far is sealed and stored locally. */
  async flush(): Promise<void> {
    await this.sealing;
    await this.persistQueue;
  }

  private async seal(w: PendingWrite): Promise<void> {
    try {
      const parentsOf = (x: PendingWrite): string[] => (x.after ? (x.after.commit ? [x.after.commit.id] : parentsOf(x.after)) : x.parents);
      let parents = parentsOf(w);
      if (parents.length > GroupSize) {
        // More heads than a commit may name: merge them first, in groups, as
        // every peer does (merge.MergeAll's order, docs/merge.md "Many
        // heads"), so the merges are the gateway's own and deduplicate, and
        // the write has one parent. They are pushed before the write.
        const merges = await mergeAll(this.graph, this.ctx.registry, this.name, w.key, parents);
        const fresh = merges.filter((m) => !this.commits.has(m.id));
        for (const m of fresh) {
          this.addToGraph(m);
          this.unpushed.add(m.id);
        }
        if (fresh.length) this.persist(fresh);
        parents = [merges[merges.length - 1].id];
      }
      const session = await this.ctx.session();
      const s = this.ctx.registry.get(w.schema);
      let base: Commit | undefined;
      if (parents.length === 1) {
        const p = this.commits.get(parents[0]);
        base = p?.data ? p : p?.delta ? this.commits.get(p.delta.base) : undefined;
        if (base && base.schema !== w.schema) base = undefined;
      }
      const body = encode(s, base?.id, base?.data, w.data);
      const u: UnsealedCommit = { repo: this.name, key: w.key, parents: [...parents].sort(compareStrings), author: session.id, ts: w.ts, schema: w.schema, ...body };
      const c = await signCommit(u, session.privateKey);
      w.commit = c;
      if (!this.commits.has(c.id)) {
        this.addToGraph(c);
        this.unpushed.add(c.id);
        this.persist([c]);
        this.ctx.onAdded?.(this, [c]);
      }
    } catch (e) {
      w.error = e;
      this.ctx.log("write %s/%s failed: %s", this.name, w.key, (e as Error).message);
    } finally {
      if (this.pendingByKey.get(w.key) === w) this.pendingByKey.delete(w.key);
      this.markChanged(w.key);
    }
    if (w.commit) this.ctx.onLocalCommit(this);
  }

  // ---- time travel ----------------------------------------------------------

  private versionOf(c: Commit): Version | undefined {
    let r: { schema: string; data: JSONObject };
    try {
      r = readAt(this.graph, this.ctx.registry, c, this.branch());
    } catch (e) {
      if (e instanceof GoatError && e.code === "schema") return undefined; // newer than the branch
      throw e;
    }
    const it = this.view(c.key, r.data, r.schema, c.ts, [c.id], false);
    return { commit: c, value: it.value, schema: it.schema, deleted: it.deleted };
  }

  /** history returns key's commits on the client's branch, newest first (a commit before its parents), each with the value after it. */
  history<T extends JSONObject = JSONObject>(key: string): Version<T>[] {
    const out: Version<T>[] = [];
    for (let i = this.order.length - 1; i >= 0; i--) {
      const c = this.commits.get(this.order[i])!;
      if (c.key !== key) continue;
      const v = this.versionOf(c);
      if (v) out.push(v as Version<T>);
    }
    return out;
  }

  /** at returns key as of one of its commits, upgraded to the client's branch; undefined for a commit it does not hold or cannot read. */
  at<T extends JSONObject = JSONObject>(key: string, id: string): Version<T> | undefined {
    const c = this.commits.get(id);
    if (!c || c.key !== key) return undefined;
    return this.versionOf(c) as Version<T> | undefined;
  }

  /**
   * asOf returns key as of time t (ms): the merge of the heads of its commits on the client's branch
   * with ts at most t whose parents are too (merge.Resolve); undefined if there were none.
   */
  async asOf<T extends JSONObject = JSONObject>(key: string, t: number | Date): Promise<Item<T> | undefined> {
    const ks = this.keyState.get(key);
    if (!ks) return undefined;
    const r = await resolve(this.graph, this.ctx.registry, this.name, key, ks.heads, { ...this.branch(), asOf: +t });
    if (!r) return undefined;
    return this.view(key, r.data, r.schema, r.ts, [r.head], false) as Item<T>;
  }

  /** playback yields the replica's commits in log order (parents first), each with its item's value after it; commits newer than the client's branch are skipped. */
  *playback(): Generator<Version> {
    for (const id of [...this.order]) {
      const v = this.versionOf(this.commits.get(id)!);
      if (v) yield v;
    }
  }

  // ---- graph --------------------------------------------------------------

  private addToGraph(c: Commit): void {
    this.commits.set(c.id, c);
    this.order.push(c.id);
    this.dig.add(c.id);
    let ks = this.keyState.get(c.key);
    if (!ks) this.keyState.set(c.key, (ks = { heads: [] }));
    const ps = new Set(c.parents);
    ks.heads = [...ks.heads.filter((h) => !ps.has(h)), c.id].sort(compareStrings);
    ks.cached = undefined;
    this.markChanged(c.key);
  }

  private persist(commits: Commit[]): void {
    // The offline queue in log order: a replica that only receives has
    // none, and must not walk its whole log for every commit to say so.
    const unpushed = this.unpushed.size === 0 ? [] : this.order.filter((id) => this.unpushed.has(id));
    const meta: RepoMeta = { ...this.meta, unpushed };
    this.meta = meta;
    const p = this.ctx.persistence;
    this.persistQueue = this.persistQueue
      .then(async () => {
        if (commits.length) await p.append(this.name, commits);
        await p.saveMeta(this.name, meta);
      })
      .catch((e) => this.ctx.log("persist %s: %s", this.name, (e as Error).message));
  }

  /** @internal setCursor records the log cursor to resume catch-up from. */
  setCursor(cursor: string): void {
    if (cursor === this.meta.cursor) return;
    this.meta = { ...this.meta, cursor };
    this.persist([]);
  }

  /** @internal the saved log cursor. */
  get cursor(): string {
    return this.meta.cursor;
  }

  /** @internal unpushedCommits returns the offline queue in order. */
  unpushedCommits(): Commit[] {
    return this.order.filter((id) => this.unpushed.has(id)).map((id) => this.commits.get(id)!);
  }

  /** @internal acknowledge removes commits the gateway has from the offline queue. */
  acknowledge(ids: Iterable<string>): void {
    const done: string[] = [];
    for (const id of ids) {
      if (this.unpushed.delete(id)) {
        done.push(id);
        this.markChanged(this.commits.get(id)!.key);
      }
    }
    if (done.length) {
      this.persist([]);
      this.ctx.onAcknowledged?.(this, done);
    }
  }

  /**
   * @internal reject removes local commits the gateway refused for good
   * (a schema or authorization failure) and every local commit built on
   * them, so the replica can equal the gateway again. Items fall back to
   * the heads that remain.
   */
  reject(ids: Iterable<string>): string[] {
    const drop = new Set<string>();
    for (const id of ids) if (this.unpushed.has(id)) drop.add(id);
    if (drop.size === 0) return [];
    for (const id of this.order) {
      const c = this.commits.get(id)!;
      if (this.unpushed.has(id) && (c.parents.some((p) => drop.has(p)) || (c.delta && drop.has(c.delta.base)))) drop.add(id);
    }
    const keys = new Set<string>();
    for (const id of drop) {
      keys.add(this.commits.get(id)!.key);
      this.commits.delete(id);
      this.unpushed.delete(id);
      this.dig.remove(id);
    }
    this.order = this.order.filter((id) => !drop.has(id));
    for (const key of keys) {
      const ofKey = this.order.filter((id) => this.commits.get(id)!.key === key);
      const parents = new Set(ofKey.flatMap((id) => this.commits.get(id)!.parents));
      const heads = ofKey.filter((id) => !parents.has(id)).sort(compareStrings);
      if (heads.length) this.keyState.set(key, { heads });
      else this.keyState.delete(key);
      this.markChanged(key);
    }
    this.meta = { ...this.meta, rejected: [...(this.meta.rejected ?? []), ...drop] };
    this.persist([]);
    return [...drop];
  }

  /** pendingCount is the number of local commits not yet acknowledged (plus writes not sealed yet). */
  get pendingCount(): number {
    return this.unpushed.size + this.pendingByKey.size;
  }

  // Local (sync driver) ---------------------------------------------------

  /** digest returns the count and XOR of all commit ids held (quarantined ones included: see quarantined). */
  digest(): Digest {
    if (this.quarantine.size === 0) return this.dig;
    const d = this.dig.clone();
    d.count += this.syncDig.count;
    for (let i = 0; i < 32; i++) d.xor[i] ^= this.syncDig.xor[i];
    return d;
  }

  /** ids yields all commit ids in a topological order. */
  ids(): Iterable<string> {
    return this.quarantine.size === 0 ? this.order : [...this.order, ...this.quarantine.keys()];
  }

  /** commit returns a commit by id (Local.get). */
  get_(id: string): Commit | undefined {
    return this.commits.get(id) ?? this.quarantine.get(id)?.commit;
  }

  /** quarantined lists the received commits that failed verification, with why: never applied, never shown. */
  quarantined(): { repo: string; id: string; reason: string }[] {
    return [...this.quarantine].map(([id, q]) => ({ repo: this.name, id, reason: q.reason }));
  }

  private quarantineCommit(c: Commit, reason: string): void {
    if (this.quarantine.has(c.id)) return;
    this.quarantine.set(c.id, { commit: c, reason });
    this.syncDig.add(c.id);
    this.ctx.log("%s: quarantined commit %s: %s", this.name, c.id, reason);
    this.ctx.onQuarantine?.(this);
  }

  /**
   * ingest verifies and stores commits from the gateway (topological
   * order): each must decode strictly with an id that recomputes; a merge
   * commit must recompute from its parents. Commits whose parents are
   * missing are left out and counted.
   */
  ingest(raw: unknown[], local = false): Promise<{ added: number; missing: number }> {
    // One ingest at a time: checks and additions must not interleave (an
    // SSE event and a heal can bring the same commit at once).
    const p = this.ingesting.then(() => this.ingestNow(raw, local));
    this.ingesting = p.then(
      () => {},
      () => {},
    );
    return p;
  }

  private async ingestNow(raw: unknown[], local: boolean): Promise<{ added: number; missing: number }> {
    const added: Commit[] = [];
    let missing = 0;
    const refs = new Set<string>();
    for (const r of raw) if (isObject(r) && typeof r.schema === "string") refs.add(r.schema);
    if (refs.size) await this.ctx.ensureSchemas([...refs]).catch(() => {});
    const decoded: Commit[] = [];
    // A batch may hold a commit twice (commit events of one read of the stream are ingested together).
    const seen = new Set<string>();
    for (const r of raw) {
      let c: Commit;
      try {
        c = await decodeCommit(r);
      } catch (e) {
        this.ctx.log("%s: refused a commit: %s", this.name, (e as Error).message);
        continue;
      }
      if (c.repo !== this.name || this.commits.has(c.id) || this.quarantine.has(c.id) || seen.has(c.id)) continue;
      seen.add(c.id);
      decoded.push(c);
    }
    // Signatures of the whole batch at once; throws (nothing stored) when
    // the records cannot be fetched.
    const bad = this.ctx.verify ? await this.ctx.verify(decoded.filter((c) => !isMerge(c))) : new Map<string, string>();
    for (const c of decoded) {
      const q = [...c.parents, ...(c.delta ? [c.delta.base] : [])].find((p) => this.quarantine.has(p));
      if (q) {
        this.quarantineCommit(c, `commit ${c.id} descends from quarantined commit ${q}`);
        continue;
      }
      const reason = bad.get(c.id);
      if (reason) {
        this.quarantineCommit(c, reason);
        continue;
      }
      if (!c.parents.every((p) => this.commits.has(p)) || (c.delta && !this.commits.has(c.delta.base))) {
        missing++;
        continue;
      }
      if (isMerge(c)) {
        try {
          await verifyMerge(this.graph, this.ctx.registry, c);
        } catch (e) {
          this.ctx.log("%s: refused merge commit %s: %s", this.name, c.id, (e as Error).message);
          continue;
        }
      }
      this.addToGraph(c);
      added.push(c);
    }
    if (added.length) {
      // Commits from the gateway are acknowledged by definition.
      // Local ones (another tab's writes, handed to this leader tab) are
      // queued for the gateway.
      for (const c of added) local ? this.unpushed.add(c.id) : this.unpushed.delete(c.id);
      this.persist(added);
      this.ctx.onAdded?.(this, added);
      if (local) this.ctx.onLocalCommit(this);
    }
    if (missing) this.ctx.onGap(this);
    return { added: added.length, missing };
  }

  // ---- live queries -------------------------------------------------------

  /**
   * subscribe calls listener with the keys that changed, after every batch
   * of changes (local writes, commits from the gateway), once per microtask.
   */
  subscribe(listener: (keys: Set<string>) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * live runs a query now and again after every batch of changes that
   * changed its result, calling cb with the current result each time; it
   * is incremental (query.ts). It returns the unsubscribe function.
   */
  live<T extends JSONObject = JSONObject>(q: Query<T>, cb: (items: Item<T>[]) => void): () => void {
    return this.query(q).live(cb);
  }

  /** watch calls cb with an item's current state now and whenever it changes. */
  watch<T extends JSONObject = JSONObject>(key: string, cb: (item: Item<T> | undefined) => void): () => void {
    cb(this.item<T>(key));
    return this.subscribe((keys) => {
      if (keys.has(key)) cb(this.item<T>(key));
    });
  }

  private markChanged(key: string): void {
    this.ver++;
    this.changed.add(key);
    this.scheduleNotify();
  }

  private scheduleNotify(): void {
    if (this.notifyScheduled) return;
    this.notifyScheduled = true;
    queueMicrotask(() => {
      this.notifyScheduled = false;
      const keys = this.changed;
      this.changed = new Set();
      if (keys.size === 0) return;
      for (const l of [...this.listeners]) {
        try {
          l(keys);
        } catch (e) {
          this.ctx.log("listener: %s", (e as Error).message);
        }
      }
    });
  }

  /** @internal forgets a cached value (schemas changed). */
  invalidate(): void {
    this.ver++;
    for (const [k, ks] of this.keyState) {
      ks.cached = undefined;
      this.changed.add(k);
    }
    this.scheduleNotify();
  }
}

// Replica implements Local with get() meaning "item value" for app code;
// the driver uses this adapter.
/** @internal */
export function localOf(r: Replica): Local {
  return {
    digest: () => r.digest(),
    ids: () => r.ids(),
    get: (id) => r.get_(id),
    ingest: (cs) => r.ingest(cs),
  };
}

/**
 * topological orders commits parents first, keeping the given order where
 * it already is one (stores may return commits in any order, for example
 * IndexedDB by id). Commits whose parents are absent keep their place
 * relative to the rest.
 */
export function topological(commits: readonly Commit[]): Commit[] {
  const byId = new Map(commits.map((c) => [c.id, c]));
  const done = new Set<string>();
  const out: Commit[] = [];
  for (const start of commits) {
    if (done.has(start.id)) continue;
    // Iterative depth-first walk: emit a commit after its present parents.
    const stack: [Commit, number][] = [[start, 0]];
    done.add(start.id);
    while (stack.length) {
      const top = stack[stack.length - 1];
      const [c, i] = top;
      if (i < c.parents.length) {
        top[1]++;
        const p = byId.get(c.parents[i]);
        if (p && !done.has(p.id)) {
          done.add(p.id);
          stack.push([p, 0]);
        }
        continue;
      }
      stack.pop();
      out.push(c);
    }
  }
  return out;
}
