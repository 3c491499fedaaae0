// Schema branches, rollback and time travel (DESIGN section 2, issue 21)
// against a real goat-gateway binary: an old build (knows v1) and a new
// build (knows v1 and v2) edit the same items; the gateway's REST reads
// agree with each; retiring v2 rolls every reader back and republishing
// brings it back; history, at and asOf agree with the gateway's ?at= and
// ?asOf=.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterEach, describe, expect, it, inject } from "vitest";
import { canonicalize, GoatError, type Goat, type JSONObject, type Schema } from "../../src/index.js";
import { client, uniqueRepo, waitFor } from "./helpers.js";

const open: Goat[] = [];
async function track(g: Promise<Goat>): Promise<Goat> {
  const c = await g;
  open.push(c);
  return c;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((g) => g.close()));
});

let nsN = 0;
/** schemas returns a fresh namespace's v1 and v2 (title becomes name, owner added with a default, n becomes a string). */
function schemas(): [Schema, Schema] {
  const ns = `tsbranch${process.pid}x${Date.now().toString(36)}x${nsN++}`;
  return [
    { ns, version: 1, fields: { title: { type: "string" }, n: { type: "number" }, tags: { type: "set" } } },
    {
      ns,
      version: 2,
      fields: { name: { type: "string" }, owner: { type: "string" }, n: { type: "string" }, tags: { type: "set" } },
      upgrade: [
        { op: "rename", from: "title", to: "name" },
        { op: "add", field: "owner", default: "nobody" },
        { op: "convert", field: "n", conversion: "toString" },
      ],
    },
  ];
}

async function rest(method: string, path: string, token = inject("gatewayToken"), body?: unknown): Promise<{ status: number; body: any }> {
  const r = await fetch(inject("gatewayURL") + path, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: r.status, body: await r.json() };
}

async function adminToken(): Promise<string> {
  const { stdout } = await promisify(execFile)(inject("gatewayBin"), ["token", "--data-dir", inject("gatewayDataDir"), "--sub", "ops", "--role", "admin"]);
  return stdout.trim();
}

const sorted = (v: unknown) => canonicalize(v as never);

/** rolling runs a rolling upgrade of rounds rounds and returns both replicas, in sync. */
async function rolling(rounds: number) {
  const [v1, v2] = schemas();
  const repo = uniqueRepo("tsbranch");
  const a = await track(client({ schemas: [v1] }));
  const b = await track(client({ schemas: [v1, v2] }));
  await a.publishSchema(v1);
  await b.publishSchema(v2);
  const ra = await a.repo(repo), rb = await b.repo(repo);
  const keys = ["k0", "k1"];
  for (const k of keys) ra.put(k, { title: `item ${k}`, n: 0, tags: [] }, `${v1.ns}/1`);
  await a.synced(repo);
  await waitFor("B clones", () => keys.every((k) => rb.get(k)));
  for (let i = 0; i < rounds; i++) {
    for (const k of keys) {
      ra.update(k, (v) => ({ ...v, n: i + 1, tags: [...(v.tags as string[]), `a${String(i).padStart(2, "0")}`].sort() }));
      rb.update(k, (v) => ({ ...v, owner: `b${i}`, tags: [...(v.tags as string[]), `b${String(i).padStart(2, "0")}`].sort() }));
      const it = ra.item(k)!;
      expect(it.schema).toBe(`${v1.ns}/1`);
      expect(it.value.owner).toBeUndefined();
      expect(it.value.name).toBeUndefined();
    }
    if (i % 2 === 0) await Promise.all([a.synced(repo), b.synced(repo)]);
  }
  await Promise.all([a.synced(repo), b.synced(repo)]);
  await waitFor("both replicas hold every commit", async () => {
    const info = await rest("GET", `/v1/repos/${repo}`);
    return ra.digest().hex() === info.body.digest && rb.digest().hex() === info.body.digest;
  });
  return { a, b, ra, rb, repo, keys, v1, v2 };
}

describe("schema branches against a real gateway", () => {
  it("rolling upgrade: the old build sees only its branch, the new one every edit, REST agrees with each", async () => {
    const rounds = 6;
    const { ra, rb, repo, keys, v1, v2 } = await rolling(rounds);
    const aTags = Array.from({ length: rounds }, (_, i) => `a${String(i).padStart(2, "0")}`);
    const allTags = [...aTags, ...aTags.map((t) => "b" + t.slice(1))].sort();
    for (const k of keys) {
      const ia = ra.item(k)!, ib = rb.item(k)!;
      expect(ia.schema).toBe(`${v1.ns}/1`);
      expect(ia.value.tags).toEqual(aTags);
      expect(ib.schema).toBe(`${v2.ns}/2`);
      expect(ib.value.tags).toEqual(allTags);
      expect(typeof ib.value.n).toBe("string");
      expect(String(ib.value.owner)).toMatch(/^b/);
      const old = await rest("GET", `/v1/repos/${repo}/items/${k}?schema=${v1.ns}/1`);
      expect(old.body.schema).toBe(ia.schema);
      expect(sorted(old.body.data)).toBe(sorted(ia.value));
      const newest = await rest("GET", `/v1/repos/${repo}/items/${k}`);
      expect(newest.body.schema).toBe(ib.schema);
      expect(sorted(newest.body.data)).toBe(sorted(ib.value));
    }
  });

  it("rollback: retiring v2 shows every reader the v1 branch, refuses v2 writes, and republishing brings v2 back", async () => {
    const { a, b, ra, rb, repo, keys, v1, v2 } = await rolling(3);
    const before = Object.fromEntries(keys.map((k) => [k, rb.get(k)]));
    const admin = await adminToken();
    expect((await rest("DELETE", `/v1/schemas/${v2.ns}/2`, admin)).status).toBe(200);
    await b.refreshSchemas();
    for (const k of keys) {
      const ib = rb.item(k)!;
      expect(ib.schema).toBe(`${v1.ns}/1`);
      expect(sorted(ib.value)).toBe(sorted(ra.get(k)));
      const r = await rest("GET", `/v1/repos/${repo}/items/${k}`);
      expect(r.body.schema).toBe(`${v1.ns}/1`);
      expect(sorted(r.body.data)).toBe(sorted(ra.get(k)));
    }
    let refused: unknown;
    try {
      rb.put("k0", { name: "x" }, `${v2.ns}/2`);
    } catch (e) {
      refused = e;
    }
    expect(refused).toBeInstanceOf(GoatError);
    expect((refused as GoatError).message).toMatch(/retired/);
    const r = await rest("PUT", `/v1/repos/${repo}/items/k0`, undefined, { schema: `${v2.ns}/2`, data: { name: "x" } });
    expect(r.status).toBe(422);
    expect(r.body.type).toBe("https://goat-gateway.dev/problems/schema-retired");

    expect((await rest("PUT", `/v1/schemas/${v2.ns}/2`, undefined, { fields: v2.fields, upgrade: v2.upgrade })).status).toBe(201);
    await b.refreshSchemas();
    for (const k of keys) {
      const ib = rb.item(k)!;
      expect(ib.schema).toBe(`${v2.ns}/2`);
      expect(sorted(ib.value)).toBe(sorted(before[k]));
    }
    void a;
  });

  it("time travel: history, at and asOf agree with the gateway", async () => {
    const { rb, repo } = await rolling(4);
    const hist = rb.history("k1");
    expect(hist.length).toBeGreaterThanOrEqual(8);
    expect(hist.some((v) => v.commit.author === "merge")).toBe(true);
    for (const v of hist) {
      const at = await rest("GET", `/v1/repos/${repo}/items/k1?at=${v.commit.id}`);
      expect(at.body.schema).toBe(v.schema);
      expect(sorted(at.body.data)).toBe(sorted(v.value));
      expect(sorted(rb.at("k1", v.commit.id)!.value)).toBe(sorted(v.value));
      const asOf = await rest("GET", `/v1/repos/${repo}/items/k1?asOf=${v.commit.ts}`);
      const mine = (await rb.asOf("k1", v.commit.ts))!;
      expect(mine.heads).toEqual([asOf.body.head]);
      expect(sorted(mine.value)).toBe(sorted(asOf.body.data as JSONObject));
    }
    let n = 0;
    const seen = new Set<string>();
    for (const v of rb.playback()) {
      for (const p of v.commit.parents) expect(seen.has(p)).toBe(true);
      seen.add(v.commit.id);
      n++;
    }
    expect(n).toBe(rb.digest().count);
  });
});
