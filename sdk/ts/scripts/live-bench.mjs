// Measures what one live event costs the TypeScript SDK in Node (issue 19:
// a subscriber's CPU per event shares the machine with the gateway).
//
// End to end, through the public API: a real goat-gateway (--dev, a fresh
// data directory), one Goat client with a replica subscribed over SSE and
// a live query on it (the 50 newest items), and a writer in another
// process that PUTs N items (the gateway signs them; its own CPU is not
// counted). Printed: the subscriber's process.cpuUsage() per event, from
// the writer's start to the Nth commit applied, and the wall time from the
// first event applied to the last.
//
// Then the pieces one at a time, in process, on a commit event of about
// 550 bytes: SSE framing (eventsource-parser, as src/sse.ts feeds it),
// JSON.parse, decodeCommit (the id recomputed: RFC 8785 + WebCrypto
// SHA-256), Trust.check (WebCrypto Ed25519) and Replica.ingest (all of the
// checks, the graph, the store and a live query's update).
//
// Run: node scripts/live-bench.mjs [N] (default 5000) [--conc C] (writer's
// requests in flight, default 4) [--only live|micro] [--src DIR] (the SDK
// sources to bundle, default ../src: point it at an older copy to compare
// builds) [--gateway BIN] (default: built from the repository into a
// temporary directory). Add node's --cpu-prof to see where the time goes.
import { build } from "esbuild";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  if (i < 0) return def;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const conc = Number(opt("--conc", 4));
const only = opt("--only", "");
const srcDir = resolve(opt("--src", fileURLToPath(new URL("../src/", import.meta.url))));
let gatewayBin = opt("--gateway", "");
const n = Number(args[0] ?? 5000);

const dir = mkdtempSync(join(tmpdir(), "goat-live-bench-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

const out = await build({
  stdin: {
    contents: `export * from "./index.ts"; export { Trust } from "./trust.ts"; export { toBase64url } from "./bytes.ts"; export { sign } from "./crypto.ts";`,
    resolveDir: srcDir,
    loader: "ts",
  },
  nodePaths: [fileURLToPath(new URL("../node_modules/", import.meta.url))],
  bundle: true,
  format: "esm",
  platform: "node",
  write: false,
});
const file = join(dir, "sdk.mjs");
writeFileSync(file, out.outputFiles[0].text);
const sdk = await import(pathToFileURL(file).href);
const { createParser } = await import("eventsource-parser");

const us = (ms, k) => ((ms * 1000) / k).toFixed(2);
const title = "Buy milk, bread, eggs, coffee, apples and some other things for the week ahead, before Saturday at noon (the shop closes early)";

// The writer: PUT /v1/repos/{repo}/items/{key}, conc requests in flight.
const writerScript = `
const [url, token, repo, n, conc, title] = process.argv.slice(1);
let next = 0;
async function one() {
  for (let i = next++; i < +n; i = next++) {
    const key = "k" + String(i).padStart(6, "0");
    const resp = await fetch(url + "/v1/repos/" + repo + "/items/" + key, {
      method: "PUT",
      headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
      body: JSON.stringify({ schema: "any/1", data: { done: false, n: i, title } }),
    });
    if (!resp.ok) throw new Error("PUT " + key + ": " + resp.status + " " + (await resp.text()));
    await resp.arrayBuffer();
  }
}
await Promise.all(Array.from({ length: +conc }, one));
`;

if (only !== "live") await micro();
if (only !== "micro") await live();
process.exit(0);

async function live() {
  if (!gatewayBin) {
    gatewayBin = join(dir, "goat-gateway");
    const root = fileURLToPath(new URL("../../../", import.meta.url));
    execFileSync("go", ["build", "-o", gatewayBin, "./cmd/goat-gateway"], {
      cwd: root,
      env: { ...process.env, PATH: `/usr/local/go/bin:${process.env.PATH}` },
      stdio: "inherit",
    });
  }
  const gw = await startGateway(gatewayBin, join(dir, "data"));
  try {
    const repo = "bench.live";
    const g = await sdk.Goat.open({ url: gw.url, token: gw.token });
    const r = await g.repo(repo);
    await g.synced(repo);
    if (g.status !== "live") await new Promise((res) => { const off = g.onStatus((s) => s === "live" && (off(), res())); });
    let applied = 0, first = 0, last = 0, shown = 0;
    let done;
    const all = new Promise((res) => (done = res));
    r.subscribe((keys) => {
      if (!first) first = performance.now();
      applied += keys.size;
      if (applied >= n) {
        last = performance.now();
        done();
      }
    });
    const unlive = r.live({ limit: 50, sort: (a, b) => b.ts - a.ts }, (items) => (shown = items.length));
    const cpu0 = process.cpuUsage();
    const writer = spawn(process.execPath, ["--input-type=module", "-e", writerScript, gw.url, gw.token, repo, String(n), String(conc), title], { stdio: ["ignore", "inherit", "inherit"] });
    const wrote = new Promise((res, rej) => writer.once("exit", (code) => (code ? rej(new Error(`writer exited with ${code}`)) : res())));
    await Promise.race([all, wrote.then(() => all)]);
    const cpu = process.cpuUsage(cpu0);
    await wrote;
    unlive();
    if (g.quarantined.count) throw new Error(`${g.quarantined.count} commits quarantined`);
    if (r.keys().length !== n || shown !== 50) throw new Error(`replica holds ${r.keys().length} items, query shows ${shown}`);
    const ms = (cpu.user + cpu.system) / 1000;
    console.log(
      `live: ${n} events (writer: ${conc} PUTs in flight), subscriber CPU ${us(ms, n)} µs/event (user ${us(cpu.user / 1000, n)}, system ${us(cpu.system / 1000, n)}); first to last applied ${(last - first).toFixed(0)} ms`,
    );
    await g.close();
  } finally {
    gw.proc.kill("SIGTERM");
    await new Promise((res) => gw.proc.once("exit", res));
  }
}

async function micro() {
  const root = await sdk.generateKeyPair();
  const key = await sdk.generateKeyPair();
  const rec = { id: await sdk.sessionId(key.publicKeyBytes), owner: "alice", roles: [], publicKey: sdk.toBase64url(key.publicKeyBytes), expires: Date.now() + 3600_000, rootSig: "" };
  rec.rootSig = sdk.toBase64url(await sdk.sign(root.privateKey, sdk.recordSigningBytes(rec)));
  const io = { rootKeys: async () => [sdk.toBase64url(root.publicKeyBytes)], session: async () => rec };
  const m = Math.min(n, 20000);
  const ts = Date.now();
  const commits = [];
  for (let i = 0; i < m; i++) {
    commits.push(await sdk.signCommit({ repo: "bench", key: `k${String(i).padStart(6, "0")}`, parents: [], author: rec.id, ts: ts + i, schema: "any/1", data: { done: false, n: i, title } }, key.privateKey));
  }
  const frames = commits.map((c, i) => `id: 238ba09ec59cbbb40905c4407a0608d7.${i + 3}\nevent: commit\ndata: ${JSON.stringify({ commit: c, repo: "bench" })}\n\n`);
  const bytes = frames.map((f) => new TextEncoder().encode(f));
  console.log(`micro: ${m} commit events of ${bytes[0].length} bytes, one at a time`);
  const time = async (what, f) => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await f();
    const wall = performance.now() - t0;
    const c = process.cpuUsage(c0);
    console.log(`  ${what.padEnd(40)} ${us(wall, m).padStart(7)} µs/event wall, ${us((c.user + c.system) / 1000, m).padStart(7)} µs CPU`);
  };
  const data = [];
  await time("TextDecoder (stream) of one chunk", () => {
    const d = new TextDecoder();
    for (const b of bytes) d.decode(b, { stream: true });
  });
  await time("SSE framing (eventsource-parser)", () => {
    const p = createParser({ onEvent: (ev) => data.push(ev.data) });
    for (const f of frames) p.feed(f);
  });
  if (data.length !== m) throw new Error(`parsed ${data.length} events`);
  const parsed = [];
  await time("JSON.parse", () => {
    for (const d of data) parsed.push(JSON.parse(d).commit);
  });
  await time("canonical body (RFC 8785)", () => {
    for (const c of parsed) sdk.canonicalBody(c);
  });
  await time("decodeCommit (checks, id recomputed)", async () => {
    for (const c of parsed) await sdk.decodeCommit(c);
  });
  const trust = new sdk.Trust(io);
  await trust.check(commits.slice(0, 1));
  await time("Trust.check of one commit (Ed25519)", async () => {
    for (const c of parsed) if ((await trust.check([c])).size) throw new Error("bad signature");
  });
  // Replica.ingest as the client calls it for a commit event, with a live
  // query subscribed; the commits arrive fresh from JSON.parse each time.
  const ctx = {
    registry: new sdk.Registry([]),
    persistence: new sdk.MemoryStore(),
    session: async () => { throw new Error("no writes here"); },
    onLocalCommit() {},
    onGap() { throw new Error("gap"); },
    ensureSchemas: async () => {},
    verify: (cs) => trust.check(cs),
    now: Date.now,
    log() {},
  };
  const rep = new sdk.Replica("bench", ctx);
  await rep.load();
  let shown = 0;
  const unlive = rep.live({ limit: 50, sort: (a, b) => b.ts - a.ts }, (items) => (shown = items.length));
  const fresh = data.map((d) => JSON.parse(d).commit);
  await time("Replica.ingest of one commit event", async () => {
    for (const c of fresh) {
      const { added } = await rep.ingest([c]);
      if (added !== 1) throw new Error("not added");
    }
  });
  await rep.flush();
  await new Promise((res) => setTimeout(res, 0));
  unlive();
  if (shown !== Math.min(50, m)) throw new Error(`query shows ${shown}`);
}

function startGateway(bin, dataDir) {
  const proc = spawn(bin, ["serve", "--dev", "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--print-token", "bench", "--log-level", "warn"], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((res, rej) => {
    let text = "";
    proc.stdout.on("data", (b) => {
      text += b;
      const url = /listening on (http:\/\/\S+)/.exec(text)?.[1];
      const token = /export TOKEN=(\S+)/.exec(text)?.[1];
      if (url && token) res({ url, token, proc });
    });
    proc.once("exit", (code) => rej(new Error(`gateway exited with ${code}: ${text}`)));
  });
}
