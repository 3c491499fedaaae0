// The client half of reconciliation (sync.ts) against a port of the Go
// server's Answer (sync/round.go) in memory, checked against an oracle:
// after a heal both sides hold exactly the union of what they held. The
// server here builds filters with a high false-positive rate on purpose,
// so that rounds where the filter hides commits (and children arrive before
// their parents) are exercised.
import { describe, expect, it } from "vitest";
import { buildFilter, Filter, rate } from "../../src/bloom.js";
import { seal, type Commit } from "../../src/commit.js";
import { Digest } from "../../src/digest.js";
import type { SyncRequest, SyncResponse } from "../../src/http.js";
import { clone, digestFrom, reconcile, type Local, type Transport } from "../../src/sync.js";

class MemSet implements Local {
  private byId = new Map<string, Commit>();
  private order: string[] = [];
  private d = new Digest();
  digest() {
    return this.d;
  }
  ids() {
    return this.order;
  }
  get(id: string) {
    return this.byId.get(id);
  }
  has(id: string) {
    return this.byId.has(id);
  }
  async ingest(cs: unknown[]) {
    let added = 0, missing = 0;
    for (const x of cs as Commit[]) {
      if (this.byId.has(x.id)) continue;
      if (!x.parents.every((p) => this.byId.has(p))) {
        missing++;
        continue;
      }
      this.byId.set(x.id, x);
      this.order.push(x.id);
      this.d.add(x.id);
      added++;
    }
    return { added, missing };
  }
}

/** answer is sync.Server.Answer, with the server's filters at rate serverRate. */
function answer(set: MemSet, req: SyncRequest, serverRate: number, limit = 1000): SyncResponse {
  const sd = set.digest();
  const resp: SyncResponse = { count: sd.count, digest: sd.hex(), inSync: false, commits: [], more: false };
  if (sd.equals(req.count, req.digest)) return { ...resp, inSync: true };
  if (!req.filter && req.count > 0) return { ...resp, filter: buildFilter(set.ids(), sd.count, serverRate).toJSON() };
  const f = req.filter ? Filter.fromJSON(req.filter) : undefined;
  const lim = Math.min(limit, req.limit ?? 500);
  const absent = new Digest();
  for (const id of set.ids()) {
    if (f?.test(id)) continue;
    absent.add(id);
    if (resp.commits.length < lim) resp.commits.push(set.get(id)!);
  }
  resp.more = resp.commits.length < absent.count;
  // What the client will hold once it ingests everything absent from its filter.
  const after = digestFrom(req.count + absent.count, req.digest);
  for (let i = 0; i < 32; i++) after.xor[i] ^= absent.xor[i];
  if (!after.equals(sd.count, sd.hex())) resp.filter = buildFilter(set.ids(), sd.count, serverRate).toJSON();
  return resp;
}

function transport(server: MemSet, serverRate: number, limit?: number): Transport & { rounds: number } {
  const t = {
    rounds: 0,
    async log(): Promise<never> {
      throw new Error("no log here");
    },
    async sync(_repo: string, req: SyncRequest): Promise<SyncResponse> {
      t.rounds++;
      // Round trip through JSON, as on the wire.
      const r = JSON.parse(JSON.stringify(req)) as SyncRequest;
      await server.ingest(r.commits ?? []);
      return JSON.parse(JSON.stringify(answer(server, r, serverRate, limit)));
    },
  };
  return t;
}

let seed = 1;
const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n);

/** chains makes n commits on a few keys, each key a chain, in topological order. */
async function chains(n: number, tag: string, keys = 7): Promise<Commit[]> {
  const heads = new Map<string, string>();
  const out: Commit[] = [];
  for (let i = 0; i < n; i++) {
    const key = `${tag}${rnd(keys)}`;
    const p = heads.get(key);
    const c = await seal({ repo: "r", key, parents: p ? [p] : [], author: "s_test", ts: i, schema: "any/1", data: { i, tag } });
    heads.set(key, c.id);
    out.push(c);
  }
  return out;
}

describe("reconcile against a port of Server.Answer", () => {
  const cases: [string, number, number, number, number][] = [
    // name, shared, client extras, server extras, server false-positive rate
    ["in sync", 50, 0, 0, 0.01],
    ["client ahead", 50, 40, 0, 0.01],
    ["server ahead", 50, 0, 40, 0.01],
    ["both, leaky server filters", 30, 60, 60, 0.5],
    ["both, past one page", 10, 1200, 30, 0.01],
    ["empty client", 0, 0, 80, 0.3],
  ];
  for (const [name, shared, cx, sx, fp] of cases) {
    it(name, async () => {
      const base = await chains(shared, "s");
      const client = new MemSet(), server = new MemSet();
      await client.ingest(base);
      await server.ingest(base);
      const mine = await chains(cx, "c"), theirs = await chains(sx, "t");
      await client.ingest(mine);
      await server.ingest(theirs);
      const t = transport(server, fp);
      await reconcile(t, client, "r");
      const union = new Set([...base, ...mine, ...theirs].map((c) => c.id));
      expect(new Set(client.ids())).toEqual(union);
      expect(new Set(server.ids())).toEqual(union);
      expect(t.rounds).toBeLessThan(40);
      if (cx + sx === 0) expect(t.rounds).toBe(1);
    });
  }

  it("clone falls back to a heal when the log refuses the cursor", async () => {
    const server = new MemSet();
    await server.ingest(await chains(20, "x"));
    const t = transport(server, 0.01);
    t.log = async () => {
      const { GoatError } = await import("../../src/errors.js");
      throw new GoatError("must-reconcile", "cursor of another log");
    };
    const local = new MemSet();
    const st = await clone(t, local, "r", "stale-cursor");
    expect(st.healed).toBe(true);
    expect(st.cursor).toBe("");
    expect(local.digest().hex()).toBe(server.digest().hex());
  });

  it("sizes client filters by the policy", () => {
    expect(rate(0, 1000)).toBe(0.1);
    expect(rate(5000, 1000)).toBeCloseTo(0.0001);
  });
});
