// The append-only log format of the Go storage package (storage/doc.go,
// "Log file format"), so that a repository log written in the browser
// (OPFSStore) opens with Go's storage package and the other way round:
//
//   file    = header record*
//   header  = "GOATLOG\0" | u32 version = 1 | 16-byte log id | u32 CRC-32C of bytes 0..28
//   record  = u32 length | u32 CRC-32C of the payload | payload
//   payload = u64 seq | u64 group | u8 kind (1 commit, 2 close marker) | body
//   commit body = id 32 | i64 ts | u8 flags | u16 nparents | parents 32×n |
//                 base 32 (delta only) | u8 keylen | key | canonical commit JSON
//
// Little-endian throughout. seq strictly increases along a file; group is
// the byte offset where the write that carried the record began. Decoding
// stops at the first frame that is short or fails its checksum (a torn
// tail: the caller truncates there); damage followed by valid records is
// reported as corrupt, as Go's recovery refuses it.

import { commitJSON, decodeCommit, isMerge, type Commit } from "./commit.js";
import { fromHex, toHex } from "./bytes.js";
import { GoatError } from "./errors.js";

const magic = [0x47, 0x4f, 0x41, 0x54, 0x4c, 0x4f, 0x47, 0x00]; // "GOATLOG\0"
export const formatVersion = 1;
export const headerSize = 32;
const frameHeaderSize = 8;
const payloadHeaderSize = 17;
const maxPayload = 4 << 20;
const kindCommit = 1;
const kindClose = 2;
const flagDelta = 1,
  flagMerge = 2,
  flagDeleted = 4;

// CRC-32C (Castagnoli), reflected polynomial 0x82F63B78.
const table = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** crc32c returns the CRC-32C of b. */
export function crc32c(b: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = table[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** encodeHeader returns the 32-byte file header for a 16-byte log id. */
export function encodeHeader(logId: Uint8Array): Uint8Array {
  if (logId.length !== 16) throw new RangeError("log id must be 16 bytes");
  const b = new Uint8Array(headerSize);
  b.set(magic, 0);
  const v = new DataView(b.buffer);
  v.setUint32(8, formatVersion, true);
  b.set(logId, 12);
  v.setUint32(28, crc32c(b.subarray(0, 28)), true);
  return b;
}

const utf8 = new TextEncoder();

/**
 * encodeRecords returns the frames of one write of commits starting at
 * byte offset group, numbered from firstSeq. deleted tells whether a
 * commit's resolved value is a tombstone (flag bit 2).
 */
export function encodeRecords(commits: readonly Commit[], firstSeq: bigint, group: number, deleted: (c: Commit) => boolean): Uint8Array {
  const parts: Uint8Array[] = [];
  let seq = firstSeq;
  let total = 0;
  for (const c of commits) {
    const js = utf8.encode(commitJSON(c));
    const key = utf8.encode(c.key);
    const flags = (c.delta ? flagDelta : 0) | (isMerge(c) ? flagMerge : 0) | (deleted(c) ? flagDeleted : 0);
    const bodyLen = 32 + 8 + 1 + 2 + 32 * c.parents.length + (c.delta ? 32 : 0) + 1 + key.length + js.length;
    const n = payloadHeaderSize + bodyLen;
    if (n > maxPayload) throw new GoatError("too-large", `commit ${c.id} does not fit a log record`);
    const f = new Uint8Array(frameHeaderSize + n);
    const v = new DataView(f.buffer);
    let o = frameHeaderSize;
    v.setBigUint64(o, seq, true);
    v.setBigUint64(o + 8, BigInt(group), true);
    f[o + 16] = kindCommit;
    o += payloadHeaderSize;
    f.set(fromHex(c.id, 32), o);
    o += 32;
    v.setBigInt64(o, BigInt(c.ts), true);
    o += 8;
    f[o++] = flags;
    v.setUint16(o, c.parents.length, true);
    o += 2;
    for (const p of c.parents) {
      f.set(fromHex(p, 32), o);
      o += 32;
    }
    if (c.delta) {
      f.set(fromHex(c.delta.base, 32), o);
      o += 32;
    }
    f[o++] = key.length;
    f.set(key, o);
    o += key.length;
    f.set(js, o);
    v.setUint32(0, n, true);
    v.setUint32(4, crc32c(f.subarray(frameHeaderSize)), true);
    parts.push(f);
    total += f.length;
    seq++;
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A decoded log. */
export interface DecodedLog {
  logId: string;
  commits: Commit[];
  /** The largest seq in the file (0 if none). */
  lastSeq: bigint;
  /** Bytes of the good prefix: a torn tail starts here. */
  goodLength: number;
}

const textDecoder = new TextDecoder("utf-8", { fatal: true });

/** decodeLog decodes a whole log file; commits are checked (ids recomputed) by decodeCommit. */
export async function decodeLog(b: Uint8Array): Promise<DecodedLog> {
  if (b.length < headerSize) throw new GoatError("corrupt", `log header: ${b.length} bytes, want ${headerSize}`);
  for (let i = 0; i < 8; i++) if (b[i] !== magic[i]) throw new GoatError("corrupt", "log header: bad magic (not a goat-gateway log)");
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (v.getUint32(28, true) !== crc32c(b.subarray(0, 28))) throw new GoatError("corrupt", "log header: checksum mismatch");
  const version = v.getUint32(8, true);
  if (version !== formatVersion) throw new GoatError("corrupt", `log header: format version ${version}, this SDK reads version ${formatVersion}`);
  const logId = toHex(b.subarray(12, 28));
  const commits: Commit[] = [];
  let pos = headerSize;
  let lastSeq = 0n;
  while (pos < b.length) {
    const frame = frameAt(b, v, pos);
    if (!frame) break;
    const [p, end] = frame;
    const pv = new DataView(p.buffer, p.byteOffset, p.byteLength);
    const seq = pv.getBigUint64(0, true);
    const kind = p[16];
    // A close marker repeats the seq of the commit before it.
    if (kind === kindClose ? seq < lastSeq : seq <= lastSeq && lastSeq !== 0n) throw new GoatError("corrupt", `log record at byte ${pos}: sequence ${seq} after ${lastSeq}`);
    lastSeq = seq;
    if (kind === kindCommit) commits.push(await decodeBody(p.subarray(payloadHeaderSize), pos));
    else if (kind !== kindClose) throw new GoatError("corrupt", `log record at byte ${pos}: unknown kind ${kind}`);
    pos = end;
  }
  if (pos < b.length) {
    // A torn tail has no valid frame after it; anything else is damage.
    for (let q = pos + 1; q + frameHeaderSize <= b.length; q++) {
      if (frameAt(b, v, q)) throw new GoatError("corrupt", `log damaged at byte ${pos} with intact records after it`);
    }
  }
  return { logId, commits, lastSeq, goodLength: pos };
}

function frameAt(b: Uint8Array, v: DataView, pos: number): [Uint8Array, number] | undefined {
  if (pos + frameHeaderSize > b.length) return undefined;
  const n = v.getUint32(pos, true);
  if (n < payloadHeaderSize || n > maxPayload || pos + frameHeaderSize + n > b.length) return undefined;
  const p = b.subarray(pos + frameHeaderSize, pos + frameHeaderSize + n);
  if (crc32c(p) !== v.getUint32(pos + 4, true)) return undefined;
  return [p, pos + frameHeaderSize + n];
}

async function decodeBody(body: Uint8Array, pos: number): Promise<Commit> {
  const bad = (why: string) => new GoatError("corrupt", `log record at byte ${pos}: ${why}`);
  if (body.length < 32 + 8 + 1 + 2) throw bad("short commit body");
  const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const flags = body[40];
  const np = v.getUint16(41, true);
  let o = 43 + 32 * np + (flags & flagDelta ? 32 : 0);
  if (o >= body.length) throw bad("short commit body");
  const keyLen = body[o++];
  o += keyLen;
  if (o > body.length) throw bad("short commit body");
  let c: Commit;
  try {
    c = await decodeCommit(JSON.parse(textDecoder.decode(body.subarray(o))));
  } catch (e) {
    throw bad((e as Error).message);
  }
  if (c.id !== toHex(body.subarray(0, 32))) throw bad("the id field does not match the commit");
  return c;
}
