// Goat: the client that owns the replicas, the session key, the one event
// stream for all open repositories, and the sync loop (DESIGN section 5,
// client states): clone (log catch-up), live (SSE), heal (digest, then
// reconciliation) after every (re)connect, after a reset, after a gap and
// periodically; a long-poll fallback when a proxy buffers the stream; and
// the offline queue, pushed whenever the gateway is reachable.

import { fromBase64url, fromHex, toBase64url, toHex } from "./bytes.js";
import { exportSeed, generateKeyPair, keyPairFromSeed, sessionChallenge, sessionId, sign } from "./crypto.js";
import { GoatError, isCode } from "./errors.js";
import { GatewayClient, type HTTPOptions } from "./http.js";
import { localOf, Replica } from "./replica.js";
import { Registry, type Schema } from "./schema.js";
import { EventStream } from "./sse.js";
import { MemoryStore, type Persistence, type StoredSession } from "./store.js";
import { clone, reconcile, type Transport } from "./sync.js";
import { Trust, type QuarantinedCommit } from "./trust.js";
import { Tabs, type TabMessage } from "./tabs.js";

/** Connection status. */
export type Status = "offline" | "connecting" | "live" | "polling" | "closed";

/** Options of Goat.open. */
export interface GoatOptions extends HTTPOptions {
  /** Where replicas live (default: MemoryStore). */
  persistence?: Persistence;
  /** Schemas the app knows (they are also fetched from the gateway). */
  schemas?: Schema[];
  /**
   * The newest schema version of each namespace this build reads and writes (DESIGN section 2,
   * "Schema branches"): items are seen through that branch, and writes merge with newer branches
   * on the gateway. Default: the newest version of each namespace in `schemas`.
   */
  versions?: Record<string, number>;
  /** Session lifetime in ms (default and maximum 30 days). */
  sessionTTL?: number;
  /** ms without `ready` before falling back to long polling (default 10 s). */
  readyTimeout?: number;
  /** ms of long polling before the event stream is tried again (default 30 s, doubling up to 5 minutes while it stays buffered). */
  sseRetry?: number;
  /**
   * Share one connection among the tabs of this app (tabs.ts): the tabs
   * that pass the same name elect a leader that holds the stream and does
   * the network writes; the others follow over a BroadcastChannel and take
   * over when it closes. Ignored where BroadcastChannel or Web Locks are
   * missing (Node).
   */
  tabs?: string;
  /** ms between periodic heals (default 5 minutes). */
  healInterval?: number;
  /** Logger for background errors (default: none). */
  log?: (msg: string, ...args: unknown[]) => void;
  /** Clock (tests). */
  now?: () => number;
}

const day = 24 * 3600 * 1000;

/**
 * Goat is a connection to one gateway and the local replicas of the
 * repositories opened through it. Reads and writes on replicas never wait
 * for the network; the sync loop runs in the background.
 */
export class Goat {
  readonly http: GatewayClient;
  readonly registry: Registry;
  private readonly store: Persistence;
  private readonly replicas = new Map<string, Promise<Replica>>();
  private readonly opened = new Map<string, Replica>();
  private readonly dirty = new Set<Replica>();
  private stream?: EventStream;
  private session?: StoredSession & { privateKey: CryptoKey };
  private sessionPromise?: Promise<StoredSession & { privateKey: CryptoKey }>;
  private registered?: Promise<void>;
  private statusValue: Status = "connecting";
  private statusListeners = new Set<(s: Status) => void>();
  private closedFlag = false;
  private pushing?: Promise<void>;
  private pushAgain = false;
  private healing = new Map<Replica, Promise<void>>();
  private healAgain = new Set<Replica>();
  private created = new Map<Replica, Promise<void>>();
  /** Repositories an admin deleted on the gateway (a reset with code "deleted"): no longer synced. */
  private deletedRepos = new Set<string>();
  private streamed = new Set<string>();
  /** While long polling: the event stream tried again, and the delay before the next try. */
  private probe?: EventStream;
  private probeTimer?: ReturnType<typeof setTimeout>;
  private probeDelay = 30_000;
  /** Replicas whose first heal failed: the retry timer and its last delay. */
  private healRetry = new Map<Replica, ReturnType<typeof setTimeout>>();
  private healDelay = new Map<Replica, number>();
  /** The tab group, when tabs are shared; follower until this tab is elected. */
  private tabs?: Tabs;
  private follower = false;
  private sessionShared?: () => void;
  private rejectListeners = new Set<(repo: string, ids: string[], reason: string) => void>();
  private polling = new Map<string, AbortController>();
  /** Commits of commit events not ingested yet, by replica (arrive). */
  private arrived = new Map<Replica, unknown[]>();
  private timers: ReturnType<typeof setInterval>[] = [];
  private schemaFetch?: Promise<void>;
  private readonly log: (msg: string, ...args: unknown[]) => void;
  private readonly versions: Record<string, number>;
  private readonly now: () => number;
  private readonly onOnline = () => this.wakeUp();
  // Browsers keep a stream open for a while after going offline; drop it so
  // the status says offline now and the stream reconnects when back.
  private readonly onOffline = () => {
    this.setStatus("offline");
    this.stream?.drop();
  };
  private idle = new Set<() => void>();
  private readonly trust: Trust;
  private quarantineListeners = new Set<(q: QuarantinedCommit[]) => void>();

  private constructor(private readonly opts: GoatOptions) {
    this.http = new GatewayClient(opts);
    this.registry = new Registry(opts.schemas ?? []);
    this.versions = { ...(opts.versions ?? {}) };
    if (!opts.versions) for (const s of opts.schemas ?? []) this.versions[s.ns] = Math.max(this.versions[s.ns] ?? 0, s.version);
    this.store = opts.persistence ?? new MemoryStore();
    const store = this.store;
    this.trust = new Trust(
      { rootKeys: async () => (await this.http.info()).rootKeys, session: (id) => this.http.session(id) },
      store.loadTrust && store.saveTrust ? { load: () => store.loadTrust!(), save: (t) => store.saveTrust!(t) } : undefined,
    );
    this.log = opts.log ?? (() => {});
    this.now = opts.now ?? Date.now;
  }

  /** open creates a client. It does not wait for the network. */
  static async open(opts: GoatOptions): Promise<Goat> {
    const g = new Goat(opts);
    await g.loadSession();
    if (opts.tabs && Tabs.available()) {
      g.follower = true;
      g.tabs = new Tabs(opts.tabs, { onLeader: () => void g.becomeLeader(), onMessage: (m) => void g.onTabMessage(m) });
    }
    g.timers.push(setInterval(() => g.healAll(), opts.healInterval ?? 5 * 60_000));
    globalThis.addEventListener?.("online", g.onOnline);
    globalThis.addEventListener?.("offline", g.onOffline);
    return g;
  }

  /** status is the connection state. */
  get status(): Status {
    return this.statusValue;
  }

  /** onStatus calls cb on every status change; it returns the unsubscribe function. */
  onStatus(cb: (s: Status) => void): () => void {
    this.statusListeners.add(cb);
    return () => this.statusListeners.delete(cb);
  }

  private setStatus(s: Status): void {
    if (this.statusValue === s || this.statusValue === "closed") return;
    this.statusValue = s;
    if (this.tabs && !this.follower) this.tabs.post({ t: "status", status: s });
    for (const cb of [...this.statusListeners]) cb(s);
  }

  /**
   * quarantined lists the received commits that failed verification (a
   * forged signature, an author whose session record does not verify
   * against the gateway's root keys, a ts outside the session's life, or a
   * parent among them), in the repositories opened so far: never applied,
   * never shown. `count` and `ids` summarize it.
   */
  get quarantined(): { count: number; ids: string[]; commits: QuarantinedCommit[] } {
    const commits = [...this.opened.values()].flatMap((r) => r.quarantined());
    return { count: commits.length, ids: commits.map((q) => q.id), commits };
  }

  /** onQuarantine calls cb with the full list whenever a commit is quarantined; it returns the unsubscribe function. */
  onQuarantine(cb: (q: QuarantinedCommit[]) => void): () => void {
    this.quarantineListeners.add(cb);
    return () => this.quarantineListeners.delete(cb);
  }

  /** sessionId is the id of the session that signs this client's commits. */
  get sessionId(): string | undefined {
    return this.session?.id;
  }

  /**
   * repo opens the replica of a repository: local state is loaded before
   * it resolves, the network catches up in the background. The gateway
   * creates the repository when it is first opened.
   */
  repo(name: string): Promise<Replica> {
    let p = this.replicas.get(name);
    if (!p) {
      p = this.openRepo(name);
      this.replicas.set(name, p);
    }
    return p;
  }

  /** peek returns the replica of a repository if it is open (its local state loaded), without opening it. */
  peek(name: string): Replica | undefined {
    return this.opened.get(name);
  }

  private async openRepo(name: string): Promise<Replica> {
    const r = new Replica(name, {
      registry: this.registry,
      persistence: this.store,
      session: () => this.signingSession(),
      onLocalCommit: (rep) => (this.follower ? this.tabs!.post({ t: "commits", repo: rep.name, commits: rep.unpushedCommits() }) : this.schedulePush(rep)),
      onGap: (rep) => (this.follower ? this.tabs!.post({ t: "want", repo: rep.name }) : this.heal(rep)),
      onAdded: (rep, commits) => this.tabs && !this.follower && this.tabs.post({ t: "added", repo: rep.name, commits }),
      onAcknowledged: (rep, ids) => this.tabs && !this.follower && this.tabs.post({ t: "acked", repo: rep.name, ids }),
      ensureSchemas: (refs) => this.ensureSchemas(refs),
      verify: (cs) => this.trust.check(cs),
      onQuarantine: () => {
        const q = this.quarantined.commits;
        for (const cb of [...this.quarantineListeners]) cb(q);
      },
      view: () => ({ versions: this.versions }),
      now: this.now,
      log: this.log,
    });
    await r.load();
    this.opened.set(name, r);
    if (r.unpushedCommits().length) this.dirty.add(r);
    if (this.follower) {
      this.tabs!.post({ t: "want", repo: name });
      if (r.unpushedCommits().length) this.tabs!.post({ t: "commits", repo: name, commits: r.unpushedCommits() });
      return r;
    }
    this.startStream();
    void this.heal(r); // joins the stream once the gateway has the repository
    return r;
  }

  // ---- session --------------------------------------------------------------

  private async loadSession(): Promise<void> {
    const s = await this.store.loadSession();
    if (s && s.expires > this.now() + day) {
      const privateKey = s.privateKey ?? (s.seed ? (await keyPairFromSeed(fromHex(s.seed, 32), true)).privateKey : undefined);
      if (privateKey) this.session = { ...s, privateKey };
    }
  }

  private signingSession(): Promise<StoredSession & { privateKey: CryptoKey }> {
    if (this.session) return Promise.resolve(this.session);
    this.sessionPromise ??= (async () => {
      if (this.follower) {
        // One session for all tabs: the leader makes it and stores it.
        await new Promise<void>((resolve) => (this.sessionShared = resolve));
        await this.loadSession();
        if (this.session) return this.session;
      }
      const kp = await generateKeyPair(this.store.extractableKeys);
      const ttl = Math.min(this.opts.sessionTTL ?? 30 * day, 30 * day) - 60_000;
      const s: StoredSession & { privateKey: CryptoKey } = {
        id: await sessionId(kp.publicKeyBytes),
        publicKey: toBase64url(kp.publicKeyBytes),
        privateKey: kp.privateKey,
        expires: this.now() + ttl,
        registeredAt: "",
      };
      if (this.store.extractableKeys) {
        const { privateKey: _k, ...rest } = s;
        await this.store.saveSession({ ...rest, seed: toHex(await exportSeed(kp.privateKey)) });
      } else await this.store.saveSession(s);
      this.session = s;
      this.registered = undefined;
      return s;
    })();
    return this.sessionPromise;
  }

  /** register makes sure the signing session is registered with the gateway (before any push). */
  private ensureRegistered(): Promise<void> {
    this.registered ??= (async () => {
      const s = await this.signingSession();
      if (s.registeredAt === this.http.url) return;
      const info = await this.http.info();
      await this.trust.setRootKeys(info.rootKeys);
      const pub = fromBase64url(s.publicKey);
      const owner = subjectOf(await this.http.token());
      const proof = await sign(s.privateKey, sessionChallenge(info.audience, owner, pub, s.expires));
      const own = await this.http.createSession(s.publicKey, s.expires, toBase64url(proof));
      // Our own record, relayed with our commits to a gateway that lost it.
      await this.trust.addOwn(own).catch((e) => this.log("own session record: %s", (e as Error).message));
      s.registeredAt = this.http.url;
      const { privateKey, ...rest } = s;
      const stored = await this.store.loadSession();
      await this.store.saveSession(this.store.extractableKeys ? { ...rest, seed: stored?.seed } : { ...rest, privateKey });
    })().catch((e) => {
      this.registered = undefined;
      throw e;
    });
    return this.registered;
  }

  // ---- schemas -------------------------------------------------------------

  private ensureSchemas(refs: string[]): Promise<void> {
    if (refs.every((r) => this.registry.has(r))) return Promise.resolve();
    return this.refreshSchemas();
  }

  /** refreshSchemas loads every schema the gateway knows. */
  refreshSchemas(): Promise<void> {
    this.schemaFetch ??= (async () => {
      try {
        const list = await this.http.schemas();
        list.sort((a, b) => (a.ns < b.ns ? -1 : a.ns > b.ns ? 1 : a.version - b.version));
        let n = 0;
        for (const listed of list) {
          const { retired, ...s } = listed as Schema & { retired?: boolean };
          const ref = `${s.ns}/${s.version}`;
          try {
            if (!this.registry.has(ref)) {
              this.registry.add(s);
              n++;
            }
            // Rollback and its undoing: the gateway's word on retirement.
            if (this.registry.isRetired(ref) !== !!retired) {
              this.registry.retire(ref, !!retired);
              n++;
            }
          } catch (e) {
            this.log("schema %s/%d: %s", s.ns, s.version, (e as Error).message);
          }
        }
        if (n) for (const r of this.opened.values()) r.invalidate();
      } finally {
        this.schemaFetch = undefined;
      }
    })();
    return this.schemaFetch;
  }

  /** publishSchema registers a schema with the gateway (idempotent) and locally. */
  async publishSchema(s: Schema): Promise<void> {
    await this.http.putSchema(s);
    if (!this.registry.has(`${s.ns}/${s.version}`)) this.registry.add(s);
  }

  // ---- the sync loop ---------------------------------------------------------

  private transport(r: Replica): Transport {
    return {
      log: (repo, cursor, limit) => this.http.log(repo, cursor, limit),
      sync: async (repo, req) => {
        // The records of the pushed commits' authors, for a gateway that
        // lost them (docs/sync.md, "Session records in sync requests").
        if (req.commits?.length && !req.sessions) {
          const sessions = await this.trust.relay(req.commits);
          if (sessions.length) req = { ...req, sessions };
        }
        const resp = await this.http.sync(repo, req);
        this.handleRejections(r, resp.results ?? []);
        return resp;
      },
    };
  }

  // A commit the gateway refuses for a reason that will not change (schema,
  // authorization, signature) is dropped locally, with what was built on
  // it; otherwise every heal would push it again and never get in sync.
  // Missing parents and unavailability are transient and retried.
  private handleRejections(r: Replica, results: { id: string; status: string; reason?: string; problemType?: string }[]): void {
    if (results.some((x) => x.status === "rejected" && /unauthenticated/.test(x.problemType ?? "")) && this.session) {
      // The gateway does not know the session (a new data directory behind
      // the same URL): register it again; the commits are pushed again.
      this.session.registeredAt = "";
      this.registered = undefined;
    }
    const final = results.filter((x) => x.status === "rejected" && !/missing-parents|unavailable|rate-limited|internal|unauthenticated/.test(x.problemType ?? ""));
    if (final.length === 0) return;
    for (const x of final) this.log("%s: commit %s rejected: %s", r.name, x.id, x.reason);
    const dropped = r.reject(final.map((x) => x.id));
    if (dropped.length) this.rejectListeners.forEach((cb) => cb(r.name, dropped, final[0].reason ?? ""));
  }

  /** onReject calls cb when the gateway refuses local commits for good (they are dropped locally). */
  onReject(cb: (repo: string, ids: string[], reason: string) => void): () => void {
    this.rejectListeners.add(cb);
    return () => this.rejectListeners.delete(cb);
  }

  private startStream(): void {
    if (this.stream || this.closedFlag) return;
    this.stream = this.newStream();
    this.stream.start();
  }

  /**
   * newStream makes the event stream. Its handlers act only while it is
   * the client's stream, or, as a probe during long polling, to take over
   * when its `ready` arrives (a return to SSE).
   */
  private newStream(): EventStream {
    const s: EventStream = new EventStream(
      this.http,
      [...this.streamed],
      {
        onReady: () => {
          if (this.probe === s) this.returnToSSE(s);
          if (this.stream !== s) return;
          this.setStatus("live");
          this.healAll();
        },
        onDown: (e) => {
          if (this.stream !== s || this.closedFlag || this.statusValue === "polling") return;
          // A repository of the stream was deleted while it was down (the
          // reset was missed): the heals find which one (410) and drop it
          // from the stream, which otherwise fails as a whole until the
          // periodic heal.
          if (isCode(e, "repo-deleted")) this.healAll();
          const offline = unreachable(e) || globalThis.navigator?.onLine === false;
          this.setStatus(offline ? "offline" : "connecting");
        },
        onFallback: () => {
          if (this.probe === s) {
            // Still buffered: keep polling, try again later.
            this.probe = undefined;
            void s.close();
            this.scheduleProbe(Math.min(this.probeDelay * 2, 5 * 60_000));
          } else if (this.stream === s) this.fallBackToPolling();
        },
        onEvent: (name, data) => this.onEvent(name, data),
      },
      { readyTimeout: this.opts.readyTimeout },
    );
    return s;
  }

  private onEvent(name: string, data: unknown): void {
    const d = data as { repo?: string; commit?: unknown; ids?: string[] };
    const r = d.repo ? this.opened.get(d.repo) : undefined;
    switch (name) {
      case "commit":
        if (r) this.arrive(r, d.commit);
        break;
      case "commits":
        if (r && d.ids) void this.fetchCommits(r, d.ids);
        break;
      case "reset":
        if (r && (data as { code?: string }).code === "deleted") this.forgetDeleted(r);
        else if (r) this.heal(r);
        break;
    }
  }

  /**
   * arrive queues a commit event's commit for its replica. The events of one
   * read of the stream are dispatched together (the parser calls onEvent
   * for each before the read loop goes on), and their commits are ingested
   * as one batch right after, in order: every commit is checked as before,
   * but the batch shares one pass of ingest's setup, its signatures are
   * verified at once, and the store and the queries hear of it once.
   */
  private arrive(r: Replica, commit: unknown): void {
    let batch = this.arrived.get(r);
    if (!batch) {
      this.arrived.set(r, (batch = []));
      if (this.arrived.size === 1) queueMicrotask(() => this.ingestArrived());
    }
    batch.push(commit);
  }

  private ingestArrived(): void {
    const arrived = this.arrived;
    this.arrived = new Map();
    for (const [r, commits] of arrived) void r.ingest(commits).catch((e) => this.log("ingest: %s", (e as Error).message));
  }

  private async fetchCommits(r: Replica, ids: string[]): Promise<void> {
    try {
      const cs = [];
      for (const id of ids) if (!r.get_(id)) cs.push(await this.http.getCommit(r.name, id));
      await r.ingest(cs);
    } catch (e) {
      this.log("fetch commits: %s", (e as Error).message);
      this.heal(r);
    }
  }

  private fallBackToPolling(): void {
    if (this.statusValue === "polling" || this.closedFlag) return;
    this.log("no ready event in time: a proxy buffers the stream; long polling instead");
    this.setStatus("polling");
    const s = this.stream;
    this.stream = undefined;
    void s?.close();
    // Repos opened from now on are polled too.
    this.startStream = () => {
      for (const r of this.opened.values()) this.poll(r);
    };
    this.startStream();
    this.healAll();
    this.scheduleProbe(this.opts.sseRetry ?? 30_000);
  }

  /**
   * becomeLeader runs when this tab is elected: it makes (or loads) the
   * shared session, tells the followers, and connects: the heals push
   * whatever the gateway lacks, including writes a previous leader had
   * not pushed.
   */
  private async becomeLeader(): Promise<void> {
    if (this.closedFlag) return;
    this.follower = false;
    this.log("this tab leads: it holds the connection");
    this.sessionPromise = undefined;
    await this.signingSession();
    this.tabs!.post({ t: "session" });
    this.tabs!.post({ t: "status", status: this.statusValue });
    if (this.opened.size) {
      for (const r of this.opened.values()) if (r.unpushedCommits().length) this.dirty.add(r);
      this.startStream();
      this.healAll();
    }
  }

  private async onTabMessage(m: TabMessage): Promise<void> {
    if (this.closedFlag) return;
    if (m.t === "session") return this.sessionShared?.();
    if (!this.follower) {
      // The leader takes the followers' writes and answers their opens.
      if (m.t === "commits" || m.t === "want") {
        const r = await this.repo(m.repo);
        if (m.t === "commits") await r.ingest(m.commits, true);
        else {
          this.tabs!.post({ t: "added", repo: r.name, commits: [...r.ids()].map((id) => r.get_(id)!) });
          this.tabs!.post({ t: "status", status: this.statusValue });
        }
      }
      return;
    }
    const r = "repo" in m ? this.opened.get(m.repo) : undefined;
    if (m.t === "added" && r) await r.ingest(m.commits);
    else if (m.t === "acked" && r) r.acknowledge(m.ids);
    else if (m.t === "status") this.statusValue !== m.status && this.mirrorStatus(m.status);
  }

  private mirrorStatus(s: Status): void {
    if (this.statusValue === "closed") return;
    this.statusValue = s;
    for (const cb of [...this.statusListeners]) cb(s);
  }

  /** isLeader is false while this tab follows another that holds the connection (GoatOptions.tabs). */
  get isLeader(): boolean {
    return !this.follower;
  }

  /** scheduleProbe tries the event stream again after ms, while long polling. */
  private scheduleProbe(ms: number): void {
    if (this.closedFlag) return;
    this.probeDelay = ms;
    clearTimeout(this.probeTimer);
    this.probeTimer = setTimeout(() => {
      if (this.closedFlag || this.stream || this.probe) return;
      if (this.streamed.size === 0) return this.scheduleProbe(ms);
      this.probe = this.newStream();
      this.probe.start();
    }, ms);
  }

  /**
   * returnToSSE makes a probe whose `ready` arrived the client's stream
   * again (the proxy stopped buffering): polling stops, the stream's
   * replay (from its first connection) and the heal that follows `ready`
   * cover anything the polls had not brought yet.
   */
  private returnToSSE(s: EventStream): void {
    this.log("the event stream works again: back from long polling");
    this.probe = undefined;
    clearTimeout(this.probeTimer);
    for (const ac of this.polling.values()) ac.abort();
    this.polling.clear();
    delete (this as unknown as { startStream?: unknown }).startStream; // the class's again
    this.stream = s;
  }

  private poll(r: Replica): void {
    if (this.polling.has(r.name) || this.closedFlag) return;
    const ac = new AbortController();
    this.polling.set(r.name, ac);
    void (async () => {
      let cursor = "";
      let backoff = 500;
      while (!ac.signal.aborted) {
        try {
          if (!cursor) {
            await this.heal(r);
            // Resume from the cursor the heal left, which is at or before
            // what the replica holds: a commit that reached the gateway
            // after the heal's last look is read from the log. The log's
            // end, taken now, would skip it (seen in CI under load); it
            // is only the fallback of a replica that has no cursor.
            cursor = r.cursor || (await this.http.getRepo(r.name)).cursor;
          }
          const page = await this.http.log(r.name, cursor, 1000, 25, ac.signal);
          if (page.commits.length) await r.ingest(page.commits);
          cursor = page.next || cursor;
          backoff = 500;
          this.setStatus("polling");
        } catch (e) {
          if (ac.signal.aborted) return;
          if (isCode(e, "must-reconcile")) cursor = "";
          else {
            this.log("poll %s: %s", r.name, (e as Error).message);
            await new Promise((res) => setTimeout(res, backoff));
            backoff = Math.min(backoff * 2, 5000);
          }
        }
      }
    })();
  }

  private wakeUp(): void {
    this.stream?.reconnectNow();
    this.healAll();
  }

  private healAll(): void {
    if (this.follower) return;
    for (const r of this.opened.values()) this.heal(r);
  }

  /**
   * heal brings one replica in sync with the gateway: catch up from the log
   * (clone from the saved cursor, which falls back to reconciliation),
   * then reconcile, which also pushes the offline queue. One heal per
   * replica at a time; a request during one runs another after it.
   */
  private heal(r: Replica): Promise<void> {
    if (this.follower || this.deletedRepos.has(r.name)) return Promise.resolve();
    const running = this.healing.get(r);
    if (running) {
      this.healAgain.add(r);
      return running;
    }
    const p = (async () => {
      for (let attempt = 0; !this.closedFlag; attempt++) {
        this.healAgain.delete(r);
        try {
          await this.ensureRegistered();
          await this.ensureRepo(r);
          const local = localOf(r);
          if (r.digest().count === 0 || r.cursor) {
            const st = await clone(this.transport(r), local, r.name, r.cursor);
            r.setCursor(st.cursor);
          }
          await r.flush();
          await this.pushNow(r);
          const before = r.unpushedCommits().map((c) => c.id);
          await reconcile(this.transport(r), local, r.name);
          r.acknowledge(before); // the gateway now holds everything local held
          // In sync: the tail cursor of a repository state equal to ours is
          // where the next start can resume paging the log.
          const info = await this.http.getRepo(r.name);
          if (r.digest().equals(info.count, info.digest)) r.setCursor(info.cursor);
          this.healDelay.delete(r);
          this.joinStream(r);
          if (this.statusValue === "offline" || this.statusValue === "connecting") this.setStatus(this.stream ? "connecting" : "polling");
          if (!this.healAgain.has(r)) break;
        } catch (e) {
          this.log("heal %s: %s", r.name, (e as Error).message);
          if (isCode(e, "repo-deleted")) {
            // The deletion's reset was missed (the stream was down): the
            // gateway's 410 says the same.
            this.forgetDeleted(r);
            break;
          }
          if (unreachable(e)) this.setStatus("offline");
          // The next (re)connect or the periodic timer heals again; a
          // transient failure is retried a few times here.
          if (attempt >= 2 || unreachable(e)) {
            this.retryHealLater(r);
            break;
          }
          await new Promise((res) => setTimeout(res, 500 * (attempt + 1)));
        }
      }
    })().finally(() => {
      this.healing.delete(r);
      this.notifyIdle();
    });
    this.healing.set(r, p);
    return p;
  }

  /**
   * retryHealLater heals a replica that is not on the event stream yet
   * again after a backoff (1 s doubling to 30 s): no reconnect or `ready`
   * would, so a replica opened while the gateway was down would wait for
   * the periodic heal.
   */
  private retryHealLater(r: Replica): void {
    if (this.closedFlag || this.streamed.has(r.name) || this.healRetry.has(r)) return;
    const delay = Math.min((this.healDelay.get(r) ?? 500) * 2, 30_000);
    this.healDelay.set(r, delay);
    this.healRetry.set(
      r,
      setTimeout(() => {
        this.healRetry.delete(r);
        void this.heal(r);
      }, delay),
    );
  }

  // joinStream adds a repository to the event stream once the gateway has
  // it: the stream answers 404 as a whole if any repository is missing or
  // unreadable, so one bad name must not keep the others from going live.
  private joinStream(r: Replica): void {
    if (this.streamed.has(r.name) || this.deletedRepos.has(r.name)) return;
    this.streamed.add(r.name);
    this.stream?.setRepos([...this.streamed]);
  }

  // ensureRepo creates the repository at the gateway once per replica if
  // it does not exist; a caller that may not create it may still write to
  // it. It reads first: creating a deleted name would start a new
  // repository and push the replica back into it, while the read answers
  // 410 repo-deleted, which tells a deletion whose reset the stream
  // missed (heal and pushes then stop syncing the repository).
  private ensureRepo(r: Replica): Promise<void> {
    let p = this.created.get(r);
    if (!p) {
      p = this.http
        .getRepo(r.name)
        .then(
          () => {},
          (e) => {
            if (!isCode(e, "not-found")) throw e;
            return this.http.createRepo(r.name);
          },
        )
        .then(
          () => {},
          (e) => {
            if (isCode(e, "forbidden")) return;
            this.created.delete(r);
            throw e;
          },
        );
      this.created.set(r, p);
    }
    return p;
  }

  private schedulePush(r: Replica): void {
    this.dirty.add(r);
    if (this.pushing) {
      this.pushAgain = true;
      return;
    }
    this.pushing = (async () => {
      do {
        this.pushAgain = false;
        for (const rep of [...this.dirty]) {
          this.dirty.delete(rep);
          try {
            await this.pushNow(rep);
          } catch (e) {
            this.log("push %s: %s", rep.name, (e as Error).message);
            if (isCode(e, "repo-deleted")) this.forgetDeleted(rep);
            if (unreachable(e)) this.setStatus("offline");
            // Left in the offline queue; the next heal pushes it.
          }
        }
      } while (this.pushAgain && !this.closedFlag);
    })().finally(() => {
      this.pushing = undefined;
      this.notifyIdle();
    });
  }

  /**
   * forgetDeleted stops syncing a repository that an admin deleted on the
   * gateway: healing or pushing on would create it again there and push
   * the replica back into it. The local replica stays as it is; the stream
   * follows the other repositories (it answers 404 as a whole for one that
   * is gone).
   */
  private forgetDeleted(r: Replica): void {
    this.deletedRepos.add(r.name);
    this.log("repository %s was deleted on the gateway: no longer synced", r.name);
    if (this.streamed.delete(r.name)) this.stream?.setRepos([...this.streamed]);
  }

  /** deleted reports whether the gateway told this client that repo was deleted (it is then no longer synced). */
  deleted(repo: string): boolean {
    return this.deletedRepos.has(repo);
  }

  private async pushNow(r: Replica): Promise<void> {
    if (this.deletedRepos.has(r.name)) return;
    const cs = r.unpushedCommits();
    if (cs.length === 0) return;
    await this.ensureRegistered();
    await this.ensureRepo(r);
    for (let i = 0; i < cs.length; i += 1000) {
      const batch = cs.slice(i, i + 1000);
      const results = await this.http.push(r.name, batch);
      r.acknowledge(results.filter((x) => x.status !== "rejected").map((x) => x.id));
      this.handleRejections(r, results);
    }
  }

  /**
   * synced resolves once every open replica (or the one named) has no local
   * commit waiting to be pushed and a heal has confirmed it equals the
   * gateway. It rejects if that is not reached within timeout ms.
   */
  async synced(repo?: string, timeout = 30_000): Promise<void> {
    const deadline = this.now() + timeout;
    for (;;) {
      const reps = repo ? [await this.repo(repo)] : [...this.opened.values()];
      for (const r of reps) await r.flush();
      let ok = true;
      for (const r of reps) {
        if (r.pendingCount > 0 || this.healing.has(r)) {
          ok = false;
          if (!this.healing.has(r)) void this.heal(r);
          continue;
        }
        try {
          const d = r.digest();
          const resp = await this.http.sync(r.name, { count: d.count, digest: d.hex(), limit: 1 });
          if (!resp.inSync) {
            ok = false;
            this.heal(r);
          }
        } catch {
          ok = false;
        }
      }
      if (ok) return;
      if (this.now() > deadline) throw new GoatError("conflict", `not in sync after ${timeout} ms`);
      await new Promise<void>((res) => {
        const t = setTimeout(res, 200);
        this.idle.add(() => {
          clearTimeout(t);
          res();
        });
      });
    }
  }

  private notifyIdle(): void {
    const fs = [...this.idle];
    this.idle.clear();
    for (const f of fs) f();
  }

  /** close stops the sync loop and closes the persistence. */
  async close(): Promise<void> {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.setStatus("closed");
    this.statusValue = "closed";
    globalThis.removeEventListener?.("online", this.onOnline);
    globalThis.removeEventListener?.("offline", this.onOffline);
    for (const t of this.timers) clearInterval(t);
    for (const ac of this.polling.values()) ac.abort();
    clearTimeout(this.probeTimer);
    for (const t of this.healRetry.values()) clearTimeout(t);
    this.tabs?.close();
    await this.probe?.close();
    await this.stream?.close();
    await Promise.allSettled([...this.healing.values(), this.pushing]);
    for (const r of this.opened.values()) await r.flush();
    await this.trust.flushed();
    await this.store.close();
  }
}

/** subjectOf reads a JWT's sub claim (the session owner), without verifying it: the gateway does. */
export function subjectOf(token: string): string {
  const part = token.split(".")[1];
  if (!part) throw new GoatError("unauthenticated", "token is not a JWT");
  const json = new TextDecoder().decode(fromBase64url(part.replace(/=+$/, "")));
  const sub = (JSON.parse(json) as { sub?: unknown }).sub;
  if (typeof sub !== "string") throw new GoatError("unauthenticated", "token has no sub");
  return sub;
}

// unreachable: the gateway cannot be reached now (no network, or a proxy
// answering for a gateway that is down).
const unreachable = (e: unknown): boolean => isCode(e, "network") || isCode(e, "unavailable");
