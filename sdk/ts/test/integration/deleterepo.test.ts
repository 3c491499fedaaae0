// Deleting a repository (DELETE /v1/repos/{repo}, role admin) through the
// SDK's GatewayClient against a real goat-gateway binary.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it, inject } from "vitest";
import { GatewayClient, GoatError } from "../../src/index.js";
import { client, uniqueRepo, waitFor } from "./helpers.js";

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
    expect(await code(user.getRepo(repo))).toBe("not-found");
    expect(await code(admin.deleteRepo(repo))).toBe("not-found");

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
      expect(await code(admin.getRepo(repo))).toBe("not-found");
      expect(r.get("k1")).toBeTruthy();
    } finally {
      await g.close();
    }
  });
});
