// Prints the size of the browser bundle: minified, and minified + gzipped
// (level 9, as CDNs serve it). Run: npm run size (after npm run build).
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";
import { bundle } from "./bundle.mjs";

await bundle();
const kb = (n) => (n / 1024).toFixed(1) + " KiB";
for (const name of ["goat.min.js", "goat-react.min.js"]) {
  const min = readFileSync(fileURLToPath(new URL("../dist/browser/" + name, import.meta.url)));
  const gz = gzipSync(min, { level: 9 });
  console.log(`dist/browser/${name}: ${kb(min.length)} minified, ${kb(gz.length)} minified + gzipped (${min.length} / ${gz.length} bytes)`);
}
