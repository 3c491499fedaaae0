// React bindings (@goat-gateway/sdk/react; DESIGN section 11): hooks over
// the replica's synchronous reads, all on useSyncExternalStore, so a
// component renders data already in the replica on its first render (no
// loading state) and re-renders only when what it reads changed.
//
//   <GoatProvider goat={goat}>  ...  </GoatProvider>
//   const repo = useRepo("user.alice.todos");            // undefined only until local state is loaded
//   const todos = useQuery(repo, { schema: todo, where: (t) => !t.value.done, sort: byOrder, limit: 50 });
//   const open = useQuery(todos, { where: ... });       // composition: a query over a query
//   const item = useItem(repo, "t1");
//   const status = useStatus();                          // "live", "offline", ...
//
// Items are typed by schema: declare a schema `as const` (or with
// defineSchema) and ValueOf<typeof schema> is the type of its values;
// useQuery with that schema returns Item<ValueOf<...>>[].

import { createContext, createElement, useContext, useMemo, useRef, useSyncExternalStore, type ReactNode } from "react";
import type { Goat, Status } from "./client.js";
import type { JSONObject, JSONValue } from "./json.js";
import { LiveQuery, type Item, type Query, type Source } from "./query.js";
import type { Replica } from "./replica.js";
import type { Field, Schema } from "./schema.js";

// ---- types from schemas -------------------------------------------------------

type FieldValue<F extends Field> = F["type"] extends "string" | "text" | "date"
  ? string
  : F["type"] extends "number"
    ? number
    : F["type"] extends "boolean"
      ? boolean
      : F["type"] extends "set"
        ? string[]
        : F["type"] extends "map"
          ? Record<string, string | number | boolean>
          : JSONValue;

type Present<F extends Field> = F extends { required: true } ? true : F extends { default: JSONValue } ? true : false;

/** ValueOf is the TypeScript type of the values of a schema declared `as const` (or with defineSchema). */
export type ValueOf<S extends Pick<Schema, "fields">> = {
  -readonly [K in keyof S["fields"] as Present<S["fields"][K]> extends true ? K : never]: FieldValue<S["fields"][K]>;
} & {
  -readonly [K in keyof S["fields"] as Present<S["fields"][K]> extends true ? never : K]?: FieldValue<S["fields"][K]>;
} & JSONObject;

/** defineSchema returns its argument, keeping its literal types for ValueOf. */
export function defineSchema<const S extends Schema>(s: S): S {
  return s;
}

// ---- provider -------------------------------------------------------------------

const GoatContext = createContext<Goat | null>(null);

/** GoatProvider makes a client available to the hooks below it. */
export function GoatProvider(props: { goat: Goat; children?: ReactNode }): ReactNode {
  return createElement(GoatContext.Provider, { value: props.goat }, props.children);
}

/** useGoat returns the client of the nearest GoatProvider. */
export function useGoat(): Goat {
  const g = useContext(GoatContext);
  if (!g) throw new Error("useGoat: no <GoatProvider goat={...}> above this component");
  return g;
}

// ---- repositories -----------------------------------------------------------------

/**
 * useRepo returns the replica of a repository: at once when it is open
 * already, else undefined until its local state is loaded (from the
 * browser's storage, never the network), then the replica.
 */
export function useRepo(name: string): Replica | undefined {
  const goat = useGoat();
  const subscribe = useMemo(
    () => (cb: () => void) => {
      let live = true;
      if (!goat.peek(name)) void goat.repo(name).then(() => live && cb(), () => {});
      return () => {
        live = false;
      };
    },
    [goat, name],
  );
  const get = () => goat.peek(name);
  return useSyncExternalStore(subscribe, get, get);
}

/** useItem returns an item (deleted ones too, with deleted: true) and re-renders when it changes. */
export function useItem<T extends JSONObject = JSONObject>(repo: Replica | undefined, key: string): Item<T> | undefined {
  // The last item read is kept while the replica says it did not change,
  // so the snapshot is stable between renders.
  const cache = useRef<{ repo?: Replica; key?: string; version: number; item?: Item<T> }>({ version: -1 });
  const subscribe = useMemo(
    () => (cb: () => void) => (repo ? repo.subscribe((keys) => keys.has(key) && cb()) : () => {}),
    [repo, key],
  );
  const get = (): Item<T> | undefined => {
    if (!repo) return undefined;
    const c = cache.current;
    if (c.repo === repo && c.key === key && c.version === repo.version) return c.item;
    const it = repo.item<T>(key);
    const same = c.repo === repo && c.key === key && c.item && it && sameValue(c.item, it);
    cache.current = { repo, key, version: repo.version, item: same ? c.item : it };
    return cache.current.item;
  };
  return useSyncExternalStore(subscribe, get, get);
}

function sameValue(a: Item, b: Item): boolean {
  return a.ts === b.ts && a.pending === b.pending && a.deleted === b.deleted && a.heads.join() === b.heads.join() && JSON.stringify(a.value) === JSON.stringify(b.value);
}

/**
 * useQuery runs a live query over a replica or over another query's
 * results (composition) and re-renders when its result changes; it
 * returns the items. Pass `deps` when where/sort/limit close over
 * changing values (like useMemo's); the query is rebuilt when they change.
 */
export function useQuery<S extends Schema>(source: Replica | LiveQuery<JSONObject> | undefined, q: Query<ValueOf<S>> & { schema: S }, deps?: unknown[]): Item<ValueOf<S>>[];
export function useQuery<T extends JSONObject = JSONObject>(source: Replica | LiveQuery<T> | undefined, q?: Query<T>, deps?: unknown[]): Item<T>[];
export function useQuery<T extends JSONObject = JSONObject>(source: Replica | LiveQuery<T> | undefined, q: Query<T> = {}, deps: unknown[] = []): Item<T>[] {
  return useSyncExternalStoreQuery(useLiveQuery(source, q, deps));
}

/**
 * useLiveQuery returns the LiveQuery itself (for composing: pass it to
 * another useQuery or useLiveQuery as the source).
 */
export function useLiveQuery<S extends Schema>(source: Replica | LiveQuery<JSONObject> | undefined, q: Query<ValueOf<S>> & { schema: S }, deps?: unknown[]): LiveQuery<ValueOf<S>> | undefined;
export function useLiveQuery<T extends JSONObject = JSONObject>(source: Replica | LiveQuery<T> | undefined, q?: Query<T>, deps?: unknown[]): LiveQuery<T> | undefined;
export function useLiveQuery<T extends JSONObject = JSONObject>(source: Replica | LiveQuery<T> | undefined, q: Query<T> = {}, deps: unknown[] = []): LiveQuery<T> | undefined {
  // The query holds no subscription until rendered ones subscribe (it is
  // detached until then), so building it during render leaks nothing.
  const schemaKey = typeof q.schema === "string" ? q.schema : q.schema ? `${q.schema.ns}/${q.schema.version}` : "";
  // eslint-disable-next-line react-hooks/exhaustive-deps
  return useMemo(() => (source ? new LiveQuery<T>(source as unknown as Source<T>, q) : undefined), [source, schemaKey, q.limit, ...deps]);
}

const empty: never[] = [];
const noSubscription = () => () => {};

function useSyncExternalStoreQuery<T extends JSONObject>(lq: LiveQuery<T> | undefined): Item<T>[] {
  const subscribe = useMemo(() => (lq ? (cb: () => void) => lq.subscribe(cb) : noSubscription), [lq]);
  const get = () => (lq ? lq.results() : (empty as Item<T>[]));
  return useSyncExternalStore(subscribe, get, get);
}

/** useStatus returns the client's connection status and re-renders when it changes. */
export function useStatus(): Status {
  const goat = useGoat();
  const subscribe = useMemo(() => (cb: () => void) => goat.onStatus(cb), [goat]);
  const get = () => goat.status;
  return useSyncExternalStore(subscribe, get, get);
}

/** usePending returns the number of local writes of a replica the gateway has not acknowledged. */
export function usePending(repo: Replica | undefined): number {
  const subscribe = useMemo(() => (cb: () => void) => (repo ? repo.subscribe(cb) : () => {}), [repo]);
  const get = () => repo?.pendingCount ?? 0;
  return useSyncExternalStore(subscribe, get, get);
}

// Re-exported so that an app importing the hooks has the types at hand.
export type { Item, Query, LiveQuery, Replica, Goat, Status, Schema };
