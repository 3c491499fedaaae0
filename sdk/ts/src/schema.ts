// Schemas (DESIGN section 2; core/schema.go): field types, validation,
// defaults and declarative upgrades, applied exactly as the Go side does so
// that every peer reads an item at the same value.

import { parseSchemaRef } from "./commit.js";
import { asMap, asSet } from "./delta.js";
import { GoatError } from "./errors.js";
import { canonicalize, clone, compareStrings, has, type JSONObject, type JSONValue } from "./json.js";

/** A field type. */
export type FieldType = "string" | "number" | "boolean" | "date" | "json" | "set" | "map" | "text";
const fieldTypes: FieldType[] = ["string", "number", "boolean", "date", "json", "set", "map", "text"];

/** One field of a schema. */
export interface Field {
  type: FieldType;
  required?: boolean;
  default?: JSONValue;
}

/** One declarative upgrade step from version N-1 to N. */
export interface Upgrade {
  op: "add" | "rename" | "remove" | "convert";
  field?: string;
  from?: string;
  to?: string;
  default?: JSONValue;
  conversion?: "identity" | "toString" | "toNumber" | "toBoolean" | "toSet";
}

/** One version of a namespace's item type. */
export interface Schema {
  ns: string;
  version: number;
  fields: Record<string, Field>;
  upgrade?: Upgrade[];
  /** Open schemas (any/1) accept any top-level field as a json register. */
  open?: boolean;
}

/** The tombstone flag, a boolean register in every schema. */
export const DeletedField = "isDeleted";
/** The built-in free-form schema. */
export const AnySchema = "any/1";

/** schemaRef returns "ns/version". */
export const schemaRef = (s: { ns: string; version: number }): string => `${s.ns}/${s.version}`;

/** fieldType returns the type of a field: boolean for the tombstone flag, json for any field of an open schema, "" if unknown. */
export function fieldType(s: Schema, name: string): FieldType | "" {
  if (name === DeletedField) return "boolean";
  if (has(s.fields, name)) return s.fields[name].type;
  return s.open ? "json" : "";
}

const datePattern = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** typeError returns why v is not of type ft, or "" if it is. */
export function typeError(ft: FieldType, v: JSONValue): string {
  switch (ft) {
    case "string":
    case "text":
      return typeof v === "string" ? "" : "want a string";
    case "number":
      return typeof v === "number" ? "" : "want a number";
    case "boolean":
      return typeof v === "boolean" ? "" : "want a boolean";
    case "date": {
      if (typeof v !== "string" || !datePattern.test(v)) return "want a UTC date like 2026-11-22T10:00:00.000Z";
      const t = Date.parse(v);
      return Number.isFinite(t) && new Date(t).toISOString() === v ? "" : `${JSON.stringify(v)} is not a valid date`;
    }
    case "json":
      return "";
    case "set":
      return asSet(v) ? "" : "want an array of strings, sorted and unique";
    case "map":
      return asMap(v) ? "" : "want an object of strings, numbers and booleans";
  }
  return `unknown type ${JSON.stringify(ft)}`;
}

function schemaErr(msg: string): never {
  throw new GoatError("schema", msg);
}

/** validate checks data against s (core Schema.Validate); it throws a GoatError "schema". */
export function validate(s: Schema, data: JSONObject): void {
  if (has(data, DeletedField) && typeof data[DeletedField] !== "boolean") schemaErr(`${DeletedField}: must be a boolean`);
  for (const k of Object.keys(data).sort()) {
    if (k === DeletedField) continue;
    const ft = fieldType(s, k);
    if (ft === "") schemaErr(`${k}: not a field of ${schemaRef(s)}`);
    const e = typeError(ft, data[k]);
    if (e) schemaErr(`${k}: ${e}`);
  }
  if (data[DeletedField] === true) return;
  const missing = Object.keys(s.fields)
    .filter((n) => !has(data, n) && s.fields[n].required && s.fields[n].default === undefined)
    .sort();
  if (missing.length) schemaErr(`${missing.join(", ")}: required by ${schemaRef(s)}`);
}

/** withDefaults returns a copy of data with every absent field that has a default set to it: what readers see. */
export function withDefaults(s: Schema, data: JSONObject): JSONObject {
  const out = clone(data);
  for (const n of Object.keys(s.fields)) {
    const d = s.fields[n].default;
    if (!has(out, n) && d !== undefined && d !== null) out[n] = clone(d);
  }
  return out;
}

const jsonNumber = /^[ \t\n\r]*-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?[ \t\n\r]*$/;

const conversions: Record<string, (v: JSONValue) => JSONValue | undefined> = {
  identity: (v) => v,
  toString: (v: JSONValue) => (typeof v === "string" ? v : typeof v === "boolean" ? String(v) : typeof v === "number" ? canonicalize(v) : undefined),
  toNumber: (v) => {
    if (typeof v === "number") return v;
    if (typeof v === "boolean") return v ? 1 : 0;
    if (typeof v === "string" && jsonNumber.test(v)) {
      const n = Number(v.trim());
      return Number.isFinite(n) ? n : undefined;
    }
    return undefined;
  },
  toBoolean: (v) => (typeof v === "boolean" ? v : typeof v === "number" ? v !== 0 : v === "true" ? true : v === "false" ? false : undefined),
  toSet: (v) => {
    if (typeof v === "string") return [v];
    if (Array.isArray(v) && v.every((e) => typeof e === "string")) return [...new Set(v as string[])].sort(compareStrings);
    return undefined;
  },
};

function applyUpgrade(s: Schema, data: JSONObject): void {
  for (const u of s.upgrade ?? []) {
    switch (u.op) {
      case "add":
        if (!has(data, u.field!)) data[u.field!] = clone(u.default ?? null);
        break;
      case "rename":
        if (has(data, u.from!)) {
          const v = data[u.from!];
          delete data[u.from!];
          data[u.to!] = v;
        }
        break;
      case "remove":
        delete data[u.field!];
        break;
      case "convert":
        if (has(data, u.field!)) {
          const c = conversions[u.conversion!](data[u.field!]);
          if (c === undefined) delete data[u.field!];
          else data[u.field!] = c;
        }
        break;
    }
  }
}

/** checkSchema validates a definition (core Schema.Check). */
export function checkSchema(s: Schema): void {
  parseSchemaRef(schemaRef(s));
  for (const name of Object.keys(s.fields ?? {})) {
    const f = s.fields[name];
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(name) || name === DeletedField) schemaErr(`schema ${schemaRef(s)}: bad field name ${JSON.stringify(name)}`);
    if (!fieldTypes.includes(f.type)) schemaErr(`schema ${schemaRef(s)}: field ${name}: unknown type ${JSON.stringify(f.type)}`);
    if (f.default !== undefined && f.default !== null && typeError(f.type, f.default)) schemaErr(`schema ${schemaRef(s)}: field ${name}: default does not fit`);
  }
  for (const u of s.upgrade ?? []) {
    const ok =
      (u.op === "add" && !!u.field && u.default !== undefined) ||
      (u.op === "rename" && !!u.from && !!u.to && u.from !== u.to) ||
      (u.op === "remove" && !!u.field) ||
      (u.op === "convert" && !!u.field && !!u.conversion && has(conversions, u.conversion));
    if (!ok) schemaErr(`schema ${schemaRef(s)}: malformed ${JSON.stringify(u.op)} upgrade step`);
  }
}

/** Registry holds known schemas; a new one knows any/1. */
export class Registry {
  private schemas = new Map<string, Schema>();
  private latestVersion = new Map<string, number>();
  private retired = new Set<string>();

  constructor(schemas: Iterable<Schema> = []) {
    this.add({ ns: "any", version: 1, fields: {}, open: true });
    for (const s of schemas) this.add(s);
  }

  /** add registers s; a different definition under a known ref is a GoatError "conflict". */
  add(s: Schema): void {
    checkSchema(s);
    const ref = schemaRef(s);
    const old = this.schemas.get(ref);
    if (old) {
      if (canonicalize(normal(old)) !== canonicalize(normal(s))) throw new GoatError("conflict", `schema ${ref} is already defined differently`);
      return;
    }
    this.schemas.set(ref, s);
    if (s.version > (this.latestVersion.get(s.ns) ?? 0)) this.latestVersion.set(s.ns, s.version);
  }

  /** get returns the schema ref names, or throws a GoatError "schema". */
  get(ref: string): Schema {
    const s = this.schemas.get(ref);
    if (!s) {
      parseSchemaRef(ref);
      schemaErr(`unknown schema ${ref}`);
    }
    return s;
  }

  /** has reports whether ref is known. */
  has(ref: string): boolean {
    return this.schemas.has(ref);
  }

  /** latest returns the newest readable version of ns (cap), or undefined. */
  latest(ns: string): Schema | undefined {
    const v = this.cap(ns);
    return v === undefined ? undefined : this.schemas.get(`${ns}/${v}`);
  }

  /**
   * cap returns the newest version of ns readers see (core.Registry.Cap): the newest known, or the
   * one below the lowest retired version; undefined for an unknown namespace.
   */
  cap(ns: string): number | undefined {
    const v = this.latestVersion.get(ns);
    if (v === undefined) return undefined;
    for (let i = 1; i <= v; i++) if (this.retired.has(`${ns}/${i}`)) return i - 1;
    return v;
  }

  /** retire marks a known version retired (rollback, DESIGN section 2), or restores it. */
  retire(ref: string, retired = true): void {
    this.get(ref);
    if (retired) this.retired.add(ref);
    else this.retired.delete(ref);
  }

  /** isRetired reports whether version ref is retired. */
  isRetired(ref: string): boolean {
    return this.retired.has(ref);
  }

  /** anyRetired reports whether some version is retired. */
  anyRetired(): boolean {
    return this.retired.size > 0;
  }

  /** list returns every schema by namespace then version. */
  list(): Schema[] {
    return [...this.schemas.values()].sort((a, b) => (a.ns !== b.ns ? compareStrings(a.ns, b.ns) : a.version - b.version));
  }

  /** upgrade returns data of schema from upgraded to schema to (same namespace, from <= to); data is not modified. */
  upgrade(data: JSONObject, from: string, to: string): JSONObject {
    const a = parseSchemaRef(from), b = parseSchemaRef(to);
    if (a.ns !== b.ns || a.version > b.version) schemaErr(`cannot upgrade ${from} to ${to}`);
    const out = clone(data);
    for (let v = a.version + 1; v <= b.version; v++) applyUpgrade(this.get(`${a.ns}/${v}`), out);
    return out;
  }
}

// normal drops absent optional members so definitions compare by meaning.
function normal(s: Schema): JSONValue {
  const fields: JSONObject = {};
  for (const [n, f] of Object.entries(s.fields)) {
    const o: JSONObject = { type: f.type };
    if (f.required) o.required = true;
    if (f.default !== undefined && f.default !== null) o.default = f.default;
    fields[n] = o;
  }
  const out: JSONObject = { ns: s.ns, version: s.version, fields };
  if (s.upgrade?.length) out.upgrade = s.upgrade as unknown as JSONValue;
  if (s.open) out.open = true;
  return out;
}
