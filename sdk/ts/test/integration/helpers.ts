import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { inject } from "vitest";
import { Goat, type GoatOptions } from "../../src/index.js";

/** waitFor retries fn until it returns a truthy value or timeout ms pass; it never sleeps blindly. */
export async function waitFor<T>(what: string, fn: () => T | Promise<T>, timeout = 20_000): Promise<T> {
  const deadline = Date.now() + timeout;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ""}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

let n = 0;
/** uniqueRepo returns a fresh repository name per test. */
export const uniqueRepo = (prefix = "ts") => `${prefix}.${process.pid}.${Date.now().toString(36)}.${n++}`;

/** A fetch that can be switched off, like a network cable. */
export function switchableFetch() {
  const state = { offline: false };
  const f: typeof fetch = (input, init) => {
    if (state.offline) return Promise.reject(new TypeError("fetch failed: offline"));
    return fetch(input, init);
  };
  return { fetch: f, state };
}

/** client opens a Goat against the test gateway. */
export function client(opts: Partial<GoatOptions> = {}): Promise<Goat> {
  return Goat.open({ url: inject("gatewayURL"), token: inject("gatewayToken"), log: process.env.GOAT_TEST_VERBOSE ? console.log : undefined, ...opts });
}

/**
 * goPeer runs a Go client and returns what it holds after syncing: "sdk" is
 * the Go SDK (test/testdata/gosdkpeer), "driver" a client on the gsync
 * driver alone (test/testdata/gopeer), whose values have no schema defaults.
 */
export async function goPeer(repo: string, puts: Record<string, unknown> = {}, schema?: string, kind: "sdk" | "driver" = "driver") {
  const args = ["-url", inject("gatewayURL"), "-token", inject("gatewayToken"), "-repo", repo];
  if (schema) args.push("-schema", schema);
  for (const [k, v] of Object.entries(puts)) args.push("-put", `${k}=${JSON.stringify(v)}`);
  let stdout: string;
  try {
    ({ stdout } = await promisify(execFile)(inject(kind === "sdk" ? "goSDKPeer" : "goPeer"), args));
  } catch (e) {
    throw new Error(`${kind} peer failed: ${(e as { stderr?: string }).stderr ?? e}`);
  }
  return JSON.parse(stdout) as { count: number; digest: string; values: Record<string, Record<string, unknown>>; session: string };
}
