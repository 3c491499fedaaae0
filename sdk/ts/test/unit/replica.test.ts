import { describe, expect, it } from "vitest";
import { signCommit, type Commit } from "../../src/commit.js";
import { generateKeyPair, sessionId } from "../../src/crypto.js";
import { GroupSize, mergeAll, mergeCommit, verifyMerge } from "../../src/merge.js";
import { Replica, topological, type ReplicaContext } from "../../src/replica.js";
import { Registry, type Schema } from "../../src/schema.js";
import { MemoryStore } from "../../src/store.js";

const note: Schema = { ns: "note", version: 1, fields: { title: { type: "text", required: true }, tags: { type: "set" }, done: { type: "boolean", default: false } } };

async function setup(store = new MemoryStore()) {
  const kp = await generateKeyPair();
  const session = { id: await sessionId(kp.publicKeyBytes), privateKey: kp.privateKey };
  const registry = new Registry([note]);
  let t = 1_763_800_000_000;
  const events = { local: 0, gaps: 0 };
  const ctx: ReplicaContext = {
    registry,
    persistence: store,
    session: async () => session,
    onLocalCommit: () => events.local++,
    onGap: () => events.gaps++,
    ensureSchemas: async () => {},
    now: () => t++,
    log: () => {},
  };
  const r = new Replica("user.alice.notes", ctx);
  await r.load();
  return { r, ctx, store, events, registry };
}

async function otherWriter(repo: string) {
  const kp = await generateKeyPair();
  const id = await sessionId(kp.publicKeyBytes);
  return (key: string, parents: string[], data: Record<string, unknown>, ts: number): Promise<Commit> =>
    signCommit({ repo, key, parents, author: id, ts, schema: "note/1", data: data as never }, kp.privateKey);
}

describe("Replica", () => {
  it("reads its own writes at once and seals them in order", async () => {
    const { r, events } = await setup();
    r.put("n1", { title: "milk" }, "note/1");
    expect(r.get("n1")).toEqual({ title: "milk", done: false });
    expect(r.item("n1")?.pending).toBe(true);
    r.update("n1", (v) => ({ ...v, title: "oat milk" }));
    expect(r.get("n1")?.title).toBe("oat milk");
    await r.flush();
    const it1 = r.item("n1")!;
    expect(it1.heads).toHaveLength(1);
    expect(r.digest().count).toBe(2);
    const [first, second] = [...r.ids()].map((id) => r.get_(id)!);
    expect(second.parents).toEqual([first.id]);
    expect(r.unpushedCommits().map((c) => c.id)).toEqual([first.id, second.id]);
    expect(events.local).toBe(2);
    r.acknowledge([first.id, second.id]);
    expect(r.pendingCount).toBe(0);
  });

  it("refuses values that do not fit the schema, synchronously", async () => {
    const { r } = await setup();
    expect(() => r.put("n1", { title: 1 }, "note/1")).toThrow(/title/);
    expect(() => r.put("bad key!", { title: "x" }, "note/1")).toThrow(/key/);
    expect(r.keys()).toEqual([]);
  });

  it("shows the merge of concurrent heads and takes the gateway's merge commit", async () => {
    const { r, registry } = await setup();
    r.put("n1", { title: "the cat", tags: ["a"] }, "note/1");
    await r.flush();
    const base = r.item("n1")!.heads[0];
    const write = await otherWriter(r.name);
    r.put("n1", { title: "the dog", tags: ["a", "b"] }, "note/1");
    await r.flush();
    const theirs = await write("n1", [base], { title: "the cow", tags: ["a", "c"] }, 1_763_800_100_000);
    expect(await r.ingest([theirs])).toEqual({ added: 1, missing: 0 });
    const it = r.item("n1")!;
    expect(it.heads).toHaveLength(2);
    expect(it.value).toEqual({ title: "the dogow", tags: ["a", "b", "c"], done: false });

    const g = (id: string) => r.get_(id);
    const m = await mergeCommit(g, registry, r.name, "n1", it.heads);
    const forged = { ...m, data: { ...m.data, title: "forged" } };
    expect((await r.ingest([forged])).added).toBe(0);
    expect((await r.ingest([m])).added).toBe(1);
    expect(r.item("n1")!.heads).toEqual([m.id]);
    expect(r.get("n1")?.title).toBe("the dogow");
  });

  it("merges more heads than a commit may name in groups before writing on them", async () => {
    const { r, registry } = await setup();
    const write = await otherWriter(r.name);
    const roots: Commit[] = [];
    for (let i = 0; i < GroupSize + 44; i++) roots.push(await write("n1", [], { title: `root ${i}` }, 1_763_700_000_000 + i));
    expect(await r.ingest(roots)).toEqual({ added: roots.length, missing: 0 });
    const heads = r.item("n1")!.heads;
    expect(heads).toHaveLength(GroupSize + 44);

    r.put("n1", { title: "after" }, "note/1");
    await r.flush();
    const it = r.item("n1")!;
    expect(it.heads).toHaveLength(1);
    expect(it.value).toEqual({ title: "after", done: false });

    // The merges are merge.MergeAll's, pushed before the write, which has
    // the last of them as its one parent.
    const g = (id: string) => r.get_(id);
    const want = await mergeAll(g, registry, r.name, "n1", heads);
    expect(want).toHaveLength(3); // two groups, then their merge
    const queued = r.unpushedCommits();
    expect(queued.map((c) => c.id)).toEqual([...want.map((m) => m.id), it.heads[0]]);
    expect(queued[queued.length - 1].parents).toEqual([want[2].id]);
    for (const m of want) await verifyMerge(g, registry, r.get_(m.id)!);
  }, 120_000); // 300 signatures and their checks, on a loaded machine

  it("leaves out commits with missing parents and reports the gap", async () => {
    const { r, events } = await setup();
    const write = await otherWriter(r.name);
    const a = await write("k", [], { title: "a" }, 1);
    const b = await write("k", [a.id], { title: "b" }, 2);
    expect(await r.ingest([b])).toEqual({ added: 0, missing: 1 });
    expect(events.gaps).toBe(1);
    expect(await r.ingest([a, b])).toEqual({ added: 2, missing: 0 });
    expect(r.get("k")?.title).toBe("b");
  });

  it("runs live queries once per batch of changes", async () => {
    const { r } = await setup();
    const seen: string[][] = [];
    const stop = r.live({ where: (i) => !i.value.done }, (items) => seen.push(items.map((i) => i.key)));
    r.put("a", { title: "a" }, "note/1");
    r.put("b", { title: "b" }, "note/1");
    await Promise.resolve();
    r.put("a", { title: "a", done: true }, "note/1");
    await r.flush();
    stop();
    expect(seen[0]).toEqual([]);
    expect(seen[1]).toEqual(["a", "b"]);
    expect(seen.at(-1)).toEqual(["b"]);
    r.delete("b");
    expect(r.keys()).toEqual(["a"]);
    expect(r.item("b")?.deleted).toBe(true);
  });

  it("restores everything from its persistence", async () => {
    const store = new MemoryStore();
    const { r } = await setup(store);
    for (let i = 0; i < 10; i++) r.put(`k${i}`, { title: `v${i}` }, "note/1");
    r.put("k3", { title: "changed" }, "note/1");
    await r.flush();
    const { r: r2 } = await setup(store);
    expect(r2.items().map((i) => [i.key, i.value.title])).toEqual(r.items().map((i) => [i.key, i.value.title]));
    expect(r2.digest().hex()).toBe(r.digest().hex());
    expect(r2.unpushedCommits()).toHaveLength(11);
  });

  it("drops a refused commit with everything built on it, also after a reload", async () => {
    const store = new MemoryStore();
    const { r } = await setup(store);
    r.put("keep", { title: "kept" }, "note/1");
    await r.flush();
    r.acknowledge(r.unpushedCommits().map((c) => c.id));
    r.put("keep", { title: "refused" }, "note/1");
    r.put("new", { title: "refused too" }, "note/1");
    await r.flush();
    r.put("keep", { title: "built on the refused" }, "note/1");
    await r.flush();
    const [bad, other] = r.unpushedCommits();
    expect(r.reject([bad.id]).sort()).toHaveLength(2);
    expect(r.get("keep")?.title).toBe("kept");
    expect(r.get("new")?.title).toBe("refused too");
    expect(r.unpushedCommits().map((c) => c.id)).toEqual([other.id]);
    expect(r.digest().count).toBe(2);
    await r.flush();
    const { r: r2 } = await setup(store);
    expect(r2.get("keep")?.title).toBe("kept");
    expect(r2.digest().hex()).toBe(r.digest().hex());
  });

  it("ingests the same commit arriving twice at once only once", async () => {
    const { r } = await setup();
    const write = await otherWriter(r.name);
    const a = await write("k", [], { title: "a" }, 1);
    const results = await Promise.all([r.ingest([a]), r.ingest([a]), r.ingest([structuredClone(a)])]);
    expect(results.map((x) => x.added).sort()).toEqual([0, 0, 1]);
    expect(r.digest().count).toBe(1);
    expect([...r.ids()]).toEqual([a.id]);
  });

  it("ingests a commit that a batch holds twice only once", async () => {
    const { r } = await setup();
    const write = await otherWriter(r.name);
    const a = await write("k", [], { title: "a" }, 1);
    const b = await write("k", [a.id], { title: "b" }, 2);
    expect(await r.ingest([a, structuredClone(a), b, b])).toEqual({ added: 2, missing: 0 });
    expect(r.digest().count).toBe(2);
    expect([...r.ids()]).toEqual([a.id, b.id]);
    expect(r.item("k")?.heads).toEqual([b.id]);
  });

  it("loads commits stored in any order (IndexedDB returns them by id)", async () => {
    const store = new MemoryStore();
    const { r } = await setup(store);
    for (let i = 0; i < 30; i++) r.put(`k${i % 4}`, { title: `v${i}` }, "note/1");
    await r.flush();
    const saved = (await store.load(r.name)).commits;
    const shuffled = [...saved].sort((a, b) => (a.id < b.id ? -1 : 1));
    const sorted = topological(shuffled);
    const pos = new Map(sorted.map((c, i) => [c.id, i]));
    for (const c of sorted) for (const p of c.parents) expect(pos.get(p)!).toBeLessThan(pos.get(c.id)!);
    const other = new MemoryStore();
    await other.append(r.name, shuffled);
    const { r: r2 } = await setup(other);
    expect(r2.items().map((i) => [i.key, i.value.title, i.heads])).toEqual(r.items().map((i) => [i.key, i.value.title, i.heads]));
  });
});
