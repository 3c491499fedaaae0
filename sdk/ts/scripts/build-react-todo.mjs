// Builds the React todo app (examples/react-todo) into a directory that
// `goat-gateway serve --static DIR` serves as it is: index.html (no-cache),
// style.css and app-HASH.js (fingerprinted, so the gateway marks it
// immutable). Run: node scripts/build-react-todo.mjs [OUTDIR].
//
// HASH is 16 hex digits of the bundle's SHA-256, not esbuild's [hash]:
// esbuild's is 8 characters of base32 (A-Z, 2-7), and about one in five has
// no digit (the bundle's source map paths change it from one checkout to
// another), which the gateway cannot tell from a name like main-FEEDBACK.js
// (api/static.go), so it would serve that bundle no-cache.
import { build } from "esbuild";
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
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
  const built = Object.keys(r.metafile.outputs).find((f) => f.endsWith(".js"));
  const code = readFileSync(built, "utf8");
  const name = `app-${createHash("sha256").update(code).digest("hex").slice(0, 16)}.js`;
  const js = join(dirname(built), name);
  writeFileSync(js, code.replace(`sourceMappingURL=${basename(built)}.map`, `sourceMappingURL=${name}.map`));
  rmSync(built);
  renameSync(built + ".map", js + ".map");
  const html = readFileSync(here + "examples/react-todo/index.html", "utf8").replace("APP_JS", basename(js));
  writeFileSync(out + "/index.html", html);
  copyFileSync(here + "examples/react-todo/style.css", out + "/style.css");
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(await buildReactTodo(process.argv[2]));
}
