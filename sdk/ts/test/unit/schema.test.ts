import { describe, expect, it } from "vitest";
import { canonicalize } from "../../src/json.js";
import { Registry, validate, withDefaults, type Schema } from "../../src/schema.js";
import { GoatError } from "../../src/errors.js";
import { load } from "./vectors.js";

const doc = load("core/testdata/schemas.json");

describe("core/testdata/schemas.json", () => {
  const reg = new Registry(doc.schemas as Schema[]);
  describe("validate", () => {
    doc.validate.forEach((v: any, i: number) => {
      it(`#${i} ${v.schema} ${canonicalize(v.data)} valid=${v.valid}`, () => {
        const s = reg.get(v.schema);
        if (v.valid) validate(s, v.data);
        else expect(() => validate(s, v.data)).toThrow(GoatError);
      });
    });
  });
  describe("upgrade", () => {
    doc.upgrade.forEach((v: any, i: number) => {
      it(`#${i} ${v.from} -> ${v.to}`, () => {
        const before = canonicalize(v.in);
        expect(canonicalize(reg.upgrade(v.in, v.from, v.to))).toBe(canonicalize(v.out));
        expect(canonicalize(v.in)).toBe(before);
      });
    });
  });
});

describe("Registry", () => {
  it("knows any/1 and refuses a different definition under a known ref", () => {
    const reg = new Registry();
    expect(reg.get("any/1").open).toBe(true);
    reg.add({ ns: "t", version: 1, fields: { a: { type: "string" } } });
    reg.add({ ns: "t", version: 1, fields: { a: { type: "string" } } });
    expect(() => reg.add({ ns: "t", version: 1, fields: { a: { type: "number" } } })).toThrow(/differently/);
    expect(reg.latest("t")?.version).toBe(1);
    expect(() => reg.get("t/2")).toThrow(GoatError);
  });
  it("fills defaults for readers", () => {
    const s: Schema = { ns: "t", version: 1, fields: { done: { type: "boolean", default: false }, x: { type: "string" } } };
    expect(withDefaults(s, { x: "a" })).toEqual({ x: "a", done: false });
  });
});
