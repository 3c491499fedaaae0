// The HTTP client: openapi-fetch over the types generated from openapi.yaml
// (src/gen/api.d.ts, `npm run gen`), with the bearer token added per request
// and problems (RFC 9457) mapped back to GoatError codes.

import createClient, { type Client, type Middleware } from "openapi-fetch";
import type { Commit } from "./commit.js";
import { GoatError, problemCode } from "./errors.js";
import type { components, paths } from "./gen/api.js";
import type { FilterJSON } from "./bloom.js";
import type { Schema } from "./schema.js";

export type Info = components["schemas"]["Info"];
export type RepoInfo = components["schemas"]["RepoInfo"];
export type PushResult = components["schemas"]["PushResult"];
export type Session = components["schemas"]["Session"];

/** One page of a repository's log. */
export interface LogPage {
  commits: Commit[];
  next: string;
  tail: boolean;
}

/** A reconciliation request (sync.Request). */
export interface SyncRequest {
  count: number;
  digest: string;
  filter?: FilterJSON;
  commits?: Commit[];
  limit?: number;
  /** Versions 2 and 3 (docs/sync.md): 2 or 3. */
  v?: number;
  /** Versions 2 and 3, second request: the layout echoed (version 2: cuts; version 3: reduced, as gaps) and the client's differing partitions. */
  parts?: { cuts?: number[]; gaps?: number[]; bits: number[]; diff: string; cells?: string };
  /** Version 2: base64 short ids of commits the client lacks. */
  need?: string;
  /** Session records of the authors of `commits` (either version; docs/sync.md). */
  sessions?: unknown[];
}

/** A reconciliation response (sync.Response). */
export interface SyncResponse {
  count: number;
  digest: string;
  inSync: boolean;
  commits: Commit[];
  more: boolean;
  filter?: FilterJSON;
  results?: PushResult[];
  /** Versions 2 and 3: the server's summary (layout as cuts or, version 3, gaps, and per-partition sums). */
  parts?: { cuts?: number[]; gaps?: number[]; bits: number[]; sums: string };
  /** Version 2: base64 short ids of commits a limit cut. */
  rest?: string;
  /** Version 2: base64 short ids of commits the server lacks, decoded from the client's tables. */
  want?: string;
  /** Version 2: the server's exact ids of partitions that still differ. */
  lists?: { part: number; ids: string }[];
}

/** Options of a GatewayClient. */
export interface HTTPOptions {
  /** The gateway's URL, e.g. "http://localhost:8080" (default: the page's origin). */
  url?: string;
  /** The bearer token, or a function that returns the current one. */
  token: string | (() => string | Promise<string>);
  /** fetch to use (default: globalThis.fetch). */
  fetch?: typeof fetch;
}

/**
 * GatewayClient is a thin typed client of the gateway's HTTP API: one
 * method per operation the SDK needs, each throwing GoatError.
 */
export class GatewayClient {
  readonly api: Client<paths>;
  readonly url: string;
  private readonly getToken: () => string | Promise<string>;
  private readonly fetchFn: typeof fetch;

  constructor(opts: HTTPOptions) {
    this.url = (opts.url ?? globalThis.location?.origin ?? "").replace(/\/$/, "");
    const t = opts.token;
    this.getToken = typeof t === "function" ? t : () => t;
    this.fetchFn = opts.fetch ?? ((...a: Parameters<typeof fetch>) => globalThis.fetch(...a));
    this.api = createClient<paths>({ baseUrl: this.url, fetch: (req: Request) => this.fetchFn(req) });
    const auth: Middleware = {
      onRequest: async ({ request }) => {
        request.headers.set("Authorization", `Bearer ${await this.getToken()}`);
        return request;
      },
    };
    this.api.use(auth);
  }

  /** token returns the current bearer token. */
  token(): Promise<string> {
    return Promise.resolve(this.getToken());
  }

  /** fetch is the fetch function in use (the SSE reader shares it). */
  get fetch(): typeof fetch {
    return this.fetchFn;
  }

  private async call<T>(what: string, p: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
    let r: { data?: T; error?: unknown; response: Response };
    try {
      r = await p;
    } catch (e) {
      if (e instanceof GoatError) throw e;
      if ((e as Error)?.name === "AbortError") throw e;
      throw new GoatError("network", `${what}: ${(e as Error)?.message ?? e}`);
    }
    if (r.error !== undefined || !r.response.ok) throw toError(what, r.response, r.error);
    return r.data as T;
  }

  info(): Promise<Info> {
    return this.call("info", this.api.GET("/v1/info"));
  }

  createRepo(repo: string): Promise<unknown> {
    return this.call("create repo", this.api.PUT("/v1/repos/{repo}", { params: { path: { repo } } }));
  }

  /**
   * deleteRepo deletes a repository (`DELETE /v1/repos/{repo}`, role admin):
   * a GoatError "forbidden" for a caller who may read it without the role,
   * "not-found" for one who may not read it or a repository that does not
   * exist. Nothing is erased on the gateway (its log is moved aside).
   */
  async deleteRepo(repo: string): Promise<void> {
    await this.call("delete repo", this.api.DELETE("/v1/repos/{repo}", { params: { path: { repo } } }));
  }

  getRepo(repo: string): Promise<RepoInfo> {
    return this.call("get repo", this.api.GET("/v1/repos/{repo}", { params: { path: { repo } } }));
  }

  async log(repo: string, after: string, limit: number, wait = 0, signal?: AbortSignal): Promise<LogPage> {
    const query: { limit: number; after?: string; wait?: number } = { limit };
    if (after) query.after = after;
    if (wait) query.wait = wait;
    const page = await this.call("log", this.api.GET("/v1/repos/{repo}/log", { params: { path: { repo }, query }, signal }));
    return page as unknown as LogPage;
  }

  async sync(repo: string, req: SyncRequest, signal?: AbortSignal): Promise<SyncResponse> {
    const body = req as unknown as components["schemas"]["SyncRequest"];
    const r = await this.call("sync", this.api.POST("/v1/repos/{repo}/sync", { params: { path: { repo } }, body, signal }));
    return r as unknown as SyncResponse;
  }

  async push(repo: string, commits: Commit[]): Promise<PushResult[]> {
    const body = { commits } as unknown as components["schemas"]["PushRequest"];
    const r = await this.call("push", this.api.POST("/v1/repos/{repo}/commits", { params: { path: { repo } }, body }));
    return r.results;
  }

  async getCommit(repo: string, id: string): Promise<Commit> {
    const r = await this.call("get commit", this.api.GET("/v1/repos/{repo}/commits/{id}", { params: { path: { repo, id } } }));
    return r as unknown as Commit;
  }

  /** session returns the record of a session (GET /v1/sessions/{id}, readable by anyone), unverified. */
  async session(id: string): Promise<unknown> {
    return this.call("get session", this.api.GET("/v1/sessions/{id}", { params: { path: { id } } }));
  }

  async createSession(publicKey: string, expires: number, proof: string): Promise<Session> {
    return this.call("create session", this.api.POST("/v1/sessions", { body: { publicKey, expires, proof } }));
  }

  async schemas(): Promise<Schema[]> {
    const r = await this.call("list schemas", this.api.GET("/v1/schemas"));
    return r.schemas as unknown as Schema[];
  }

  async putSchema(s: Schema): Promise<void> {
    const body = { fields: s.fields, ...(s.upgrade ? { upgrade: s.upgrade } : {}) } as unknown as components["schemas"]["SchemaBody"];
    await this.call("put schema", this.api.PUT("/v1/schemas/{ns}/{version}", { params: { path: { ns: s.ns, version: s.version } }, body }));
  }

  /** events opens GET /v1/events for repos and returns the response (a text/event-stream body). */
  async events(repos: string[], lastEventId: string | undefined, signal: AbortSignal): Promise<Response> {
    const url = new URL(this.url + "/v1/events", globalThis.location?.href);
    for (const r of repos) url.searchParams.append("repo", r);
    const headers: Record<string, string> = { Authorization: `Bearer ${await this.getToken()}`, Accept: "text/event-stream" };
    if (lastEventId) headers["Last-Event-ID"] = lastEventId;
    let resp: Response;
    try {
      resp = await this.fetchFn(url.toString(), { headers, signal, cache: "no-store" });
    } catch (e) {
      if ((e as Error)?.name === "AbortError") throw e;
      throw new GoatError("network", `events: ${(e as Error)?.message ?? e}`);
    }
    if (!resp.ok) {
      let body: unknown;
      try {
        body = await resp.json();
      } catch {
        /* not a problem document */
      }
      throw toError("events", resp, body);
    }
    return resp;
  }
}

function toError(what: string, resp: Response, body: unknown): GoatError {
  const p = (typeof body === "object" && body !== null ? body : {}) as { type?: string; detail?: string; title?: string };
  const code = problemCode(p.type, resp.status);
  return new GoatError(code, `${what}: ${resp.status} ${p.detail ?? p.title ?? resp.statusText}`, resp.status, p.type);
}
