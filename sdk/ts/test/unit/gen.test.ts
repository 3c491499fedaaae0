// The generated types must match openapi.yaml: `npm run gen` (make generate)
// regenerates src/gen/api.d.ts, and this test fails when it is stale.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";

const here = fileURLToPath(new URL("../../", import.meta.url));

it("src/gen/api.d.ts is what openapi-typescript makes of openapi.yaml", () => {
  const dir = mkdtempSync(join(tmpdir(), "goat-gen-"));
  const out = join(dir, "api.d.ts");
  execFileSync(process.execPath, [join(here, "node_modules/openapi-typescript/bin/cli.js"), join(here, "../../openapi.yaml"), "-o", out], { stdio: "pipe" });
  const fresh = readFileSync(out, "utf8");
  rmSync(dir, { recursive: true, force: true });
  const committed = readFileSync(join(here, "src/gen/api.d.ts"), "utf8");
  expect(committed === fresh, "src/gen/api.d.ts is stale: run `npm run gen` in sdk/ts (make generate)").toBe(true);
}, 60_000);
