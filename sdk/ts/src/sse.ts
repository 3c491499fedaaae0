// Live events over one fetch-based SSE stream for all open repositories
// (DESIGN section 5, docs/api.md Events). fetch rather than EventSource so
// the token travels in the Authorization header (not in URLs and access
// logs) and Last-Event-ID is ours to send; eventsource-parser does the
// text/event-stream framing.
//
// The stream is considered up once `ready` arrives. A proxy that buffers
// the response delays `ready` (and everything else) indefinitely: after
// readyTimeout without it, the stream reports fallback and the client long
// polls the log instead. A stream that goes quiet for longer than three
// heartbeats is dead and is reopened.

import { createParser, type EventSourceMessage } from "eventsource-parser";
import type { GatewayClient } from "./http.js";

/** What the stream reports. */
export interface StreamHandlers {
  /** A named event with its parsed data. */
  onEvent(name: string, data: unknown): void;
  /** The stream is live (ready received). */
  onReady(): void;
  /** The stream is down; it retries by itself. */
  onDown(err: unknown): void;
  /** No ready within readyTimeout: a proxy buffers the stream. */
  onFallback(): void;
}

/** Options of an EventStream. */
export interface StreamOptions {
  readyTimeout?: number;
  idleTimeout?: number;
  /** Delay before reconnecting (the server's retry: overrides it). */
  retry?: number;
}

export class EventStream {
  private abort?: AbortController;
  private lastId: string | undefined;
  private closed = false;
  private retryMs: number;
  private readonly readyTimeout: number;
  private readonly idleTimeout: number;
  private wake?: () => void;
  private running?: Promise<void>;

  constructor(
    private readonly client: GatewayClient,
    private repos: string[],
    private readonly h: StreamHandlers,
    opts: StreamOptions = {},
  ) {
    this.retryMs = opts.retry ?? 1000;
    this.readyTimeout = opts.readyTimeout ?? 10_000;
    this.idleTimeout = opts.idleTimeout ?? 45_000;
  }

  /** lastEventId is the id of the last event received. */
  get lastEventId(): string | undefined {
    return this.lastId;
  }

  start(): void {
    this.running ??= this.loop();
  }

  /** setRepos changes the repositories and reconnects, resuming from the last event id so nothing is lost. */
  setRepos(repos: string[]): void {
    this.repos = [...repos];
    this.abort?.abort();
    this.wake?.();
  }

  /** drop closes the current connection; the stream reconnects after its retry delay. */
  drop(): void {
    this.abort?.abort();
  }

  /** reconnectNow skips the wait before the next attempt (for example when the browser comes back online). */
  reconnectNow(): void {
    this.wake?.();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.abort?.abort();
    this.wake?.();
    await this.running;
  }

  private async loop(): Promise<void> {
    while (!this.closed) {
      if (this.repos.length === 0) {
        await this.sleep(60_000);
        continue;
      }
      try {
        await this.once();
        this.h.onDown(new Error("stream ended"));
      } catch (e) {
        if (this.closed) return;
        this.h.onDown(e);
      }
      if (this.closed) return;
      await this.sleep(this.retryMs);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
  }

  private async once(): Promise<void> {
    const ac = new AbortController();
    this.abort = ac;
    let ready = false;
    let idle: ReturnType<typeof setTimeout> | undefined;
    const bump = () => {
      clearTimeout(idle);
      idle = setTimeout(() => ac.abort(), this.idleTimeout);
    };
    const readyTimer = setTimeout(() => {
      if (!ready) {
        this.h.onFallback();
        ac.abort();
      }
    }, this.readyTimeout);
    try {
      bump();
      const resp = await this.client.events(this.repos, this.lastId, ac.signal);
      const parser = createParser({
        onEvent: (ev: EventSourceMessage) => {
          if (ev.id !== undefined) this.lastId = ev.id;
          let data: unknown;
          try {
            data = ev.data ? JSON.parse(ev.data) : {};
          } catch {
            return;
          }
          const name = ev.event ?? "message";
          if (name === "ready") {
            ready = true;
            clearTimeout(readyTimer);
            this.h.onReady();
            return;
          }
          this.h.onEvent(name, data);
        },
        onRetry: (ms: number) => {
          this.retryMs = Math.min(Math.max(ms, 250), 30_000);
        },
      });
      // A TextDecoder over the body's own reader, rather than a
      // TextDecoderStream piped from it: the same decoding (a character
      // split across reads is held for the next), without a second stream
      // and its promises for every read.
      const reader = resp.body!.getReader();
      const text = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) {
          const rest = text.decode();
          if (rest) parser.feed(rest);
          break;
        }
        bump();
        parser.feed(text.decode(value, { stream: true }));
      }
    } finally {
      clearTimeout(idle);
      clearTimeout(readyTimer);
      ac.abort();
    }
  }
}
