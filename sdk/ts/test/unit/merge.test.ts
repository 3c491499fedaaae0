import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { decodeCommit, type Commit } from "../../src/commit.js";
import { canonicalize } from "../../src/json.js";
import { diffText, GroupSize, mergeAll, mergeBase, mergeCommit, mergeText, mergeValues, readAt, resolve, verifyMerge, viewHeads } from "../../src/merge.js";
import { Registry, type Schema } from "../../src/schema.js";
import { load } from "./vectors.js";

const text = load("merge/testdata/text.json");
const values = load("merge/testdata/values.json");
const graphs = load("merge/testdata/graphs.json");
const many = load("merge/testdata/many.json");
const views = load("merge/testdata/views.json");

describe("merge/testdata/text.json", () => {
  for (const c of text.cases) {
    it(c.name, () => {
      const scripts = c.heads.map((h: string) => diffText(c.base, h));
      if (c.scripts) expect(canonicalize(scripts)).toBe(canonicalize(c.scripts));
      else expect(createHash("sha256").update(canonicalize(scripts)).digest("hex")).toBe(c.scriptsSha256);
      expect(mergeText(c.base, c.heads)).toBe(c.result);
    });
  }
});

describe("merge/testdata/values.json", () => {
  const reg = new Registry(values.schemas as Schema[]);
  for (const c of values.cases) {
    it(c.name, () => {
      expect(canonicalize(mergeValues(reg.get(c.schema), c.base, c.heads))).toBe(canonicalize(c.result));
    });
  }
});

describe("merge/testdata/graphs.json", () => {
  const reg = new Registry(graphs.schemas as Schema[]);
  for (const c of graphs.cases) {
    it(c.name, async () => {
      const byId = new Map<string, Commit>();
      for (const x of c.commits) byId.set(x.id, await decodeCommit(structuredClone(x)));
      const g = (id: string) => byId.get(id);
      expect(mergeBase(g, c.heads) ?? null).toBe(c.base);
      const first = byId.get(c.heads[0])!;
      const m = await mergeCommit(g, reg, first.repo, first.key, c.heads);
      expect(m.id).toBe(c.mergeId);
      expect(canonicalize(m)).toBe(canonicalize(c.merge));
      // Head order must not matter.
      const m2 = await mergeCommit(g, reg, first.repo, first.key, [...c.heads].reverse());
      expect(m2.id).toBe(c.mergeId);
      for (const x of byId.values()) if (x.author === "merge") await verifyMerge(g, reg, x);
    });
  }
});

describe("merge/testdata/many.json", () => {
  const reg = new Registry(many.schemas as Schema[]);
  it("groups by GroupSize", () => expect(many.groupSize).toBe(GroupSize));
  for (const c of many.cases) {
    it(c.name, async () => {
      const byId = new Map<string, Commit>();
      for (const x of c.commits) byId.set(x.id, await decodeCommit(structuredClone(x)));
      const g = (id: string) => byId.get(id);
      const first = byId.get(c.heads[0])!;
      // Head order must not matter.
      for (const heads of [c.heads, [...c.heads].reverse()]) {
        const ms = await mergeAll(g, reg, first.repo, first.key, heads);
        expect(ms.map((m) => canonicalize(m))).toEqual(c.merges.map((m: Commit) => canonicalize(m)));
      }
      for (const m of c.merges) byId.set(m.id, await decodeCommit(structuredClone(m)));
      for (const m of c.merges) await verifyMerge(g, reg, byId.get(m.id)!);
    });
  }
});

describe("merge/testdata/views.json", () => {
  const reg = new Registry(views.schemas as Schema[]);
  for (const c of views.cases) {
    it(c.name, async () => {
      const byId = new Map<string, Commit>();
      for (const x of c.commits) byId.set(x.id, await decodeCommit(structuredClone(x)));
      const g = (id: string) => byId.get(id);
      const first = byId.get(c.heads[0])!;
      for (const q of c.views) {
        const v = { versions: q.versions, asOf: q.asOf };
        expect(viewHeads(g, reg, c.heads, v)).toEqual(q.heads);
        const r = await resolve(g, reg, first.repo, first.key, c.heads, v);
        if (q.head === null) {
          expect(r).toBeUndefined();
          continue;
        }
        expect(r && { head: r.head, ts: r.ts, schema: r.schema, data: canonicalize(r.data) }).toEqual({ head: q.head, ts: q.ts, schema: q.schema, data: canonicalize(q.data) });
      }
      for (const q of c.at) {
        const at = () => readAt(g, reg, byId.get(q.id)!, { versions: q.versions });
        if (q.unreadable) expect(at).toThrow(/newer than this reader/);
        else expect(canonicalize(at())).toBe(canonicalize({ schema: q.schema, data: q.data }));
      }
    });
  }
  it("a retired version caps every reader", async () => {
    const c = views.cases[0];
    const r2 = new Registry(views.schemas as Schema[]);
    r2.retire("note/2");
    const byId = new Map<string, Commit>(c.commits.map((x: Commit) => [x.id, x]));
    const g = (id: string) => byId.get(id);
    const first = byId.get(c.heads[0])!;
    const old = c.views.find((q: { versions?: Record<string, number>; asOf?: number }) => q.versions?.note === 1 && q.asOf === undefined);
    const r = await resolve(g, r2, first.repo, first.key, c.heads, {});
    expect(r?.head).toBe(old.head);
    expect(r?.schema).toBe("note/1");
  });
});

describe("diffText", () => {
  // An oracle: every script applies to base and gives head, and its edit
  // count is minimal (LCS by dynamic programming).
  const apply = (base: string, hunks: { at: number; del: number; ins: string }[]) => {
    const b = Array.from(base);
    let out = "", pos = 0;
    for (const h of hunks) {
      out += b.slice(pos, h.at).join("") + h.ins;
      pos = h.at + h.del;
    }
    return out + b.slice(pos).join("");
  };
  const lcs = (a: string[], b: string[]) => {
    const dp = Array.from({ length: a.length + 1 }, () => new Array(b.length + 1).fill(0));
    for (let i = 1; i <= a.length; i++) for (let j = 1; j <= b.length; j++) dp[i][j] = a[i - 1] === b[j - 1] ? dp[i - 1][j - 1] + 1 : Math.max(dp[i - 1][j], dp[i][j - 1]);
    return dp[a.length][b.length];
  };
  it("applies and is minimal on random inputs", () => {
    let seed = 42;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n);
    const alpha = ["a", "b", "c", "\ud83d\ude00"];
    const str = () => Array.from({ length: rnd(12) }, () => alpha[rnd(alpha.length)]).join("");
    for (let i = 0; i < 500; i++) {
      const a = str(), b = str();
      const s = diffText(a, b);
      expect(apply(a, s)).toBe(b);
      const A = Array.from(a), B = Array.from(b);
      const dels = s.reduce((n, h) => n + h.del, 0), ins = s.reduce((n, h) => n + Array.from(h.ins).length, 0);
      expect(dels + ins).toBe(A.length + B.length - 2 * lcs(A, B));
    }
  });
});
