// Node integration tests against a real goat-gateway binary (started by
// test/setup/gateway.ts): clone, live SSE, heal, the offline queue, file
// persistence, the long-poll fallback, and convergence with a Go client.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { canonicalize, type Goat, type Schema } from "../../src/index.js";
import { FileStore } from "../../src/node.js";
import { execFileSync } from "node:child_process";
import { createServer } from "node:net";
import { inject } from "vitest";
import { startGateway } from "../setup/gateway.js";
import { client, goPeer, switchableFetch, uniqueRepo, waitFor } from "./helpers.js";

const dirs: string[] = [];
/** tempDir makes a directory that is removed after the tests. */
function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const open: Goat[] = [];
async function track(g: Promise<Goat>): Promise<Goat> {
  const c = await g;
  open.push(c);
  return c;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((g) => g.close()));
});

const itemSchema: Schema = {
  ns: "tsitem",
  version: 1,
  fields: { title: { type: "text", required: true }, tags: { type: "set" }, done: { type: "boolean", default: false } },
};

describe("Goat against a real gateway", () => {
  it("clones, then receives live commits over SSE", async () => {
    const repo = uniqueRepo();
    const a = await track(client());
    const ra = await a.repo(repo);
    for (let i = 0; i < 30; i++) ra.put(`k${i}`, { i });
    await a.synced(repo);

    const b = await track(client());
    const rb = await b.repo(repo);
    await waitFor("clone", () => rb.keys().length === 30);
    await waitFor("live", () => b.status === "live");
    ra.put("k0", { i: 100 });
    await waitFor("live update", () => rb.get("k0")?.i === 100);
    // Over the 64 KiB inline limit: announced as `commits` and fetched by id.
    ra.put("big", { text: "x".repeat(80_000) });
    await waitFor("a large commit", () => rb.get("big"));
    expect(rb.digest().hex()).toBe(ra.digest().hex());
  });

  it("reconnects with a fresh token when the stream's token expires", async () => {
    const mint = () => execFileSync(inject("gatewayBin"), ["token", "--data-dir", inject("gatewayDataDir"), "--sub", "tester", "--ttl", "2s"]).toString().trim();
    let tok = mint(), minted = Date.now();
    const token = () => {
      if (Date.now() - minted > 1000) [tok, minted] = [mint(), Date.now()];
      return tok;
    };
    const repo = uniqueRepo();
    const a = await track(client({ token }));
    let lives = 0;
    a.onStatus((s) => s === "live" && lives++);
    const ra = await a.repo(repo);
    await waitFor("live", () => a.status === "live");
    const before = lives;
    // The gateway ends the stream at the token's expiry (event `expired`);
    // the stream reopens with a fresh token from the token function.
    await waitFor("live again after the expiry", () => lives > before, 20_000);
    const b = await track(client());
    const rb = await b.repo(repo);
    rb.put("after-expiry", { v: 1 });
    await waitFor("live after expiry", () => ra.get("after-expiry"));
  });

  it("goes live for the repositories it may read when another one is refused", async () => {
    const repo = uniqueRepo();
    const a = await track(client());
    const bad = await a.repo("sys.nothing-here"); // system repositories are closed to clients
    const ra = await a.repo(repo);
    await waitFor("live", () => a.status === "live");
    const b = await track(client());
    (await b.repo(repo)).put("x", { v: 1 });
    await waitFor("a live commit", () => ra.get("x"));
    expect(bad.keys()).toEqual([]);
  });

  it("converges with a Go client, including a concurrent edit merged by the gateway", async () => {
    const repo = uniqueRepo();
    const net = switchableFetch();
    const ts = await track(client({ fetch: net.fetch }));
    await ts.publishSchema(itemSchema);
    const r = await ts.repo(repo);
    r.put("milk", { title: "milk", tags: ["x"] }, "tsitem/1");
    r.put("bread", { title: "bread" }, "tsitem/1");
    await ts.synced(repo);

    // Concurrent edits of "milk": TypeScript offline, Go online.
    net.state.offline = true;
    r.update("milk", (v) => ({ ...v, title: "oat milk", tags: ["x", "y"] }));
    r.put("ts-only", { title: "from ts" }, "tsitem/1");
    await r.flush();
    const go1 = await goPeer(repo, { milk: { title: "milk!", tags: ["x", "z"] }, "go-only": { title: "from go" } }, "tsitem/1");
    expect(go1.values.milk).toEqual({ title: "milk!", tags: ["x", "z"] });

    net.state.offline = false;
    await ts.synced(repo);
    await waitFor("the merge", () => r.item("milk")?.heads.length === 1 && r.get("go-only"));
    expect(r.get("milk")).toEqual({ title: "oat milk!", tags: ["x", "y", "z"], done: false });

    const go2 = await goPeer(repo);
    expect(go2.count).toBe(r.digest().count);
    expect(go2.digest).toBe(r.digest().hex());
    const withDefaults = (v: Record<string, unknown>) => ({ done: false, ...v });
    const goValues = Object.fromEntries(Object.entries(go2.values).map(([k, v]) => [k, withDefaults(v)]));
    const tsValues = Object.fromEntries(r.keys().map((k) => [k, r.get(k)]));
    expect(canonicalize(tsValues as never)).toBe(canonicalize(goValues as never));
  });

  it("converges with the Go SDK on the same items", async () => {
    const repo = uniqueRepo();
    const net = switchableFetch();
    const ts = await track(client({ fetch: net.fetch }));
    await ts.publishSchema(itemSchema);
    const r = await ts.repo(repo);
    for (let i = 0; i < 20; i++) r.put(`ts-${i}`, { title: `ts ${i}`, tags: [`n${i % 3}`] }, "tsitem/1");
    r.put("shared", { title: "hello world", tags: ["a"] }, "tsitem/1");
    await ts.synced(repo);

    net.state.offline = true;
    r.update("shared", (v) => ({ ...v, title: "hello, world", tags: ["a", "ts"] }));
    r.delete("ts-3");
    await r.flush();
    const go = await goPeer(repo, { shared: { title: "hello world!", tags: ["a", "go"], done: true }, "go-1": { title: "from the Go SDK" } }, "tsitem/1", "sdk");
    expect(go.values["go-1"]).toEqual({ title: "from the Go SDK", done: false });

    net.state.offline = false;
    await ts.synced(repo);
    await waitFor("one head per item", () => r.keys().every((k) => r.item(k)!.heads.length === 1) && r.get("go-1"));
    expect(r.get("shared")).toEqual({ title: "hello, world!", tags: ["a", "go", "ts"], done: true });

    const go2 = await goPeer(repo, {}, undefined, "sdk");
    expect(go2.digest).toBe(r.digest().hex());
    expect(go2.count).toBe(r.digest().count);
    const tsValues = Object.fromEntries(r.keys().map((k) => [k, r.get(k)]));
    expect(canonicalize(tsValues as never)).toBe(canonicalize(go2.values as never));
    expect(Object.keys(go2.values)).not.toContain("ts-3");
  });

  it("drops a commit the gateway refuses, and gets back in sync", async () => {
    const repo = uniqueRepo();
    // The client knows a schema the gateway does not: the gateway refuses it.
    const ghost: Schema = { ns: "tsghost", version: 1, fields: { x: { type: "string" } } };
    const a = await track(client({ schemas: [ghost] }));
    const refused: string[] = [];
    a.onReject((_repo, ids) => refused.push(...ids));
    const r = await a.repo(repo);
    r.put("ok", { fine: true });
    r.put("ghost", { x: "boo" }, "tsghost/1");
    await a.synced(repo);
    expect(refused).toHaveLength(1);
    expect(r.get("ghost")).toBeUndefined();
    expect(r.get("ok")).toEqual({ fine: true });
  });

  it("heals a divergence larger than one round on both sides", async () => {
    const repo = uniqueRepo();
    const net = switchableFetch();
    const a = await track(client({ fetch: net.fetch }));
    const ra = await a.repo(repo);
    ra.put("shared", { n: 0 });
    await a.synced(repo);
    net.state.offline = true;
    for (let i = 0; i < 1100; i++) ra.put(`a${i}`, { i });
    await ra.flush();

    const b = await track(client());
    const rb = await b.repo(repo);
    await waitFor("b's clone", () => rb.get("shared"));
    for (let i = 0; i < 1050; i++) rb.put(`b${i}`, { i });
    await b.synced(repo, 60_000);

    net.state.offline = false;
    await a.synced(repo, 60_000);
    expect(ra.keys()).toHaveLength(2151);
    await waitFor("b gets a's commits", () => rb.keys().length === 2151, 30_000);
    expect(ra.digest().hex()).toBe(rb.digest().hex());
  });

  it("reconnects after a gateway restart and catches up", async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const dir = tempDir("goat-gw-");
    const start = () => startGateway(inject("gatewayBin"), dir, "tester", `127.0.0.1:${port}`);
    let gw = await start();
    const repo = uniqueRepo();
    const opts = { url: gw.url, token: gw.token, readyTimeout: 30_000 };
    try {
      const a = await track(client(opts)), b = await track(client(opts));
      const ra = await a.repo(repo), rb = await b.repo(repo);
      await waitFor("a live", () => a.status === "live");
      rb.put("before", { v: 1 });
      await waitFor("before", () => ra.get("before"));

      gw.proc.kill("SIGTERM");
      await new Promise((r) => gw.proc.once("exit", r));
      await waitFor("a notices", () => a.status !== "live");
      rb.put("during", { v: 2 }); // queued offline

      gw = await start();
      await b.synced(repo);
      rb.put("after", { v: 3 });
      await waitFor("a catches up", () => ra.get("during") && ra.get("after"), 30_000);
      await waitFor("a live again", () => a.status === "live", 30_000);
      expect(ra.digest().hex()).toBe(rb.digest().hex());
    } finally {
      await Promise.all(open.splice(0).map((g) => g.close()));
      gw.proc.kill("SIGTERM");
    }
  });

  it("keeps the offline queue in a file and pushes it on the next start", async () => {
    const repo = uniqueRepo();
    const dir = tempDir("goat-file-");
    const net = switchableFetch();
    net.state.offline = true;
    const a = await track(client({ fetch: net.fetch, persistence: new FileStore(dir) }));
    const ra = await a.repo(repo);
    ra.put("offline-1", { n: 1 });
    ra.put("offline-2", { n: 2 });
    await ra.flush();
    expect(ra.pendingCount).toBe(2);
    await a.close();

    const a2 = await track(client({ persistence: new FileStore(dir) }));
    const ra2 = await a2.repo(repo);
    expect(ra2.get("offline-2")).toEqual({ n: 2 }); // before any network
    await a2.synced(repo);
    expect(ra2.pendingCount).toBe(0);
    expect(a2.sessionId).toBe(a.sessionId);

    const b = await track(client());
    const rb = await b.repo(repo);
    await waitFor("the pushed queue", () => rb.keys().length === 2);
  });

  it("falls back to long polling when a proxy buffers the stream", async () => {
    const repo = uniqueRepo();
    // A proxy that buffers: the event stream answers 200 and then nothing.
    const buffering: typeof fetch = (input, init) => {
      const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
      if (url.includes("/v1/events")) {
        return Promise.resolve(new Response(new ReadableStream({ start() {} }), { headers: { "Content-Type": "text/event-stream" } }));
      }
      return fetch(input, init);
    };
    const a = await track(client({ fetch: buffering, readyTimeout: 1000 }));
    const ra = await a.repo(repo);
    await waitFor("polling", () => a.status === "polling");
    const b = await track(client());
    const rb = await b.repo(repo);
    rb.put("x", { from: "b" });
    await waitFor("the commit by long poll", () => ra.get("x")?.from === "b");
  });

  it("long polling misses no commit that lands between its heal and its first log read", async () => {
    // The poll used to take the log's end after its heal: a commit that
    // reached the gateway in between was skipped (until the next heal).
    // Here the gateway's answer to a read of the repository that follows
    // the heal's own (no sync round between: the poll's, not a heal's)
    // is held until b's commit is in, which puts the commit exactly there.
    // b writes when that read is held, or when the poll's first log read
    // arrives (a poll that reads no such end).
    const repo = uniqueRepo();
    let lastRepoCall = "";
    let wrote: () => void = () => {};
    const written = new Promise<void>((res) => (wrote = res));
    let reached: () => void = () => {};
    const atTheGap = new Promise<void>((res) => (reached = res));
    let polling = false;
    const proxy: typeof fetch = async (input, init) => {
      const url = new URL(typeof input === "string" ? input : input instanceof URL ? input.href : input.url);
      const method = (init?.method ?? (input instanceof Request ? input.method : "GET")).toUpperCase();
      if (url.pathname === "/v1/events") {
        return new Response(new ReadableStream({ start() {} }), { headers: { "Content-Type": "text/event-stream" } });
      }
      if (polling && url.pathname === `/v1/repos/${repo}` && method === "GET") {
        const second = lastRepoCall === "read";
        lastRepoCall = "read";
        if (second) {
          reached();
          await written;
        }
      } else if (polling && url.pathname === `/v1/repos/${repo}/sync`) {
        lastRepoCall = "sync";
      } else if (polling && url.pathname === `/v1/repos/${repo}/log` && url.searchParams.has("wait")) {
        reached();
      }
      return fetch(input, init);
    };
    const a = await track(client({ fetch: proxy, readyTimeout: 1000 }));
    const ra = await a.repo(repo);
    polling = true;
    await waitFor("polling", () => a.status === "polling");
    const b = await track(client());
    const rb = await b.repo(repo);
    await atTheGap;
    rb.put("x", { from: "b" });
    await waitFor("b's commit at the gateway", () => rb.pendingCount === 0);
    wrote();
    await waitFor("the commit by long poll", () => ra.get("x")?.from === "b");
  });

  it("returns to SSE from long polling when the stream works again", async () => {
    const repo = uniqueRepo();
    // A proxy that buffers the event stream until it is fixed.
    let fixed = false;
    let streams = 0;
    const proxy: typeof fetch = (input, init) => {
      const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
      if (url.includes("/v1/events")) {
        streams++;
        if (!fixed) return Promise.resolve(new Response(new ReadableStream({ start() {} }), { headers: { "Content-Type": "text/event-stream" } }));
      }
      return fetch(input, init);
    };
    const a = await track(client({ fetch: proxy, readyTimeout: 1000, sseRetry: 500 }));
    const ra = await a.repo(repo);
    await waitFor("polling", () => a.status === "polling");
    const b = await track(client());
    const rb = await b.repo(repo);
    rb.put("x", { from: "b" });
    await waitFor("the commit by long poll", () => ra.get("x")?.from === "b");
    // While the stream stays buffered, probes fail and polling goes on.
    const tried = streams;
    await waitFor("another probe", () => streams > tried + 1);
    expect(a.status).toBe("polling");
    fixed = true;
    await waitFor("live again", () => a.status === "live");
    rb.put("y", { from: "b" });
    await waitFor("the commit by SSE", () => ra.get("y")?.from === "b");
  });

  it("ingests the commit events of one read of the stream as one batch", async () => {
    const repo = uniqueRepo();
    // A proxy that holds the stream's bytes, then hands them on in one chunk.
    const held: Uint8Array[] = [];
    let hold = false;
    let release = () => {};
    const coalescing: typeof fetch = async (input, init) => {
      const resp = await fetch(input, init);
      const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
      if (!url.includes("/v1/events") || !resp.body) return resp;
      let out!: TransformStreamDefaultController<Uint8Array>;
      const body = resp.body.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          start: (c) => void (out = c),
          transform: (chunk, c) => {
            if (hold) held.push(chunk);
            else c.enqueue(chunk);
          },
        }),
      );
      release = () => {
        hold = false;
        const all = new Uint8Array(held.reduce((n, b) => n + b.length, 0));
        held.reduce((o, b) => (all.set(b, o), o + b.length), 0);
        held.length = 0;
        out.enqueue(all);
      };
      return new Response(body, { status: resp.status, headers: resp.headers });
    };
    const a = await track(client({ fetch: coalescing }));
    const ra = await a.repo(repo);
    await waitFor("live", () => a.status === "live");
    await a.synced(repo);
    const b = await track(client());
    const rb = await b.repo(repo);
    await b.synced(repo);
    hold = true;
    for (let i = 0; i < 10; i++) rb.put(`k${i}`, { i });
    await b.synced(repo);
    const events = () => new TextDecoder().decode(new Uint8Array(held.flatMap((c) => [...c]))).split("event: commit\n").length - 1;
    await waitFor("ten commit events held", () => events() === 10);
    const batches: string[][] = [];
    ra.subscribe((keys) => batches.push([...keys].sort()));
    release();
    await waitFor("the ten commits", () => ra.keys().length === 10);
    expect(batches).toEqual([Array.from({ length: 10 }, (_, i) => `k${i}`).sort()]);
    expect(ra.digest().hex()).toBe(rb.digest().hex());
  });

  it("heals after missing events: a replica that was closed catches up from its cursor", async () => {
    const repo = uniqueRepo();
    const dir = tempDir("goat-file-");
    const a = await track(client({ persistence: new FileStore(dir) }));
    const ra = await a.repo(repo);
    ra.put("a", { v: 1 });
    await a.synced(repo);
    await a.close();

    const b = await track(client());
    const rb = await b.repo(repo);
    for (let i = 0; i < 50; i++) rb.put(`b${i}`, { i });
    await b.synced(repo);

    const a2 = await track(client({ persistence: new FileStore(dir) }));
    const ra2 = await a2.repo(repo);
    await waitFor("catch-up", () => ra2.keys().length === 51);
    expect(ra2.digest().hex()).toBe(rb.digest().hex());
  });
});
