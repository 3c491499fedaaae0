// Byte helpers: hex, base64 (standard padded, and unpadded base64url), UTF-8.
// Hand-written rather than Buffer/atob so the same code runs in browsers and
// Node and refuses the same non-canonical spellings the Go side refuses.

import { GoatError } from "./errors.js";

const hexChars = "0123456789abcdef";

/** toHex returns lowercase hex. */
export function toHex(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += hexChars[b[i] >> 4] + hexChars[b[i] & 15];
  return s;
}

/** fromHex parses lowercase hex only (one spelling per value, as core.ParseCommitID). */
export function fromHex(s: string, want?: number): Uint8Array {
  if (s.length % 2 !== 0 || !/^[0-9a-f]*$/.test(s) || (want !== undefined && s.length !== 2 * want)) {
    throw new GoatError("invalid", `hex: ${JSON.stringify(s.slice(0, 80))} is not ${want ?? "some"} bytes of lowercase hex`);
  }
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.substr(2 * i, 2), 16);
  return out;
}

const b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const b64url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

function encode(b: Uint8Array, alphabet: string, pad: boolean): string {
  let s = "";
  let i = 0;
  for (; i + 2 < b.length; i += 3) {
    const n = (b[i] << 16) | (b[i + 1] << 8) | b[i + 2];
    s += alphabet[n >> 18] + alphabet[(n >> 12) & 63] + alphabet[(n >> 6) & 63] + alphabet[n & 63];
  }
  const rest = b.length - i;
  if (rest === 1) {
    const n = b[i] << 16;
    s += alphabet[n >> 18] + alphabet[(n >> 12) & 63] + (pad ? "==" : "");
  } else if (rest === 2) {
    const n = (b[i] << 16) | (b[i + 1] << 8);
    s += alphabet[n >> 18] + alphabet[(n >> 12) & 63] + alphabet[(n >> 6) & 63] + (pad ? "=" : "");
  }
  return s;
}

function decode(s: string, alphabet: string, pad: boolean): Uint8Array {
  let body = s;
  if (pad) {
    if (s.length % 4 !== 0) throw new GoatError("invalid", "base64: length is not a multiple of 4");
    if (s.endsWith("==")) body = s.slice(0, -2);
    else if (s.endsWith("=")) body = s.slice(0, -1);
  }
  if (body.length % 4 === 1) throw new GoatError("invalid", "base64: impossible length");
  const out = new Uint8Array(Math.floor((body.length * 3) / 4));
  let bits = 0, acc = 0, o = 0;
  for (let i = 0; i < body.length; i++) {
    const v = alphabet.indexOf(body[i]);
    if (v < 0) throw new GoatError("invalid", "base64: invalid character");
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 255;
    }
  }
  // Strict: the padding bits of the last character must be zero, so each
  // byte string has one spelling (Go's base64 Strict()).
  if (bits > 0 && (acc & ((1 << bits) - 1)) !== 0) throw new GoatError("invalid", "base64: non-zero padding bits");
  return out;
}

/** toBase64 returns standard padded base64. */
export const toBase64 = (b: Uint8Array): string => encode(b, b64, true);
/** fromBase64 parses strict standard padded base64. */
export const fromBase64 = (s: string): Uint8Array => decode(s, b64, true);
/** toBase64url returns unpadded base64url. */
export const toBase64url = (b: Uint8Array): string => encode(b, b64url, false);
/** fromBase64url parses strict unpadded base64url. */
export const fromBase64url = (s: string): Uint8Array => decode(s, b64url, false);

const enc = new TextEncoder();
/** utf8 encodes a string. */
export const utf8 = (s: string): Uint8Array => enc.encode(s);

/** concat joins byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
