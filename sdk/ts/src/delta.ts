// Deltas (core/delta.go): a commit's value as ops on an ancestor of the same
// key that carries full data. Wire form and rules are the Go side's; every
// op has exactly the members of its kind, so each delta has one spelling.

import { GoatError } from "./errors.js";
import { canonicalize, clone, compareStrings, equalJSON, has, isObject, type JSONObject, type JSONValue } from "./json.js";
import type { FieldType, Schema } from "./schema.js";
import { fieldType } from "./schema.js";

/** One delta op (core.Op). */
export type Op =
  | { op: "set"; field: string; value: JSONValue }
  | { op: "unset"; field: string }
  | { op: "add" | "remove"; field: string; values: string[] }
  | { op: "put"; field: string; key: string; value: string | number | boolean }
  | { op: "del"; field: string; key: string }
  | { op: "splice"; field: string; at: number; del: number; ins: string };

/** A delta: {base, ops}. */
export interface Delta {
  base: string;
  ops: Op[];
}

/** MaxOps bounds the ops of one delta. */
export const MaxOps = 10000;
const MaxCommitBytes = 1 << 20;

const opMembers: Record<string, string[]> = {
  set: ["field", "op", "value"],
  unset: ["field", "op"],
  add: ["field", "op", "values"],
  remove: ["field", "op", "values"],
  put: ["field", "key", "op", "value"],
  del: ["field", "key", "op"],
  splice: ["at", "del", "field", "ins", "op"],
};

function bad(msg: string): never {
  throw new GoatError("invalid", msg);
}

const isScalar = (v: unknown): v is string | number | boolean =>
  typeof v === "string" || typeof v === "number" || typeof v === "boolean";

/** isSortedUnique reports whether s is sorted by UTF-16 code units without repeats. */
export function isSortedUnique(s: readonly string[]): boolean {
  for (let i = 1; i < s.length; i++) if (compareStrings(s[i - 1], s[i]) >= 0) return false;
  return true;
}

/** asSet returns v as a set (sorted, unique strings) if it is one. */
export function asSet(v: unknown): string[] | undefined {
  if (!Array.isArray(v) || !v.every((e) => typeof e === "string")) return undefined;
  return isSortedUnique(v as string[]) ? (v as string[]) : undefined;
}

/** asMap returns v as a map field value (scalar values) if it is one. */
export function asMap(v: unknown): Record<string, string | number | boolean> | undefined {
  if (!isObject(v)) return undefined;
  for (const k of Object.keys(v)) if (!isScalar(v[k])) return undefined;
  return v as Record<string, string | number | boolean>;
}

/** setUnion returns the sorted union of two sorted sets. */
export function setUnion(a: readonly string[], b: readonly string[]): string[] {
  return [...new Set([...a, ...b])].sort(compareStrings);
}

/** setMinus returns the elements of a not in b. */
export function setMinus(a: readonly string[], b: readonly string[]): string[] {
  const bs = new Set(b);
  return a.filter((x) => !bs.has(x));
}

/** checkDelta validates a delta's shape (core Delta.check plus the decoder's member checks). */
export function checkDelta(d: unknown): asserts d is Delta {
  if (!isObject(d)) bad("delta: must be an object");
  for (const k of Object.keys(d)) if (k !== "base" && k !== "ops") bad(`delta: ${k}: unknown field`);
  if (typeof d.base !== "string" || !/^[0-9a-f]{64}$/.test(d.base)) bad("delta: base: not a commit id");
  if (!Array.isArray(d.ops) || d.ops.length === 0) bad("delta: ops: must be a non-empty array");
  if (d.ops.length > MaxOps) throw new GoatError("too-large", `delta: ops: more than ${MaxOps}`);
  d.ops.forEach((o, i) => {
    try {
      checkOp(o);
    } catch (e) {
      if (e instanceof GoatError) throw new GoatError(e.code, `delta: ops[${i}]: ${e.message}`);
      throw e;
    }
  });
}

function checkOp(o: unknown): void {
  if (!isObject(o)) bad("op: must be an object");
  const members = typeof o.op === "string" ? opMembers[o.op] : undefined;
  if (!members) bad(`op: unknown kind ${JSON.stringify(o.op)}`);
  for (const k of Object.keys(o)) if (!members.includes(k)) bad(`${k}: not a member of a ${JSON.stringify(o.op)} op`);
  for (const k of members) if (!has(o, k)) bad(`${k}: missing`);
  if (typeof o.field !== "string" || o.field === "") bad("field: must be a non-empty string");
  switch (o.op) {
    case "add":
    case "remove":
      if (!Array.isArray(o.values) || o.values.length === 0 || !o.values.every((e) => typeof e === "string")) bad("values: must be a non-empty array of strings");
      if (!isSortedUnique(o.values as string[])) bad("values: must be sorted and unique");
      break;
    case "put":
      if (!isScalar(o.value)) bad("value: a map value is a string, number or boolean");
      if (typeof o.key !== "string") bad("key: must be a string");
      break;
    case "del":
      if (typeof o.key !== "string") bad("key: must be a string");
      break;
    case "splice": {
      const ok = (n: unknown) => typeof n === "number" && Number.isInteger(n) && n >= 0 && n <= MaxCommitBytes;
      if (!ok(o.at) || !ok(o.del)) bad("at, del: must be small non-negative integers");
      if (typeof o.ins !== "string") bad("ins: must be a string");
      if (o.del === 0 && o.ins === "") bad("splice: deletes and inserts nothing");
      break;
    }
  }
}

/**
 * applyDelta returns base edited by d's ops; base is not modified. An op that
 * does not fit the value it edits is a GoatError "invalid" (core.ApplyDelta).
 */
export function applyDelta(base: JSONObject | undefined, d: Delta): JSONObject {
  const out: JSONObject = clone(base ?? {});
  d.ops.forEach((o, i) => {
    try {
      applyOp(out, o);
    } catch (e) {
      if (e instanceof GoatError) throw new GoatError(e.code, `ops[${i}] (${o.op} ${o.field}): ${e.message}`);
      throw e;
    }
  });
  return out;
}

function applyOp(m: JSONObject, o: Op): void {
  const present = has(m, o.field);
  const cur = m[o.field];
  switch (o.op) {
    case "set":
      m[o.field] = clone(o.value);
      return;
    case "unset":
      delete m[o.field];
      return;
    case "add":
    case "remove": {
      let set: string[] = [];
      if (present) {
        const s = asSet(cur);
        if (!s) bad("field is not a set");
        set = s;
      }
      m[o.field] = o.op === "add" ? setUnion(set, o.values) : setMinus(set, o.values);
      return;
    }
    case "put":
    case "del": {
      let obj: JSONObject = {};
      if (present) {
        if (!isObject(cur)) bad("field is not a map");
        obj = cur;
      }
      if (o.op === "put") obj[o.key] = o.value;
      else delete obj[o.key];
      m[o.field] = obj;
      return;
    }
    case "splice": {
      let s = "";
      if (present) {
        if (typeof cur !== "string") bad("field is not text");
        s = cur;
      }
      const r = Array.from(s);
      if (o.at > r.length || o.del > r.length - o.at) bad(`splice at ${o.at} del ${o.del} past the end of ${r.length} code points`);
      r.splice(o.at, o.del, ...Array.from(o.ins));
      m[o.field] = r.join("");
      return;
    }
  }
}

/**
 * diff returns ops that turn a into b (core.Diff): sets, maps and text (by
 * the schema's field types) get small ops, anything else is set whole.
 */
export function diff(schema: Schema | undefined, a: JSONObject, b: JSONObject): Op[] {
  const fields = [...Object.keys(a), ...Object.keys(b).filter((k) => !has(a, k))].sort(compareStrings);
  const ops: Op[] = [];
  for (const f of fields) {
    const inA = has(a, f), inB = has(b, f);
    if (!inB) {
      ops.push({ op: "unset", field: f });
      continue;
    }
    if (inA && equalJSON(a[f], b[f])) continue;
    const ft: FieldType = schema ? fieldType(schema, f) || "json" : "json";
    ops.push(...diffField(ft, f, a[f], b[f], inA));
  }
  return ops;
}

function diffField(ft: FieldType, f: string, av: JSONValue, bv: JSONValue, inA: boolean): Op[] {
  const set: Op[] = [{ op: "set", field: f, value: clone(bv) }];
  if (!inA) return set;
  switch (ft) {
    case "set": {
      const as = asSet(av), bs = asSet(bv);
      if (!as || !bs) return set;
      const ops: Op[] = [];
      const rm = setMinus(as, bs), add = setMinus(bs, as);
      if (rm.length) ops.push({ op: "remove", field: f, values: rm });
      if (add.length) ops.push({ op: "add", field: f, values: add });
      return ops;
    }
    case "map": {
      const am = asMap(av), bm = asMap(bv);
      if (!am || !bm) return set;
      const keys = [...Object.keys(am), ...Object.keys(bm).filter((k) => !has(am, k))].sort(compareStrings);
      const ops: Op[] = [];
      for (const k of keys) {
        if (!has(bm, k)) ops.push({ op: "del", field: f, key: k });
        else if (!has(am, k) || !equalJSON(am[k], bm[k])) ops.push({ op: "put", field: f, key: k, value: bm[k] });
      }
      return ops;
    }
    case "text": {
      if (typeof av !== "string" || typeof bv !== "string") return set;
      const ar = Array.from(av), br = Array.from(bv);
      let p = 0;
      while (p < ar.length && p < br.length && ar[p] === br[p]) p++;
      let q = 0;
      while (q < ar.length - p && q < br.length - p && ar[ar.length - 1 - q] === br[br.length - 1 - q]) q++;
      return [{ op: "splice", field: f, at: p, del: ar.length - p - q, ins: br.slice(p, br.length - q).join("") }];
    }
  }
  return set;
}

/**
 * encode chooses how a writer sends next, a new value of an item whose
 * current value base (full data) has id baseId: a delta when its canonical
 * JSON is at most half the size of the full data, else the full data
 * (core.Encode, so Go and TypeScript writers make the same choice).
 */
export function encode(schema: Schema | undefined, baseId: string | undefined, base: JSONObject | undefined, next: JSONObject): { data: JSONObject } | { delta: Delta } {
  if (!base || !baseId) return { data: next };
  const ops = diff(schema, base, next);
  if (ops.length === 0 || ops.length > MaxOps) return { data: next };
  const d: Delta = { base: baseId, ops };
  try {
    checkDelta(d);
    if (2 * byteLen(canonicalize(d)) > byteLen(canonicalize(next))) return { data: next };
  } catch {
    return { data: next };
  }
  return { delta: d };
}

const byteLen = (s: string): number => new TextEncoder().encode(s).length;
