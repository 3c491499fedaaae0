// Commits (DESIGN section 3; core/commit.go, core/names.go): the wire shape,
// its checks, canonical bytes, ids and signatures. A commit is kept as the
// plain JSON object it travels as, so it can be stored (IndexedDB, files)
// and sent without conversion.

import { fromBase64url, fromHex, toBase64url, toHex, utf8 } from "./bytes.js";
import { sha256, sign as edSign, verify as edVerify } from "./crypto.js";
import { checkDelta, type Delta } from "./delta.js";
import { GoatError } from "./errors.js";
import { canonicalize, compareStrings, has, isObject, type JSONObject, type JSONValue } from "./json.js";

/** A commit as it travels (DESIGN section 3). Exactly one of data and delta. */
export interface Commit {
  id: string;
  repo: string;
  key: string;
  /** Sorted ascending, unique; empty for a key's first commit. */
  parents: string[];
  /** Session id, or "merge". */
  author: string;
  /** Unix milliseconds. */
  ts: number;
  /** "ns/version". */
  schema: string;
  data?: JSONObject;
  delta?: Delta;
  /** Unpadded base64url Ed25519 signature over the 32 id bytes; absent on merge commits. */
  sig?: string;
}

/** A commit before it has an id (and a signature). */
export type UnsealedCommit = Omit<Commit, "id" | "sig"> & { id?: string; sig?: string };

/** MergeAuthor is the author of merge commits. */
export const MergeAuthor = "merge";
/** Limits shared with the Go side (core/names.go). */
export const MaxCommitBytes = 1 << 20;
export const MaxParents = 256;
export const MaxTS = 2 ** 53 - 1;

const repoPattern = /^[a-z0-9][a-z0-9_.-]{0,127}$/;
const keyPattern = /^[A-Za-z0-9._~:@-]{1,200}$/;
const authorPattern = /^[A-Za-z0-9_-]{1,64}$/;
const schemaPattern = /^([a-z][a-z0-9_.-]{0,63})\/([1-9][0-9]{0,8})$/;
const idPattern = /^[0-9a-f]{64}$/;

/** validRepoName reports whether name is a repository name. */
export const validRepoName = (name: string): boolean => repoPattern.test(name) && !name.includes("..");
/** validKey reports whether key is an item key. */
export const validKey = (key: string): boolean => keyPattern.test(key);
/** validId reports whether s is a commit id (64 lowercase hex). */
export const validId = (s: unknown): s is string => typeof s === "string" && idPattern.test(s);

/** parseSchemaRef splits "ns/version" (core.ParseSchemaRef). */
export function parseSchemaRef(ref: string): { ns: string; version: number } {
  const m = schemaPattern.exec(ref);
  if (!m) throw new GoatError("invalid", `schema ${JSON.stringify(ref)} must look like "ns/version" (e.g. "task/2")`);
  return { ns: m[1], version: Number(m[2]) };
}

/** isMerge reports whether c is a merge commit. */
export const isMerge = (c: { author: string }): boolean => c.author === MergeAuthor;

/** isDeleted reports whether data marks its item deleted (a tombstone). */
export const isDeleted = (data: JSONObject | undefined): boolean => data?.isDeleted === true;

function bad(msg: string): never {
  throw new GoatError("invalid", msg);
}

/** checkCommit validates everything about c that needs no other commits (core Commit.check). */
export function checkCommit(c: UnsealedCommit): void {
  if (typeof c.repo !== "string" || !validRepoName(c.repo)) bad(`repo: ${JSON.stringify(c.repo)} is not a repository name`);
  if (typeof c.key !== "string" || !validKey(c.key)) bad(`key: ${JSON.stringify(c.key)} is not an item key`);
  if (typeof c.author !== "string" || (c.author !== MergeAuthor && !authorPattern.test(c.author))) bad(`author: ${JSON.stringify(c.author)} is invalid`);
  if (!Number.isInteger(c.ts) || c.ts < 0 || c.ts > MaxTS) bad(`ts: ${c.ts} is outside [0, 2^53)`);
  if (typeof c.schema !== "string") bad("schema: missing");
  parseSchemaRef(c.schema);
  if (!Array.isArray(c.parents)) bad("parents: must be an array");
  if (c.parents.length > MaxParents) throw new GoatError("too-large", `parents: more than ${MaxParents}`);
  for (let i = 0; i < c.parents.length; i++) {
    if (!validId(c.parents[i])) bad(`parents[${i}]: not a commit id`);
    if (i > 0 && c.parents[i - 1] >= c.parents[i]) bad("parents: must be sorted ascending and unique");
  }
  if ((c.data === undefined) === (c.delta === undefined)) bad("exactly one of data and delta must be present");
  if (c.data !== undefined && !isObject(c.data)) bad("data: must be an object");
  if (c.delta !== undefined) {
    if (isMerge(c)) bad("delta: merge commits carry full data");
    checkDelta(c.delta);
  }
  if (isMerge(c)) {
    if (c.sig !== undefined) bad("sig: merge commits are not signed");
    if (c.parents.length < 2) bad("parents: a merge commit has at least two");
  }
}

function body(c: UnsealedCommit, withIdSig: boolean): JSONObject {
  const o: JSONObject = { author: c.author, key: c.key, parents: c.parents, repo: c.repo, schema: c.schema, ts: c.ts };
  if (c.data !== undefined) o.data = c.data;
  else o.delta = c.delta as unknown as JSONValue;
  if (withIdSig) {
    o.id = c.id as string;
    if (c.sig !== undefined) o.sig = c.sig;
  }
  return o;
}

/** canonicalBody returns what c's id is the SHA-256 of: RFC 8785 JSON without id and sig. */
export function canonicalBody(c: UnsealedCommit): string {
  checkCommit(c);
  const s = canonicalize(body(c, false));
  if (s.length * 3 > MaxCommitBytes && utf8(s).length > MaxCommitBytes) throw new GoatError("too-large", "commit is larger than 1 MiB");
  return s;
}

/** commitJSON returns the canonical JSON of a sealed commit including id and sig: its stored and transmitted bytes. */
export function commitJSON(c: Commit): string {
  checkCommit(c);
  if (!validId(c.id)) bad("id: not a commit id");
  return canonicalize(body(c, true));
}

/** computeId returns the id c's content hashes to. */
export async function computeId(c: UnsealedCommit): Promise<string> {
  return toHex(await sha256(canonicalBody(c)));
}

/** seal returns c with its id set. */
export async function seal(c: UnsealedCommit): Promise<Commit> {
  const { sig: _s, ...rest } = c;
  const id = await computeId(rest);
  return { ...rest, id } as Commit;
}

/** signCommit seals c and signs its id with the session's private key. */
export async function signCommit(c: UnsealedCommit, key: CryptoKey): Promise<Commit> {
  if (isMerge(c)) bad("merge commits are not signed");
  const s = await seal(c);
  s.sig = toBase64url(await edSign(key, fromHex(s.id, 32)));
  return s;
}

/** verifySig checks that c's id recomputes and that its sig verifies with pub (core Commit.VerifySig). */
export async function verifySig(c: Commit, pub: CryptoKey): Promise<void> {
  if ((await computeId(c)) !== c.id) bad(`id: ${c.id} does not match the content`);
  let sig: Uint8Array;
  try {
    sig = fromBase64url(c.sig ?? "");
  } catch {
    throw new GoatError("bad-signature", `commit ${c.id}`);
  }
  if (!(await edVerify(pub, fromHex(c.id, 32), sig))) throw new GoatError("bad-signature", `commit ${c.id}`);
}

const commitFields = ["author", "data", "delta", "id", "key", "parents", "repo", "schema", "sig", "ts"];

/**
 * decodeCommit checks a parsed commit strictly (unknown or missing fields,
 * wrong types, bad sig encoding) and that its id recomputes, like
 * core.DecodeCommit. It returns the commit, which is v itself.
 */
export async function decodeCommit(v: unknown): Promise<Commit> {
  if (!isObject(v)) bad("commit must be a JSON object");
  for (const k of Object.keys(v)) if (!commitFields.includes(k)) bad(`${k}: unknown field`);
  for (const k of ["id", "repo", "key", "author", "schema"]) if (typeof v[k] !== "string") bad(`${k}: missing or not a string`);
  if (typeof v.ts !== "number") bad("ts: missing or not a number");
  if (!validId(v.id)) bad("id: not a commit id");
  if (has(v, "sig")) {
    if (typeof v.sig !== "string") bad("sig: not a string");
    let n = 0;
    try {
      n = fromBase64url(v.sig).length;
    } catch {
      /* reported below */
    }
    if (n !== 64) bad("sig: must be 64 bytes of unpadded base64url");
  } else if (v.author !== MergeAuthor) bad("sig: missing (only merge commits are unsigned)");
  const c = v as unknown as Commit;
  const id = await computeId(c);
  if (id !== c.id) bad(`id: ${c.id} does not match the content (computed ${id})`);
  return c;
}

/** compareCommits orders commits by (ts, id): head order (docs/merge.md). */
export function compareCommits(a: { ts: number; id: string }, b: { ts: number; id: string }): number {
  return a.ts !== b.ts ? a.ts - b.ts : compareStrings(a.id, b.id);
}
