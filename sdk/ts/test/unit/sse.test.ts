import { createParser } from "eventsource-parser";
import { describe, expect, it } from "vitest";
import type { GatewayClient } from "../../src/http.js";
import { EventStream } from "../../src/sse.js";

// Event streams as the gateway and proxies may frame them: LF, CRLF and CR
// line ends, comments (heartbeats), retry, ids, multi-line data, and text
// beyond ASCII, so that a read can end inside a character.
const corpus = [
  'retry: 2000\n\nid: n.1\nevent: ready\ndata: {}\n\nid: n.2\nevent: commit\ndata: {"repo":"a","commit":{"title":"café 日本 🐐"}}\n\n',
  ': heartbeat\r\n\r\nid: n.3\r\nevent: commit\r\ndata: {"repo":"a",\r\ndata: "n":"ü€𝄞"}\r\n\r\nevent: reset\r\ndata: {"repo":"a","reason":"gap"}\r\n\r\n',
  "id: n.4\revent: commits\rdata: {\"repo\":\"b\",\"ids\":[\"x\"]}\r\r: 🐐 comment\r\rdata: not json\r\revent: commit\rdata: {\"k\":\"ß\"}\r\r: end\r\n",
  'event: ready\ndata: {}\n\n' + Array.from({ length: 20 }, (_, i) => `id: n.${10 + i}\nevent: commit\ndata: {"i":${i},"t":"${"é".repeat(i)}🐐"}\n\n`).join(""),
];

/** want is what the stream must report for text: every event, parsed whole, in order. */
function want(text: string) {
  const events: [string, unknown][] = [];
  let lastId: string | undefined;
  const p = createParser({
    onEvent: (ev) => {
      if (ev.id !== undefined) lastId = ev.id;
      let data: unknown;
      try {
        data = ev.data ? JSON.parse(ev.data) : {};
      } catch {
        return;
      }
      events.push([ev.event ?? "message", data]);
    },
  });
  p.feed(text);
  return { events, lastId };
}

/** got runs an EventStream over a body delivered in the given chunks, until the body ends. */
async function got(chunks: Uint8Array[]) {
  const events: [string, unknown][] = [];
  let ended!: () => void;
  const down = new Promise<void>((r) => (ended = r));
  const client = {
    events: async () =>
      new Response(
        new ReadableStream<Uint8Array>({
          pull(c) {
            const next = chunks.shift();
            if (next) c.enqueue(next);
            else c.close();
          },
        }),
      ),
  } as unknown as GatewayClient;
  const s = new EventStream(client, ["a"], {
    onEvent: (name, data) => events.push([name, data]),
    onReady: () => events.push(["ready", {}]),
    onDown: () => ended(),
    onFallback: () => {},
  });
  s.start();
  await down;
  const lastId = s.lastEventId;
  await s.close();
  return { events, lastId };
}

describe("EventStream", () => {
  it("reports the same events however the body is split into reads", async () => {
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % n;
    for (const text of corpus) {
      const bytes = new TextEncoder().encode(text);
      const w = want(text);
      expect(w.events.length).toBeGreaterThan(1);
      // Every single split point, then random splits into many reads.
      const splits: number[][] = [];
      for (let i = 1; i < bytes.length; i++) splits.push([i]);
      for (let k = 0; k < 50; k++) splits.push(Array.from({ length: 1 + rand(12) }, () => 1 + rand(bytes.length - 1)).sort((a, b) => a - b));
      splits.push(Array.from({ length: bytes.length - 1 }, (_, i) => i + 1)); // one byte per read
      for (const at of splits) {
        const chunks: Uint8Array[] = [];
        let from = 0;
        for (const to of [...at, bytes.length]) {
          if (to > from) chunks.push(bytes.slice(from, to));
          from = Math.max(from, to);
        }
        expect(await got(chunks), `split at ${at.join(",")}`).toEqual(w);
      }
    }
  });
});
