import { describe, expect, it } from "vitest";
import { generateKeyPair, sessionId } from "../../src/crypto.js";
import { LiveQuery, type Item, type Query } from "../../src/query.js";
import { Replica, type ReplicaContext } from "../../src/replica.js";
import { Registry, type Schema } from "../../src/schema.js";
import { MemoryStore } from "../../src/store.js";
import { compareStrings } from "../../src/json.js";

const task: Schema = { ns: "task", version: 1, fields: { n: { type: "number", required: true }, tag: { type: "string", default: "" } } };
const other: Schema = { ns: "other", version: 1, fields: { n: { type: "number", required: true } } };

async function replica() {
  const kp = await generateKeyPair();
  const session = { id: await sessionId(kp.publicKeyBytes), privateKey: kp.privateKey };
  let t = 1_763_800_000_000;
  const ctx: ReplicaContext = {
    registry: new Registry([task, other]),
    persistence: new MemoryStore(),
    session: async () => session,
    onLocalCommit: () => {},
    onGap: () => {},
    ensureSchemas: async () => {},
    now: () => t++,
    log: () => {},
  };
  const r = new Replica("q", ctx);
  await r.load();
  return r;
}

// A small deterministic PRNG, so that a failure replays.
function rng(seed: number) {
  let s = seed >>> 0;
  return (n: number) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % n;
  };
}

type V = { n: number; tag: string };

// oracle runs a query from scratch over a list of items.
function oracle(items: Item<V>[], q: Query<V>): Item<V>[] {
  let out = items.filter((i) => !i.deleted && (q.schema === undefined || i.schema.startsWith(`${q.schema}/`)) && (!q.where || q.where(i)));
  out = out.sort((a, b) => (q.sort ? q.sort(a, b) : 0) || compareStrings(a.key, b.key));
  return q.limit === undefined ? out : out.slice(0, q.limit);
}

const view = (items: Item<V>[]) => items.map((i) => `${i.key}=${i.value.n}${i.value.tag}${i.pending ? "*" : ""}`);

describe("LiveQuery", () => {
  it("filters, sorts and limits like a query run from scratch, incrementally, composed, under random edits", async () => {
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const stopsLater: (() => void)[] = [];
      const r = await replica();
      const rand = rng(seed);
      const byN = (a: Item<V>, b: Item<V>) => a.value.n - b.value.n;
      const qs: Query<V> = { schema: "task", where: (i) => i.value.n % 3 !== 0, sort: byN, limit: 1 + rand(12) };
      const top = r.query<V>(qs);
      const q2: Query<V> = { where: (i) => i.value.tag !== "x", sort: (a, b) => compareStrings(b.key, a.key), limit: 1 + rand(5) };
      const composed = top.query<V>(q2);
      const qAll: Query<V> = { where: (i) => i.value.n > 20 };
      const all = r.query<V>(qAll);
      const composedNoLimit = all.query<V>({ where: (i) => i.value.n % 2 === 0 });
      const keepsOrder = top.query<V>({ where: (i) => i.value.tag === "" });
      stopsLater.push(keepsOrder.subscribe(() => {}));
      const calls = { top: 0, composed: 0, all: 0 };
      const stops = [top.subscribe(() => calls.top++), composed.subscribe(() => calls.composed++), all.subscribe(() => calls.all++), composedNoLimit.subscribe(() => {})];
      for (let round = 0; round < 40; round++) {
        const before = { top: top.results(), composed: composed.results(), all: all.results() };
        const evalBefore = { top: top.evaluated, all: all.evaluated, composed: composed.evaluated };
        const touched = new Set<string>();
        const edits = 1 + rand(4);
        for (let e = 0; e < edits; e++) {
          const key = `k${rand(30)}`;
          touched.add(key);
          const op = rand(10);
          if (op === 0) r.delete(key);
          else if (op === 1) r.put(key, { n: rand(50) }, "other/1");
          else r.put(key, { n: rand(50), tag: rand(4) === 0 ? "x" : "" }, "task/1");
        }
        if (rand(3) === 0) await r.flush(); // sealing changes heads and pending too
        await Promise.resolve();
        await Promise.resolve();
        const items = r.items<V>();
        expect(view(top.results()), `seed ${seed} round ${round}`).toEqual(view(oracle(items, qs)));
        expect(view(composed.results())).toEqual(view(oracle(oracle(items, qs), q2)));
        expect(view(all.results())).toEqual(view(oracle(items, qAll)));
        expect(view(keepsOrder.results())).toEqual(view(oracle(items, qs).filter((i) => i.value.tag === "")));
        expect(view(composedNoLimit.results())).toEqual(view(oracle(oracle(items, qAll), { where: (i) => i.value.n % 2 === 0 })));
        // Incremental: where ran only for what changed (the sealing of
        // earlier writes in this round's flush may report those keys too).
        if (touched.size && !(round % 3)) {
          expect(all.evaluated - evalBefore.all).toBeLessThanOrEqual(r.pendingCount + touched.size + 8);
        }
        // The downstream query saw at most what changed in its source's result.
        expect(composed.evaluated - evalBefore.composed).toBeLessThanOrEqual(Math.max(qs.limit! * 2, touched.size * 2));
        // Unchanged results keep their array (stable snapshots).
        if (view(before.top).join() === view(top.results()).join() && before.top.every((it, i) => it === top.results()[i])) {
          expect(top.results()).toBe(before.top);
        }
      }
      await r.flush();
      await Promise.resolve();
      expect(view(top.results())).toEqual(view(oracle(r.items<V>(), qs)));
      for (const s of [...stops, ...stopsLater]) s();
      expect(calls.top).toBeGreaterThan(0);
    }
  }, 60_000);

  it("reads only the changed keys of a large replica", async () => {
    const r = await replica();
    for (let i = 0; i < 500; i++) r.put(`k${String(i).padStart(5, "0")}`, { n: i }, "task/1");
    await r.flush();
    const q = r.query<V>({ where: (i) => i.value.n % 2 === 0, sort: (a, b) => b.value.n - a.value.n, limit: 10 });
    const seen: string[][] = [];
    const stop = q.live((items) => seen.push(items.map((i) => i.key)));
    const base = q.evaluated;
    expect(base).toBe(500); // the first run reads everything
    r.put("k00002", { n: 5000 }, "task/1");
    await Promise.resolve();
    expect(q.evaluated - base).toBe(1);
    expect(seen.at(-1)![0]).toBe("k00002");
    r.put("k00003", { n: 3 }, "task/1"); // an odd item that changes nothing the query keeps
    await Promise.resolve();
    const n = seen.length;
    await r.flush();
    await Promise.resolve();
    expect(seen.length).toBe(n + 1); // k00002's sealing shows (pending, heads); k00003 never does
    stop();
  }, 60_000);

  it("keeps the same array and item objects while nothing it shows changes", async () => {
    const r = await replica();
    r.put("a", { n: 1 }, "task/1");
    r.put("b", { n: 2 }, "task/1");
    await r.flush();
    const q = r.query<V>({ where: (i) => i.value.n < 10 });
    const calls: number[] = [];
    const stop = q.subscribe((keys) => calls.push(keys.size));
    const first = q.results();
    r.put("z", { n: 99 }, "task/1");
    await r.flush();
    await Promise.resolve();
    expect(q.results()).toBe(first);
    expect(calls).toEqual([]);
    r.put("b", { n: 3 }, "task/1");
    await Promise.resolve();
    const second = q.results();
    expect(second).not.toBe(first);
    expect(second[0]).toBe(first[0]); // a did not change
    stop();
  });

  it("is current when read detached, before anyone subscribes", async () => {
    const r = await replica();
    const q = r.query<V>({ sort: (a, b) => a.value.n - b.value.n });
    expect(q.results()).toEqual([]);
    r.put("a", { n: 2 }, "task/1");
    r.put("b", { n: 1 }, "task/1");
    expect(q.results().map((i) => i.key)).toEqual(["b", "a"]); // no microtask needed
    const q2 = q.query<V>({ sort: (a, b) => a.value.n - b.value.n, limit: 1 });
    expect(q2.results().map((i) => i.key)).toEqual(["b"]);
    expect(() => new LiveQuery(r, { limit: -1 })).toThrow(RangeError);
  });
});
