// Browser tests: Debian's chromium (apt-get install chromium), driven by
// playwright-core, on the example app (examples/todo) served by the demo
// server in front of a real gateway. Screenshots go to test-results/.
import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
// @ts-expect-error plain ESM scripts without types
import { bundle } from "../../scripts/bundle.mjs";
// @ts-expect-error plain ESM scripts without types
import { startDemoServer } from "../../scripts/demo-server.mjs";

const results = fileURLToPath(new URL("../../test-results/", import.meta.url));
mkdirSync(results, { recursive: true });

let browser: Browser;
let demo: { url: string; close(): Promise<void> };
let buffering: { url: string; close(): Promise<void> };
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  await bundle();
  demo = await startDemoServer({ gatewayURL: inject("gatewayURL"), token: inject("gatewayToken") });
  buffering = await startDemoServer({ gatewayURL: inject("gatewayURL"), token: inject("gatewayToken"), bufferEvents: true });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  await browser?.close();
  await demo?.close();
  await buffering?.close();
});

let n = 0;
const listName = () => `l${process.pid}x${Date.now().toString(36)}x${n++}`;

/** openApp opens the app in a fresh context (its own IndexedDB), like a second device. */
async function openApp(list: string, base = demo.url, query = ""): Promise<Page> {
  const ctx = await browser.newContext({ viewport: { width: 640, height: 560 } });
  contexts.push(ctx);
  const page = await ctx.newPage();
  page.on("pageerror", (e) => console.error("page error:", e));
  await page.goto(`${base}/?list=${list}${query}`);
  await page.waitForSelector("body[data-ready=true]");
  return page;
}

async function add(page: Page, title: string) {
  await page.fill("[data-testid=new-title]", title);
  await page.click("[data-testid=add]");
}

/** rename edits an item's title the way a user does (type, then leave the field). */
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

/** waitRows waits until the page shows exactly want (in order). */
async function waitRows(page: Page, want: Row[], timeout = 20_000) {
  await page.waitForFunction(
    (w) => {
      const got = [...document.querySelectorAll("li[data-testid=item]")].map((li) => ({
        title: (li.querySelector("input.title") as HTMLInputElement).value,
        done: (li.querySelector("input[type=checkbox]") as HTMLInputElement).checked,
      }));
      return JSON.stringify(got) === JSON.stringify(w);
    },
    want,
    { timeout },
  ).catch(async (e) => {
    throw new Error(`rows: got ${JSON.stringify(await rows(page))}, want ${JSON.stringify(want)}: ${e.message}`);
  });
}

const waitStatus = (page: Page, s: string) => page.waitForFunction((s) => document.getElementById("status")?.textContent === s, s, { timeout: 20_000 });
const shot = (page: Page, name: string) => page.screenshot({ path: `${results}${name}.png` });

describe("the todo example in chromium", () => {
  it("two pages edit the same list and converge", async () => {
    const list = listName();
    const a = await openApp(list), b = await openApp(list);
    await waitStatus(a, "live");
    await waitStatus(b, "live");
    await add(a, "milk");
    await add(b, "bread");
    const both = [{ title: "milk", done: false }, { title: "bread", done: false }];
    await waitRows(a, both);
    await waitRows(b, both);
    await b.click("li[data-title=milk] [data-testid=done]");
    await waitRows(a, [{ title: "milk", done: true }, { title: "bread", done: false }]);
    await shot(a, "converge-page-a");
    await shot(b, "converge-page-b");
    // Same commits on both sides, not just the same rows.
    const digest = (p: Page) => p.evaluate(() => (window as any).repo.digest().hex());
    await expect.poll(async () => (await digest(a)) === (await digest(b)), { timeout: 10_000 }).toBe(true);
  });

  it("a page goes offline, edits, comes back and converges", async () => {
    const list = listName();
    const a = await openApp(list), b = await openApp(list);
    await add(a, "milk");
    await waitRows(b, [{ title: "milk", done: false }]);
    await waitStatus(b, "live");

    await b.context().setOffline(true);
    await waitStatus(b, "offline");
    await add(b, "eggs");
    await rename(b, "milk", "oat milk");
    await add(a, "butter");
    await rename(a, "milk", "milk!");
    await waitRows(b, [{ title: "oat milk", done: false }, { title: "eggs", done: false }]);
    await expect.poll(() => b.textContent("[data-testid=pending]")).not.toBe("0");
    await shot(b, "offline-page-b");

    await b.context().setOffline(false);
    // Concurrent edits of one title merge character by character.
    const want = [{ title: "oat milk!", done: false }, { title: "eggs", done: false }, { title: "butter", done: false }];
    await waitRows(a, want);
    await waitRows(b, want);
    await expect.poll(() => b.textContent("[data-testid=pending]"), { timeout: 20_000 }).toBe("0");
    await shot(a, "offline-back-page-a");
    await shot(b, "offline-back-page-b");
  });

  it("a reload restores state from IndexedDB before the network answers", async () => {
    const list = listName();
    const a = await openApp(list);
    await add(a, "from before the reload");
    await add(a, "second");
    await expect.poll(() => a.textContent("[data-testid=pending]"), { timeout: 20_000 }).toBe("0");

    // The gateway never answers now: requests to /v1/ hang.
    const hung: (() => void)[] = [];
    await a.route("**/v1/**", (route) => new Promise<void>((resolve) => hung.push(() => route.abort().then(resolve, resolve))));
    await a.reload();
    await a.waitForSelector("body[data-ready=true]");
    await waitRows(a, [{ title: "from before the reload", done: false }, { title: "second", done: false }], 5000);
    expect(await a.textContent("#status")).not.toBe("live");
    await shot(a, "reload-from-indexeddb");
    await a.unroute("**/v1/**");
    for (const h of hung) h();
  });

  it("two tabs of one browser share IndexedDB without losing each other's commits", async () => {
    const list = listName();
    const a = await openApp(list);
    const b = await a.context().newPage(); // same profile: same IndexedDB, same session key
    await b.goto(`${demo.url}/?list=${list}`);
    await b.waitForSelector("body[data-ready=true]");
    await add(a, "from tab a");
    await add(b, "from tab b");
    const both = [{ title: "from tab a", done: false }, { title: "from tab b", done: false }];
    await waitRows(a, both);
    await waitRows(b, both);
    await expect.poll(() => a.textContent("[data-testid=pending]"), { timeout: 20_000 }).toBe("0");
    await expect.poll(() => b.textContent("[data-testid=pending]"), { timeout: 20_000 }).toBe("0");
    // With the gateway unreachable, a reload shows what both tabs stored.
    await a.route("**/v1/**", (route) => route.abort("internetdisconnected"));
    await a.reload();
    await a.waitForSelector("body[data-ready=true]");
    await waitRows(a, both, 5000);
    await shot(a, "two-tabs");
    await a.unroute("**/v1/**");
  });

  it("falls back to long polling behind a proxy that buffers the stream", async () => {
    const list = listName();
    const a = await openApp(list, buffering.url, "&readyTimeout=2000");
    await waitStatus(a, "polling");
    const b = await openApp(list);
    await add(b, "via long poll");
    await waitRows(a, [{ title: "via long poll", done: false }]);
    await shot(a, "long-poll-fallback");
  });
});
