// Hashing and signatures through WebCrypto (crypto.subtle), which has SHA-256
// and Ed25519 in Node 20 and in current Chromium, Firefox and Safari, so the
// SDK ships no cryptography of its own (in Node, SHA-256 is Node's own hash:
// see sha256). Ed25519 is deterministic (RFC 8032):
// the same key signs the same id to the same bytes in Go and here, which the
// commit vectors check.

import { concat, fromHex, toBase64url, utf8 } from "./bytes.js";

const subtle = (): SubtleCrypto => {
  const s = globalThis.crypto?.subtle;
  if (!s) throw new Error("goat: WebCrypto (crypto.subtle) is not available; a secure context (https or localhost) is needed");
  return s;
};

// Node's own hash (the OpenSSL its WebCrypto runs on) where the runtime
// offers it: WebCrypto's digest is a job on Node's thread pool, which costs
// Node 20 about 40 µs of CPU per call against 3 (scripts/live-bench.mjs),
// and every received commit's id is one. Browsers (and Node before 20.16,
// which lacks getBuiltinModule) keep WebCrypto.
interface NodeHash {
  createHash(alg: "sha256"): { update(b: Uint8Array): { digest(): Uint8Array } };
}
const nodeCrypto: NodeHash | undefined = (() => {
  try {
    const p = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
    const m = p?.getBuiltinModule?.("node:crypto") as NodeHash | undefined;
    return typeof m?.createHash === "function" ? m : undefined;
  } catch {
    return undefined;
  }
})();

/** sha256 returns the SHA-256 of b. */
export async function sha256(b: Uint8Array | string): Promise<Uint8Array> {
  const data = typeof b === "string" ? utf8(b) : b;
  if (nodeCrypto) return Uint8Array.from(nodeCrypto.createHash("sha256").update(data).digest());
  return sha256WebCrypto(data);
}

/** @internal sha256WebCrypto is sha256 through WebCrypto alone (what browsers run). */
export async function sha256WebCrypto(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await subtle().digest("SHA-256", data as BufferSource));
}

/** An Ed25519 key pair and its raw 32-byte public key. */
export interface KeyPair {
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  /** The raw public key. */
  publicKeyBytes: Uint8Array;
}

/**
 * generateKeyPair makes a new Ed25519 key. extractable: false (the default
 * in browsers) keeps the private key out of reach of page scripts; a
 * CryptoKey is still storable in IndexedDB. Node's file persistence needs
 * extractable keys.
 */
export async function generateKeyPair(extractable = false): Promise<KeyPair> {
  const kp = (await subtle().generateKey({ name: "Ed25519" }, extractable, ["sign", "verify"])) as CryptoKeyPair;
  const pub = new Uint8Array(await subtle().exportKey("raw", kp.publicKey));
  return { privateKey: kp.privateKey, publicKey: kp.publicKey, publicKeyBytes: pub };
}

// PKCS #8 wrapping of a raw Ed25519 seed (RFC 8410).
const pkcs8Prefix = fromHex("302e020100300506032b657004220420");

/** keyPairFromSeed imports the Ed25519 key with the given 32-byte seed (RFC 8032 private key). */
export async function keyPairFromSeed(seed: Uint8Array, extractable = false): Promise<KeyPair> {
  const privateKey = await subtle().importKey("pkcs8", concat(pkcs8Prefix, seed) as BufferSource, { name: "Ed25519" }, true, ["sign"]);
  const jwk = await subtle().exportKey("jwk", privateKey);
  const publicKey = await subtle().importKey("jwk", { kty: "OKP", crv: "Ed25519", x: jwk.x }, { name: "Ed25519" }, true, ["verify"]);
  const publicKeyBytes = new Uint8Array(await subtle().exportKey("raw", publicKey));
  const priv = extractable
    ? privateKey
    : await subtle().importKey("pkcs8", concat(pkcs8Prefix, seed) as BufferSource, { name: "Ed25519" }, false, ["sign"]);
  return { privateKey: priv, publicKey, publicKeyBytes };
}

/** exportSeed returns the 32-byte seed of an extractable private key. */
export async function exportSeed(k: CryptoKey): Promise<Uint8Array> {
  const pk = new Uint8Array(await subtle().exportKey("pkcs8", k));
  return pk.slice(pk.length - 32);
}

/** importPublicKey imports a raw 32-byte Ed25519 public key. */
export async function importPublicKey(raw: Uint8Array): Promise<CryptoKey> {
  return subtle().importKey("raw", raw as BufferSource, { name: "Ed25519" }, true, ["verify"]);
}

/** sign returns the 64-byte Ed25519 signature of msg. */
export async function sign(k: CryptoKey, msg: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await subtle().sign({ name: "Ed25519" }, k, msg as BufferSource));
}

/** verify checks an Ed25519 signature. */
export async function verify(k: CryptoKey, msg: Uint8Array, sig: Uint8Array): Promise<boolean> {
  if (sig.length !== 64) return false;
  return subtle().verify({ name: "Ed25519" }, k, sig as BufferSource, msg as BufferSource);
}

/** sessionId derives a session id from a raw public key: "s_" + base64url of the first 18 bytes of its SHA-256 (auth.SessionID). */
export async function sessionId(publicKey: Uint8Array): Promise<string> {
  return "s_" + toBase64url((await sha256(publicKey)).slice(0, 18));
}

/**
 * sessionChallenge is what a session proof signs (auth.SessionChallenge,
 * docs/api.md Sessions): five lines joined by "\n".
 */
export function sessionChallenge(audience: string, owner: string, publicKey: Uint8Array, expires: number): Uint8Array {
  return utf8(["goat-gateway session v1", audience, owner, toBase64url(publicKey), new Date(expires).toISOString()].join("\n"));
}
