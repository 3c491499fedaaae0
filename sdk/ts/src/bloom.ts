// Salted Bloom filters bit-identical to github.com/bits-and-blooms/bloom/v3
// as package sync uses them (docs/sync.md, Wire formats): element = salt ||
// id (8 + 32 bytes); MurmurHash3 x64-128 (seed 0) of the element gives h1,
// h2, of the element followed by 0x01 gives h3, h4; probe i sets bit
// (h[i%2] + i*h[2+((i+i%2)%4)/2]) mod m in uint64 arithmetic. The 64-bit
// arithmetic is done on pairs of 32-bit halves (BigInt would be ten times
// slower), and sync/testdata/bloom_vectors.json pins every step.

import { fromBase64, fromHex, toBase64, toHex } from "./bytes.js";
import { GoatError } from "./errors.js";

/** Filter limits (sync/filter.go). */
export const SaltSize = 8;
export const MaxFilterBits = 2 ** 26;
export const MaxFilterHashes = 32;
export const MinRate = 1e-9;
export const MaxRate = 0.5;
export const DefaultMisses = 0.1;
export const DefaultPrior = 16;

// A u64 is [hi, lo], both unsigned 32-bit numbers.
type U64 = [number, number];

// mul32 returns the full 64-bit product of two unsigned 32-bit numbers.
function mul32(a: number, b: number): U64 {
  const a0 = a & 0xffff, a1 = a >>> 16;
  const t = a0 * b; // < 2^48, exact
  const u = a1 * b; // < 2^48, exact
  const uLo = u % 65536, uHi = Math.floor(u / 65536);
  const s = uLo * 65536 + t; // < 2^49, exact
  return [(uHi + Math.floor(s / 4294967296)) >>> 0, s >>> 0];
}

function mul64(ah: number, al: number, bh: number, bl: number): U64 {
  const [h, l] = mul32(al, bl);
  return [(h + Math.imul(ah, bl) + Math.imul(al, bh)) >>> 0, l];
}

function add64(ah: number, al: number, bh: number, bl: number): U64 {
  const l = al + bl;
  return [(ah + bh + (l > 0xffffffff ? 1 : 0)) >>> 0, l >>> 0];
}

function rotl64(h: number, l: number, r: number): U64 {
  if (r >= 32) {
    [h, l] = [l, h];
    r -= 32;
  }
  if (r === 0) return [h, l];
  return [((h << r) | (l >>> (32 - r))) >>> 0, ((l << r) | (h >>> (32 - r))) >>> 0];
}

function fmix64(h: number, l: number): U64 {
  l = (l ^ (h >>> 1)) >>> 0; // k ^= k >> 33
  [h, l] = mul64(h, l, 0xff51afd7, 0xed558ccd);
  l = (l ^ (h >>> 1)) >>> 0;
  [h, l] = mul64(h, l, 0xc4ceb9fe, 0x1a85ec53);
  l = (l ^ (h >>> 1)) >>> 0;
  return [h, l];
}

const C1H = 0x87c37b91, C1L = 0x114253d5, C2H = 0x4cf5ad43, C2L = 0x2745937f;

const le32 = (b: Uint8Array, i: number): number => (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0;

/** murmur3x64 returns MurmurHash3 x64-128 (seed 0) of b as four 32-bit words: h1 hi, h1 lo, h2 hi, h2 lo. */
export function murmur3x64(b: Uint8Array): [number, number, number, number] {
  let h1h = 0, h1l = 0, h2h = 0, h2l = 0;
  const n = b.length, blocks = n >>> 4;
  let k1h: number, k1l: number, k2h: number, k2l: number;
  for (let i = 0; i < blocks; i++) {
    const o = i * 16;
    [k1h, k1l] = [le32(b, o + 4), le32(b, o)];
    [k2h, k2l] = [le32(b, o + 12), le32(b, o + 8)];
    [k1h, k1l] = mul64(k1h, k1l, C1H, C1L);
    [k1h, k1l] = rotl64(k1h, k1l, 31);
    [k1h, k1l] = mul64(k1h, k1l, C2H, C2L);
    h1h = (h1h ^ k1h) >>> 0;
    h1l = (h1l ^ k1l) >>> 0;
    [h1h, h1l] = rotl64(h1h, h1l, 27);
    [h1h, h1l] = add64(h1h, h1l, h2h, h2l);
    [h1h, h1l] = mul64(h1h, h1l, 0, 5);
    [h1h, h1l] = add64(h1h, h1l, 0, 0x52dce729);
    [k2h, k2l] = mul64(k2h, k2l, C2H, C2L);
    [k2h, k2l] = rotl64(k2h, k2l, 33);
    [k2h, k2l] = mul64(k2h, k2l, C1H, C1L);
    h2h = (h2h ^ k2h) >>> 0;
    h2l = (h2l ^ k2l) >>> 0;
    [h2h, h2l] = rotl64(h2h, h2l, 31);
    [h2h, h2l] = add64(h2h, h2l, h1h, h1l);
    [h2h, h2l] = mul64(h2h, h2l, 0, 5);
    [h2h, h2l] = add64(h2h, h2l, 0, 0x38495ab5);
  }
  const t = blocks * 16, rest = n & 15;
  // Tail bytes, little endian: bytes 0-7 into k1, 8-14 into k2.
  k1h = k1l = k2h = k2l = 0;
  for (let i = rest - 1; i >= 8; i--) {
    const j = i - 8;
    if (j >= 4) k2h |= b[t + i] << (8 * (j - 4));
    else k2l |= b[t + i] << (8 * j);
  }
  if (rest > 8) {
    [k2h, k2l] = mul64(k2h >>> 0, k2l >>> 0, C2H, C2L);
    [k2h, k2l] = rotl64(k2h, k2l, 33);
    [k2h, k2l] = mul64(k2h, k2l, C1H, C1L);
    h2h = (h2h ^ k2h) >>> 0;
    h2l = (h2l ^ k2l) >>> 0;
  }
  for (let i = Math.min(rest, 8) - 1; i >= 0; i--) {
    if (i >= 4) k1h |= b[t + i] << (8 * (i - 4));
    else k1l |= b[t + i] << (8 * i);
  }
  if (rest > 0) {
    [k1h, k1l] = mul64(k1h >>> 0, k1l >>> 0, C1H, C1L);
    [k1h, k1l] = rotl64(k1h, k1l, 31);
    [k1h, k1l] = mul64(k1h, k1l, C2H, C2L);
    h1h = (h1h ^ k1h) >>> 0;
    h1l = (h1l ^ k1l) >>> 0;
  }
  // Lengths fit in 32 bits here.
  h1l = (h1l ^ n) >>> 0;
  h2l = (h2l ^ n) >>> 0;
  [h1h, h1l] = add64(h1h, h1l, h2h, h2l);
  [h2h, h2l] = add64(h2h, h2l, h1h, h1l);
  [h1h, h1l] = fmix64(h1h, h1l);
  [h2h, h2l] = fmix64(h2h, h2l);
  [h1h, h1l] = add64(h1h, h1l, h2h, h2l);
  [h2h, h2l] = add64(h2h, h2l, h1h, h1l);
  return [h1h, h1l, h2h, h2l];
}

/** baseHashes returns the four 64-bit hashes of an element as [hi, lo] pairs (bloom's baseHashes). */
export function baseHashes(element: Uint8Array): U64[] {
  const a = murmur3x64(element);
  const ext = new Uint8Array(element.length + 1);
  ext.set(element);
  ext[element.length] = 1;
  const b = murmur3x64(ext);
  return [[a[0], a[1]], [a[2], a[3]], [b[0], b[1]], [b[2], b[3]]];
}

// mod64 returns (hi*2^32 + lo) mod m for m <= 2^26, exactly.
function mod64(hi: number, lo: number, m: number): number {
  const x = ((((hi % m) * 65536) % m) * 65536) % m;
  return (x + (lo % m)) % m;
}

/** location returns probe i's bit for hashes h in a filter of m bits. */
export function location(h: U64[], i: number, m: number): number {
  const a = h[i % 2], b = h[2 + (((i + (i % 2)) % 4) >> 1)];
  const [ph, pl] = mul64(0, i, b[0], b[1]);
  const [sh, sl] = add64(a[0], a[1], ph, pl);
  return mod64(sh, sl, m);
}

/** The wire form of a filter. */
export interface FilterJSON {
  m: number;
  k: number;
  salt: string;
  bits: string;
}

/**
 * Filter is a salted Bloom filter over commit ids. Bits are held as 32-bit
 * halves of the library's uint64 words: bit j is bit (j & 31) of half
 * 2*(j >> 6) + (j & 32 ? 0 : 1) (the high half of each word comes first, as
 * the big-endian wire form has it).
 */
export class Filter {
  readonly words: Uint32Array;
  private readonly element = new Uint8Array(SaltSize + 32);

  constructor(readonly m: number, readonly k: number, readonly salt: Uint8Array, words?: Uint32Array) {
    checkParams(m, k);
    if (salt.length !== SaltSize) throw new GoatError("invalid", "filter salt must be 8 bytes");
    this.words = words ?? new Uint32Array(2 * Math.ceil(m / 64));
    this.element.set(salt);
  }

  private hashes(id: string | Uint8Array): U64[] {
    this.element.set(typeof id === "string" ? fromHex(id, 32) : id, SaltSize);
    return baseHashes(this.element);
  }

  private static half(j: number): [number, number] {
    return [2 * (j >>> 6) + ((j & 32) !== 0 ? 0 : 1), 1 << (j & 31)];
  }

  /** add inserts a commit id (hex or 32 bytes). */
  add(id: string | Uint8Array): void {
    const h = this.hashes(id);
    for (let i = 0; i < this.k; i++) {
      const [w, bit] = Filter.half(location(h, i, this.m));
      this.words[w] |= bit;
    }
  }

  /** test reports whether id may be in the set; false is certain. */
  test(id: string | Uint8Array): boolean {
    const h = this.hashes(id);
    for (let i = 0; i < this.k; i++) {
      const [w, bit] = Filter.half(location(h, i, this.m));
      if ((this.words[w] & bit) === 0) return false;
    }
    return true;
  }

  /** toJSON returns the wire form. */
  toJSON(): FilterJSON {
    const raw = new Uint8Array(4 * this.words.length);
    const dv = new DataView(raw.buffer);
    for (let i = 0; i < this.words.length; i++) dv.setUint32(4 * i, this.words[i]);
    return { m: this.m, k: this.k, salt: toHex(this.salt), bits: toBase64(raw) };
  }

  /** fromJSON decodes and validates the wire form, checking sizes before decoding bits. */
  static fromJSON(v: unknown): Filter {
    if (typeof v !== "object" || v === null) throw new GoatError("invalid", "filter: not an object");
    const f = v as Record<string, unknown>;
    for (const key of Object.keys(f)) if (!["m", "k", "salt", "bits"].includes(key)) throw new GoatError("invalid", `filter: ${key}: unknown field`);
    const { m, k, salt, bits } = f;
    if (typeof m !== "number" || typeof k !== "number" || typeof salt !== "string" || typeof bits !== "string") throw new GoatError("invalid", "filter: m, k, salt and bits are required");
    checkParams(m, k);
    const n = Math.ceil(m / 64);
    if (bits.length !== 4 * Math.ceil((8 * n) / 3)) throw new GoatError("invalid", `filter bits: ${bits.length} base64 characters for m=${m}`);
    const raw = fromBase64(bits);
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const words = new Uint32Array(2 * n);
    for (let i = 0; i < words.length; i++) words[i] = dv.getUint32(4 * i);
    const r = m % 64;
    if (r !== 0) {
      // Bits at or past m in the last word must be zero.
      const hi = words[2 * n - 2], lo = words[2 * n - 1];
      const bad = r >= 32 ? (r === 32 ? hi : hi >>> (r - 32)) !== 0 : hi !== 0 || lo >>> r !== 0;
      if (bad) throw new GoatError("invalid", `filter bits: bits set at or beyond m=${m}`);
    }
    return new Filter(m, k, fromHex(salt, SaltSize), words);
  }
}

function checkParams(m: number, k: number): void {
  if (!Number.isInteger(m) || m < 1 || m > MaxFilterBits) throw new GoatError("invalid", `filter m=${m} outside 1..${MaxFilterBits}`);
  if (!Number.isInteger(k) || k < 1 || k > MaxFilterHashes) throw new GoatError("invalid", `filter k=${k} outside 1..${MaxFilterHashes}`);
}

/** filterParams returns m and k for n elements at false-positive rate fp (sync.FilterParams). */
export function filterParams(n: number, fp: number): { m: number; k: number } {
  if (n <= 0) return { m: 64, k: 1 };
  fp = Math.min(Math.max(fp, MinRate), MaxRate);
  const bits = Math.ceil((n * -Math.log(fp)) / (Math.LN2 * Math.LN2));
  const m = bits >= MaxFilterBits ? MaxFilterBits : Math.max(64, Math.ceil(bits / 64) * 64);
  const k = Math.min(Math.max(Math.round((Math.LN2 * m) / n), 1), MaxFilterHashes);
  return { m, k };
}

/** rate returns the false-positive rate for a receiver with about d extras that moves at most window per message (FilterPolicy.Rate). */
export function rate(d: number, window: number, misses = DefaultMisses): number {
  if (window > 0) d = Math.min(d, window);
  return Math.min(Math.max(misses / Math.max(d, 1), MinRate), MaxRate);
}

/** buildFilter builds a filter over ids at rate fp with a random salt (or the given one). */
export function buildFilter(ids: Iterable<string>, n: number, fp: number, salt?: Uint8Array): Filter {
  const s = salt ?? globalThis.crypto.getRandomValues(new Uint8Array(SaltSize));
  const { m, k } = filterParams(n, fp);
  const f = new Filter(m, k, s);
  for (const id of ids) f.add(id);
  return f;
}
