// Node-only persistence: FileStore keeps each repository in an append-only
// JSON-lines file (one canonical commit per line) plus a small meta file,
// and the session key as its seed. Import from "@goat-gateway/sdk/node".

import { appendFile, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { commitJSON, type Commit } from "./commit.js";
import { emptyMeta, type Persistence, type RepoMeta, type StoredSession } from "./store.js";
import type { StoredTrust } from "./trust.js";

/** FileStore persists replicas under a directory. */
export class FileStore implements Persistence {
  readonly extractableKeys = true;

  constructor(readonly dir: string) {}

  private async ensureDir(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
  }

  async load(repo: string): Promise<{ commits: Commit[]; meta: RepoMeta }> {
    const commits: Commit[] = [];
    const text = await readFile(join(this.dir, `${repo}.commits`), "utf8").catch(() => "");
    const lines = text.split("\n");
    // A torn last line (a crash mid-append) is dropped: every earlier line
    // was complete when the next one was appended.
    for (let i = 0; i < lines.length; i++) {
      if (!lines[i]) continue;
      try {
        commits.push(JSON.parse(lines[i]) as Commit);
      } catch (e) {
        if (i < lines.length - 1) throw e;
      }
    }
    const meta = await readFile(join(this.dir, `${repo}.meta.json`), "utf8").then(
      (t) => JSON.parse(t) as RepoMeta,
      () => emptyMeta(),
    );
    return { commits, meta };
  }

  async append(repo: string, commits: Commit[]): Promise<void> {
    await this.ensureDir();
    await appendFile(join(this.dir, `${repo}.commits`), commits.map((c) => commitJSON(c) + "\n").join(""));
  }

  async saveMeta(repo: string, meta: RepoMeta): Promise<void> {
    await this.ensureDir();
    await atomicWrite(join(this.dir, `${repo}.meta.json`), JSON.stringify(meta));
  }

  async loadSession(): Promise<StoredSession | undefined> {
    return readFile(join(this.dir, "session.json"), "utf8").then(
      (t) => JSON.parse(t) as StoredSession,
      () => undefined,
    );
  }

  async saveSession(s: StoredSession): Promise<void> {
    await this.ensureDir();
    const { privateKey: _k, ...rest } = s;
    await atomicWrite(join(this.dir, "session.json"), JSON.stringify(rest), 0o600);
  }

  async loadTrust(): Promise<StoredTrust | undefined> {
    return readFile(join(this.dir, "records.json"), "utf8").then(
      (t) => JSON.parse(t) as StoredTrust,
      () => undefined,
    );
  }

  async saveTrust(t: StoredTrust): Promise<void> {
    await this.ensureDir();
    await atomicWrite(join(this.dir, "records.json"), JSON.stringify(t));
  }

  async close(): Promise<void> {}
}

async function atomicWrite(path: string, data: string, mode = 0o644): Promise<void> {
  const tmp = `${path}.${Math.random().toString(36).slice(2)}.tmp`;
  await writeFile(tmp, data, { mode });
  await rename(tmp, path);
}

export * from "./index.js";
