// The shared todo list on the React bindings (@goat-gateway/sdk/react):
// GoatProvider, useRepo, useQuery over a query, useStatus, usePending.
// Bundled with esbuild (scripts/build-react-todo.mjs) and served by the
// gateway itself: `goat-gateway serve --static DIR` (one process, one
// port). The list is the repository todo.<list> (?list=NAME).
import { useEffect, useRef, useState } from "react";
import { createRoot } from "react-dom/client";
import { Goat, openPersistence, type Item, type JSONObject } from "../../src/index.js";
import { defineSchema, GoatProvider, useGoat, useLiveQuery, usePending, useQuery, useRepo, useStatus, type ValueOf } from "../../src/react.js";

const todo = defineSchema({
  ns: "todo",
  version: 1,
  fields: {
    title: { type: "text", required: true }, // text merges character by character
    done: { type: "boolean", default: false },
    order: { type: "number" },
  },
} as const);
type Todo = ValueOf<typeof todo>;

const params = new URLSearchParams(location.search);
const list = params.get("list") || "groceries";

// The token comes from the server once (config.json next to the app) and
// is kept, so that a reload works before (or without) the network.
async function fetchToken(): Promise<string> {
  try {
    const r = await fetch("/config.json", { cache: "no-store" });
    const { token } = await r.json();
    localStorage.setItem("goat-demo-token", token);
    return token;
  } catch {
    return localStorage.getItem("goat-demo-token") ?? "";
  }
}
let currentToken = localStorage.getItem("goat-demo-token") ?? "";
const tokenReady = fetchToken().then((t) => (currentToken = t));
if (!currentToken) await tokenReady;

const persistence = await openPersistence("goat-react-todo");
const goat = await Goat.open({
  token: () => currentToken,
  persistence,
  schemas: [todo],
  readyTimeout: Number(params.get("readyTimeout")) || undefined,
  tabs: "goat-react-todo", // the tabs of this app share one connection (a leader tab holds it)
  log: (...a) => console.debug("[goat]", ...a),
});
(window as any).goat = goat; // for the browser tests and the curious
goat.publishSchema(todo).catch(() => {}); // idempotent; fine to fail offline

const byOrder = (a: Item<Todo>, b: Item<Todo>) => (a.value.order ?? 0) - (b.value.order ?? 0);

function App() {
  const repo = useRepo(`todo.${list}`);
  const all = useLiveQuery(repo, { schema: todo, sort: byOrder });
  const items = useQuery(all);
  const open = useQuery(all, { where: (t) => !t.value.done }); // a query over a query
  const status = useStatus();
  const pending = usePending(repo);
  const goat = useGoat();
  useEffect(() => {
    (window as any).repo = repo;
    if (repo) document.body.dataset.ready = "true";
  }, [repo]);
  if (!repo) return <p>Opening…</p>;
  return (
    <main>
      <header>
        <h1>Shared list: {list}</h1>
        <p className="status">
          <span id="status" data-testid="status" className={status}>{status}</span> · <span data-testid="pending">{pending}</span> unsynced ·{" "}
          <span data-testid="open">{open.length}</span> open · stored in <span data-testid="store">{(persistence as { kind: string }).kind}</span> ·{" "}
          <span data-testid="role">{goat.isLeader ? "leader tab" : "follower tab"}</span> ·{" "}
          <span>session {goat.sessionId ?? "(none yet)"}</span>
        </p>
      </header>
      <AddForm onAdd={(title) => repo.put(newKey(), { title, done: false, order: Date.now() }, "todo/1")} />
      <ul data-testid="items">
        {items.map((it) => (
          <Row key={it.key} item={it} onChange={(v) => repo.update(it.key, (cur) => ({ ...cur, ...(v as JSONObject) }))} onDelete={() => repo.delete(it.key)} />
        ))}
      </ul>
      <p className="hint">Every change is a signed commit in your browser, pushed to the gateway and merged with everyone else's. Try it offline.</p>
    </main>
  );
}

const newKey = () => `t-${Date.now().toString(36)}-${crypto.getRandomValues(new Uint32Array(1))[0].toString(36)}`;

function AddForm(props: { onAdd: (title: string) => void }) {
  const [title, setTitle] = useState("");
  return (
    <form
      id="add"
      autoComplete="off"
      onSubmit={(e) => {
        e.preventDefault();
        if (title.trim()) props.onAdd(title.trim());
        setTitle("");
      }}
    >
      <input data-testid="new-title" placeholder="What needs doing?" required maxLength={200} value={title} onChange={(e) => setTitle(e.target.value)} />
      <button type="submit" data-testid="add">Add</button>
    </form>
  );
}

function Row(props: { item: Item<Todo>; onChange: (v: Partial<Todo>) => void; onDelete: () => void }) {
  const { item } = props;
  const title = useRef<HTMLInputElement>(null);
  const typing = useRef(false);
  // The title is committed on the input's change event (leaving the field
  // or Enter), not on every keystroke; a remote change replaces it unless
  // the user has typed something not committed yet.
  useEffect(() => {
    const el = title.current!;
    if (!typing.current) el.value = item.value.title;
    const input = () => (typing.current = true);
    const commit = () => {
      typing.current = false;
      if (el.value !== item.value.title) props.onChange({ title: el.value });
    };
    el.addEventListener("input", input);
    el.addEventListener("change", commit);
    return () => {
      el.removeEventListener("input", input);
      el.removeEventListener("change", commit);
    };
  });
  return (
    <li data-testid="item" data-key={item.key} data-title={item.value.title} className={(item.value.done ? "done " : "") + (item.pending ? "pending" : "")}>
      <input type="checkbox" data-testid="done" checked={item.value.done} onChange={(e) => props.onChange({ done: e.target.checked })} />
      <input className="title" data-testid="title" ref={title} defaultValue={item.value.title} />
      <button data-testid="delete" title="Delete" onClick={props.onDelete}>✕</button>
    </li>
  );
}

createRoot(document.getElementById("root")!).render(
  <GoatProvider goat={goat}>
    <App />
  </GoatProvider>,
);
