// Browser tests of the React todo app (examples/react-todo) served by the
// gateway itself (`serve --static DIR`: one process, one port), OPFS and
// its IndexedDB fallback, and CORS from a page on another origin. Debian's
// chromium via playwright-core; screenshots go to test-results/.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { startGateway, type Gateway } from "../setup/gateway.js";
import { decodeLog } from "../../src/logformat.js";
// @ts-expect-error plain ESM scripts without types
import { buildReactTodo } from "../../scripts/build-react-todo.mjs";
// @ts-expect-error plain ESM scripts without types
import { bundle } from "../../scripts/bundle.mjs";

const results = fileURLToPath(new URL("../../test-results/", import.meta.url));
mkdirSync(results, { recursive: true });
const here = fileURLToPath(new URL("../../", import.meta.url));

let browser: Browser;
let gw: Gateway; // serves the app (--static) and allows the cross-origin page (--cors-origin)
let plain: Gateway; // no --cors-origin
let app: string;
let dataDir: string;
let listen: string;
let xo: Server; // the other origin
let xoURL: string;
const contexts: BrowserContext[] = [];
const gateways: Gateway[] = [];

async function stop(g: Gateway) {
  if (g.proc.exitCode !== null) return;
  const exited = new Promise((r) => g.proc.once("exit", r));
  g.proc.kill("SIGTERM");
  await exited;
}

async function startAppGateway(at = "127.0.0.1:0") {
  const g = await startGateway(inject("gatewayBin"), dataDir, "tester", at, ["--static", app, "--cors-origin", xoURL]);
  gateways.push(g);
  // The app reads its token from config.json, a file like any other of the app.
  writeFileSync(join(app, "config.json"), JSON.stringify({ token: g.token }));
  return g;
}

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), "goat-react-"));
  app = await buildReactTodo(join(dir, "app"));
  dataDir = join(dir, "data");
  await bundle();
  // The cross-origin page: the SDK bundle and a page, from another port.
  xo = createServer((req, res) => {
    if (req.url === "/goat.js") {
      res.writeHead(200, { "Content-Type": "text/javascript" });
      res.end(readFileSync(here + "dist/browser/goat.js"));
      return;
    }
    res.writeHead(200, { "Content-Type": "text/html" });
    res.end(`<!doctype html><title>other origin</title><script type="module">import * as sdk from "/goat.js"; window.sdk = sdk; document.title = "ready";</script>`);
  });
  await new Promise<void>((r) => xo.listen(0, "127.0.0.1", r));
  xoURL = `http://127.0.0.1:${(xo.address() as { port: number }).port}`;
  gw = await startAppGateway();
  listen = new URL(gw.url).host;
  plain = await startGateway(inject("gatewayBin"), join(dir, "plain"));
  gateways.push(plain);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  await browser?.close();
  for (const g of gateways) await stop(g);
  xo?.close();
});

let n = 0;
const listName = () => `r${process.pid}x${Date.now().toString(36)}x${n++}`;

async function newContext(): Promise<BrowserContext> {
  const ctx = await browser.newContext({ viewport: { width: 720, height: 560 } });
  contexts.push(ctx);
  return ctx;
}

async function openApp(list: string, ctx?: BrowserContext): Promise<Page> {
  const page = await (ctx ?? (await newContext())).newPage();
  page.on("pageerror", (e) => console.error("page error:", e));
  await page.goto(`${gw.url}/lists/${list}?list=${list}`); // a client-side route: index.html answers it
  await page.waitForSelector("body[data-ready=true]");
  return page;
}

async function add(page: Page, title: string) {
  await page.fill("[data-testid=new-title]", title);
  await page.click("[data-testid=add]");
}

async function rename(page: Page, from: string, to: string) {
  const sel = `li[data-title='${from}'] input.title`;
  await page.fill(sel, to);
  await page.dispatchEvent(sel, "change");
}

type Row = { title: string; done: boolean };
const rows = (page: Page): Promise<Row[]> =>
  page.$$eval("li[data-testid=item]", (lis) =>
    lis.map((li) => ({ title: (li.querySelector("input.title") as HTMLInputElement).value, done: (li.querySelector("input[type=checkbox]") as HTMLInputElement).checked })),
  );

async function waitRows(page: Page, want: Row[], timeout = 20_000) {
  await page
    .waitForFunction(
      (w) => {
        const got = [...document.querySelectorAll("li[data-testid=item]")].map((li) => ({
          title: (li.querySelector("input.title") as HTMLInputElement).value,
          done: (li.querySelector("input[type=checkbox]") as HTMLInputElement).checked,
        }));
        return JSON.stringify(got) === JSON.stringify(w);
      },
      want,
      { timeout },
    )
    .catch(async (e) => {
      throw new Error(`rows: got ${JSON.stringify(await rows(page))}, want ${JSON.stringify(want)}: ${e.message}`);
    });
}

const waitStatus = (page: Page, s: string) => page.waitForFunction((s) => document.getElementById("status")?.textContent === s, s, { timeout: 20_000 });
const shot = (page: Page, name: string) => page.screenshot({ path: `${results}${name}.png` });

describe("the React todo app served by goat-gateway serve --static", () => {
  it("serves the app itself: index.html no-cache, the fingerprinted bundle immutable, routes fall back to index.html", async () => {
    const index = await fetch(`${gw.url}/lists/anything`, { headers: { Accept: "text/html" } });
    expect(index.status).toBe(200);
    expect(index.headers.get("cache-control")).toBe("no-cache");
    const js = /src="\/([^"]+)"/.exec(await index.text())![1];
    const bundleRes = await fetch(`${gw.url}/${js}`);
    expect(bundleRes.status).toBe(200);
    expect(bundleRes.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect((await fetch(`${gw.url}/v1/info`)).headers.get("content-type")).toMatch(/json/);
  });

  it("two contexts edit, one goes offline and edits, both converge", async () => {
    const list = listName();
    const a = await openApp(list), b = await openApp(list);
    await waitStatus(a, "live");
    await waitStatus(b, "live");
    await add(a, "milk");
    await add(b, "bread");
    const both = [{ title: "milk", done: false }, { title: "bread", done: false }];
    await waitRows(a, both);
    await waitRows(b, both);
    await shot(a, "react-converge-a");

    await b.context().setOffline(true);
    await waitStatus(b, "offline");
    await add(b, "eggs");
    await rename(b, "milk", "oat milk");
    await b.click("li[data-title=bread] [data-testid=done]");
    await add(a, "butter");
    await rename(a, "milk", "milk!");
    await waitRows(b, [{ title: "oat milk", done: false }, { title: "bread", done: true }, { title: "eggs", done: false }]);
    await expect.poll(() => b.textContent("[data-testid=pending]")).not.toBe("0");
    await shot(b, "react-offline-b");

    await b.context().setOffline(false);
    const want = [{ title: "oat milk!", done: false }, { title: "bread", done: true }, { title: "eggs", done: false }, { title: "butter", done: false }];
    await waitRows(a, want).catch(async (e) => {
      throw new Error(`${e.message}; page b: ${JSON.stringify(await rows(b))} pending ${await b.textContent("[data-testid=pending]")} status ${await b.textContent("#status")}`);
    });
    await waitRows(b, want);
    await expect.poll(() => b.textContent("[data-testid=pending]"), { timeout: 20_000 }).toBe("0");
    expect(await a.textContent("[data-testid=open]")).toBe("3"); // the composed query
    await shot(a, "react-converged-a");
    await shot(b, "react-converged-b");
    const digest = (p: Page) => p.evaluate(() => (window as any).repo.digest().hex());
    await expect.poll(async () => (await digest(a)) === (await digest(b)), { timeout: 10_000 }).toBe(true);
  });

  it("renders from the local replica with the gateway down, and syncs when it is back", async () => {
    const list = listName();
    const a = await openApp(list);
    const logs: string[] = [];
    a.on("console", (m) => logs.push(`${new Date().toISOString().slice(14, 23)} ${m.text()}`));
    await add(a, "before the outage");
    await expect.poll(() => a.textContent("[data-testid=pending]"), { timeout: 20_000 }).toBe("0");

    // A reload whose API requests never answer renders from the replica.
    await a.route("**/v1/**", (route) => route.abort("connectionrefused"));
    await a.reload();
    await a.waitForSelector("body[data-ready=true]");
    await waitRows(a, [{ title: "before the outage", done: false }], 5000);
    await a.unroute("**/v1/**");

    // The gateway goes down for real: the page keeps working on its replica.
    await stop(gw);
    await expect.poll(() => a.textContent("#status"), { timeout: 20_000 }).not.toBe("live");
    await add(a, "during the outage");
    await waitRows(a, [{ title: "before the outage", done: false }, { title: "during the outage", done: false }], 5000);
    await shot(a, "react-gateway-down");

    gw = await startAppGateway(listen);
    await waitStatus(a, "live").catch(async (e) => {
      throw new Error(`status ${await a.textContent("#status")}: ${e.message}\n${logs.slice(-40).join("\n")}`);
    });
    await expect.poll(() => a.textContent("[data-testid=pending]"), { timeout: 30_000 }).toBe("0");
    const b = await openApp(list);
    await waitRows(b, [{ title: "before the outage", done: false }, { title: "during the outage", done: false }]);
  });

  it("stores the replica in OPFS in Chromium, in the Go storage log format, and in IndexedDB when OPFS is missing", async () => {
    const list = listName();
    const a = await openApp(list);
    expect(await a.textContent("[data-testid=store]")).toBe("opfs");
    await add(a, "in opfs");
    await add(a, "also in opfs");
    await expect.poll(() => a.textContent("[data-testid=pending]"), { timeout: 20_000 }).toBe("0");
    await a.evaluate(() => (window as any).repo.flush());
    // Read the log back out of OPFS: it decodes as storage's format, and
    // holds the replica's commits.
    const b64 = await a.evaluate(async (name) => {
      const root = await navigator.storage.getDirectory();
      const dir = await root.getDirectoryHandle("goat-goat-react-todo");
      const f = await (await dir.getFileHandle(`${name}.log`)).getFile();
      const bytes = new Uint8Array(await f.arrayBuffer());
      let s = "";
      for (const x of bytes) s += String.fromCharCode(x);
      return btoa(s);
    }, `todo.${list}`);
    const log = await decodeLog(new Uint8Array(Buffer.from(b64, "base64")));
    const ids = await a.evaluate(() => [...(window as any).repo.ids()]);
    expect(log.commits.map((c) => c.id).sort()).toEqual([...ids].sort());
    expect(log.goodLength).toBe(Buffer.from(b64, "base64").length);

    const ctx = await newContext();
    await ctx.addInitScript(() => {
      delete (StorageManager.prototype as { getDirectory?: unknown }).getDirectory;
    });
    const b = await openApp(list, ctx);
    expect(await b.textContent("[data-testid=store]")).toBe("indexeddb");
    await waitRows(b, [{ title: "in opfs", done: false }, { title: "also in opfs", done: false }]);
    await add(b, "in indexeddb");
    await expect.poll(() => b.textContent("[data-testid=pending]"), { timeout: 20_000 }).toBe("0");
    await b.reload();
    await b.waitForSelector("body[data-ready=true]");
    await waitRows(b, [{ title: "in opfs", done: false }, { title: "also in opfs", done: false }, { title: "in indexeddb", done: false }]);
    await shot(b, "react-indexeddb-fallback");
  });
});

describe("tabs of the React app share one connection", () => {
  const streams = async () => {
    const text = await (await fetch(`${gw.url}/metrics`)).text();
    return Number(/^goat_sse_subscribers(?:\{[^}]*\})? (\d+)/m.exec(text)?.[1]);
  };

  it("five tabs hold one stream; the leader closes, another takes over, no write is lost", async () => {
    // Only this test's tabs hold streams now.
    for (const c of contexts.splice(0)) await c.close();
    await expect.poll(streams, { timeout: 20_000 }).toBe(0);
    const list = listName();
    const ctx = await newContext();
    const tabs: Page[] = [];
    for (let i = 0; i < 5; i++) tabs.push(await openApp(list, ctx));
    for (const t of tabs) await waitStatus(t, "live");
    await expect.poll(streams, { timeout: 20_000 }).toBe(1);
    const leaders = async () => (await Promise.all(tabs.map((t) => (t.isClosed() ? false : t.evaluate(() => (window as any).goat.isLeader))))).filter(Boolean).length;
    expect(await leaders()).toBe(1);

    const want: Row[] = [];
    for (const [i, t] of tabs.entries()) {
      await add(t, `from tab ${i}`);
      want.push({ title: `from tab ${i}`, done: false });
    }
    for (const t of tabs) await waitRows(t, want);
    await shot(tabs[4], "react-five-tabs");

    // The leader goes; a write made at once in a follower is not lost.
    const leader = tabs[(await Promise.all(tabs.map((t) => t.evaluate(() => (window as any).goat.isLeader)))).indexOf(true)];
    await leader.close();
    const rest = tabs.filter((t) => t !== leader);
    await add(rest[0], "after the leader left");
    want.push({ title: "after the leader left", done: false });
    await expect.poll(leaders, { timeout: 20_000 }).toBe(1);
    for (const t of rest) await waitStatus(t, "live");
    for (const t of rest) await waitRows(t, want);
    await expect.poll(streams, { timeout: 20_000 }).toBe(1);
    // The gateway holds every write.
    await expect
      .poll(
        async () => {
          const r = await fetch(`${gw.url}/v1/repos/todo.${list}/items`, { headers: { Authorization: `Bearer ${gw.token}` } });
          const body = (await r.json()) as { items: { data: { title: string } }[] };
          return body.items.map((i) => i.data.title).sort();
        },
        { timeout: 20_000 },
      )
      .toEqual(want.map((w) => w.title).sort());
    for (const t of rest) await expect.poll(() => t.textContent("[data-testid=pending]"), { timeout: 20_000 }).toBe("0");
    await shot(rest[0], "react-tabs-after-takeover");
  });
});

describe("CORS from a page on another origin", () => {
  async function otherOrigin(): Promise<Page> {
    const page = await (await newContext()).newPage();
    page.on("pageerror", (e) => console.error("page error:", e));
    await page.goto(`${xoURL}/`);
    await page.waitForFunction(() => document.title === "ready");
    return page;
  }

  it("reads, writes and subscribes with --cors-origin", async () => {
    const page = await otherOrigin();
    const repo = `xo.${listName()}`;
    const got = await page.evaluate(
      async ({ url, token, repo }) => {
        const { Goat, MemoryStore } = (window as any).sdk;
        const goat = await Goat.open({ url, token, persistence: new MemoryStore() });
        (window as any).goat = goat;
        const r = await goat.repo(repo);
        (window as any).r = r;
        r.put("from-page", { text: "hello" });
        await goat.synced(repo, 20_000);
        // A plain fetch reads the ETag the gateway exposes.
        const res = await fetch(`${url}/v1/repos/${repo}/items/from-page`, { headers: { Authorization: `Bearer ${token}` } });
        return { status: res.status, etag: res.headers.get("ETag"), body: await res.json() };
      },
      { url: gw.url, token: gw.token, repo },
    );
    expect(got.status).toBe(200);
    expect(got.etag).toMatch(/^"[0-9a-f]{64}/);
    expect(got.body.data).toEqual({ text: "hello" });
    await page.waitForFunction(() => (window as any).goat.status === "live", undefined, { timeout: 20_000 });
    // A write from elsewhere reaches the page over the event stream.
    const put = await fetch(`${gw.url}/v1/repos/${repo}/items/from-curl`, {
      method: "PUT",
      headers: { Authorization: `Bearer ${gw.token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ schema: "any/1", data: { text: "pushed" } }),
    });
    expect(put.status).toBeLessThan(300);
    await page.waitForFunction(() => (window as any).r.get("from-curl")?.text === "pushed", undefined, { timeout: 20_000 });
    await page.evaluate(() => (window as any).goat.close());
  });

  it("is refused by the browser without --cors-origin", async () => {
    const page = await otherOrigin();
    const out = await page.evaluate(
      async ({ url, token }) => {
        const tries: Record<string, string> = {};
        for (const [name, init] of [
          ["info", {}],
          ["write", { method: "PUT", headers: { Authorization: `Bearer ${token}` } }],
        ] as const) {
          try {
            const r = await fetch(`${url}/v1/${name === "info" ? "info" : "repos/xo.refused"}`, init as RequestInit);
            tries[name] = `answered ${r.status}`;
          } catch (e) {
            tries[name] = `refused: ${(e as Error).name}`;
          }
        }
        return tries;
      },
      { url: plain.url, token: plain.token },
    );
    expect(out).toEqual({ info: "refused: TypeError", write: "refused: TypeError" });
  });
});
