// Bundles the SDK for browsers (one ESM file, dependencies included):
// dist/browser/goat.js (readable, with a source map) and dist/browser/goat.min.js
// (minified); the React bindings alone (react external, the query module
// they share with the core included) as dist/browser/goat-react.min.js.
// scripts/size.mjs measures the minified ones.
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL("..", import.meta.url));

export async function bundle() {
  const common = { entryPoints: [here + "src/index.ts"], bundle: true, format: "esm", platform: "browser", target: "es2022", logLevel: "warning" };
  await build({ ...common, outfile: here + "dist/browser/goat.js", sourcemap: true });
  await build({ ...common, outfile: here + "dist/browser/goat.min.js", minify: true, legalComments: "none" });
  await build({ ...common, entryPoints: [here + "src/react.ts"], external: ["react"], outfile: here + "dist/browser/goat-react.min.js", minify: true, legalComments: "none" });
}

// tsc emits no declaration files for src/gen/api.d.ts (it is one already):
// copy it next to the emitted ones so dist/http.d.ts resolves.
export function copyGeneratedTypes() {
  mkdirSync(here + "dist/gen", { recursive: true });
  copyFileSync(here + "src/gen/api.d.ts", here + "dist/gen/api.d.ts");
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  copyGeneratedTypes();
  await bundle();
}
