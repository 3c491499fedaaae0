// OPFS persistence for browsers (DESIGN section 11): each repository's
// commits in an append-only log in the origin private file system, in the
// Go storage package's format (logformat.ts), written by a dedicated worker
// with synchronous access handles and flushed before an append resolves.
// Meta (cursor, offline queue) and the non-extractable session key stay in
// IndexedDB, which can hold a CryptoKey and replace a record atomically.
//
// Tabs: a sync access handle is exclusive, so the worker opens one per
// operation, and appends take a Web Lock per repository: two tabs append
// in turn, each at the file's current end, with sequence numbers that keep
// increasing along the file. A torn tail (a crash mid-append) is cut on
// load, as Go's recovery does.
//
// openPersistence picks OPFS where the browser has it and IndexedDB where
// it does not.

import type { Commit } from "./commit.js";
import { IndexedDBStore } from "./idb.js";
import { decodeLog, encodeHeader, encodeRecords, headerSize } from "./logformat.js";
import type { Persistence, RepoMeta, StoredSession } from "./store.js";

// The worker's whole source: it runs in a Blob URL, so the package needs no
// separate worker file that bundlers would have to know about.
const workerSource = `
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function handle(dir, file) {
  const root = await navigator.storage.getDirectory();
  const d = await root.getDirectoryHandle(dir, { create: true });
  const fh = await d.getFileHandle(file, { create: true });
  for (let i = 0; ; i++) {
    try { return await fh.createSyncAccessHandle(); }
    catch (e) { if (e.name !== "NoModificationAllowedError" || i > 500) throw e; await sleep(5); }
  }
}
onmessage = async (e) => {
  const m = e.data;
  try {
    const h = await handle(m.dir, m.file);
    try {
      const size = h.getSize();
      if (m.op === "read") {
        const from = Math.min(m.from || 0, size);
        const b = new Uint8Array(size - from);
        h.read(b, { at: from });
        postMessage({ id: m.id, size, bytes: b }, [b.buffer]);
      } else if (m.op === "append") {
        if (size !== m.at) { postMessage({ id: m.id, size, moved: true }); return; }
        let at = size;
        for (const b of m.chunks) { h.write(b, { at }); at += b.byteLength; }
        h.flush();
        postMessage({ id: m.id, size: at });
      } else if (m.op === "truncate") {
        h.truncate(m.size);
        h.flush();
        postMessage({ id: m.id, size: m.size });
      } else if (m.op === "size") {
        postMessage({ id: m.id, size });
      }
    } finally { h.close(); }
  } catch (err) {
    postMessage({ id: m.id, error: String((err && err.message) || err) });
  }
};
`;

interface Reply {
  id: number;
  size: number;
  bytes?: Uint8Array;
  moved?: boolean;
  error?: string;
}

interface RepoState {
  /** The file size this tab last saw (a different size means another tab appended). */
  size: number;
  lastSeq: bigint;
  /** Whether each commit's resolved value is a tombstone (flag bit 2), for deltas on them. */
  deleted: Map<string, boolean>;
}

/** OPFSStore persists replicas in the origin private file system (commits) and IndexedDB (meta, session). */
export class OPFSStore implements Persistence {
  readonly extractableKeys = false;
  readonly kind = "opfs";
  private nextId = 1;
  private waiting = new Map<number, (r: Reply) => void>();
  private repos = new Map<string, RepoState>();

  private constructor(
    private readonly dir: string,
    private readonly worker: Worker,
    private readonly idb: IndexedDBStore,
  ) {
    worker.onmessage = (e: MessageEvent<Reply>) => {
      const w = this.waiting.get(e.data.id);
      this.waiting.delete(e.data.id);
      w?.(e.data);
    };
  }

  /** available reports whether this browser has OPFS, workers and Web Locks (open checks the sync access handles). */
  static available(): boolean {
    // Sync access handles exist only in workers: open() asks the worker.
    const g = globalThis as { navigator?: Navigator; Worker?: unknown };
    return typeof g.navigator?.storage?.getDirectory === "function" && typeof g.Worker === "function" && typeof g.navigator?.locks?.request === "function";
  }

  /** open opens the store named name (an OPFS directory and an IndexedDB database of that name). */
  static async open(name = "goat"): Promise<OPFSStore> {
    const url = URL.createObjectURL(new Blob([workerSource], { type: "text/javascript" }));
    const worker = new Worker(url);
    const s = new OPFSStore(`goat-${name}`, worker, await IndexedDBStore.open(name));
    // Fails here, not at the first write, where OPFS or its sync access
    // handles are missing or refused.
    try {
      await s.call({ op: "size", file: "probe" });
    } catch (e) {
      worker.terminate();
      throw e;
    }
    return s;
  }

  private call(m: { op: string; file: string; from?: number; at?: number; size?: number; chunks?: Uint8Array[] }): Promise<Reply> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, (r) => (r.error ? reject(new Error(`OPFS ${m.op} ${m.file}: ${r.error}`)) : resolve(r)));
      this.worker.postMessage({ ...m, id, dir: this.dir });
    });
  }

  private lock<T>(repo: string, fn: () => Promise<T>): Promise<T> {
    return navigator.locks.request(`${this.dir}/${repo}`, fn) as Promise<T>;
  }

  async load(repo: string): Promise<{ commits: Commit[]; meta: RepoMeta }> {
    const file = `${repo}.log`;
    const commits = await this.lock(repo, async () => {
      const r = await this.call({ op: "read", file });
      const st: RepoState = { size: r.size, lastSeq: 0n, deleted: new Map() };
      this.repos.set(repo, st);
      if (r.size === 0) return [];
      const log = await decodeLog(r.bytes!);
      if (log.goodLength < r.size) {
        await this.call({ op: "truncate", file, size: log.goodLength });
        st.size = log.goodLength;
      }
      st.lastSeq = log.lastSeq;
      for (const c of log.commits) this.remember(st, c);
      return log.commits;
    });
    const { meta } = await this.idb.load(repo);
    return { commits, meta };
  }

  private remember(st: RepoState, c: Commit): void {
    let del: boolean;
    if (c.data) del = c.data.isDeleted === true;
    else {
      del = st.deleted.get(c.delta!.base) ?? false;
      for (const op of c.delta!.ops) {
        if (op.field !== "isDeleted") continue;
        if (op.op === "set") del = op.value === true;
        else if (op.op === "unset") del = false;
      }
    }
    st.deleted.set(c.id, del);
  }

  async append(repo: string, commits: Commit[]): Promise<void> {
    if (commits.length === 0) return;
    const file = `${repo}.log`;
    await this.lock(repo, async () => {
      let st = this.repos.get(repo);
      if (!st) this.repos.set(repo, (st = { size: 0, lastSeq: 0n, deleted: new Map() }));
      for (;;) {
        const cur = await this.call({ op: "size", file });
        if (cur.size !== st.size) {
          // Another tab appended: catch up with its sequence numbers.
          const r = await this.call({ op: "read", file, from: 0 });
          const log = await decodeLog(r.bytes!);
          st.lastSeq = log.lastSeq;
          for (const c of log.commits) this.remember(st, c);
          st.size = log.goodLength;
          if (log.goodLength < r.size) await this.call({ op: "truncate", file, size: log.goodLength });
        }
        // Another tab may have stored some of these already (both tabs
        // receive the gateway's commits): a log holds each commit once.
        const fresh = commits.filter((c) => !st.deleted.has(c.id));
        if (fresh.length === 0) return;
        const chunks: Uint8Array[] = [];
        if (st.size === 0) chunks.push(encodeHeader(crypto.getRandomValues(new Uint8Array(16))));
        const group = Math.max(st.size, headerSize);
        for (const c of fresh) this.remember(st, c);
        chunks.push(encodeRecords(fresh, st.lastSeq + 1n, group, (c) => st.deleted.get(c.id) ?? false));
        const r = await this.call({ op: "append", file, at: st.size, chunks });
        if (r.moved) {
          for (const c of fresh) st.deleted.delete(c.id);
          continue; // the file moved between size and append: read again
        }
        st.size = r.size;
        st.lastSeq += BigInt(fresh.length);
        return;
      }
    });
  }

  saveMeta(repo: string, meta: RepoMeta): Promise<void> {
    return this.idb.saveMeta(repo, meta);
  }

  loadSession(): Promise<StoredSession | undefined> {
    return this.idb.loadSession();
  }

  saveSession(s: StoredSession): Promise<void> {
    return this.idb.saveSession(s);
  }

  async close(): Promise<void> {
    this.worker.terminate();
    await this.idb.close();
  }
}

/**
 * openPersistence returns the best persistence of this browser: OPFSStore
 * where OPFS with sync access handles is available, IndexedDBStore
 * otherwise (and where opening OPFS fails, as in some private modes).
 */
export async function openPersistence(name = "goat"): Promise<OPFSStore | IndexedDBStore> {
  if (OPFSStore.available()) {
    try {
      return await OPFSStore.open(name);
    } catch {
      // fall through to IndexedDB
    }
  }
  return IndexedDBStore.open(name);
}
