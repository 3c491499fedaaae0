// `make demo` (npm run demo): builds goat-gateway and the SDK bundle, starts a
// dev gateway on 127.0.0.1 (data in sdk/ts/.demo-data) and serves the shared
// todo list at http://127.0.0.1:8081 (PORT to change). Open it in two
// windows (or two browsers) and edit the same list.
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { bundle } from "./bundle.mjs";
import { startDemoServer } from "./demo-server.mjs";

const here = fileURLToPath(new URL("..", import.meta.url));
const root = fileURLToPath(new URL("../../../", import.meta.url));
const bin = here + ".demo-data/goat-gateway";
mkdirSync(here + ".demo-data", { recursive: true });
execFileSync("go", ["build", "-o", bin, "./cmd/goat-gateway"], { cwd: root, stdio: "inherit" });
await bundle();

const gw = spawn(bin, ["serve", "--dev", "--listen", "127.0.0.1:0", "--data-dir", here + ".demo-data/data", "--print-token", "demo"], { stdio: ["ignore", "pipe", "inherit"] });
let out = "";
const { url, token } = await new Promise((resolve, reject) => {
  gw.stdout.on("data", (b) => {
    out += b;
    const url = /listening on (http:\/\/\S+)/.exec(out)?.[1];
    const token = /export TOKEN=(\S+)/.exec(out)?.[1];
    if (url && token) resolve({ url, token });
  });
  gw.on("exit", (c) => reject(new Error(`gateway exited with ${c}`)));
});
const demo = await startDemoServer({ gatewayURL: url, token, port: Number(process.env.PORT ?? 8081) });
console.log(`gateway: ${url}\ntodo app: ${demo.url}/?list=groceries  (open it twice)`);
const stop = async () => {
  await demo.close();
  gw.kill("SIGTERM");
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
