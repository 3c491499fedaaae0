import { describe, expect, it } from "vitest";
import { fromHex, toHex } from "../../src/bytes.js";
import { baseHashes, buildFilter, Filter, filterParams, location, rate } from "../../src/bloom.js";
import { Digest } from "../../src/digest.js";
import { GoatError } from "../../src/errors.js";
import { load } from "./vectors.js";

const doc = load("sync/testdata/bloom_vectors.json");
const u64hex = (p: [number, number]) => p[0].toString(16).padStart(8, "0") + p[1].toString(16).padStart(8, "0");

describe("sync/testdata/bloom_vectors.json", () => {
  for (const v of doc.vectors) {
    describe(v.name, () => {
      it("hashes and probes like bits-and-blooms", () => {
        for (const p of v.probes) {
          const h = baseHashes(fromHex(p.element));
          expect(h.map(u64hex)).toEqual(p.hashes);
          expect(Array.from({ length: v.k }, (_, i) => location(h, i, v.m))).toEqual(p.locations);
        }
      });
      it("builds the same bits", () => {
        const f = new Filter(v.m, v.k, fromHex(v.salt));
        for (const id of v.ids) f.add(id);
        expect(f.toJSON()).toEqual({ m: v.m, k: v.k, salt: v.salt, bits: v.bits });
      });
      it("answers membership the same, false positives included", () => {
        const f = Filter.fromJSON({ m: v.m, k: v.k, salt: v.salt, bits: v.bits });
        for (const t of v.tests) expect(f.test(t.id)).toBe(t.member);
      });
    });
  }
});

describe("Filter.fromJSON", () => {
  const ok = { m: 64, k: 1, salt: "0000000000000000", bits: "AAAAAAAAAAA=" };
  it.each([
    ["m too large", { ...ok, m: 2 ** 26 + 1 }],
    ["k zero", { ...ok, k: 0 }],
    ["upper-case salt", { ...ok, salt: "000000000000000A" }],
    ["short bits", { ...ok, bits: "AAAA" }],
    ["unknown field", { ...ok, x: 1 }],
    ["bit past m", { m: 60, k: 1, salt: ok.salt, bits: "EAAAAAAAAAA=" }],
  ])("refuses %s", (_, v) => {
    expect(() => Filter.fromJSON(v)).toThrow(GoatError);
  });
});

describe("filter sizing", () => {
  it("matches sync.FilterParams", () => {
    expect(filterParams(0, 0.1)).toEqual({ m: 64, k: 1 });
    // From the vectors named policy-N-ids-D-extras: FilterParams(N, Rate(D)).
    expect(filterParams(100, rate(1, 0))).toEqual({ m: 512, k: 4 });
    expect(filterParams(400, rate(50, 0))).toEqual({ m: 5184, k: 9 });
  });
  it("has no false negatives and about the target rate", () => {
    const ids = Array.from({ length: 2000 }, (_, i) => toHex(new Uint8Array(32).fill(i % 251).map((x, j) => (x * 31 + j * i) & 255)));
    const f = buildFilter(ids, ids.length, 0.01);
    for (const id of ids) expect(f.test(id)).toBe(true);
  });
});

describe("Digest", () => {
  it("is the XOR of ids and undoes with remove", () => {
    const a = "01".repeat(32), b = "ff".repeat(32);
    const d = Digest.of([a, b]);
    expect(d.count).toBe(2);
    expect(d.hex()).toBe("fe".repeat(32));
    d.remove(a);
    expect(d.equals(1, b)).toBe(true);
  });
});
