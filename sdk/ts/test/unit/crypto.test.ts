import { describe, expect, it } from "vitest";
import { toHex, utf8 } from "../../src/bytes.js";
import { sha256, sha256WebCrypto } from "../../src/crypto.js";

// sha256 takes Node's own hash where the runtime has it (commit ids of
// received events, scripts/live-bench.mjs) and WebCrypto elsewhere: both
// must give the same bytes for every input.
describe("sha256", () => {
  it("hashes the FIPS 180-2 examples", async () => {
    expect(toHex(await sha256(""))).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect(toHex(await sha256("abc"))).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect(toHex(await sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))).toBe(
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
    );
  });

  it("agrees with WebCrypto on every length across block boundaries and on random bytes", async () => {
    let seed = 1;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 255;
    for (let n = 0; n < 300; n++) {
      const b = Uint8Array.from({ length: n < 200 ? n : 200 + rand() * 8 }, rand);
      const got = await sha256(b);
      expect(got).toBeInstanceOf(Uint8Array);
      expect(toHex(got), `length ${b.length}`).toBe(toHex(await sha256WebCrypto(b)));
    }
    for (const s of ["é", "日本語のテキスト", "emoji 🐐 goat", "\u0000\uffff"]) {
      expect(toHex(await sha256(s)), s).toBe(toHex(await sha256WebCrypto(utf8(s))));
    }
  });

  it("returns a fresh 32-byte array each time", async () => {
    const a = await sha256("x");
    const b = await sha256("x");
    expect(a.length).toBe(32);
    expect(a).not.toBe(b);
    a[0] ^= 1;
    expect(toHex(await sha256("x"))).toBe(toHex(b));
  });
});
