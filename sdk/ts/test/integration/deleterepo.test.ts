// Deleting a repository (DELETE /v1/repos/{repo}, role admin) through the
// SDK's GatewayClient against a real goat-gateway binary.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it, inject } from "vitest";
import { GatewayClient, GoatError } from "../../src/index.js";
import { client, switchableFetch, uniqueRepo, waitFor } from "./helpers.js";

async function adminToken(): Promise<string> {
  const { stdout } = await promisify(execFile)(inject("gatewayBin"), ["token", "--data-dir", inject("gatewayDataDir"), "--sub", "ops", "--role", "admin"]);
  return stdout.trim();
}

async function code(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    expect(e).toBeInstanceOf(GoatError);
    return (e as GoatError).code;
  }
}

describe("GatewayClient.deleteRepo", () => {
  it("deletes for an admin only, and the name starts empty again", async () => {
    const repo = uniqueRepo("tsdelete");
    const user = new GatewayClient({ url: inject("gatewayURL"), token: inject("gatewayToken") });
    const admin = new GatewayClient({ url: inject("gatewayURL"), token: await adminToken() });
    await user.createRepo(repo);
    const put = await fetch(`${inject("gatewayURL")}/v1/repos/${repo}/items/k`, {
      method: "PUT",
      headers: { Authorization: `Bearer ${inject("gatewayToken")}`, "Content-Type": "application/json" },
      body: JSON.stringify({ schema: "any/1", data: { v: 1 } }),
    });
    expect(put.status).toBe(201);

    expect(await code(user.deleteRepo(repo))).toBe("forbidden");
    expect((await user.getRepo(repo)).count).toBe(1);
    await admin.deleteRepo(repo);
    // 410 repo-deleted to whoever may read the name (everyone, on this
    // gateway's dev rules), until it is created again.
    expect(await code(user.getRepo(repo))).toBe("repo-deleted");
    expect(await code(admin.deleteRepo(repo))).toBe("repo-deleted");

    await user.createRepo(repo);
    expect((await user.getRepo(repo)).count).toBe(0);
  });
});

describe("Goat and a repository deleted on the gateway", () => {
  it("stops syncing it rather than creating it again", async () => {
    const repo = uniqueRepo("tsdeleted");
    const g = await client();
    try {
      const r = await g.repo(repo);
      r.put("k1", { v: 1 });
      await g.synced(repo);
      const admin = new GatewayClient({ url: inject("gatewayURL"), token: await adminToken() });
      await admin.deleteRepo(repo);
      await waitFor("the client to be told", () => g.deleted(repo));
      r.put("k2", { v: 2 }); // stays local
      await r.flush();
      // Ask for a heal as a reconnect would: it must not create the repository again.
      await g.synced(repo, 1500).catch(() => {});
      expect(await code(admin.getRepo(repo))).toBe("repo-deleted");
      expect(r.get("k1")).toBeTruthy();
    } finally {
      await g.close();
    }
  });

  it("learns the deletion from the gateway's 410 when its stream missed the reset", async () => {
    const repo = uniqueRepo("tsgone");
    const before = await client();
    try {
      const r = await before.repo(repo);
      r.put("k1", { v: 1 });
      await before.synced(repo);
    } finally {
      await before.close(); // not connected when the deletion's reset is sent
    }
    const admin = new GatewayClient({ url: inject("gatewayURL"), token: await adminToken() });
    await admin.deleteRepo(repo);
    const g = await client();
    try {
      const r = await g.repo(repo);
      r.put("k2", { v: 2 }); // the replica has data to push back
      await waitFor("the client to be told", () => g.deleted(repo));
      await g.synced(repo, 1500).catch(() => {});
      expect(await code(admin.getRepo(repo))).toBe("repo-deleted");
      expect(r.get("k2")).toBeTruthy();
    } finally {
      await g.close();
    }
  });

  it("learns the deletion when its stream was down at that moment", async () => {
    const repo = uniqueRepo("tsgonelive");
    const net = switchableFetch();
    const g = await client({ fetch: net.fetch });
    try {
      const r = await g.repo(repo);
      r.put("k1", { v: 1 });
      await g.synced(repo);
      await waitFor("the stream to be live", () => g.status === "live");
      net.state.offline = true;
      (g as unknown as { stream?: { drop(): void } }).stream?.drop(); // the connection breaks
      const admin = new GatewayClient({ url: inject("gatewayURL"), token: await adminToken() });
      await admin.deleteRepo(repo);
      net.state.offline = false; // the stream reconnects and meets 410
      await waitFor("the client to be told", () => g.deleted(repo));
      expect(await code(admin.getRepo(repo))).toBe("repo-deleted");
    } finally {
      await g.close();
    }
  });
});
