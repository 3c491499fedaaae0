// The README's curl walkthrough, through a client that @hey-api/openapi-ts
// generates from openapi.yaml (npm run walkthrough regenerates it first):
// proof that the spec serves a generator other than the project's own.
// GOAT and TOKEN are as in the README. Each step prints one JSON line
// {"step", ...what it saw}; any unexpected answer exits 1.
// cmd/goat-gateway's TestReadme_GeneratedClient runs it against a real
// gateway and checks the lines.
import { client } from "./gen/client.gen";
import * as api from "./gen/sdk.gen";

const base = process.env.GOAT ?? "http://localhost:8080";
const token = process.env.TOKEN;
if (!token) {
  console.error("walkthrough: set TOKEN (make run prints it)");
  process.exit(2);
}
client.setConfig({ baseUrl: base, auth: () => token });

const repo = "user.dev.notes";
const key = "task-1";

function show(step: string, seen: Record<string, unknown>) {
  console.log(JSON.stringify({ step, ...seen }));
}

function must<T>(step: string, r: { data?: T; error?: unknown; response: Response }): NonNullable<T> {
  if (r.error !== undefined || r.data === undefined) {
    console.error(`walkthrough: ${step}: ${r.response.status} ${JSON.stringify(r.error)}`);
    process.exit(1);
  }
  return r.data as NonNullable<T>;
}

// create a repository (idempotent)
const created = await api.createRepo({ path: { repo } });
must("createRepo", created);
show("createRepo", { status: created.response.status });

// write an item, read it back (the ETag is the item's head commit)
const put = must("putItem", await api.putItem({ path: { repo, key }, body: { schema: "any/1", data: { title: "Buy milk", done: false } } }));
const got = await api.getItem({ path: { repo, key } });
const item = must("getItem", got);
show("getItem", { title: item.data.title, head: item.head, etag: got.response.headers.get("ETag"), putHead: put.head });

// change one field (JSON Merge Patch), as merge-patch+json and, as a generic
// client sends it, as application/json
const patched = must("patchItem", await api.patchItem({ path: { repo, key }, body: { done: true } }));
const patchedJSON = must(
  "patchItem json",
  await api.patchItem({ path: { repo, key }, body: { note: "2 litres" }, headers: { "Content-Type": "application/json" } }),
);
show("patchItem", { done: patched.data.done, note: patchedJSON.data.note, done2: patchedJSON.data.done });

// the item's history, newest first
const history = must("getItemHistory", await api.getItemHistory({ path: { repo, key } }));
show("getItemHistory", { commits: history.commits.length });

// list the items, then read the repository's log from the start
const items = must("listItems", await api.listItems({ path: { repo } }));
show("listItems", { items: items.items.length });
const log = must("getLog", await api.getLog({ path: { repo }, query: { limit: 100 } }));
show("getLog", { commits: log.commits.length, tail: log.tail });

// the repository's count and digest, then one round from an empty replica
const info = must("getRepo", await api.getRepo({ path: { repo } }));
const round = must(
  "syncRound",
  await api.syncRound({ path: { repo }, body: { count: 0, digest: "0".repeat(64) } }),
);
show("syncRound", { count: info.count, inSync: round.inSync, commits: round.commits?.length ?? 0 });

// live events: the generated client sends the token both as a header and
// as access_token (it applies every security scheme the operation lists)
const ctl = new AbortController();
const events = await api.getEvents({ query: { repo: [repo] }, signal: ctl.signal, sseMaxRetryAttempts: 1 });
let first = "";
for await (const ev of events.stream) {
  first = JSON.stringify(ev);
  break;
}
ctl.abort();
show("getEvents", { first });

// delete it (a tombstone commit: the history stays)
const deleted = must("deleteItem", await api.deleteItem({ path: { repo, key } }));
show("deleteItem", { deleted: deleted.deleted === true });

// forget the token: 404 whose detail says no credentials were sent
const anon = await api.getItem({ path: { repo, key }, auth: () => undefined });
show("noToken", { status: anon.response.status, detail: (anon.error as { detail?: string } | undefined)?.detail });
