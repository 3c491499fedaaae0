// Loads the shared vectors that the Go side writes into the project's testdata/.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../../../", import.meta.url));

/** load reads a JSON file relative to the repository root. */
export function load<T = any>(path: string): T {
  return JSON.parse(readFileSync(root + path, "utf8")) as T;
}
