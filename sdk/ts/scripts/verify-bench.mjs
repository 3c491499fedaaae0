// Measures what the chain of trust costs the TypeScript SDK (issue 18):
// Trust.check over received commits in log pages of 1000, as a clone
// ingests them, the author's record held; WebCrypto Ed25519, many
// verifications in flight at once. Run: node scripts/verify-bench.mjs [N]
// (default 100000). Prints per commit and for the whole clone.
import { build } from "esbuild";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const n = Number(process.argv[2] ?? 100_000);
const src = fileURLToPath(new URL("../src/", import.meta.url));
const out = await build({
  stdin: { contents: `export * from "./index.ts"; export { Trust } from "./trust.ts"; export { toBase64url } from "./bytes.ts"; export { sign } from "./crypto.ts";`, resolveDir: src, loader: "ts" },
  bundle: true, format: "esm", platform: "node", write: false,
});
const dir = mkdtempSync(join(tmpdir(), "goat-verify-bench-"));
const file = join(dir, "sdk.mjs");
writeFileSync(file, out.outputFiles[0].text);
const sdk = await import(pathToFileURL(file).href);
rmSync(dir, { recursive: true });

const root = await sdk.generateKeyPair();
const key = await sdk.generateKeyPair();
const rec = { id: await sdk.sessionId(key.publicKeyBytes), owner: "alice", roles: [], publicKey: sdk.toBase64url(key.publicKeyBytes), expires: Date.now() + 3600_000, rootSig: "" };
rec.rootSig = sdk.toBase64url(await sdk.sign(root.privateKey, sdk.recordSigningBytes(rec)));
const trust = new sdk.Trust({ rootKeys: async () => [sdk.toBase64url(root.publicKeyBytes)], session: async () => rec });

const ts = Date.now();
const commits = [];
for (let i = 0; i < n; i++) {
  commits.push(await sdk.signCommit({ repo: "bench", key: `k${i}`, parents: [], author: rec.id, ts, schema: "any/1", data: { n: i } }, key.privateKey));
}
await trust.check(commits.slice(0, 10)); // the record, fetched once
const t0 = performance.now();
let bad = 0;
for (let i = 0; i < n; i += 1000) bad += (await trust.check(commits.slice(i, i + 1000))).size;
const ms = performance.now() - t0;
if (bad) throw new Error(`${bad} commits failed`);
// The floor: one verification at a time.
const pub = await sdk.generateKeyPair();
const msg = new Uint8Array(32);
const sig = await sdk.sign(pub.privateKey, msg);
const m = Math.min(n, 5000);
const t1 = performance.now();
for (let i = 0; i < m; i++) await crypto.subtle.verify({ name: "Ed25519" }, pub.publicKey, sig, msg);
const one = ((performance.now() - t1) * 1000) / m;
console.log(`Trust.check: ${n} commits in ${ms.toFixed(0)} ms, ${((ms * 1000) / n).toFixed(1)} µs/commit (one Ed25519 verify at a time: ${one.toFixed(1)} µs)`);
