// Protocol versions 2 and 3 of reconciliation (docs/sync.md "Version 2"
// and "Version 3"; the Go side is sync/parts.go and sync/round2.go):
// per-partition digests first, a Bloom filter over the partitions that
// differ only, exact id lists for what a filter could hide, so a heal is at
// most 3 requests. Version 3 is the same rounds in a smaller encoding
// (layouts as gaps, the echoed layout reduced to the differing windows,
// 13-byte table cells). The requests are byte-identical to the Go client's
// (sync/testdata/sync_v2_vectors.json, sync_v3_vectors.json).

import { buildFilter, DefaultMisses, murmur3x64, rate } from "./bloom.js";
import { fromBase64, fromHex, toBase64, toHex } from "./bytes.js";
import { commitJSON, type Commit } from "./commit.js";
import { Digest } from "./digest.js";
import { GoatError } from "./errors.js";
import type { SyncRequest, SyncResponse } from "./http.js";

/** Limits of version 2 (sync.MaxStream and friends). */
export const Version2 = 2;
export const Version3 = 3;
export const MaxStream = 10000;
export const StreamPushBytes = 8 << 20;
export const MaxRequestBytes = 16 << 20;
export const MaxWindows = 64;
export const MaxPrefixBits = 12;
export const MaxParts = 1 << 14;
const DefaultLimit = 500;
const MaxRestarts = 2;

/** The layout of a summary: ts cuts (version 2) or gaps (version 3) and per-window id-prefix bits. */
export interface LayoutJSON {
  cuts?: number[];
  /** gaps[0] is the first cut, gaps[i] the positive difference between cut i and cut i-1. */
  gaps?: number[];
  bits: number[];
}

/** A version 2 summary as the server sends it. */
export interface SummaryJSON extends LayoutJSON {
  sums: string;
}

/** The client's differing partitions (second request). */
export interface PartDiffJSON extends LayoutJSON {
  diff: string;
  cells?: string;
}

/**
 * Table is one partition's invertible Bloom lookup table of short ids
 * (sync.Table): 3 subtables of m cells; short id s goes to cell idx_i(s)
 * of subtable i, with h1, h2 = MurmurHash3 x64-128 of its 8 bytes:
 * idx_0 = lo32(h1) mod m, idx_1 = hi32(h1) mod m, idx_2 = lo32(h2) mod m;
 * a cell holds a count, the XOR of the short ids and the XOR of h2
 * (version 3, narrow: of hi32(h2), and the count goes on the wire modulo
 * 256).
 */
export class Table {
  readonly counts: number[];
  readonly xor: Uint8Array;
  readonly check: Uint8Array;

  /** only: the partition is outside the filter; the table alone reconciles it (bit 15 of m on the wire). */
  only = false;

  constructor(
    readonly m: number,
    readonly narrow = false,
  ) {
    this.counts = new Array<number>(3 * m).fill(0);
    this.xor = new Uint8Array(8 * 3 * m);
    this.check = new Uint8Array(8 * 3 * m);
  }

  /** add folds in a short id (16 hex characters). */
  add(short: string): void {
    const s = fromHex(short, 8);
    const [h1h, h1l, h2h, h2l] = murmur3x64(s);
    const c = new Uint8Array(8);
    if (this.narrow) new DataView(c.buffer).setUint32(4, h2h);
    else {
      new DataView(c.buffer).setUint32(0, h2h);
      new DataView(c.buffer).setUint32(4, h2l);
    }
    for (const i of [h1l % this.m, this.m + (h1h % this.m), 2 * this.m + (h2l % this.m)]) {
      this.counts[i]++;
      for (let j = 0; j < 8; j++) {
        this.xor[8 * i + j] ^= s[j];
        this.check[8 * i + j] ^= c[j];
      }
    }
  }

  /** size is the m for a partition where the client holds c ids and the server s, beside the filter or alone (sync.tableSize). */
  static size(c: number, s: number, only: boolean): number {
    const d = only ? Math.abs(c - s) : Math.max(c - s, 0);
    let m = Math.floor((d + 3) / 2) + 2;
    while (m * m * m < 50 * d * d && m < 4096) m++;
    return Math.min(m, 4096);
  }

  /**
   * aloneCheaper reports whether a table alone costs less than filtering c
   * ids (sync.tableOnly); in version 3 (narrow) the table that would go
   * beside the filter counts too.
   */
  static aloneCheaper(c: number, s: number, narrow = false): boolean {
    const cell = narrow ? 13 : 20;
    const alone = 3 * Table.size(c, s, true) * cell;
    if (narrow) return alone < Math.floor((c * 10) / 8) + 3 * Table.size(c, s, false) * cell;
    return alone < Math.floor((c * 10) / 8);
  }
}

/**
 * encodeTables is the "cells" of a request: per diff record, m (uint16 BE,
 * 0: none; bit 15: alone) then 3m cells: version 2, count (uint32 BE), XOR
 * (8), check (8); version 3 (narrow), count modulo 256 (1), XOR (8),
 * check (uint32 BE).
 */
export function encodeTables(tables: (Table | undefined)[], narrow = false): string {
  const cell = narrow ? 13 : 20;
  let n = 0;
  for (const t of tables) n += 2 + (t ? cell * 3 * t.m : 0);
  const raw = new Uint8Array(n);
  const dv = new DataView(raw.buffer);
  let o = 0;
  for (const t of tables) {
    dv.setUint16(o, t ? t.m | (t.only ? 0x8000 : 0) : 0);
    o += 2;
    if (!t) continue;
    for (let i = 0; i < 3 * t.m; i++) {
      if (narrow) {
        raw[o] = t.counts[i] & 0xff;
        raw.set(t.xor.subarray(8 * i, 8 * i + 8), o + 1);
        raw.set(t.check.subarray(8 * i + 4, 8 * i + 8), o + 9);
      } else {
        dv.setUint32(o, t.counts[i]);
        raw.set(t.xor.subarray(8 * i, 8 * i + 8), o + 4);
        raw.set(t.check.subarray(8 * i, 8 * i + 8), o + 12);
      }
      o += cell;
    }
  }
  return toBase64(raw);
}

/** One exact partition list of the server. */
export interface PartListJSON {
  part: number;
  ids: string;
}

/** Layout cuts a set into partitions (sync.Layout). */
export class Layout {
  private readonly offs: number[];

  constructor(readonly cuts: number[], readonly bits: number[]) {
    if (!Array.isArray(cuts) || !Array.isArray(bits) || cuts.length > MaxWindows || bits.length !== cuts.length + 1) {
      throw new GoatError("invalid", "layout: cuts and bits do not match");
    }
    for (let i = 1; i < cuts.length; i++) if (!(cuts[i] > cuts[i - 1])) throw new GoatError("invalid", "layout: cuts must be strictly ascending");
    this.offs = [0];
    for (const b of bits) {
      if (!Number.isInteger(b) || b < 0 || b > MaxPrefixBits) throw new GoatError("invalid", `layout: ${b} prefix bits`);
      this.offs.push(this.offs[this.offs.length - 1] + 2 ** b);
    }
    if (this.parts > MaxParts) throw new GoatError("invalid", "layout: too many partitions");
  }

  get parts(): number {
    return this.offs[this.offs.length - 1];
  }

  /** index returns the partition of the commit with the given hex id and ts. */
  index(id: string, ts: number): number {
    let lo = 0, hi = this.cuts.length; // first cut > ts
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.cuts[mid] > ts) hi = mid;
      else lo = mid + 1;
    }
    const b = this.bits[lo];
    if (b === 0) return this.offs[lo];
    return this.offs[lo] + (parseInt(id.slice(0, 8), 16) >>> (32 - b));
  }

  /** fromJSON reads a layout spelt with cuts (version 2) or gaps (version 3). */
  static fromJSON(x: LayoutJSON): Layout {
    if ((x.cuts === undefined) === (x.gaps === undefined)) throw new GoatError("invalid", "layout: either cuts or gaps is required");
    if (x.cuts) return new Layout(x.cuts, x.bits);
    const g = x.gaps!;
    if (!Array.isArray(g) || g.length > MaxWindows) throw new GoatError("invalid", "layout: gaps");
    const cuts: number[] = [];
    for (let i = 0; i < g.length; i++) {
      if (!Number.isSafeInteger(g[i]) || (i > 0 && g[i] <= 0)) throw new GoatError("invalid", `layout: gap ${i} must be a positive integer`);
      cuts.push(i === 0 ? g[0] : cuts[i - 1] + g[i]);
      if (!Number.isSafeInteger(cuts[i])) throw new GoatError("invalid", "layout: cut out of range");
    }
    return new Layout(cuts, x.bits);
  }

  /** toJSON writes cuts (version 2) or gaps (version 3). */
  toJSON(version = Version2): LayoutJSON {
    if (version === Version3) return { gaps: this.cuts.map((c, i) => (i === 0 ? c : c - this.cuts[i - 1])), bits: this.bits };
    return { cuts: this.cuts, bits: this.bits };
  }

  /** offset returns the index of window w's first partition. */
  offset(w: number): number {
    return this.offs[w];
  }

  /**
   * reduce returns the layout a version 3 client echoes (sync's
   * reduceLayout): every run of windows without a differing partition
   * merged into one window of 0 bits, so that cut i stays exactly when
   * window i or i+1 holds a differing partition; and renumber, mapping a
   * differing partition's index to its index in the reduced layout.
   */
  reduce(inDiff: boolean[]): { layout: Layout; renumber: (i: number) => number } {
    const windows = this.bits.length;
    const differs = this.bits.map((_, w) => inDiff.slice(this.offs[w], this.offs[w + 1]).includes(true));
    const cuts: number[] = [];
    const bits: number[] = [];
    const shift = new Array<number>(windows).fill(0);
    let next = 0;
    for (let w = 0; w < windows; w++) {
      if (w > 0) {
        if (differs[w - 1] || differs[w]) cuts.push(this.cuts[w - 1]);
        else {
          shift[w] = next - 1 - this.offs[w];
          continue;
        }
      }
      const b = differs[w] ? this.bits[w] : 0;
      bits.push(b);
      shift[w] = next - this.offs[w];
      next += 2 ** b;
    }
    const renumber = (i: number): number => {
      let w = 0;
      while (this.offs[w + 1] <= i) w++;
      return i + shift[w];
    };
    return { layout: new Layout(cuts, bits), renumber };
  }
}

/** shortOf returns the short id (first 8 bytes) of a hex id, as 16 hex characters. */
export const shortOf = (id: string): string => id.slice(0, 16);

/** encodeIDs is the base64 of short ids (16 hex characters each). */
export function encodeIDs(ids: string[]): string {
  const raw = new Uint8Array(8 * ids.length);
  ids.forEach((s, i) => raw.set(fromHex(s, 8), 8 * i));
  return toBase64(raw);
}

/** decodeIDs parses a base64 list of short ids. */
export function decodeIDs(s: string): string[] {
  const raw = fromBase64(s);
  if (raw.length % 8 !== 0) throw new GoatError("invalid", "id list: not a multiple of 8 bytes");
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 8) out.push(toHex(raw.subarray(i, i + 8)));
  return out;
}

/** Sum is one partition of a summary: count and the first 8 bytes of XOR (hex). */
export interface PartSum {
  count: number;
  xor8: string;
}

/** decodeSums parses a summary's sums for a layout. */
export function decodeSums(sums: string, l: Layout): PartSum[] {
  const raw = fromBase64(sums);
  if (raw.length !== 12 * l.parts) throw new GoatError("invalid", `parts: ${raw.length} bytes of sums for ${l.parts} partitions`);
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out: PartSum[] = [];
  for (let i = 0; i < l.parts; i++) out.push({ count: dv.getUint32(12 * i), xor8: toHex(raw.subarray(12 * i + 4, 12 * i + 12)) });
  return out;
}

/** encodeSums is decodeSums' inverse (for servers and tests). */
export function encodeSums(sums: Digest[]): string {
  const raw = new Uint8Array(12 * sums.length);
  const dv = new DataView(raw.buffer);
  sums.forEach((d, i) => {
    dv.setUint32(12 * i, d.count);
    raw.set(d.xor.subarray(0, 8), 12 * i + 4);
  });
  return toBase64(raw);
}

/** encodeDiff is the base64 of 40-byte records: index, count (uint32 BE), XOR. */
export function encodeDiff(diff: { index: number; digest: Digest }[]): string {
  const raw = new Uint8Array(40 * diff.length);
  const dv = new DataView(raw.buffer);
  diff.forEach((x, i) => {
    dv.setUint32(40 * i, x.index);
    dv.setUint32(40 * i + 4, x.digest.count);
    raw.set(x.digest.xor, 40 * i + 8);
  });
  return toBase64(raw);
}

/** What the version 2 client needs of the local set. */
export interface LocalV2 {
  digest(): Digest;
  /** ids yields every id in a topological order. */
  ids(): Iterable<string>;
  /** idsTS, if present, yields [id, ts] in the same order without loading commits. */
  idsTS?(): Iterable<[string, number]>;
  get(id: string): Commit | undefined;
}

function* walkTS(local: LocalV2): Iterable<[string, number]> {
  if (local.idsTS) {
    yield* local.idsTS();
    return;
  }
  for (const id of local.ids()) yield [id, local.get(id)?.ts ?? 0];
}

/** partSums computes the local digest of every partition of l. */
export function partSums(local: LocalV2, l: Layout): Digest[] {
  const out = Array.from({ length: l.parts }, () => new Digest());
  for (const [id, ts] of walkTS(local)) out[l.index(id, ts)].add(id);
  return out;
}

/** Options of the version 2 client (sync.Client). */
export interface ClientV2Options {
  /** The limit sent with every request (0 or absent: none, the server's default 500). */
  limit?: number;
  pushLimit?: number;
  pushBytes?: number;
  /** FilterPolicy.Misses (default 0.1). */
  misses?: number;
  /** salt supplies filter salts (default: crypto random). */
  salt?: () => Uint8Array<ArrayBufferLike>;
  /** version: 3 (capability "sync-v3": layouts as gaps, a reduced echo, 13-byte cells) or 2 (default, "sync-v2"). */
  version?: 2 | 3;
}

/** The outcome of ClientV2.next: the next request, done, or a fall back to version 1. */
export type NextV2 = { done: true } | { done: false; req: SyncRequest } | { done: false; v1: true };

/**
 * ClientV2 is the client half of a version 2 heal (sync.Client with V1
 * false): start builds the digest request; next takes each response after
 * the caller ingested its commits.
 */
export class ClientV2 {
  private pending: string[] = [];
  // commits whose parents the server may lack: pushed with them, in round 3
  private deferred: string[] = [];
  private need: string[] = [];
  private count = 0;
  private restarts = 0;
  private layout?: Layout;

  constructor(private readonly opts: ClientV2Options = {}) {}

  private get version(): 2 | 3 {
    return this.opts.version ?? Version2;
  }

  private get limit(): number {
    return Math.min(Math.max(this.opts.limit ?? 0, 0), MaxStream);
  }

  private head(d: Digest): SyncRequest {
    return { count: d.count, digest: d.hex() };
  }

  /** start returns the first request: the digest only. */
  start(local: LocalV2): SyncRequest {
    const d = local.digest();
    this.pending = [];
    this.deferred = [];
    this.need = [];
    this.layout = undefined;
    this.restarts = 0;
    this.count = d.count;
    return this.finish(this.head(d), {});
  }

  // finish orders the members as the Go encoder writes them.
  private finish(base: SyncRequest, x: { filter?: SyncRequest["filter"]; commits?: Commit[]; parts?: PartDiffJSON; need?: string[] }): SyncRequest {
    const r: SyncRequest = { count: base.count, digest: base.digest };
    if (x.filter) r.filter = x.filter;
    if (x.commits && x.commits.length > 0) r.commits = x.commits;
    if (this.limit !== 0) r.limit = this.limit;
    r.v = this.version;
    if (x.parts) r.parts = x.parts;
    if (x.need && x.need.length > 0) r.need = encodeIDs(x.need);
    return r;
  }

  /** next folds in resp (its commits already ingested into local). */
  next(local: LocalV2, resp: SyncResponse): NextV2 {
    const ld = local.digest();
    if (resp.inSync || ld.equals(resp.count, resp.digest)) return { done: true };
    const sent = this.count;
    this.count = ld.count;
    if (resp.commits.length > ld.count - sent) {
      for (const c of resp.commits) if (!local.get(c.id)) this.need.push(shortOf(c.id));
    }
    const rest = resp.rest ? decodeIDs(resp.rest) : [];
    if (resp.parts && this.pending.length === 0 && this.need.length === 0 && rest.length === 0) {
      const req = this.partsRequest(local, ld, resp.parts);
      return req ? { done: false, req } : this.restart(local);
    }
    const seen = new Set<string>();
    const need: string[] = [];
    for (const x of [...rest, ...this.need]) {
      if (!seen.has(x)) {
        seen.add(x);
        need.push(x);
      }
    }
    const want = resp.want ? decodeIDs(resp.want) : [];
    if ((resp.lists && resp.lists.length > 0) || want.length > 0) this.listed(local, resp.lists ?? [], want, seen, need);
    this.need = need;
    const commits = this.push(local, undefined);
    const n = Math.min(this.need.length, Math.max(this.limit, DefaultLimit));
    const asked = this.need.slice(0, n);
    this.need = this.need.slice(n);
    if (commits.length === 0 && asked.length === 0) return this.restart(local);
    return { done: false, req: this.finish(this.head(ld), { commits, need: asked }) };
  }

  private restart(local: LocalV2): NextV2 {
    const r = this.restarts + 1;
    if (r > MaxRestarts) return { done: false, v1: true };
    const req = this.start(local);
    this.restarts = r;
    return { done: false, req };
  }

  private listed(local: LocalV2, lists: PartListJSON[], want: string[], seen: Set<string>, need: string[]): void {
    const l = this.layout;
    if (!l) return;
    const wanted = new Set(want);
    const byPart = new Map<number, Set<string>>();
    for (const x of lists) byPart.set(x.part, new Set(decodeIDs(x.ids)));
    // Everything to push, the commits still pending and those deferred
    // from round 2 included, goes in log order (a topological order), so
    // that the server never sees a commit before its parents.
    const queued = new Set([...this.pending, ...this.deferred]);
    this.deferred = [];
    const ordered: string[] = [];
    const held = new Set<string>();
    for (const [id, ts] of walkTS(local)) {
      const s = shortOf(id);
      if (queued.has(id) || wanted.has(s)) {
        ordered.push(id);
        if (!wanted.has(s) && byPart.get(l.index(id, ts))?.has(s)) held.add(s);
        continue;
      }
      const m = byPart.get(l.index(id, ts));
      if (!m) continue;
      held.add(s);
      if (!m.has(s)) ordered.push(id);
    }
    this.pending = ordered;
    for (const x of lists) {
      for (const id of decodeIDs(x.ids)) {
        if (!held.has(id) && !seen.has(id)) {
          seen.add(id);
          need.push(id);
        }
      }
    }
  }

  private partsRequest(local: LocalV2, ld: Digest, sum: SummaryJSON): SyncRequest | undefined {
    const l = Layout.fromJSON(sum);
    const narrow = this.version === Version3;
    const theirs = decodeSums(sum.sums, l);
    const mine = partSums(local, l);
    const inDiff = new Array<boolean>(mine.length).fill(false);
    const diff: { index: number; digest: Digest }[] = [];
    const tables: (Table | undefined)[] = [];
    const tabOf = new Map<number, Table>();
    let n = 0, d = 0, empty = false;
    mine.forEach((m, i) => {
      const s = theirs[i];
      if (m.count === s.count && toHex(m.xor.subarray(0, 8)) === s.xor8) return;
      inDiff[i] = true;
      diff.push({ index: i, digest: m });
      let t: Table | undefined;
      if (s.count > 0 && m.count > 0 && Table.aloneCheaper(m.count, s.count, narrow)) {
        t = new Table(Table.size(m.count, s.count, true), narrow);
        t.only = true;
      } else if (s.count > 0 && m.count > 0) {
        t = new Table(Table.size(m.count, s.count, false), narrow);
        n += m.count;
        d += Math.max(s.count - m.count, 1);
      } else if (s.count > 0) {
        d += s.count;
      } else {
        empty = true;
        n += m.count;
      }
      if (t) tabOf.set(i, t);
      tables.push(t);
    });
    if (diff.length === 0) return undefined;
    this.pending = [];
    this.deferred = [];
    this.need = [];
    if (empty || tabOf.size > 0) {
      // A commit of a partition the server holds nothing of is pushed now
      // only if the server surely has its parents, or gets them first in
      // this push; otherwise it waits for round 3 (sync.Client does the
      // same).
      const pushed = new Set<string>();
      const sure = (id: string): boolean => {
        const c = local.get(id);
        if (!c) return false;
        for (const par of c.parents) {
          if (pushed.has(par)) continue;
          const pc = local.get(par);
          if (!pc || inDiff[l.index(par, pc.ts)]) return false;
        }
        return true;
      };
      for (const [id, ts] of walkTS(local)) {
        const p = l.index(id, ts);
        if (!inDiff[p]) continue;
        if (theirs[p].count === 0) {
          if (sure(id)) {
            pushed.add(id);
            this.pending.push(id);
          } else this.deferred.push(id);
        } else tabOf.get(p)?.add(shortOf(id));
      }
    }
    // Version 3 echoes the layout reduced to the differing windows; lists
    // in the answer then name partitions of the echoed layout.
    let echo = l;
    if (narrow) {
      const r = l.reduce(inDiff);
      echo = r.layout;
      for (const x of diff) x.index = r.renumber(x.index);
    }
    this.layout = echo;
    const parts: PartDiffJSON = { ...echo.toJSON(this.version), diff: encodeDiff(diff) };
    if (tabOf.size > 0) parts.cells = encodeTables(tables, narrow);
    let filter: SyncRequest["filter"];
    if (n > 0) {
      const window = this.limit || DefaultLimit;
      const ids = (function* () {
        for (const [id, ts] of walkTS(local)) {
          const p = l.index(id, ts);
          if (inDiff[p] && !tabOf.get(p)?.only) yield id;
        }
      })();
      const salt = this.opts.salt?.();
      filter = buildFilter(ids, n, rate(d, window, this.opts.misses ?? DefaultMisses), salt).toJSON();
    }
    const commits = this.push(local, filter);
    return this.finish(this.head(ld), { filter, commits, parts });
  }

  private push(local: LocalV2, filter: SyncRequest["filter"] | undefined): Commit[] {
    const pushLimit = Math.min(this.opts.pushLimit || MaxStream, MaxStream);
    let pushBytes = this.opts.pushBytes || StreamPushBytes;
    if (filter) {
      const flen = JSON.stringify(filter).length;
      pushBytes = Math.min(pushBytes, Math.max(MaxRequestBytes - flen - (1 << 20), 1));
    }
    const out: Commit[] = [];
    let size = 0, n = 0;
    for (; n < this.pending.length && out.length < pushLimit; n++) {
      const c = local.get(this.pending[n]);
      if (!c) continue;
      const len = new TextEncoder().encode(commitJSON(c)).length;
      if (out.length > 0 && size + len > pushBytes) break;
      out.push(c);
      size += len;
    }
    this.pending = this.pending.slice(n);
    return out;
  }
}
