import { describe, expect, it } from "vitest";
import { fromHex, toBase64url } from "../../src/bytes.js";
import { canonicalBody, commitJSON, computeId, decodeCommit, signCommit, verifySig, type Commit } from "../../src/commit.js";
import { keyPairFromSeed, sessionId } from "../../src/crypto.js";
import { applyDelta, diff, encode, type Delta } from "../../src/delta.js";
import { canonicalize, parseJSON } from "../../src/json.js";
import { GoatError } from "../../src/errors.js";
import { load } from "./vectors.js";

const doc = load("core/testdata/commits.json");

describe("core/testdata/commits.json", async () => {
  const kp = await keyPairFromSeed(fromHex(doc.seed, 32));

  it("derives the public key from the seed", () => {
    expect(toBase64url(kp.publicKeyBytes)).toBe(doc.publicKey);
  });

  for (const v of doc.vectors) {
    describe(v.name, () => {
      it("canonicalizes the input", () => {
        expect(canonicalize(parseJSON(v.input))).toBe(v.canonical);
      });
      it("computes the id", async () => {
        const input = parseJSON(v.input) as unknown as Commit;
        expect(canonicalBody(input)).toBe(v.canonical);
        expect(await computeId(input)).toBe(v.id);
      });
      it("writes the commit canonically and decodes it", async () => {
        const c = await decodeCommit(parseJSON(v.commit));
        expect(commitJSON(c)).toBe(v.commit);
      });
      if (v.sig) {
        it("signs deterministically and verifies", async () => {
          const input = parseJSON(v.input) as unknown as Commit;
          const signed = await signCommit(input, kp.privateKey);
          expect(signed.sig).toBe(v.sig);
          expect(commitJSON(signed)).toBe(v.commit);
          await verifySig(signed, kp.publicKey);
          const tampered = { ...signed, ts: signed.ts + 1 };
          await expect(verifySig(tampered, kp.publicKey)).rejects.toThrow(GoatError);
        });
      }
      if (v.result) {
        it("applies the delta", () => {
          const c = parseJSON(v.commit) as unknown as Commit;
          expect(canonicalize(applyDelta(v.baseData, c.delta as Delta))).toBe(canonicalize(v.result));
        });
      }
    });
  }
});

describe("decodeCommit", () => {
  const good = parseJSON(doc.vectors[0].commit) as Record<string, unknown>;
  const cases: [string, (c: Record<string, unknown>) => void][] = [
    ["unknown field", (c) => (c.extra = 1)],
    ["id does not recompute", (c) => (c.ts = 1)],
    ["upper-case id", (c) => (c.id = String(c.id).toUpperCase())],
    ["missing sig", (c) => delete c.sig],
    ["short sig", (c) => (c.sig = "AAAA")],
    ["unsorted parents", (c) => (c.parents = ["b".repeat(64), "a".repeat(64)])],
    ["both data and delta", (c) => (c.delta = { base: "a".repeat(64), ops: [{ op: "unset", field: "x" }] })],
    ["bad repo", (c) => (c.repo = "Bad/Repo")],
    ["fractional ts", (c) => (c.ts = 1.5)],
    ["bad schema", (c) => (c.schema = "task/02")],
  ];
  for (const [name, mutate] of cases) {
    it(`refuses: ${name}`, async () => {
      const c = structuredClone(good);
      mutate(c);
      await expect(decodeCommit(c)).rejects.toSatisfy((e) => e instanceof GoatError && e.code === "invalid");
    });
  }
});

describe("canonicalize", () => {
  it.each([
    [{ b: 1, a: [true, null, "x"] }, '{"a":[true,null,"x"],"b":1}'],
    [{ n: -0, e: 1e21, f: 1e-7, g: 0.1 + 0.2 }, '{"e":1e+21,"f":1e-7,"g":0.30000000000000004,"n":0}'],
    [{ "\u20ac": 1, "\r": 2, "\ud83d\ude00": 3, "\ufb33": 4 }, '{"\\r":2,"\u20ac":1,"\ud83d\ude00":3,"\ufb33":4}'],
  ])("%j", (v, want) => {
    expect(canonicalize(v)).toBe(want);
  });
  it.each([[NaN], [Infinity], ["\ud800"], [{ x: undefined }], [new Date(0)]])("refuses %s", (v) => {
    expect(() => canonicalize(v)).toThrow(GoatError);
  });
});

describe("diff and encode", () => {
  const schema = { ns: "t", version: 1, fields: { s: { type: "set" as const }, m: { type: "map" as const }, t: { type: "text" as const }, r: { type: "json" as const } } };
  it("round-trips through applyDelta for random edits", () => {
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n);
    const pick = <T>(a: T[]): T => a[rnd(a.length)];
    const val = (): any => {
      const o: any = {};
      if (rnd(2)) o.s = [...new Set(Array.from({ length: rnd(4) }, () => pick(["a", "b", "c", "\ud83d\ude00"])))].sort();
      if (rnd(2)) o.m = Object.fromEntries(Array.from({ length: rnd(3) }, () => [pick(["x", "y"]), pick([1, "v", true])]));
      if (rnd(2)) o.t = Array.from({ length: rnd(6) }, () => pick(["a", "b", "\ud83d\ude00", " "])).join("");
      if (rnd(2)) o.r = pick([null, [1], { z: 1 }, "s"]);
      return o;
    };
    for (let i = 0; i < 300; i++) {
      const a = val(), b = val();
      const ops = diff(schema, a, b);
      if (ops.length === 0) {
        expect(canonicalize(a)).toBe(canonicalize(b));
        continue;
      }
      expect(canonicalize(applyDelta(a, { base: "0".repeat(64), ops }))).toBe(canonicalize(b));
    }
  });
  it("sends a delta only when it is at most half the full size", () => {
    const big = { t: "x".repeat(400), s: ["a"] };
    const next = { t: "x".repeat(400) + "!", s: ["a"] };
    const e = encode(schema, "a".repeat(64), big, next);
    expect("delta" in e).toBe(true);
    expect("data" in encode(schema, "a".repeat(64), { t: "a" }, { t: "b" })).toBe(true);
  });
});

describe("sessionId", () => {
  it("derives s_ + base64url of 18 bytes of SHA-256", async () => {
    const id = await sessionId(new Uint8Array(32));
    expect(id).toMatch(/^s_[A-Za-z0-9_-]{24}$/);
  });
});
