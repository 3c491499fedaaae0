import { appendFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { seal } from "../../src/commit.js";
import { problemCode } from "../../src/errors.js";
import { FileStore } from "../../src/node.js";

const dir = mkdtempSync(join(tmpdir(), "goat-store-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("FileStore", () => {
  it("round-trips commits, meta and the session, and drops a torn last line", async () => {
    const s = new FileStore(dir);
    const a = await seal({ repo: "r", key: "k", parents: [], author: "s_x", ts: 1, schema: "any/1", data: { a: 1 } });
    const b = await seal({ repo: "r", key: "k", parents: [a.id], author: "s_x", ts: 2, schema: "any/1", data: { a: 2 } });
    await s.append("r", [a]);
    await s.append("r", [b]);
    await s.saveMeta("r", { cursor: "c1", unpushed: [b.id] });
    await s.saveSession({ id: "s_x", publicKey: "pk", seed: "00".repeat(32), expires: 5, registeredAt: "" });
    appendFileSync(join(dir, "r.commits"), '{"author":"s_x","da'); // a crash mid-append
    const got = await new FileStore(dir).load("r");
    expect(got.commits.map((c) => c.id)).toEqual([a.id, b.id]);
    expect(got.meta).toEqual({ cursor: "c1", unpushed: [b.id] });
    expect((await s.loadSession())?.seed).toBe("00".repeat(32));
    expect(await new FileStore(dir).load("empty")).toEqual({ commits: [], meta: { cursor: "", unpushed: [] } });
  });
});

describe("problemCode", () => {
  it.each([
    ["https://goat-gateway.dev/problems/must-reconcile", 409, "must-reconcile"],
    ["https://goat-gateway.dev/problems/conflict", 409, "conflict"],
    ["https://goat-gateway.dev/problems/schema-violation", 422, "schema"],
    ["https://goat-gateway.dev/problems/invalid-request", 400, "invalid"],
    [undefined, 404, "not-found"],
    [undefined, 502, "unavailable"],
    [undefined, 500, "internal"],
  ])("%s %d -> %s", (type, status, want) => {
    expect(problemCode(type, status)).toBe(want);
  });
});
