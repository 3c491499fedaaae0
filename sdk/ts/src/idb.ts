// IndexedDB persistence for browsers. One database per store name with
// three object stores: commits (key [repo, id]: two tabs of one app share
// the database, and keying by id makes their writes of the same commit one
// record; the replica orders what it loads topologically), meta (one record
// per repository) and session (the session key as a non-extractable
// CryptoKey, which IndexedDB can hold but page scripts cannot read out).

import type { Commit } from "./commit.js";
import { emptyMeta, type Persistence, type RepoMeta, type StoredSession } from "./store.js";

const req = <T>(r: IDBRequest<T>): Promise<T> =>
  new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });

const done = (tx: IDBTransaction): Promise<void> =>
  new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error("IndexedDB transaction aborted"));
  });

/** IndexedDBStore persists replicas in the browser's IndexedDB. */
export class IndexedDBStore implements Persistence {
  readonly extractableKeys = false;
  readonly kind = "indexeddb";
  private constructor(private readonly db: IDBDatabase) {}

  /** open opens (creating if needed) the database named name. */
  static async open(name = "goat"): Promise<IndexedDBStore> {
    const r = indexedDB.open(name, 1);
    r.onupgradeneeded = () => {
      const db = r.result;
      db.createObjectStore("commits");
      db.createObjectStore("meta");
      db.createObjectStore("session");
    };
    return new IndexedDBStore(await req(r));
  }

  async load(repo: string): Promise<{ commits: Commit[]; meta: RepoMeta }> {
    const tx = this.db.transaction(["commits", "meta"], "readonly");
    const range = IDBKeyRange.bound([repo, ""], [repo, "\uffff"]);
    const [commits, meta] = await Promise.all([
      req(tx.objectStore("commits").getAll(range)) as Promise<Commit[]>,
      req(tx.objectStore("meta").get(repo)) as Promise<RepoMeta | undefined>,
    ]);
    return { commits, meta: meta ?? emptyMeta() };
  }

  async append(repo: string, commits: Commit[]): Promise<void> {
    const tx = this.db.transaction("commits", "readwrite");
    const st = tx.objectStore("commits");
    for (const c of commits) st.put(c, [repo, c.id]);
    await done(tx);
  }

  async saveMeta(repo: string, meta: RepoMeta): Promise<void> {
    const tx = this.db.transaction("meta", "readwrite");
    tx.objectStore("meta").put(meta, repo);
    await done(tx);
  }

  async loadSession(): Promise<StoredSession | undefined> {
    const tx = this.db.transaction("session", "readonly");
    return (await req(tx.objectStore("session").get("session"))) as StoredSession | undefined;
  }

  async saveSession(s: StoredSession): Promise<void> {
    const tx = this.db.transaction("session", "readwrite");
    tx.objectStore("session").put(s, "session");
    await done(tx);
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
