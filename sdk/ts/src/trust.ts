// The chain of trust on the client side (docs/security.md, "Session records
// are public certificates"): every commit received from the gateway is
// checked against its author's session record, and the record against the
// root keys the gateway publishes (GET /v1/info rootKeys), before it enters
// the replica. The records of the authors of held commits are kept (in the
// Persistence, when it can) so that this client can hand them to a gateway
// that lost them (`sessions` of a sync request, docs/sync.md).
//
// Signatures are checked with WebCrypto Ed25519, many at once
// (Promise.all): Node runs them on its thread pool, browsers off the main
// thread's JavaScript.

import { fromBase64url, fromHex, utf8 } from "./bytes.js";
import { isMerge, type Commit } from "./commit.js";
import { importPublicKey, sessionId, verify } from "./crypto.js";
import { GoatError } from "./errors.js";
import { canonicalize, isObject } from "./json.js";

/** A session record as GET /v1/sessions/{id} answers it. */
export interface SessionRecord {
  id: string;
  owner: string;
  roles: string[];
  issuer?: string;
  custodial?: true;
  publicKey: string;
  expires: number;
  rootSig: string;
  revoked?: number;
  revokeSig?: string;
}

/** What a Persistence keeps of the trust state. */
export interface StoredTrust {
  rootKeys: string[];
  records: SessionRecord[];
}

/** Where trust asks the gateway. */
export interface TrustIO {
  rootKeys(): Promise<string[]>;
  /** session returns the record of id, or throws GoatError "not-found". */
  session(id: string): Promise<unknown>;
}

const recordContext = "goat-gateway session-record v1\n";
const revocationContext = "goat-gateway session-revocation v1\n";
const date = (ms: number): string => new Date(ms).toISOString();

/** recordSigningBytes is what rootSig signs (core.SessionRecord.SigningBytes). */
export function recordSigningBytes(r: SessionRecord): Uint8Array {
  const d: Record<string, unknown> = { id: r.id, owner: r.owner, roles: r.roles, publicKey: r.publicKey, expires: date(r.expires) };
  if (r.issuer) d.issuer = r.issuer;
  if (r.custodial) d.custodial = true;
  return utf8(recordContext + canonicalize(d));
}

/** revocationSigningBytes is what revokeSig signs. */
export function revocationSigningBytes(id: string, revoked: number): Uint8Array {
  return utf8(revocationContext + canonicalize({ id, revoked: date(revoked) }));
}

const recordFields = ["id", "owner", "roles", "issuer", "custodial", "publicKey", "expires", "rootSig", "revoked", "revokeSig"];

/** decodeRecord checks a record's shape (not its signatures). */
export function decodeRecord(v: unknown): SessionRecord {
  const bad = (m: string): never => {
    throw new GoatError("invalid", `session record: ${m}`);
  };
  if (!isObject(v)) bad("not an object");
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!recordFields.includes(k)) bad(`${k}: unknown field`);
  for (const k of ["id", "owner", "publicKey", "rootSig"]) if (typeof o[k] !== "string") bad(`${k}: missing or not a string`);
  if (!Array.isArray(o.roles) || !o.roles.every((x) => typeof x === "string")) bad("roles: not an array of strings");
  if (typeof o.expires !== "number") bad("expires: not a number");
  if (o.issuer !== undefined && typeof o.issuer !== "string") bad("issuer: not a string");
  if (o.custodial !== undefined && o.custodial !== true) bad("custodial: must be true when present");
  if (o.revoked !== undefined && typeof o.revoked !== "number") bad("revoked: not a number");
  if (o.revokeSig !== undefined && (typeof o.revokeSig !== "string" || o.revoked === undefined)) bad("revokeSig: not a string, or without revoked");
  return o as unknown as SessionRecord;
}

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

async function verifyAny(roots: CryptoKey[], msg: Uint8Array, sig64: string): Promise<boolean> {
  let sig: Uint8Array;
  try {
    sig = fromBase64url(sig64);
  } catch {
    return false;
  }
  for (const k of roots) if (await verify(k, msg, sig)) return true;
  return false;
}

/** A commit that failed verification. */
export interface QuarantinedCommit {
  repo: string;
  id: string;
  reason: string;
}

interface Held {
  rec: SessionRecord;
  key: CryptoKey;
}

/**
 * Trust holds the root keys and the verified session records and checks
 * commits against them. One per Goat client.
 */
export class Trust {
  private roots?: { raw: string[]; keys: CryptoKey[]; ids: Map<string, CryptoKey> };
  private records = new Map<string, Held>();
  private missing = new Map<string, string>();
  private loaded?: Promise<void>;
  private saving: Promise<void> = Promise.resolve();

  constructor(
    private readonly io: TrustIO,
    private readonly store?: { load(): Promise<StoredTrust | undefined>; save(t: StoredTrust): Promise<void> },
  ) {}

  private load(): Promise<void> {
    this.loaded ??= (async () => {
      const t = await this.store?.load().catch(() => undefined);
      if (!t) return;
      await this.setRootKeys(t.rootKeys);
      for (const r of t.records) await this.add(r).catch(() => {});
    })();
    return this.loaded;
  }

  /** setRootKeys takes the keys GET /v1/info publishes; held records that do not verify against them are dropped. */
  async setRootKeys(raw: string[]): Promise<void> {
    if (this.roots && this.roots.raw.join() === raw.join()) return;
    const keys: CryptoKey[] = [];
    const ids = new Map<string, CryptoKey>();
    for (const s of raw) {
      const b = fromBase64url(s);
      if (b.length !== 32) throw new GoatError("invalid", `rootKeys: ${s} is not a 32-byte key`);
      const k = await importPublicKey(b);
      keys.push(k);
      ids.set(await sessionId(b), k);
    }
    this.roots = { raw: [...raw], keys, ids };
    const old = [...this.records.values()].map((h) => h.rec);
    this.records.clear();
    this.missing.clear();
    for (const r of old) await this.add(r).catch(() => {});
    this.save();
  }

  private async rootsNow(): Promise<NonNullable<Trust["roots"]>> {
    await this.load();
    if (!this.roots) await this.setRootKeys(await this.io.rootKeys());
    return this.roots!;
  }

  /** add verifies a record against the root keys and keeps it (the earliest valid revocation stays). */
  async add(v: unknown): Promise<SessionRecord> {
    const rec = { ...decodeRecord(v) };
    const roots = this.roots;
    if (!roots) throw new GoatError("invalid", "no root keys yet");
    const pub = fromBase64url(rec.publicKey);
    if (pub.length !== 32 || (await sessionId(pub)) !== rec.id) throw new GoatError("invalid", `session ${rec.id}: id is not derived from its public key`);
    if (![...rec.roles].sort().every((r, i, a) => r === rec.roles[i] && (i === 0 || a[i - 1] !== r))) {
      throw new GoatError("invalid", `session ${rec.id}: roles must be sorted and unique`);
    }
    if (!(await verifyAny(roots.keys, recordSigningBytes(rec), rec.rootSig))) {
      throw new GoatError("bad-signature", `session ${rec.id}: rootSig is not a root key's signature of the record`);
    }
    if (rec.revoked !== undefined && !(rec.revokeSig && (await verifyAny(roots.keys, revocationSigningBytes(rec.id, rec.revoked), rec.revokeSig)))) {
      delete rec.revoked; // an unproven revocation is ignored, and not relayed
      delete rec.revokeSig;
    }
    const old = this.records.get(rec.id);
    if (old?.rec.revoked !== undefined && (rec.revoked === undefined || old.rec.revoked <= rec.revoked)) return old.rec;
    if (old && sameBytes(recordSigningBytes(old.rec), recordSigningBytes(rec)) && old.rec.revoked === rec.revoked) return old.rec;
    this.records.set(rec.id, { rec, key: await importPublicKey(pub) });
    this.save();
    return rec;
  }

  /** addOwn keeps the client's own record (the answer to its registration). */
  async addOwn(v: unknown): Promise<void> {
    await this.rootsNow();
    await this.add(v);
  }

  private save(): void {
    if (!this.store || !this.roots) return;
    const t: StoredTrust = { rootKeys: this.roots.raw, records: [...this.records.values()].map((h) => h.rec) };
    this.saving = this.saving.then(() => this.store!.save(t)).catch(() => {});
  }

  /** flushed resolves once the records are saved. */
  flushed(): Promise<void> {
    return this.saving;
  }

  private async author(id: string): Promise<{ key: CryptoKey; rec?: SessionRecord }> {
    const roots = await this.rootsNow();
    const root = roots.ids.get(id);
    if (root) return { key: root };
    const held = this.records.get(id);
    if (held) return held;
    const miss = this.missing.get(id);
    if (miss) throw new Untrusted(miss);
    let v: unknown;
    try {
      v = await this.io.session(id);
    } catch (e) {
      if (e instanceof GoatError && e.code === "not-found") {
        const m = `session ${id}: the gateway has no record of it`;
        this.missing.set(id, m);
        throw new Untrusted(m);
      }
      throw e;
    }
    try {
      await this.add(v);
    } catch (e) {
      const m = `session ${id}: ${(e as Error).message}`;
      this.missing.set(id, m);
      throw new Untrusted(m);
    }
    return this.records.get(id)!;
  }

  /**
   * check verifies non-merge commits against their authors' records and
   * returns the reason of each that fails, by id. It throws when it cannot
   * check (the gateway unreachable): nothing should be stored then.
   */
  async check(commits: Commit[]): Promise<Map<string, string>> {
    const bad = new Map<string, string>();
    const authors = new Map<string, { key: CryptoKey; rec?: SessionRecord } | string>();
    for (const c of commits) {
      if (isMerge(c) || authors.has(c.author)) continue;
      try {
        authors.set(c.author, await this.author(c.author));
      } catch (e) {
        if (!(e instanceof Untrusted)) throw e;
        authors.set(c.author, e.message);
      }
    }
    const jobs: Promise<void>[] = [];
    for (const c of commits) {
      if (isMerge(c)) continue;
      const a = authors.get(c.author)!;
      if (typeof a === "string") {
        bad.set(c.id, a);
        continue;
      }
      if (a.rec && c.ts >= a.rec.expires) {
        bad.set(c.id, `commit ${c.id}: ts after its session expired`);
        continue;
      }
      if (a.rec?.revoked !== undefined && c.ts >= a.rec.revoked) {
        bad.set(c.id, `commit ${c.id}: ts after its session was revoked`);
        continue;
      }
      jobs.push(
        (async () => {
          let ok = false;
          try {
            ok = await verify(a.key, fromHex(c.id, 32), fromBase64url(c.sig ?? ""));
          } catch {
            ok = false;
          }
          if (!ok) bad.set(c.id, `commit ${c.id}: bad signature: not its author session's`);
        })(),
      );
    }
    await Promise.all(jobs);
    return bad;
  }

  /** relay returns the held records of the authors of commits (the sessions of a sync request). */
  async relay(commits: Commit[]): Promise<SessionRecord[]> {
    await this.load();
    const out: SessionRecord[] = [];
    const seen = new Set<string>();
    for (const c of commits) {
      if (isMerge(c) || seen.has(c.author)) continue;
      seen.add(c.author);
      const h = this.records.get(c.author);
      if (h) out.push(h.rec);
      if (out.length === 1000) break;
    }
    return out;
  }
}

class Untrusted extends Error {}

