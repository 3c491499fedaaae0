// @vitest-environment jsdom
import { afterEach, describe, expect, it } from "vitest";
import { act, createElement as h, Fragment, StrictMode } from "react";
import { createRoot, type Root } from "react-dom/client";
import { Goat } from "../../src/client.js";
import { MemoryStore } from "../../src/store.js";
import type { LiveQuery } from "../../src/query.js";
import type { Replica } from "../../src/replica.js";
import { defineSchema, GoatProvider, useItem, useLiveQuery, useQuery, useRepo, useStatus, type ValueOf } from "../../src/react.js";

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

const todo = defineSchema({ ns: "todo", version: 1, fields: { title: { type: "text", required: true }, done: { type: "boolean", default: false }, order: { type: "number", default: 0 }, tags: { type: "set" } } } as const);
type Todo = ValueOf<typeof todo>;

// Compile-time checks of ValueOf: required and defaulted fields are
// present, others optional, each with its type.
const typed: Todo = { title: "x", done: false, order: 1 };
// @ts-expect-error title must be a string
const wrong: Todo = { title: 1, done: false, order: 1 };
void typed;
void wrong;

let root: Root | undefined;
let goat: Goat | undefined;
afterEach(async () => {
  await act(async () => root?.unmount());
  await goat?.close();
  root = undefined;
  goat = undefined;
});

async function setup() {
  // No gateway: the hooks read the replica, which never waits for one.
  goat = await Goat.open({ url: "http://127.0.0.1:9", token: "t", persistence: new MemoryStore(), schemas: [todo], readyTimeout: 60_000 });
  const repo = await goat.repo("user.alice.todos");
  const el = document.createElement("div");
  document.body.append(el);
  root = createRoot(el);
  return { goat, repo, el };
}

const renders = { list: 0, open: 0, item: 0 };

function List(props: { name: string }) {
  renders.list++;
  const repo = useRepo(props.name);
  const all = useLiveQuery(repo, { schema: todo, sort: (a, b) => a.value.order - b.value.order, limit: 3 });
  const items = useQuery(all as LiveQuery<Todo> | undefined);
  const titles: string = items.map((i) => i.value.title + (i.value.done ? "✓" : "")).join(",");
  return h(Fragment, null, h("p", { id: "list" }, titles), h(Open, { all }), h(One, { repo }));
}

function Open(props: { all: LiveQuery<Todo> | undefined }) {
  renders.open++;
  const open = useQuery(props.all, { where: (i) => !i.value.done });
  return h("p", { id: "open" }, open.map((i) => i.key).join(","));
}

function One(props: { repo: Replica | undefined }) {
  renders.item++;
  const it = useItem<Todo>(props.repo, "t1");
  const status = useStatus();
  return h("p", { id: "one" }, `${it?.value.title ?? "-"}|${status === "closed" ? "closed" : "open"}`);
}

const text = (el: Element, id: string) => el.querySelector(`#${id}`)?.textContent;

describe("react", () => {
  it("renders data already in the replica on the first render, and updates only what changed", async () => {
    const { repo, el } = await setup();
    repo.put("t1", { title: "milk", order: 2 }, "todo/1");
    repo.put("t2", { title: "eggs", order: 1 }, "todo/1");
    repo.put("n1", { title: "a note" }, "any/1");
    await act(async () => root!.render(h(StrictMode, null, h(GoatProvider, { goat: goat! }, h(List, { name: "user.alice.todos" })))));
    expect(text(el, "list")).toBe("eggs,milk");
    expect(text(el, "open")).toBe("t2,t1"); // a query over a query keeps its order
    expect(text(el, "one")).toBe("milk|open");

    await act(async () => {
      repo.update("t2", (v) => ({ ...v, done: true }));
    });
    expect(text(el, "list")).toBe("eggs✓,milk");
    expect(text(el, "open")).toBe("t1");

    // A write the queries do not show re-renders nothing that reads them.
    await act(async () => repo.flush());
    const before = { ...renders };
    await act(async () => {
      repo.put("n2", { title: "another note" }, "any/1");
    });
    expect(renders.list).toBe(before.list);
    expect(renders.open).toBe(before.open);

    // The limit keeps the first three by order; a new first pushes one out.
    await act(async () => {
      repo.put("t3", { title: "bread", order: 0 }, "todo/1");
      repo.put("t4", { title: "jam", order: 9 }, "todo/1");
    });
    expect(text(el, "list")).toBe("bread,eggs✓,milk");
    expect(text(el, "open")).toBe("t3,t1");

    await act(async () => {
      repo.put("t1", { title: "oat milk", order: 2 }, "todo/1");
    });
    expect(text(el, "one")).toBe("oat milk|open");
  });

  it("waits for a repository only while its local state loads", async () => {
    const { el } = await setup();
    await act(async () => root!.render(h(GoatProvider, { goat: goat! }, h(List, { name: "user.alice.other" }))));
    await act(async () => goat!.repo("user.alice.other"));
    expect(text(el, "list")).toBe("");
    await act(async () => {
      goat!.peek("user.alice.other")!.put("t1", { title: "x" }, "todo/1");
    });
    expect(text(el, "list")).toBe("x");
    expect(text(el, "one")).toBe("x|open");
  });
});
