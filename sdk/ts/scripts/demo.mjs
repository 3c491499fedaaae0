// `make demo` (npm run demo): builds goat-gateway and the React todo app
// (examples/react-todo), then runs one dev gateway that serves both the app
// (--static) and its data on one port: http://127.0.0.1:8081 (PORT to
// change; data in sdk/ts/.demo-data). Open it in two windows (or two
// browsers) and edit the same list.
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { buildReactTodo } from "./build-react-todo.mjs";

const here = fileURLToPath(new URL("..", import.meta.url));
const root = fileURLToPath(new URL("../../../", import.meta.url));
const bin = here + ".demo-data/goat-gateway";
mkdirSync(here + ".demo-data", { recursive: true });
execFileSync("go", ["build", "-o", bin, "./cmd/goat-gateway"], { cwd: root, stdio: "inherit" });
const app = await buildReactTodo(here + ".demo-data/app");

const listen = `127.0.0.1:${process.env.PORT ?? 8081}`;
const gw = spawn(bin, ["serve", "--dev", "--listen", listen, "--data-dir", here + ".demo-data/data", "--static", app, "--print-token", "demo"], {
  stdio: ["ignore", "pipe", "inherit"],
});
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
// The app reads its dev token from a file next to it (served like the app).
writeFileSync(app + "/config.json", JSON.stringify({ token }));
console.log(`todo app and its data, one process: ${url}/?list=groceries  (open it twice)`);
const stop = () => {
  gw.kill("SIGTERM");
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
