// Persistence: where a replica keeps its commits, its sync state and its
// session key between runs. Implementations: MemoryStore (here),
// IndexedDBStore (idb.ts, browsers), FileStore (node.ts, Node).

import type { Commit } from "./commit.js";
import type { StoredTrust } from "./trust.js";

/** Per-repository sync state. */
export interface RepoMeta {
  /** The log cursor to resume catch-up from ("" = none). */
  cursor: string;
  /** Local commits the gateway has not acknowledged yet, in order (the offline queue). */
  unpushed: string[];
  /** Local commits the gateway refused for good (and their local descendants): left out when loading. */
  rejected?: string[];
}

/** A session key as stored. Browsers store the CryptoKey itself (non-extractable); files store the seed. */
export interface StoredSession {
  /** Session id (derived from the public key). */
  id: string;
  /** Raw public key, unpadded base64url. */
  publicKey: string;
  privateKey?: CryptoKey;
  /** Hex seed, only where keys are extractable (files). */
  seed?: string;
  /** Expiry, unix ms. */
  expires: number;
  /** The gateway URL and subject it was registered at ("" until registered). */
  registeredAt: string;
}

/** Persistence is the storage a replica uses. Every method may be called concurrently for different repositories. */
export interface Persistence {
  /** Whether session keys must be extractable (stored as seeds). */
  readonly extractableKeys: boolean;
  /** load returns a repository's commits (in any order: the replica sorts them) and its meta. */
  load(repo: string): Promise<{ commits: Commit[]; meta: RepoMeta }>;
  /** append saves commits after those already saved. */
  append(repo: string, commits: Commit[]): Promise<void>;
  /** saveMeta replaces a repository's meta. */
  saveMeta(repo: string, meta: RepoMeta): Promise<void>;
  loadSession(): Promise<StoredSession | undefined>;
  saveSession(s: StoredSession): Promise<void>;
  /** loadTrust and saveTrust keep the root keys and the session records of the authors of held commits (optional: without them records are fetched again after a restart). */
  loadTrust?(): Promise<StoredTrust | undefined>;
  saveTrust?(t: StoredTrust): Promise<void>;
  close(): Promise<void>;
}

const emptyMeta = (): RepoMeta => ({ cursor: "", unpushed: [] });

/** MemoryStore keeps everything in memory: nothing survives the process. */
export class MemoryStore implements Persistence {
  readonly extractableKeys = false;
  private repos = new Map<string, { commits: Commit[]; meta: RepoMeta }>();
  private session?: StoredSession;
  private trust?: StoredTrust;

  private entry(repo: string) {
    let e = this.repos.get(repo);
    if (!e) this.repos.set(repo, (e = { commits: [], meta: emptyMeta() }));
    return e;
  }

  async load(repo: string) {
    const e = this.entry(repo);
    return { commits: [...e.commits], meta: { ...e.meta, unpushed: [...e.meta.unpushed] } };
  }

  async append(repo: string, commits: Commit[]) {
    this.entry(repo).commits.push(...commits);
  }

  async saveMeta(repo: string, meta: RepoMeta) {
    this.entry(repo).meta = { ...meta, unpushed: [...meta.unpushed] };
  }

  async loadSession() {
    return this.session;
  }

  async saveSession(s: StoredSession) {
    this.session = s;
  }

  async loadTrust() {
    return this.trust;
  }

  async saveTrust(t: StoredTrust) {
    this.trust = t;
  }

  async close() {}
}

export { emptyMeta };
