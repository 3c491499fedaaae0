// Issue 18: every peer verifies every commit, and any one client restores
// a gateway that lost its data.
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, inject, test } from "vitest";
import { toBase64url } from "../../src/bytes.js";
import { Goat } from "../../src/client.js";
import { signCommit, type Commit } from "../../src/commit.js";
import { generateKeyPair, sessionId, sign } from "../../src/crypto.js";
import { FileStore } from "../../src/node.js";
import { recordSigningBytes, type SessionRecord } from "../../src/trust.js";
import { startGateway, type Gateway } from "../setup/gateway.js";
import { client, uniqueRepo, waitFor } from "./helpers.js";

const run = promisify(execFile);

describe("verification", () => {
  // A man in the middle (a compromised proxy or gateway) adds to the first
  // log page a commit with a forged signature, and a commit (with a child)
  // by a session whose record is not signed by the gateway's root key.
  test("quarantines a forged commit and a commit of an unverifiable session", async () => {
    const repo = uniqueRepo("trust");
    const writer = await client();
    const w = await writer.repo(repo);
    w.put("genuine", { ok: true });
    await waitFor("the genuine item to reach the gateway", () => w.pendingCount === 0);
    const alice = writer.sessionId!;

    const now = Date.now();
    const stranger = await generateKeyPair();
    const forged = await signCommit({ repo, key: "forged", parents: [], author: alice, ts: now, schema: "any/1", data: { evil: true } }, stranger.privateKey);
    const otherRoot = await generateKeyPair();
    const evilKey = await generateKeyPair();
    const rec: SessionRecord = {
      id: await sessionId(evilKey.publicKeyBytes),
      owner: "mallory",
      roles: [],
      publicKey: toBase64url(evilKey.publicKeyBytes),
      expires: now + 3600_000,
      rootSig: "",
    };
    rec.rootSig = toBase64url(await sign(otherRoot.privateKey, recordSigningBytes(rec)));
    const evil = await signCommit({ repo, key: "evil", parents: [], author: rec.id, ts: now, schema: "any/1", data: { evil: true } }, evilKey.privateKey);
    const child = await signCommit({ repo, key: "evil", parents: [evil.id], author: rec.id, ts: now + 1, schema: "any/1", data: { evil: 2 } }, evilKey.privateKey);

    const injected: Commit[] = [forged, evil, child];
    const mitm: typeof fetch = async (input, init) => {
      const req = new Request(input as RequestInfo, init);
      const url = new URL(req.url);
      if (url.pathname === `/v1/sessions/${rec.id}`) return new Response(JSON.stringify(rec), { headers: { "Content-Type": "application/json" } });
      const resp = await fetch(req);
      if (!url.pathname.endsWith("/log") || url.searchParams.get("after") || !resp.ok) return resp;
      const page = (await resp.json()) as { commits: unknown[] };
      page.commits.push(...injected);
      return new Response(JSON.stringify(page), { status: 200, headers: { "Content-Type": "application/json" } });
    };
    const bob = await client({ fetch: mitm });
    const b = await bob.repo(repo);
    await waitFor("three quarantined commits", () => bob.quarantined.count === 3);
    expect([...bob.quarantined.ids].sort()).toEqual([forged.id, evil.id, child.id].sort());
    const reasons = new Map(bob.quarantined.commits.map((q) => [q.id, q.reason]));
    expect(reasons.get(forged.id)).toMatch(/bad signature/);
    expect(reasons.get(evil.id)).toMatch(/rootSig/);
    expect(reasons.get(child.id)).toMatch(/descends/);
    await waitFor("the genuine item", () => b.get("genuine") !== undefined);
    expect(b.get("forged")).toBeUndefined();
    expect(b.get("evil")).toBeUndefined();
    expect(b.keys()).toEqual(["genuine"]);
    await bob.close();
    await writer.close();
  });
});

// The must-show restore, across both SDKs and REST: two Go SDK clients
// (test/testdata/gosdkpeer with a directory), one TypeScript client (a
// FileStore) and REST writes by a third user (signed by the gateway's
// custodial session for her). The gateway then loses everything but its
// keys directory; after the restart only ONE client reconnects (first a Go
// client, then, after another wipe, the TypeScript client), and the
// gateway ends with every repository's count and digest as before and
// every item reading as before over REST; the others reconnect after
// without conflict.
describe("restore", () => {
  const bin = inject("gatewayBin");
  const tmp = mkdtempSync(join(tmpdir(), "goat-restore-"));
  const dataDir = join(tmp, "data");
  let gw: Gateway;
  afterAll(async () => {
    gw?.proc.kill("SIGTERM");
    if (gw) await new Promise((r) => gw.proc.once("exit", r));
    rmSync(tmp, { recursive: true, force: true });
  });

  const stop = async () => {
    gw.proc.kill("SIGTERM");
    await new Promise((r) => gw.proc.once("exit", r));
  };
  const wipe = () => {
    for (const e of readdirSync(dataDir)) if (e !== "keys") rmSync(join(dataDir, e), { recursive: true, force: true });
  };
  const token = async (sub: string) => (await run(bin, ["token", "--data-dir", dataDir, "--sub", sub])).stdout.trim();
  const rest = async (method: string, path: string, tok: string, body?: unknown) => {
    const r = await fetch(gw.url + path, {
      method,
      headers: { Authorization: `Bearer ${tok}`, ...(body ? { "Content-Type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: r.status, body: r.status === 204 ? undefined : await r.json() };
  };
  const state = async (tok: string, repo: string) => {
    const r = await rest("GET", `/v1/repos/${repo}`, tok);
    return r.status === 200 ? `${r.body.count} ${r.body.digest}` : `status ${r.status}`;
  };
  const items = async (tok: string, repo: string) => (await rest("GET", `/v1/repos/${repo}/items?limit=1000`, tok)).body.items;
  const goSDK = async (tok: string, dir: string, repo: string, puts: Record<string, unknown> = {}) => {
    const args = ["-url", gw.url, "-token", tok, "-repo", repo, "-dir", dir];
    for (const [k, v] of Object.entries(puts)) args.push("-put", `${k}=${JSON.stringify(v)}`);
    try {
      return JSON.parse((await run(inject("goSDKPeer"), args)).stdout) as { count: number; digest: string; quarantined: number };
    } catch (e) {
      throw new Error(`Go SDK peer failed: ${(e as { stderr?: string }).stderr ?? e}`);
    }
  };

  test("any one client restores a wiped gateway, Go then TypeScript", async () => {
    gw = await startGateway(bin, dataDir, "tester");
    const listen = new URL(gw.url).host;
    const [alice, bob, carol, dave] = await Promise.all(["alice", "bob", "carol", "dave"].map(token));
    const repos = ["team.one", "team.two"];
    const dirA = join(tmp, "go-alice"), dirB = join(tmp, "go-bob"), dirT = join(tmp, "ts-dave");
    const openTS = async () => {
      const g = await Goat.open({ url: gw.url, token: dave, persistence: new FileStore(dirT) });
      const rs = await Promise.all(repos.map((r) => g.repo(r)));
      return { g, rs };
    };

    // Before: writes from everyone.
    for (const repo of repos) {
      await goSDK(alice, dirA, repo, { a1: { by: "alice" }, a2: { by: "alice", n: 2 }, shared: { a: true } });
      await goSDK(bob, dirB, repo, { b1: { by: "bob" }, shared: { b: true } });
      for (const k of ["c1", "c2"]) expect((await rest("PUT", `/v1/repos/${repo}/items/${k}`, carol, { schema: "any/1", data: { by: "carol", k } })).status).toBeLessThan(300);
      expect((await rest("DELETE", `/v1/repos/${repo}/items/c2`, carol)).status).toBeLessThan(300);
    }
    let ts = await openTS();
    for (const r of ts.rs) {
      r.put("d1", { by: "dave" });
      r.put("shared", { d: true });
    }
    const before = new Map<string, { state: string; items: unknown }>();
    for (const [i, repo] of repos.entries()) {
      await waitFor(`the TS client to push and hold all of ${repo}`, async () => ts.rs[i].pendingCount === 0 && `${ts.rs[i].digest().count} ${ts.rs[i].digest().hex()}` === (await state(carol, repo)));
      // Both Go clients hold everything too.
      for (const [tok, dir] of [[alice, dirA], [bob, dirB]]) {
        const s = await goSDK(tok, dir, repo);
        expect(`${s.count} ${s.digest}`).toBe(await state(carol, repo));
      }
      before.set(repo, { state: await state(carol, repo), items: await items(carol, repo) });
    }
    await ts.g.close();

    // 1. Only a Go client reconnects.
    await stop();
    wipe();
    gw = await startGateway(bin, dataDir, "tester", listen);
    expect(await state(carol, repos[0])).toBe("status 404");
    for (const repo of repos) {
      const s = await goSDK(alice, dirA, repo);
      expect(s.quarantined).toBe(0);
      expect(await state(carol, repo)).toBe(before.get(repo)!.state);
      expect(await items(carol, repo)).toEqual(before.get(repo)!.items);
    }
    // The others later, without conflict.
    for (const repo of repos) expect(`${(await goSDK(bob, dirB, repo)).count}`).toBe(before.get(repo)!.state.split(" ")[0]);
    ts = await openTS();
    for (const [i, repo] of repos.entries()) {
      await waitFor(`the TS client back in sync on ${repo}`, async () => `${ts.rs[i].digest().count} ${ts.rs[i].digest().hex()}` === (await state(carol, repo)));
      expect(await state(carol, repo)).toBe(before.get(repo)!.state);
    }
    expect(ts.g.quarantined.count).toBe(0);
    await ts.g.close();

    // 2. Only the TypeScript client reconnects.
    await stop();
    wipe();
    gw = await startGateway(bin, dataDir, "tester", listen);
    ts = await openTS();
    for (const repo of repos) {
      await waitFor(`the TS client to restore ${repo}`, async () => (await state(carol, repo)) === before.get(repo)!.state);
      expect(await items(carol, repo)).toEqual(before.get(repo)!.items);
    }
    expect(ts.g.quarantined.count).toBe(0);
    await ts.g.close();
    for (const [tok, dir] of [[alice, dirA], [bob, dirB]]) {
      for (const repo of repos) {
        const s = await goSDK(tok, dir, repo);
        expect(`${s.count} ${s.digest}`).toBe(before.get(repo)!.state);
      }
    }
  });
});
