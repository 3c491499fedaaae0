import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { signCommit, type Commit } from "../../src/commit.js";
import { keyPairFromSeed, sessionId } from "../../src/crypto.js";
import { crc32c, decodeLog, encodeHeader, encodeRecords } from "../../src/logformat.js";

// storage/testdata/browser.log is this file's vector: a log written the way
// OPFSStore writes one, which storage's TestLog_BrowserVector opens with Go's
// storage package. storage/testdata/go.log is the other way: written by
// Go's storage package (TestLog_GoVector, -update), read here.
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const browserLog = here("../../../../storage/testdata/browser.log");
const goLog = here("../../../../storage/testdata/go.log");

export async function vectorCommits(): Promise<Commit[]> {
  const kp = await keyPairFromSeed(new Uint8Array(32).fill(7));
  const author = await sessionId(kp.publicKeyBytes);
  const repo = "user.alice.todos";
  const sign = (c: Omit<Commit, "id" | "sig" | "repo" | "author">) => signCommit({ repo, author, ...c } as never, kp.privateKey);
  const a1 = await sign({ key: "t1", parents: [], ts: 1_763_800_000_000, schema: "any/1", data: { title: "Buy milk", done: false } });
  const a2 = await sign({ key: "t1", parents: [a1.id], ts: 1_763_800_000_001, schema: "any/1", delta: { base: a1.id, ops: [{ op: "set", field: "done", value: true }] } });
  const b1 = await sign({ key: "t2", parents: [], ts: 1_763_800_000_002, schema: "any/1", data: { title: "Éclairs ☕" } });
  const b2 = await sign({ key: "t2", parents: [b1.id], ts: 1_763_800_000_003, schema: "any/1", data: { title: "Éclairs ☕", isDeleted: true } });
  return [a1, a2, b1, b2];
}

describe("logformat", () => {
  it("computes CRC-32C", () => {
    // RFC 3720 B.4: 32 bytes of zeros, and "123456789" (the check value).
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new TextEncoder().encode("123456789"))).toBe(0xe3069283);
  });

  it("writes the vector byte for byte as storage/testdata/browser.log holds it, and reads it back", async () => {
    const cs = await vectorCommits();
    const id = Uint8Array.from({ length: 16 }, (_, i) => i);
    const head = encodeHeader(id);
    // Two writes, as two appends of OPFSStore would make them.
    const w1 = encodeRecords(cs.slice(0, 2), 1n, 32, () => false);
    const w2 = encodeRecords(cs.slice(2), 3n, 32 + w1.length, (c) => c.id === cs[3].id);
    const img = new Uint8Array(head.length + w1.length + w2.length);
    img.set(head, 0);
    img.set(w1, head.length);
    img.set(w2, head.length + w1.length);
    if (process.env.GOAT_UPDATE_VECTORS) writeFileSync(browserLog, img);
    expect(Buffer.from(img).equals(readFileSync(browserLog))).toBe(true);
    const log = await decodeLog(img);
    expect(log.logId).toBe("000102030405060708090a0b0c0d0e0f");
    expect(log.commits.map((c) => c.id)).toEqual(cs.map((c) => c.id));
    expect(log.lastSeq).toBe(4n);
    expect(log.goodLength).toBe(img.length);
  });

  it("cuts a torn tail and refuses damage before intact records", async () => {
    const img = new Uint8Array(readFileSync(browserLog));
    const torn = await decodeLog(img.subarray(0, img.length - 5));
    expect(torn.commits).toHaveLength(3);
    const damaged = img.slice();
    damaged[32 + 20] ^= 0xff; // inside the first record
    await expect(decodeLog(damaged)).rejects.toThrow(/damaged/);
  });

  it("reads a log written by Go's storage package", async () => {
    const log = await decodeLog(new Uint8Array(readFileSync(goLog)));
    const cs = await vectorCommits();
    expect(log.commits.map((c) => c.id)).toEqual(cs.map((c) => c.id));
    expect(log.goodLength).toBe(readFileSync(goLog).length);
  });
});
