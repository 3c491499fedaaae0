// vitest globalSetup: builds the goat-gateway binary (and the Go peer used by
// the integration tests) from the repository, starts a dev gateway on a free
// port with a fresh data directory, and provides its URL and a dev token to
// the tests. Building takes a while on a cold Go cache; it is done once per
// test run.
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";

const root = fileURLToPath(new URL("../../../../", import.meta.url));

declare module "vitest" {
  export interface ProvidedContext {
    gatewayURL: string;
    gatewayToken: string;
    gatewayBin: string;
    gatewayDataDir: string;
    goPeer: string;
    goSDKPeer: string;
  }
}

export interface Gateway {
  url: string;
  token: string;
  proc: ChildProcess;
}

/** startGateway runs `goat-gateway serve --dev` on 127.0.0.1:0 (with extra flags) and waits for its URL and token. */
export function startGateway(bin: string, dataDir: string, sub = "tester", listen = "127.0.0.1:0", extra: string[] = []): Promise<Gateway> {
  const proc = spawn(bin, ["serve", "--dev", "--listen", listen, "--data-dir", dataDir, "--print-token", sub, "--log-level", "warn", ...extra], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  return new Promise((resolve, reject) => {
    let out = "", url = "";
    const timer = setTimeout(() => reject(new Error(`gateway did not start: ${out}`)), 60_000);
    proc.stderr!.on("data", (b) => process.env.GOAT_TEST_VERBOSE && process.stderr.write(b));
    proc.stdout!.on("data", (b: Buffer) => {
      out += b.toString();
      url ||= /listening on (http:\/\/\S+)/.exec(out)?.[1] ?? "";
      const token = /export TOKEN=(\S+)/.exec(out)?.[1];
      if (url && token) {
        clearTimeout(timer);
        resolve({ url, token, proc });
      }
    });
    proc.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${code}: ${out}`));
    });
  });
}

export default async function setup(project: TestProject) {
  const dir = mkdtempSync(join(tmpdir(), "goat-ts-"));
  const bin = join(dir, "goat-gateway");
  const goPeer = join(dir, "gopeer");
  const goSDKPeer = join(dir, "gosdkpeer");
  const env = { ...process.env, PATH: `/usr/local/go/bin:${process.env.PATH}` };
  execFileSync("go", ["build", "-o", bin, "./cmd/goat-gateway"], { cwd: root, env, stdio: "inherit" });
  execFileSync("go", ["build", "-o", goPeer, "./sdk/ts/test/testdata/gopeer"], { cwd: root, env, stdio: "inherit" });
  execFileSync("go", ["build", "-o", goSDKPeer, "./sdk/ts/test/testdata/gosdkpeer"], { cwd: root, env, stdio: "inherit" });
  const dataDir = join(dir, "data");
  const gw = await startGateway(bin, dataDir);
  project.provide("gatewayURL", gw.url);
  project.provide("gatewayToken", gw.token);
  project.provide("gatewayBin", bin);
  project.provide("gatewayDataDir", dataDir);
  project.provide("goPeer", goPeer);
  project.provide("goSDKPeer", goSDKPeer);
  return async () => {
    gw.proc.kill("SIGTERM");
    await new Promise((r) => gw.proc.once("exit", r));
    rmSync(dir, { recursive: true, force: true });
  };
}
