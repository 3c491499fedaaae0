// Builds the React todo app (examples/react-todo) into a directory that
// `goat-gateway serve --static DIR` serves as it is: index.html (no-cache),
// style.css and app-HASH.js (fingerprinted, so the gateway marks it
// immutable). Run: node scripts/build-react-todo.mjs [OUTDIR].
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename } from "node:path";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL("..", import.meta.url));

export async function buildReactTodo(out = here + "dist/react-todo") {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const r = await build({
    entryPoints: { app: here + "examples/react-todo/app.tsx" },
    entryNames: "[name]-[hash]",
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    jsx: "automatic",
    minify: true,
    sourcemap: true,
    define: { "process.env.NODE_ENV": '"production"' },
    outdir: out,
    metafile: true,
    logLevel: "warning",
  });
  const js = Object.keys(r.metafile.outputs).find((f) => f.endsWith(".js"));
  const html = readFileSync(here + "examples/react-todo/index.html", "utf8").replace("APP_JS", basename(js));
  writeFileSync(out + "/index.html", html);
  copyFileSync(here + "examples/react-todo/style.css", out + "/style.css");
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(await buildReactTodo(process.argv[2]));
}
