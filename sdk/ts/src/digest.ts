// Set digests (DESIGN section 5; sync/digest.go): the count of a set of
// commits and the XOR of their 32-byte ids, kept incrementally. Equal count
// and digest means in sync.

import { fromHex, toHex } from "./bytes.js";

/** Digest summarizes a set of commit ids. */
export class Digest {
  count = 0;
  readonly xor = new Uint8Array(32);

  /** add folds an id in; each id must be added once. */
  add(id: string): void {
    this.count++;
    xorInto(this.xor, fromHex(id, 32));
  }

  /** remove takes an id back out. */
  remove(id: string): void {
    this.count--;
    xorInto(this.xor, fromHex(id, 32));
  }

  /** hex returns the 64 lowercase hex characters of the XOR. */
  hex(): string {
    return toHex(this.xor);
  }

  /** equals compares with a count and hex digest from the wire. */
  equals(count: number, hex: string): boolean {
    return this.count === count && this.hex() === hex;
  }

  clone(): Digest {
    const d = new Digest();
    d.count = this.count;
    d.xor.set(this.xor);
    return d;
  }

  /** of computes the digest of ids from scratch. */
  static of(ids: Iterable<string>): Digest {
    const d = new Digest();
    for (const id of ids) d.add(id);
    return d;
  }
}

function xorInto(dst: Uint8Array, b: Uint8Array): void {
  for (let i = 0; i < 32; i++) dst[i] ^= b[i];
}

/** The digest of the empty set. */
export const ZeroDigest = "0".repeat(64);
