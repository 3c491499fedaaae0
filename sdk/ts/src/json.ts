// The JSON value model shared with the Go side (core/canonical.go) and the
// RFC 8785 (JCS) canonical form that commit ids are computed over.
//
// RFC 8785 is defined in terms of ECMAScript's own JSON.stringify for
// numbers and strings, so the canonical form here is JSON.stringify with
// object keys sorted by UTF-16 code units (Array.prototype.sort's default
// order, which is also core.CompareStrings), plus the checks JSON.stringify
// does not make: non-finite numbers, lone surrogates and values that are not
// JSON are refused, as the Go side refuses them.

import { GoatError } from "./errors.js";

/** A JSON value as JSON.parse returns it. */
export type JSONValue = null | boolean | number | string | JSONValue[] | JSONObject;
/** A JSON object. */
export interface JSONObject {
  [key: string]: JSONValue;
}

/** MaxJSONDepth bounds nesting, as the Go parser does. */
export const MaxJSONDepth = 64;

/** isObject reports whether v is a plain JSON object (not an array or null). */
export function isObject(v: unknown): v is JSONObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * compareStrings orders strings by UTF-16 code units: the RFC 8785 key order
 * and the order of set elements (core.CompareStrings).
 */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function wellFormed(s: string): boolean {
  // String.prototype.isWellFormed is in Node 20 and every current browser;
  // the regular expression is the fallback for older engines.
  const f = (s as { isWellFormed?: () => boolean }).isWellFormed;
  if (f) return f.call(s);
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
}

/**
 * canonicalize returns the RFC 8785 canonical JSON of v. It throws a
 * GoatError "invalid" for values that are not JSON (undefined, functions,
 * non-finite numbers), strings with lone surrogates, and nesting deeper than
 * MaxJSONDepth.
 */
export function canonicalize(v: unknown): string {
  return canon(v, 0);
}

function canon(v: unknown, depth: number): string {
  switch (typeof v) {
    case "boolean":
      return v ? "true" : "false";
    case "number":
      if (!Number.isFinite(v)) throw new GoatError("invalid", `json: ${v} is not a JSON number`);
      return JSON.stringify(v);
    case "string":
      if (!wellFormed(v)) throw new GoatError("invalid", "json: string has a lone surrogate");
      return JSON.stringify(v);
    case "object": {
      if (v === null) return "null";
      if (depth >= MaxJSONDepth) throw new GoatError("invalid", `json: nesting deeper than ${MaxJSONDepth}`);
      if (Array.isArray(v)) {
        let out = "[";
        for (let i = 0; i < v.length; i++) out += (i ? "," : "") + canon(v[i], depth + 1);
        return out + "]";
      }
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) throw new GoatError("invalid", "json: not a plain object");
      const o = v as Record<string, unknown>;
      const keys = Object.keys(o).sort();
      let out = "{";
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i];
        if (!wellFormed(k)) throw new GoatError("invalid", "json: key has a lone surrogate");
        out += (i ? "," : "") + JSON.stringify(k) + ":" + canon(o[k], depth + 1);
      }
      return out + "}";
    }
    default:
      throw new GoatError("invalid", `json: a ${typeof v} is not a JSON value`);
  }
}

/**
 * parseJSON parses text with JSON.parse and then refuses what the Go parser
 * refuses and JSON.parse accepts: lone surrogates and deep nesting (checked by
 * canonicalizing). Duplicate keys cannot be seen after JSON.parse; the
 * gateway refuses them before anything reaches a client.
 */
export function parseJSON(text: string): JSONValue {
  let v: JSONValue;
  try {
    v = JSON.parse(text) as JSONValue;
  } catch (e) {
    throw new GoatError("invalid", `json: ${(e as Error).message}`);
  }
  canonicalize(v);
  return v;
}

/** equalJSON compares two JSON values (numbers as doubles, objects ignoring key order), like core.EqualJSON. */
export function equalJSON(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a === "number" && typeof b === "number") return a === b;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!equalJSON(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a), kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  const bo = b as Record<string, unknown>, ao = a as Record<string, unknown>;
  for (const k of ka) if (!Object.prototype.hasOwnProperty.call(bo, k) || !equalJSON(ao[k], bo[k])) return false;
  return true;
}

/** clone deep-copies a JSON value. */
export function clone<T extends JSONValue | undefined>(v: T): T {
  if (typeof v !== "object" || v === null) return v;
  if (Array.isArray(v)) return v.map((x) => clone(x)) as T;
  const out: JSONObject = {};
  for (const k of Object.keys(v)) out[k] = clone((v as JSONObject)[k]);
  return out as T;
}

/** has reports whether o has own property k (safe for keys like "__proto__"). */
export function has(o: object, k: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, k);
}
