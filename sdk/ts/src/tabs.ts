// Tabs of one app share one connection (GoatOptions.tabs): one leader tab,
// chosen with a Web Lock, holds the event stream and does every network
// write; the others (followers) talk to it over a BroadcastChannel:
//
//   follower -> leader  {t: "commits", repo, commits}  its local commits, sealed and signed
//                       {t: "want", repo}              it opened a repository: send what you hold
//   leader -> followers {t: "added", repo, commits}    commits new to the leader (local, a follower's, the gateway's)
//                       {t: "acked", repo, ids}        the gateway holds these
//                       {t: "status", status}          the connection status
//                       {t: "session"}                 the session key is in the shared store
//
// The lock is released when the leader's document goes away (closed,
// reloaded, crashed), and the browser grants it to a waiting tab, which
// then connects and heals every open replica: a heal pushes whatever the
// gateway lacks, so a write a follower forwarded to a leader that closed
// before pushing it is not lost (the follower holds it too).

import type { Status } from "./client.js";

export type TabMessage =
  | { t: "commits"; repo: string; commits: unknown[] }
  | { t: "want"; repo: string }
  | { t: "added"; repo: string; commits: unknown[] }
  | { t: "acked"; repo: string; ids: string[] }
  | { t: "status"; status: Status }
  | { t: "session" };

export interface TabHandlers {
  onLeader(): void;
  onMessage(m: TabMessage): void;
}

/** Tabs is this tab's membership in its app's group of tabs. */
export class Tabs {
  leader = false;
  private readonly ch: BroadcastChannel;
  private release?: () => void;
  private closed = false;

  /** available reports whether this environment has BroadcastChannel and Web Locks. */
  static available(): boolean {
    const g = globalThis as { BroadcastChannel?: unknown; navigator?: Navigator };
    return typeof g.BroadcastChannel === "function" && typeof g.navigator?.locks?.request === "function";
  }

  constructor(
    private readonly name: string,
    private readonly h: TabHandlers,
  ) {
    this.ch = new BroadcastChannel(`goat-tabs:${name}`);
    this.ch.onmessage = (e: MessageEvent<TabMessage>) => {
      if (!this.closed) this.h.onMessage(e.data);
    };
    void navigator.locks.request(`goat-tabs:${name}`, () => {
      if (this.closed) return;
      this.leader = true;
      this.h.onLeader();
      // Held until close() or until the document goes away.
      return new Promise<void>((resolve) => (this.release = resolve));
    });
  }

  post(m: TabMessage): void {
    if (!this.closed) this.ch.postMessage(m);
  }

  close(): void {
    this.closed = true;
    this.ch.close();
    this.release?.();
  }
}
