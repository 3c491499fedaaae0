// A shared todo list on the TypeScript SDK's public API only: Goat,
// IndexedDBStore, a replica per list, live queries, synchronous writes.
// The list is the repository todo.<list> (?list=NAME, default "groceries").
import { Goat, IndexedDBStore } from "./sdk/goat.js";

const todoSchema = {
  ns: "todo",
  version: 1,
  fields: {
    title: { type: "text", required: true }, // text merges character by character
    done: { type: "boolean", default: false },
    order: { type: "number" },
  },
};

const params = new URLSearchParams(location.search);
const list = params.get("list") || "groceries";
document.getElementById("list-name").textContent = list;

// The token comes from the demo server once and is kept, so a reload works
// before (or without) the network.
async function token() {
  try {
    const r = await fetch("/demo/config.json", { cache: "no-store" });
    const { token } = await r.json();
    localStorage.setItem("goat-demo-token", token);
    return token;
  } catch {
    return localStorage.getItem("goat-demo-token") ?? "";
  }
}
let currentToken = localStorage.getItem("goat-demo-token");
const tokenReady = token().then((t) => (currentToken = t));
if (!currentToken) await tokenReady;

const goat = await Goat.open({
  token: () => currentToken,
  persistence: await IndexedDBStore.open("goat-todo"),
  schemas: [todoSchema],
  readyTimeout: Number(params.get("readyTimeout")) || undefined,
  log: (...a) => console.debug("[goat]", ...a),
});
window.goat = goat; // for the browser tests and the curious
goat.publishSchema(todoSchema).catch(() => {}); // idempotent; fine to fail offline

const repo = await goat.repo(`todo.${list}`);
window.repo = repo;

const statusEl = document.getElementById("status");
const pendingEl = document.getElementById("pending");
const showStatus = (s) => {
  statusEl.textContent = s;
  statusEl.className = s;
};
showStatus(goat.status);
goat.onStatus(showStatus);

const itemsEl = document.getElementById("items");
const byOrder = (a, b) => (a.value.order ?? 0) - (b.value.order ?? 0) || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

function row(item) {
  const li = document.createElement("li");
  li.dataset.key = item.key;
  li.dataset.title = item.value.title;
  li.dataset.testid = "item";
  li.className = (item.value.done ? "done " : "") + (item.pending ? "pending" : "");
  const done = document.createElement("input");
  done.type = "checkbox";
  done.checked = item.value.done;
  done.dataset.testid = "done";
  done.onchange = () => repo.update(item.key, (v) => ({ ...v, done: done.checked }));
  const title = document.createElement("input");
  title.className = "title";
  title.value = item.value.title;
  title.dataset.testid = "title";
  title.onchange = () => repo.update(item.key, (v) => ({ ...v, title: title.value }));
  const del = document.createElement("button");
  del.textContent = "✕";
  del.title = "Delete";
  del.dataset.testid = "delete";
  del.onclick = () => repo.delete(item.key);
  li.append(done, title, del);
  return li;
}

repo.live({ sort: byOrder }, (items) => {
  const focused = document.activeElement?.closest?.("li")?.dataset.key;
  itemsEl.replaceChildren(...items.map(row));
  if (focused) itemsEl.querySelector(`li[data-key="${CSS.escape(focused)}"] input.title`)?.focus();
  pendingEl.textContent = String(repo.pendingCount);
  document.getElementById("session").textContent = `session ${goat.sessionId ?? "(none yet)"}`;
  document.body.dataset.items = String(items.length);
});

document.getElementById("add").onsubmit = (e) => {
  e.preventDefault();
  const input = document.getElementById("title");
  const title = input.value.trim();
  if (!title) return;
  const key = `t-${Date.now().toString(36)}-${crypto.getRandomValues(new Uint32Array(1))[0].toString(36)}`;
  repo.put(key, { title, done: false, order: Date.now() }, "todo/1");
  input.value = "";
};

document.body.dataset.ready = "true";
