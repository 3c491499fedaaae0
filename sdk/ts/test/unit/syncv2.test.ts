import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { fromHex } from "../../src/bytes.js";
import type { Commit } from "../../src/commit.js";
import { Digest } from "../../src/digest.js";
import type { SyncRequest, SyncResponse } from "../../src/http.js";
import { ClientV2, decodeIDs, encodeSums, Layout, partSums, type LocalV2 } from "../../src/syncv2.js";
import { load } from "./vectors.js";


/** A replica like the Go tests' memSet: ghosts (ids with ts, no commit) and commits, ingesting only commits whose parents it holds. */
class MemLocal implements LocalV2 {
  order: [string, number][] = [];
  commits = new Map<string, Commit>();
  d = new Digest();
  constructor(ghosts: { id: string; ts: number }[], own: Commit[]) {
    for (const g of ghosts) this.addID(g.id, g.ts);
    for (const c of own) this.add(c);
  }
  private addID(id: string, ts: number): void {
    this.order.push([id, ts]);
    this.d.add(id);
  }
  add(c: Commit): void {
    this.addID(c.id, c.ts);
    this.commits.set(c.id, c);
  }
  has(id: string): boolean {
    return this.commits.has(id);
  }
  ingest(cs: Commit[]): void {
    for (const c of cs) if (!this.has(c.id) && c.parents.every((p) => this.has(p))) this.add(c);
  }
  digest(): Digest {
    return this.d;
  }
  *ids(): Iterable<string> {
    for (const [id] of this.order) yield id;
  }
  idsTS(): Iterable<[string, number]> {
    return this.order;
  }
  get(id: string): Commit | undefined {
    return this.commits.get(id);
  }
}

for (const [version, file] of [
  [2, "sync/testdata/sync_v2_vectors.json"],
  [3, "sync/testdata/sync_v3_vectors.json"],
] as const) {
  const doc = load(file);

  describe(`${file} layouts`, () => {
    for (const v of doc.layouts) {
      it(`${v.name}: partition indexes and sums`, () => {
        const l = new Layout(v.cuts, v.bits);
        if (version === 3) {
          expect(Layout.fromJSON({ gaps: v.gaps, bits: v.bits }).cuts).toEqual(v.cuts);
          expect(l.toJSON(3)).toEqual({ gaps: v.gaps, bits: v.bits });
        }
        expect(l.parts).toBe(v.parts);
        for (const e of v.entries) {
          expect(l.index(e.id, e.ts)).toBe(e.part);
          expect(decodeIDs(e.short)).toEqual([e.id.slice(0, 16)]);
        }
        const local = new MemLocal(v.entries.map((e: { id: string; ts: number }) => ({ id: e.id, ts: e.ts })), []);
        expect(encodeSums(partSums(local, l))).toBe(v.sums);
      });
    }
  });

  describe(`${file} heals`, () => {
    for (const h of doc.heals) {
      it(`${h.name}: every request byte for byte`, () => {
        const local = new MemLocal(doc.ghosts, h.client.commits);
        const reqs: SyncRequest[] = h.rounds.map((r: { request: SyncRequest }) => r.request);
        const resps: SyncResponse[] = h.rounds.map((r: { response: SyncResponse }) => r.response);
        let salt: Uint8Array = new Uint8Array(8);
        const c = new ClientV2({ limit: h.limit, pushLimit: h.pushLimit, misses: h.misses || undefined, salt: () => salt, version });
        let req = c.start(local);
        for (let i = 0; i < reqs.length; i++) {
          expect(JSON.stringify(req), `request ${i + 1}`).toBe(JSON.stringify(reqs[i]));
          local.ingest(resps[i].commits);
          // The salt of the next filter is randomness, taken from the record.
          if (i + 1 < reqs.length && reqs[i + 1].filter) salt = fromHex(reqs[i + 1].filter!.salt, 8);
          const next = c.next(local, resps[i]);
          if (i + 1 === reqs.length) {
            expect(next.done, "done after the last response").toBe(true);
            break;
          }
          if (next.done || !("req" in next)) throw new Error(`round ${i + 1}: stopped early`);
          req = next.req;
        }
        expect(local.digest().equals(resps[resps.length - 1].count, resps[resps.length - 1].digest)).toBe(true);
      });
    }
  });
}

describe("tools/syncv2/heal.mjs", () => {
  // A child process of node, with BigInt hashing: seconds on a loaded box.
  it("an independent client written from docs/sync.md reproduces both vector files", { timeout: 60_000 }, () => {
    const script = fileURLToPath(new URL("../../../../tools/syncv2/heal.mjs", import.meta.url));
    const out = execFileSync(process.execPath, [script], { encoding: "utf8" });
    expect(out).toContain("sync_v2_vectors.json: layouts: 3 ok");
    expect(out).toContain("sync_v3_vectors.json: layouts: 3 ok");
    expect(out.match(/requests reproduced/g)?.length).toBe(18);
  });
});
