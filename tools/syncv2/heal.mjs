// An independent client of reconciliation versions 2 and 3, written from
// docs/sync.md ("Version 2", "Version 3" and "Wire formats") alone: it
// shares no code with the Go package or the TypeScript SDK (its own
// MurmurHash3, Bloom filter, partitions and rounds, with BigInt). Two
// modes:
//
//   node tools/syncv2/heal.mjs
//       checks the Bloom vectors (sync/testdata/bloom_vectors.json) and
//       replays every heal of sync/testdata/sync_v2_vectors.json (version
//       2) and sync_v3_vectors.json (version 3), producing each recorded
//       request byte for byte;
//
//   node tools/syncv2/heal.mjs --url http://127.0.0.1:8080 --token T --repo R [--drop N] [--keep-every K] [--v 2]
//       copies the repository's log, forgets the newest N commits (and,
//       with K, every K-th older one too), heals against the gateway with
//       version 3 (or 2) and checks that the digests end equal; prints
//       requests and JSON bytes both ways.
import { readFileSync } from "node:fs";

const M64 = (1n << 64n) - 1n;
const rotl = (x, r) => ((x << BigInt(r)) | (x >> BigInt(64 - r))) & M64;
const mul = (a, b) => (a * b) & M64;
const add = (a, b) => (a + b) & M64;
const C1 = 0x87c37b91114253d5n, C2 = 0x4cf5ad432745937fn;

function fmix(k) {
  k ^= k >> 33n;
  k = mul(k, 0xff51afd7ed558ccdn);
  k ^= k >> 33n;
  k = mul(k, 0xc4ceb9fe1a85ec53n);
  return k ^ (k >> 33n);
}

const le64 = (b, o, n = 8) => {
  let v = 0n;
  for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[o + i]);
  return v;
};

// MurmurHash3 x64-128, seed 0.
function murmur3(b) {
  let h1 = 0n, h2 = 0n;
  const nblocks = b.length >> 4;
  for (let i = 0; i < nblocks; i++) {
    let k1 = le64(b, 16 * i), k2 = le64(b, 16 * i + 8);
    k1 = mul(rotl(mul(k1, C1), 31), C2);
    h1 ^= k1;
    h1 = add(mul(add(rotl(h1, 27), h2), 5n), 0x52dce729n);
    k2 = mul(rotl(mul(k2, C2), 33), C1);
    h2 ^= k2;
    h2 = add(mul(add(rotl(h2, 31), h1), 5n), 0x38495ab5n);
  }
  const t = b.length & 15, o = nblocks * 16;
  if (t > 8) h2 ^= mul(rotl(mul(le64(b, o + 8, t - 8), C2), 33), C1);
  if (t > 0) h1 ^= mul(rotl(mul(le64(b, o, Math.min(t, 8)), C1), 31), C2);
  h1 ^= BigInt(b.length);
  h2 ^= BigInt(b.length);
  h1 = add(h1, h2);
  h2 = add(h2, h1);
  h1 = fmix(h1);
  h2 = fmix(h2);
  h1 = add(h1, h2);
  h2 = add(h2, h1);
  return [h1, h2];
}

const hex = (b) => Buffer.from(b).toString("hex");
const unhex = (s) => Uint8Array.from(Buffer.from(s, "hex"));
const b64 = (b) => Buffer.from(b).toString("base64");
const unb64 = (s) => Uint8Array.from(Buffer.from(s, "base64"));

// Probe locations: h = murmur(salt||id) ++ murmur(salt||id||0x01);
// probe i at (h[i%2] + i*h[2+((i+i%2)%4)/2]) mod m, uint64 arithmetic.
function locations(salt, id, m, k) {
  const e = new Uint8Array(40);
  e.set(salt);
  e.set(unhex(id), 8);
  const e1 = new Uint8Array(41);
  e1.set(e);
  e1[40] = 1;
  const h = [...murmur3(e), ...murmur3(e1)];
  const out = [];
  for (let i = 0; i < k; i++) out.push(Number(add(h[i % 2], mul(BigInt(i), h[2 + ((i + (i % 2)) % 4) / 2])) % BigInt(m)));
  return out;
}

class Bloom {
  constructor(m, k, salt, bits) {
    this.m = m;
    this.k = k;
    this.salt = salt;
    this.bytes = bits ?? new Uint8Array(8 * Math.ceil(m / 64));
  }
  // bit j: word j>>6 (big-endian uint64), position j&63 from the least significant.
  pos(j) {
    const w = j >> 6, p = j & 63;
    return [8 * w + 7 - (p >> 3), 1 << (p & 7)];
  }
  add(id) {
    for (const j of locations(this.salt, id, this.m, this.k)) {
      const [i, bit] = this.pos(j);
      this.bytes[i] |= bit;
    }
  }
  test(id) {
    return locations(this.salt, id, this.m, this.k).every((j) => {
      const [i, bit] = this.pos(j);
      return (this.bytes[i] & bit) !== 0;
    });
  }
  json() {
    return { m: this.m, k: this.k, salt: hex(this.salt), bits: b64(this.bytes) };
  }
  static from(j) {
    return new Bloom(j.m, j.k, unhex(j.salt), unb64(j.bits));
  }
}

// Sizing (docs/sync.md "Choosing the false-positive rate").
function rate(d, window, misses = 0.1) {
  if (window > 0) d = Math.min(d, window);
  return Math.min(Math.max(misses / Math.max(d, 1), 1e-9), 0.5);
}
function params(n, p) {
  if (n <= 0) return [64, 1];
  const bits = Math.ceil((n * -Math.log(p)) / (Math.LN2 * Math.LN2));
  const m = bits >= 2 ** 26 ? 2 ** 26 : Math.max(64, Math.ceil(bits / 64) * 64);
  return [m, Math.min(Math.max(Math.round((Math.LN2 * m) / n), 1), 32)];
}

// A partition's table of short ids (docs/sync.md "Tables"): 3 subtables of
// m cells; h1, h2 = MurmurHash3 x64-128 of the 8-byte short id; cells
// lo32(h1) mod m, m + hi32(h1) mod m, 2m + lo32(h2) mod m; a cell is a
// count, the XOR of short ids and the XOR of h2 (version 3: of hi32(h2)).
class Table {
  constructor(m, narrow) {
    this.m = m;
    this.narrow = narrow;
    this.cells = Array.from({ length: 3 * m }, () => ({ count: 0, xor: 0n, check: 0n }));
  }
  add(short) {
    const s = unhex(short);
    const [h1, h2] = murmur3(s);
    const v = BigInt("0x" + short);
    const m = BigInt(this.m);
    for (const i of [Number((h1 & 0xffffffffn) % m), this.m + Number((h1 >> 32n) % m), 2 * this.m + Number((h2 & 0xffffffffn) % m)]) {
      const c = this.cells[i];
      c.count++;
      c.xor ^= v;
      c.check ^= this.narrow ? h2 >> 32n : h2;
    }
  }
  // Beside the filter a table finds the client's extras (c-s of them at
  // least); alone ("only", outside the filter) both sides' (|c-s|).
  // m = floor((d+3)/2) + 2, raised until m^3 >= 50 d^2, at most 4096.
  static size(c, s, only) {
    const d = only ? Math.abs(c - s) : Math.max(c - s, 0);
    let m = Math.floor((d + 3) / 2) + 2;
    while (m * m * m < 50 * d * d && m < 4096) m++;
    return Math.min(m, 4096);
  }
  // Alone when cheaper than the filter (about 10 bits an id); version 3
  // also counts the table that would go beside the filter.
  static alone(c, s, version) {
    const cell = version === 3 ? 13 : 20;
    const a = 3 * Table.size(c, s, true) * cell;
    if (version === 3) return a < Math.floor((c * 10) / 8) + 3 * Table.size(c, s, false) * cell;
    return a < Math.floor((c * 10) / 8);
  }
}

function encodeTables(tables, version) {
  const parts = [];
  for (const t of tables) {
    const head = Buffer.alloc(2);
    head.writeUInt16BE(t ? t.m | (t.only ? 0x8000 : 0) : 0);
    parts.push(head);
    if (!t) continue;
    for (const c of t.cells) {
      if (version === 3) {
        // count modulo 256, XOR of short ids, XOR of 32-bit checks: 13 bytes
        const b = Buffer.alloc(13);
        b.writeUInt8(c.count % 256, 0);
        b.writeBigUInt64BE(c.xor, 1);
        b.writeUInt32BE(Number(c.check), 9);
        parts.push(b);
        continue;
      }
      const b = Buffer.alloc(20);
      b.writeUInt32BE(c.count, 0);
      b.writeBigUInt64BE(c.xor, 4);
      b.writeBigUInt64BE(c.check, 12);
      parts.push(b);
    }
  }
  return b64(Buffer.concat(parts));
}

class Sum {
  constructor() {
    this.count = 0;
    this.xor = new Uint8Array(32);
  }
  add(id) {
    this.count++;
    const b = unhex(id);
    for (let i = 0; i < 32; i++) this.xor[i] ^= b[i];
  }
}

function partition(cuts, bits, id, ts) {
  let w = 0;
  while (w < cuts.length && cuts[w] <= ts) w++;
  let off = 0;
  for (let v = 0; v < w; v++) off += 2 ** bits[v];
  return bits[w] === 0 ? off : off + (parseInt(id.slice(0, 8), 16) >>> (32 - bits[w]));
}

const nparts = (bits) => bits.reduce((a, b) => a + 2 ** b, 0);

// Version 3 spells cuts as gaps: the first cut, then each cut minus the one before.
const fromGaps = (gaps) => gaps.reduce((out, g, i) => (out.push(i ? out[i - 1] + g : g), out), []);
const toGaps = (cuts) => cuts.map((c, i) => (i ? c - cuts[i - 1] : c));

// The echo of version 3 (docs/sync.md "Version 3", 2): cut i stays when
// window i or i+1 holds a differing partition; differing windows keep their
// bits, runs of others merge into one window of 0 bits. Returns the reduced
// layout and a map from a differing partition's index to its new one.
function reduce(cuts, bits, inD) {
  const offs = [0];
  for (const b of bits) offs.push(offs[offs.length - 1] + 2 ** b);
  const differs = bits.map((_, w) => [...inD].some((p) => p >= offs[w] && p < offs[w + 1]));
  const out = { cuts: [], bits: [] };
  const renum = new Map();
  let next = 0;
  for (let w = 0; w < bits.length; w++) {
    if (w > 0) {
      if (!differs[w - 1] && !differs[w]) continue; // merged into the window before
      out.cuts.push(cuts[w - 1]);
    }
    const b = differs[w] ? bits[w] : 0;
    out.bits.push(b);
    if (differs[w]) for (let p = offs[w]; p < offs[w + 1]; p++) renum.set(p, next + p - offs[w]);
    next += 2 ** b;
  }
  return { layout: out, renum };
}
const short = (id) => id.slice(0, 16);
const ids64 = (list) => b64(Buffer.concat(list.map((s) => Buffer.from(s, "hex"))));
const unids64 = (s) => {
  const raw = Buffer.from(s, "base64");
  const out = [];
  for (let i = 0; i < raw.length; i += 8) out.push(raw.subarray(i, i + 8).toString("hex"));
  return out;
};

/** Replica: ids with ts in topological order, and commits where known. */
class Replica {
  constructor() {
    this.order = [];
    this.commits = new Map();
    this.ids = new Set();
    this.sum = new Sum();
  }
  addID(id, ts, commit) {
    this.order.push([id, ts]);
    this.ids.add(id);
    this.sum.add(id);
    if (commit) this.commits.set(id, commit);
  }
  ingest(cs) {
    for (const c of cs) if (!this.ids.has(c.id) && c.parents.every((p) => this.ids.has(p))) this.addID(c.id, c.ts, c);
  }
}

// The client of docs/sync.md "A heal, request by request".
class Client {
  constructor({ limit = 0, pushLimit = 0, misses = 0.1, salt, version = 3 }) {
    Object.assign(this, { limit, pushLimit: pushLimit || 10000, misses, salt, version });
    this.pending = [];
    this.need = [];
  }
  req(r, x = {}) {
    const o = { count: r.sum.count, digest: hex(r.sum.xor) };
    if (x.filter) o.filter = x.filter;
    if (x.commits?.length) o.commits = x.commits;
    if (this.limit) o.limit = this.limit;
    o.v = this.version;
    if (x.parts) o.parts = x.parts;
    if (x.need?.length) o.need = ids64(x.need);
    return o;
  }
  start(r) {
    this.pending = [];
    this.deferred = [];
    this.need = [];
    this.count = r.sum.count;
    return this.req(r);
  }
  push(r) {
    const out = [];
    let n = 0;
    for (; n < this.pending.length && out.length < this.pushLimit; n++) {
      const c = r.commits.get(this.pending[n]);
      if (c) out.push(c);
    }
    this.pending = this.pending.slice(n);
    return out;
  }
  next(r, resp) {
    const done = resp.inSync || (r.sum.count === resp.count && hex(r.sum.xor) === resp.digest);
    if (done) return null;
    const got = r.sum.count - this.count;
    this.count = r.sum.count;
    if (resp.commits.length > got) for (const c of resp.commits) if (!r.ids.has(c.id)) this.need.push(short(c.id));
    const rest = resp.rest ? unids64(resp.rest) : [];
    if (resp.parts && !this.pending.length && !this.need.length && !rest.length) {
      const { bits, sums } = resp.parts;
      const cuts = resp.parts.gaps ? fromGaps(resp.parts.gaps) : resp.parts.cuts;
      const raw = Buffer.from(sums, "base64");
      const mine = Array.from({ length: nparts(bits) }, () => new Sum());
      for (const [id, ts] of r.order) mine[partition(cuts, bits, id, ts)].add(id);
      const diff = [], inD = new Set(), tables = [], tabOf = new Map();
      let n = 0, d = 0;
      mine.forEach((s, i) => {
        const count = raw.readUInt32BE(12 * i);
        if (s.count === count && hex(s.xor.subarray(0, 8)) === raw.subarray(12 * i + 4, 12 * i + 12).toString("hex")) return;
        inD.add(i);
        const rec = Buffer.alloc(40);
        rec.writeUInt32BE(i, 0);
        rec.writeUInt32BE(s.count, 4);
        Buffer.from(s.xor).copy(rec, 8);
        diff.push(rec);
        let t;
        if (count > 0 && s.count > 0 && Table.alone(s.count, count, this.version)) {
          t = new Table(Table.size(s.count, count, true), this.version === 3);
          t.only = true;
        } else if (count > 0 && s.count > 0) {
          t = new Table(Table.size(s.count, count, false), this.version === 3);
          n += s.count;
          d += Math.max(count - s.count, 1);
        } else if (count > 0) d += count;
        else n += s.count;
        if (t) tabOf.set(i, t);
        tables.push(t);
      });
      this.pending = [];
      this.deferred = [];
      this.need = [];
      // A commit of a partition the server holds nothing of goes in round 2
      // only if each parent is in an agreeing partition or pushed before
      // it; the others wait for round 3.
      const pushed = new Set();
      const tsOf = new Map(r.order);
      const sure = (c) => c.parents.every((par) => pushed.has(par) || (tsOf.has(par) && !inD.has(partition(cuts, bits, par, tsOf.get(par)))));
      for (const [id, ts] of r.order) {
        const p = partition(cuts, bits, id, ts);
        if (!inD.has(p)) continue;
        if (raw.readUInt32BE(12 * p) === 0) {
          const c = r.commits.get(id);
          if (c && sure(c)) pushed.add(id) && this.pending.push(id);
          else this.deferred.push(id);
        } else tabOf.get(p)?.add(short(id));
      }
      let filter;
      if (n > 0) {
        const [m, k] = params(n, rate(d, this.limit || 500, this.misses));
        const f = new Bloom(m, k, this.salt());
        for (const [id, ts] of r.order) {
          const p = partition(cuts, bits, id, ts);
          if (inD.has(p) && !tabOf.get(p)?.only) f.add(id);
        }
        filter = f.json();
      }
      let parts;
      if (this.version === 3) {
        const { layout, renum } = reduce(cuts, bits, inD);
        for (const rec of diff) rec.writeUInt32BE(renum.get(rec.readUInt32BE(0)), 0);
        this.layout = layout;
        parts = { gaps: toGaps(layout.cuts), bits: layout.bits, diff: b64(Buffer.concat(diff)) };
      } else {
        this.layout = { cuts, bits };
        parts = { cuts, bits, diff: b64(Buffer.concat(diff)) };
      }
      if (tabOf.size) parts.cells = encodeTables(tables, this.version);
      return this.req(r, { filter, commits: this.push(r), parts });
    }
    const seen = new Set(), need = [];
    for (const x of [...rest, ...this.need]) if (!seen.has(x)) seen.add(x) && need.push(x);
    const want = new Set(resp.want ? unids64(resp.want) : []);
    if (resp.lists?.length || want.size) {
      const { cuts, bits } = this.layout;
      const listed = new Map((resp.lists ?? []).map((l) => [l.part, new Set(unids64(l.ids))]));
      // Everything to push (pending, deferred, wanted, listed alone) goes
      // in log order, parents before children.
      const held = new Set(), queued = new Set([...this.pending, ...(this.deferred ?? [])]), ordered = [];
      this.deferred = [];
      for (const [id, ts] of r.order) {
        const set = listed.get(partition(cuts, bits, id, ts));
        if (queued.has(id) || want.has(short(id))) {
          ordered.push(id);
          if (!want.has(short(id)) && set?.has(short(id))) held.add(short(id));
          continue;
        }
        if (!set) continue;
        held.add(short(id));
        if (!set.has(short(id))) ordered.push(id);
      }
      this.pending = ordered;
      for (const l of resp.lists ?? []) for (const s of unids64(l.ids)) if (!held.has(s) && !seen.has(s)) seen.add(s) && need.push(s);
    }
    const commits = this.push(r);
    const k = Math.min(need.length, Math.max(this.limit, 500));
    this.need = need.slice(k);
    if (!commits.length && !k) throw new Error("nothing to push or ask for, digests differ: start over");
    return this.req(r, { commits, need: need.slice(0, k) });
  }
}

function checkBloomVectors() {
  const doc = JSON.parse(readFileSync(new URL("../../sync/testdata/bloom_vectors.json", import.meta.url)));
  for (const v of doc.vectors) {
    const f = new Bloom(v.m, v.k, unhex(v.salt));
    for (const id of v.ids) f.add(id);
    if (f.json().bits !== v.bits) throw new Error(`bloom vector ${v.name}: bits differ`);
    for (const t of v.tests) if (Bloom.from(f.json()).test(t.id) !== t.member) throw new Error(`bloom vector ${v.name}: test ${t.id}`);
  }
  console.log(`bloom vectors: ${doc.vectors.length} ok`);
}

function replayVectors(file, version) {
  const doc = JSON.parse(readFileSync(new URL(`../../sync/testdata/${file}`, import.meta.url)));
  for (const l of doc.layouts) {
    if (version === 3 && JSON.stringify(fromGaps(l.gaps)) !== JSON.stringify(l.cuts)) throw new Error(`layout ${l.name}: gaps`);
    const sums = Array.from({ length: nparts(l.bits) }, () => new Sum());
    for (const e of l.entries) {
      if (partition(l.cuts, l.bits, e.id, e.ts) !== e.part) throw new Error(`layout ${l.name}: ${e.id} ${e.ts}`);
      sums[e.part].add(e.id);
    }
    const raw = Buffer.alloc(12 * sums.length);
    sums.forEach((s, i) => {
      raw.writeUInt32BE(s.count, 12 * i);
      Buffer.from(s.xor.subarray(0, 8)).copy(raw, 12 * i + 4);
    });
    if (raw.toString("base64") !== l.sums) throw new Error(`layout ${l.name}: sums differ`);
  }
  for (const h of doc.heals) {
    const r = new Replica();
    for (const g of doc.ghosts) r.addID(g.id, g.ts);
    for (const c of h.client.commits) r.addID(c.id, c.ts, c);
    let salt;
    const c = new Client({ limit: h.limit, pushLimit: h.pushLimit, misses: h.misses || 0.1, salt: () => salt, version });
    let req = c.start(r);
    h.rounds.forEach((round, i) => {
      if (JSON.stringify(req) !== JSON.stringify(round.request)) throw new Error(`heal ${h.name}: request ${i + 1} differs:\n${JSON.stringify(req).slice(0, 400)}\n${JSON.stringify(round.request).slice(0, 400)}`);
      r.ingest(round.response.commits);
      salt = h.rounds[i + 1]?.request.filter ? unhex(h.rounds[i + 1].request.filter.salt) : undefined;
      req = c.next(r, round.response);
      if ((req === null) !== (i + 1 === h.rounds.length)) throw new Error(`heal ${h.name}: done after ${i + 1} of ${h.rounds.length}`);
    });
    console.log(`${file}: heal ${h.name}: ${h.rounds.length} requests reproduced`);
  }
  console.log(`${file}: layouts: ${doc.layouts.length} ok`);
}

async function healGateway(url, token, repo, drop, keepEvery, version) {
  const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
  const info = await (await fetch(`${url}/v1/info`)).json();
  if (!info.capabilities.includes(`sync-v${version}`)) throw new Error(`the gateway does not advertise sync-v${version}`);
  const log = [];
  for (let after = ""; ; ) {
    const q = new URLSearchParams({ limit: "1000", ...(after && { after }) });
    const p = await (await fetch(`${url}/v1/repos/${repo}/log?${q}`, { headers })).json();
    log.push(...p.commits);
    after = p.next;
    if (p.tail || !p.commits.length) break;
  }
  const r = new Replica();
  const kept = log.slice(0, Math.max(log.length - drop, 0));
  // Forgetting a commit forgets its descendants too, as a real replica would lack them.
  const lost = new Set();
  kept.forEach((c, i) => {
    if ((keepEvery && i % keepEvery === keepEvery - 1) || c.parents.some((p) => lost.has(p))) lost.add(c.id);
    else r.addID(c.id, c.ts, c);
  });
  const missing = log.length - r.order.length;
  const c = new Client({ limit: 10000, salt: () => crypto.getRandomValues(new Uint8Array(8)), version });
  let req = c.start(r), requests = 0, bytes = 0;
  while (req) {
    const body = JSON.stringify(req);
    const res = await fetch(`${url}/v1/repos/${repo}/sync`, { method: "POST", headers, body });
    const text = await res.text();
    if (!res.ok) throw new Error(`sync: ${res.status} ${text}`);
    requests++;
    bytes += Buffer.byteLength(body) + Buffer.byteLength(text);
    const resp = JSON.parse(text);
    r.ingest(resp.commits);
    req = c.next(r, resp);
  }
  console.log(`${repo}: ${log.length} commits, client lacked ${missing}: converged in ${requests} requests, ${bytes} JSON bytes both ways`);
  if (requests > 3) throw new Error("more than 3 requests");
}

const args = process.argv.slice(2);
const opt = (name, d) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : d;
};
if (opt("url")) {
  await healGateway(opt("url"), opt("token"), opt("repo"), Number(opt("drop", "10")), Number(opt("keep-every", "0")), Number(opt("v", "3")));
} else {
  checkBloomVectors();
  replayVectors("sync_v2_vectors.json", 2);
  replayVectors("sync_v3_vectors.json", 3);
}
