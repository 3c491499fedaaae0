// The client half of the sync protocol (DESIGN section 5; sync/round.go
// Client and sync/driver.go Driver): clone by paging the cacheable log,
// heal by stateless reconciliation rounds. Same algorithm and limits as the
// Go side, so a heal after a one-sided divergence is two round trips.

import { buildFilter, Filter, rate } from "./bloom.js";
import { commitJSON, type Commit } from "./commit.js";
import { Digest } from "./digest.js";
import { GoatError, isCode } from "./errors.js";
import { fromHex } from "./bytes.js";
import type { LogPage, SyncRequest, SyncResponse } from "./http.js";
import { ClientV2, MaxStream } from "./syncv2.js";

/** Per-round caps of the wire contract (sync.MaxCommits, sync.DefaultMaxBytes). */
export const MaxCommits = 1000;
export const DefaultMaxBytes = 4 << 20;
export const DefaultMaxRounds = 100;

/** What the driver needs from the network. */
export interface Transport {
  /** log returns up to limit commits after cursor ("" = the start); a stale cursor is GoatError "must-reconcile". */
  log(repo: string, cursor: string, limit: number): Promise<LogPage>;
  /** sync runs one reconciliation round. */
  sync(repo: string, req: SyncRequest): Promise<SyncResponse>;
}

/** The driver's side of a repository. */
export interface Local {
  digest(): Digest;
  /** ids yields every id in a topological order. */
  ids(): Iterable<string>;
  get(id: string): Commit | undefined;
  /** ingest stores what it can of commits (topological order) and returns how many it left out for missing parents. */
  ingest(commits: unknown[]): Promise<{ added: number; missing: number }>;
  /** idsTS, if present, yields [id, ts] in ids() order without loading commits (version 2 partitions by ts). */
  idsTS?(): Iterable<[string, number]>;
}

/** What one clone or heal did. */
export interface Stats {
  pages: number;
  rounds: number;
  pushed: number;
  received: number;
  /** Clone: the cursor to resume from; "" after a fall back to heal. */
  cursor: string;
  healed: boolean;
}

const newStats = (): Stats => ({ pages: 0, rounds: 0, pushed: 0, received: 0, cursor: "", healed: false });

/** digestFrom builds a Digest from the wire form. */
export function digestFrom(count: number, hex: string): Digest {
  const d = new Digest();
  d.count = count;
  d.xor.set(fromHex(hex, 32));
  return d;
}

function checkResponse(r: SyncResponse): void {
  if (!Number.isInteger(r.count) || r.count < 0 || typeof r.digest !== "string" || !Array.isArray(r.commits)) {
    throw new GoatError("invalid", "sync response: count, digest and commits are required");
  }
  if (r.inSync && (r.commits.length > 0 || r.more || r.filter)) throw new GoatError("invalid", "sync response: inSync with commits, more or filter");
  if (r.more && r.commits.length === 0) throw new GoatError("invalid", "sync response: more without commits");
}

/** Options of the driver. */
export interface DriverOptions {
  pageLimit?: number;
  limit?: number;
  pushLimit?: number;
  pushBytes?: number;
  maxRounds?: number;
  /** v1 speaks protocol version 1 only (whole-set filters); otherwise version 2, falling back to 1 when the gateway refuses it. */
  v1?: boolean;
}

/**
 * clone pages repo's log into local from cursor ("" for the start) and
 * returns the cursor to resume from; it falls back to heal on a stale
 * cursor or on a page it cannot ingest for missing parents (sync.Driver.Clone).
 */
export async function clone(t: Transport, local: Local, repo: string, cursor: string, opts: DriverOptions = {}): Promise<Stats> {
  const st = newStats();
  const limit = opts.pageLimit ?? MaxCommits;
  let heal = false;
  // The next page is requested before this one is ingested (decoded, ids
  // recomputed): the cursor comes with the page, so the download of one
  // overlaps the decoding of the other, as in sync.Driver.Clone.
  const fetchPage = (cur: string): Promise<LogPage | "must-reconcile"> =>
    t.log(repo, cur, limit).catch((e: unknown) => {
      if (isCode(e, "must-reconcile")) return "must-reconcile" as const;
      throw e;
    });
  let next = fetchPage(cursor);
  for (;;) {
    const page = await next;
    if (page === "must-reconcile") {
      heal = true;
      break;
    }
    // An empty page is the tail whatever it claims.
    const last = page.tail || page.commits.length === 0 || !page.next;
    if (!last) {
      next = fetchPage(page.next);
      next.catch(() => {}); // awaited on the next turn; not unhandled if this one throws
    }
    st.pages++;
    st.received += page.commits.length;
    if (page.commits.length > 0) {
      const r = await local.ingest(page.commits);
      if (r.missing > 0) heal = true;
    }
    if (page.next) cursor = page.next;
    if (last) break;
  }
  st.cursor = cursor;
  if (heal) {
    const hs = await reconcile(t, local, repo, opts);
    return { ...hs, pages: st.pages + hs.pages, received: st.received + hs.received, healed: true, cursor: "" };
  }
  return st;
}

/**
 * reconcile runs rounds until local equals the peer (sync.Driver.Heal):
 * a digest round first, which is all it costs when in sync.
 */
export async function reconcile(t: Transport, local: Local, repo: string, opts: DriverOptions = {}): Promise<Stats> {
  const st = newStats();
  if (!opts.v1 && (await reconcileV2(t, local, repo, opts, st))) return st;
  return reconcileV1(t, local, repo, opts, st);
}

/**
 * reconcileV2 runs partitioned rounds (syncv2.ts), version 3 ("sync-v3"),
 * or version 2 when the gateway refuses the first version 3 request as
 * invalid (a v0.1.0 gateway): at most 3 requests when the divergence fits
 * one response and one push. It returns false to fall back to version 1:
 * the gateway refused the first version 2 request too (no "sync-v2"), or
 * the sets kept changing under the heal.
 */
async function reconcileV2(t: Transport, local: Local, repo: string, opts: DriverOptions, st: Stats): Promise<boolean> {
  const maxRounds = opts.maxRounds ?? DefaultMaxRounds;
  const client = (version: 2 | 3) => new ClientV2({ limit: Math.min(opts.limit ?? MaxStream, MaxStream), pushLimit: opts.pushLimit, pushBytes: opts.pushBytes, version });
  let version: 2 | 3 = 3;
  let c = client(version);
  let req = c.start(local);
  for (;;) {
    if (st.rounds === maxRounds) throw new GoatError("conflict", `heal ${repo}: not in sync after ${st.rounds} rounds`);
    let resp: SyncResponse;
    try {
      resp = await t.sync(repo, req);
    } catch (e) {
      if (st.rounds === 0 && isCode(e, "invalid") && version === 3) {
        version = 2;
        c = client(version);
        req = c.start(local);
        continue;
      }
      if (st.rounds === 0 && isCode(e, "invalid")) return false;
      throw e;
    }
    st.rounds++;
    st.pushed += req.commits?.length ?? 0;
    checkResponse(resp);
    st.received += resp.commits.length;
    if (resp.commits.length > 0) await local.ingest(resp.commits);
    const next = c.next(local, resp);
    if (next.done) return true;
    if ("v1" in next) return false;
    req = next.req;
  }
}

async function reconcileV1(t: Transport, local: Local, repo: string, opts: DriverOptions, st: Stats): Promise<Stats> {
  const limit = Math.min(opts.limit ?? MaxCommits, MaxCommits);
  const pushLimit = Math.min(opts.pushLimit ?? MaxCommits, MaxCommits);
  const pushBytes = opts.pushBytes ?? DefaultMaxBytes;
  const maxRounds = opts.maxRounds ?? DefaultMaxRounds;
  let pending: string[] = [];
  let d = local.digest();
  let req: SyncRequest = { count: d.count, digest: d.hex(), limit };
  for (;;) {
    if (st.rounds === maxRounds) throw new GoatError("conflict", `heal ${repo}: not in sync after ${st.rounds} rounds`);
    const resp = await t.sync(repo, req);
    st.rounds++;
    st.pushed += req.commits?.length ?? 0;
    checkResponse(resp);
    st.received += resp.commits.length;
    if (resp.commits.length > 0) await local.ingest(resp.commits);
    const ld = local.digest();
    if (resp.inSync || (!resp.more && ld.equals(resp.count, resp.digest))) return st;
    if (resp.filter) {
      const f = Filter.fromJSON(resp.filter);
      pending = [];
      for (const id of local.ids()) if (!f.test(id)) pending.push(id);
    }
    const known = pending.length;
    req = { count: ld.count, digest: ld.hex(), limit };
    const after = digestFrom(resp.count, resp.digest);
    const push: Commit[] = [];
    let size = 0, n = 0;
    for (; n < pending.length && push.length < pushLimit; n++) {
      const c = local.get(pending[n]);
      if (!c) continue;
      const len = commitJSON(c).length;
      if (push.length > 0 && size + len > pushBytes) break;
      push.push(c);
      size += len;
      after.add(c.id);
    }
    pending = pending.slice(n);
    if (push.length) req.commits = push;
    if (!after.equals(ld.count, ld.hex())) {
      const dd = resp.count - (ld.count - known);
      req.filter = buildFilter(local.ids(), ld.count, rate(dd, limit)).toJSON();
    }
  }
}
