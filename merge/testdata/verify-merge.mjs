// An independent check of merge/testdata/{text,values,graphs,many,views}.json: a
// JavaScript port of the merge written from docs/merge.md, sharing no code
// with the Go implementation. Run: node merge/testdata/verify-merge.mjs
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";

const dir = new URL("./", import.meta.url);
const load = (name) => JSON.parse(readFileSync(new URL(name, dir), "utf8"));

const MAX_DIFF_WORK = 2 ** 23;

// ---- text ----------------------------------------------------------------

// budget.work is shared by every diff of one mergeText or mergeValues call.
function diffText(base, head, budget = { work: 0 }) {
  const a = Array.from(base), b = Array.from(head); // code points
  const st = { hunks: [], pos: 0, open: null };
  const close = () => { if (st.open) { st.hunks.push({ at: st.open.at, del: st.open.del, ins: st.open.ins.join("") }); st.open = null; } };
  const start = () => { if (!st.open) st.open = { at: st.pos, del: 0, ins: [] }; };
  const equal = (n) => { if (n > 0) { close(); st.pos += n; } };
  const del = (n) => { if (n > 0) { start(); st.open.del += n; st.pos += n; } };
  const ins = (r) => { if (r.length > 0) { start(); st.open.ins.push(...r); } };

  function diff(a, b) {
    let p = 0;
    while (p < a.length && p < b.length && a[p] === b[p]) p++;
    equal(p);
    a = a.slice(p); b = b.slice(p);
    let q = 0;
    while (q < a.length && q < b.length && a[a.length - 1 - q] === b[b.length - 1 - q]) q++;
    a = a.slice(0, a.length - q); b = b.slice(0, b.length - q);
    if (a.length === 0) ins(b);
    else if (b.length === 0) del(a.length);
    else {
      const r = bisect(a, b);
      if (r) { diff(a.slice(0, r[0]), b.slice(0, r[1])); diff(a.slice(r[0]), b.slice(r[1])); }
      else { del(a.length); ins(b); }
    }
    equal(q);
  }

  function bisect(a, b) {
    const N = a.length, M = b.length, D = N - M, odd = Math.abs(D) % 2 === 1;
    const F = new Map(), R = new Map();
    const get = (V, k) => (V.has(k) ? V.get(k) : -1);
    const move = (V, d, k) => {
      if (d === 0) return 0;
      let ins = -1, del = -1;
      if (k + 1 <= d - 1 && get(V, k + 1) >= 0 && get(V, k + 1) - k <= M) ins = get(V, k + 1);
      if (k - 1 >= -(d - 1) && get(V, k - 1) >= 0 && get(V, k - 1) + 1 <= N) del = get(V, k - 1) + 1;
      return del > ins ? del : ins;
    };
    for (let d = 0; d <= Math.floor((N + M + 1) / 2); d++) {
      for (let k = -d; k <= d; k += 2) {
        let x = move(F, d, k);
        budget.work++;
        if (x >= 0) {
          const x0 = x; let y = x - k;
          while (x < N && y < M && a[x] === b[y]) { x++; y++; }
          budget.work += x - x0;
        }
        F.set(k, x);
        if (x >= 0 && odd && -(d - 1) <= D - k && D - k <= d - 1 && get(R, D - k) >= 0 && x + get(R, D - k) >= N) return [x, x - k];
        if (budget.work > MAX_DIFF_WORK) return null;
      }
      for (let c = -d; c <= d; c += 2) {
        let x = move(R, d, c);
        budget.work++;
        if (x >= 0) {
          const x0 = x; let y = x - c;
          while (x < N && y < M && a[N - 1 - x] === b[M - 1 - y]) { x++; y++; }
          budget.work += x - x0;
        }
        R.set(c, x);
        const k = D - c;
        if (x >= 0 && !odd && -d <= k && k <= d && get(F, k) >= 0 && get(F, k) + x >= N) return [get(F, k), get(F, k) - k];
        if (budget.work > MAX_DIFF_WORK) return null;
      }
    }
    return null;
  }

  diff(a, b);
  close();
  return st.hunks;
}

function mergeText(base, heads, budget = { work: 0 }) {
  const kept = [];
  for (const h of heads) if (h !== base && !kept.includes(h)) kept.push(h);
  if (kept.length === 0) return base;
  if (kept.length === 1) return kept[0];
  const b = Array.from(base);
  const deleted = new Array(b.length).fill(false);
  const inserts = Array.from({ length: b.length + 1 }, () => []);
  for (const h of kept) {
    for (const s of diffText(base, h, budget)) {
      for (let p = s.at; p < s.at + s.del; p++) deleted[p] = true;
      inserts[s.at + s.del].push(s.ins);
    }
  }
  let out = "";
  for (let g = 0; g <= b.length; g++) {
    out += inserts[g].join("");
    if (g < b.length && !deleted[g]) out += b[g];
  }
  return out;
}

// ---- values --------------------------------------------------------------

const cmpUTF16 = (x, y) => (x < y ? -1 : x > y ? 1 : 0); // JS strings compare by UTF-16 code units
function canon(v) {
  if (v === null || typeof v !== "object") return JSON.stringify(v);
  if (Array.isArray(v)) return "[" + v.map(canon).join(",") + "]";
  return "{" + Object.keys(v).sort().map((k) => JSON.stringify(k) + ":" + canon(v[k])).join(",") + "}";
}
const ABSENT = Symbol("absent");
const same = (x, y) => (x === ABSENT || y === ABSENT ? x === y : canon(x) === canon(y));
const isObj = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const isSet = (v) => Array.isArray(v) && v.every((e) => typeof e === "string") && v.every((e, i) => i === 0 || cmpUTF16(v[i - 1], e) < 0);
const isMap = (v) => isObj(v) && Object.values(v).every((e) => ["string", "number", "boolean"].includes(typeof e));

function fieldType(schema, name) {
  if (name === "isDeleted") return "boolean";
  if (schema.fields && schema.fields[name]) return schema.fields[name].type;
  return schema.open ? "json" : "";
}

function mergeValues(schema, base, heads) {
  base = base ?? {};
  const names = [...new Set([...Object.keys(base), ...heads.flatMap((h) => Object.keys(h))])].sort(cmpUTF16);
  const budget = { work: 0 };
  const out = {};
  for (const name of names) {
    const b = name in base ? base[name] : ABSENT;
    const C = heads.map((h) => (name in h ? h[name] : ABSENT)).filter((v) => !same(v, b));
    let v = b;
    if (C.length === 1) v = C[0];
    else if (C.length > 1) {
      v = C[C.length - 1]; // register
      const t = fieldType(schema, name);
      if (!C.includes(ABSENT)) {
        if (t === "set" && (b === ABSENT || isSet(b)) && C.every(isSet)) {
          const bs = b === ABSENT ? [] : b;
          const removed = new Set(C.flatMap((h) => bs.filter((e) => !h.includes(e))));
          const added = new Set(C.flatMap((h) => h.filter((e) => !bs.includes(e))));
          v = [...new Set([...bs.filter((e) => !removed.has(e)), ...added])].sort(cmpUTF16);
        } else if (t === "map" && (b === ABSENT || isMap(b)) && C.every(isMap)) {
          const bm = b === ABSENT ? {} : b;
          v = {};
          for (const k of new Set([...Object.keys(bm), ...C.flatMap((h) => Object.keys(h))])) {
            const bk = k in bm ? bm[k] : ABSENT;
            const ck = C.map((h) => (k in h ? h[k] : ABSENT)).filter((x) => !same(x, bk));
            const r = ck.length ? ck[ck.length - 1] : bk;
            if (r !== ABSENT) v[k] = r;
          }
        } else if (t === "text" && (b === ABSENT || typeof b === "string") && C.every((x) => typeof x === "string")) {
          v = mergeText(b === ABSENT ? "" : b, C, budget);
        }
      }
    }
    if (v !== ABSENT) out[name] = v;
  }
  return out;
}

// ---- graphs --------------------------------------------------------------

const idOf = (c) => { const { id, sig, ...rest } = c; return createHash("sha256").update(canon(rest)).digest("hex"); };
const order = (x, y) => (x.ts !== y.ts ? x.ts - y.ts : cmpUTF16(x.id, y.id));

function applyDelta(base, ops) {
  const out = structuredClone(base);
  for (const o of ops) {
    const cur = out[o.field];
    switch (o.op) {
      case "set": out[o.field] = o.value; break;
      case "unset": delete out[o.field]; break;
      case "add": out[o.field] = [...new Set([...(cur ?? []), ...o.values])].sort(cmpUTF16); break;
      case "remove": out[o.field] = (cur ?? []).filter((x) => !o.values.includes(x)); break;
      case "put": out[o.field] = { ...(cur ?? {}), [o.key]: o.value }; break;
      case "del": { const m = { ...(cur ?? {}) }; delete m[o.key]; out[o.field] = m; break; }
      case "splice": { const r = Array.from(cur ?? ""); r.splice(o.at, o.del, ...Array.from(o.ins)); out[o.field] = r.join(""); break; }
    }
  }
  return out;
}

function upgrade(schemas, data, from, to) {
  const [ns, v1] = from.split("/"), v2 = +to.split("/")[1];
  let out = structuredClone(data);
  for (let v = +v1 + 1; v <= v2; v++) {
    const s = schemas.find((x) => x.ns === ns && x.version === v);
    for (const u of s.upgrade ?? []) {
      if (u.op === "add" && !(u.field in out)) out[u.field] = u.default;
      if (u.op === "rename" && u.from in out) { out[u.to] = out[u.from]; delete out[u.from]; }
      if (u.op === "remove") delete out[u.field];
      if (u.op === "convert" && u.conversion !== "identity") throw new Error("conversion not ported: " + u.conversion);
    }
  }
  return out;
}

function mergeGraph(schemas, byId, headIds) {
  const anc = (id) => { const seen = new Set(); const st = [id]; while (st.length) { const x = st.pop(); if (!seen.has(x)) { seen.add(x); st.push(...byId.get(x).parents); } } return seen; };
  const sets = headIds.map(anc);
  const common = [...sets[0]].filter((id) => sets.every((s) => s.has(id)));
  const inner = new Set(common.flatMap((id) => byId.get(id).parents));
  const maximal = common.filter((id) => !inner.has(id)).map((id) => byId.get(id)).sort(order);
  const base = maximal.length ? maximal[maximal.length - 1] : null;
  const heads = headIds.map((id) => byId.get(id)).sort(order);
  const last = heads[heads.length - 1];
  const ns = last.schema.split("/")[0];
  const inNS = (c) => c.schema.split("/")[0] === ns;
  const version = Math.max(...[base, ...heads].filter((c) => c && inNS(c)).map((c) => +c.schema.split("/")[1]));
  const target = `${ns}/${version}`;
  const value = (c) => {
    const data = c.data ?? applyDelta(byId.get(c.delta.base).data, c.delta.ops);
    return c.schema === target ? data : upgrade(schemas, data, c.schema, target);
  };
  const schema = target === "any/1" ? { open: true } : schemas.find((s) => `${s.ns}/${s.version}` === target);
  const data = mergeValues(schema, base && inNS(base) ? value(base) : {}, heads.filter(inNS).map(value));
  const m = { author: "merge", data, key: last.key, parents: [...headIds].sort(), repo: last.repo, schema: target, ts: last.ts };
  return { base: base ? base.id : null, merge: { ...m, id: idOf(m) } };
}

// ---- run -----------------------------------------------------------------

let checked = 0;
const fail = (msg) => { throw new Error(msg.length > 2000 ? msg.slice(0, 2000) + "..." : msg); };

for (const c of load("text.json").cases) {
  const scripts = c.heads.map((h) => diffText(c.base, h));
  if (c.scripts) {
    if (canon(scripts) !== canon(c.scripts)) fail(`text ${c.name}: scripts ${canon(scripts)} != ${canon(c.scripts)}`);
  } else if (createHash("sha256").update(canon(scripts)).digest("hex") !== c.scriptsSha256) fail(`text ${c.name}: scripts digest differs`);
  const r = mergeText(c.base, c.heads);
  if (r !== c.result) fail(`text ${c.name}: ${JSON.stringify(r)} != ${JSON.stringify(c.result)}`);
  checked++;
}

const values = load("values.json");
for (const c of values.cases) {
  const schema = c.schema === "any/1" ? { open: true } : values.schemas.find((s) => `${s.ns}/${s.version}` === c.schema);
  const r = mergeValues(schema, c.base, c.heads);
  if (canon(r) !== canon(c.result)) fail(`values ${c.name}: ${canon(r)} != ${canon(c.result)}`);
  checked++;
}

const graphs = load("graphs.json");
for (const c of graphs.cases) {
  const byId = new Map(c.commits.map((x) => [x.id, x]));
  for (const x of c.commits) if (idOf(x) !== x.id) fail(`graphs ${c.name}: commit ${x.id} does not recompute`);
  const r = mergeGraph(graphs.schemas, byId, c.heads);
  if (r.base !== c.base) fail(`graphs ${c.name}: base ${r.base} != ${c.base}`);
  if (canon(r.merge) !== canon(c.merge) || r.merge.id !== c.mergeId) fail(`graphs ${c.name}: ${canon(r.merge)} != ${canon(c.merge)}`);
  // Every merge commit in the history recomputes too (Verify).
  for (const x of c.commits.filter((x) => x.author === "merge")) {
    if (mergeGraph(graphs.schemas, byId, x.parents).merge.id !== x.id) fail(`graphs ${c.name}: merge ${x.id} does not verify`);
  }
  checked++;
}

// ---- many heads (merge.MergeAll) -------------------------------------------

// Levels sorted by (ts, id), cut into groups of groupSize, each group of two
// or more merged (a group of one is carried), until at most groupSize remain;
// then those are merged.
function mergeMany(schemas, byId, headIds, groupSize) {
  const out = [];
  let level = headIds.map((id) => byId.get(id));
  while (level.length > groupSize) {
    level = [...level].sort(order);
    const next = [];
    for (let i = 0; i < level.length; i += groupSize) {
      const group = level.slice(i, i + groupSize);
      if (group.length === 1) { next.push(group[0]); continue; }
      const m = mergeGraph(schemas, byId, group.map((c) => c.id)).merge;
      byId.set(m.id, m); out.push(m); next.push(m);
    }
    level = next;
  }
  out.push(mergeGraph(schemas, byId, level.map((c) => c.id)).merge);
  return out;
}

const many = load("many.json");
for (const c of many.cases) {
  if (c.heads.length <= many.groupSize) fail(`many ${c.name}: only ${c.heads.length} heads`);
  const byId = new Map(c.commits.map((x) => [x.id, x]));
  for (const x of c.commits) if (idOf(x) !== x.id) fail(`many ${c.name}: commit ${x.id} does not recompute`);
  const ms = mergeMany(many.schemas, byId, [...c.heads].reverse(), many.groupSize);
  if (ms.length !== c.merges.length) fail(`many ${c.name}: ${ms.length} merges != ${c.merges.length}`);
  ms.forEach((m, i) => { if (canon(m) !== canon(c.merges[i])) fail(`many ${c.name}: merge ${i}: ${canon(m)} != ${canon(c.merges[i])}`); });
  checked++;
}

// ---- views (schema branches, time travel) ------------------------------------

// A reader capped at versions (absent namespace: the newest in the file's
// schemas) and, with asOf, at a time sees the commits that pass both and
// whose parents are all visible; its heads are the visible commits no
// visible commit names as a parent. Written from DESIGN section 2 and
// docs/merge.md "Views", by the definition, with no walk cleverness.
function newest(schemas, ns) {
  const vs = schemas.filter((s) => s.ns === ns).map((s) => s.version);
  return vs.length ? Math.max(...vs) : undefined;
}
function capOf(schemas, versions, ns) {
  const c = newest(schemas, ns), w = versions?.[ns];
  if (w === undefined) return c;
  return c === undefined ? w : Math.min(w, c);
}
function readValue(schemas, byId, c, versions) {
  const [ns, v] = c.schema.split("/");
  const cap = capOf(schemas, versions, ns);
  if (cap !== undefined && +v > cap) return { unreadable: true };
  const target = cap === undefined ? c.schema : `${ns}/${cap}`;
  const data = c.data ?? applyDelta(byId.get(c.delta.base).data, c.delta.ops);
  return { schema: target, data: c.schema === target ? data : upgrade(schemas, data, c.schema, target) };
}

const views = load("views.json");
for (const c of views.cases) {
  const byId = new Map(c.commits.map((x) => [x.id, x]));
  for (const x of c.commits) if (idOf(x) !== x.id) fail(`views ${c.name}: commit ${x.id} does not recompute`);
  for (const q of c.views) {
    const visible = new Set();
    for (const x of c.commits) { // topological order
      const [ns, v] = x.schema.split("/");
      const cap = capOf(views.schemas, q.versions, ns);
      if ((cap === undefined || +v <= cap) && (q.asOf === undefined || x.ts <= q.asOf) && x.parents.every((p) => visible.has(p))) visible.add(x.id);
    }
    const inner = new Set([...visible].flatMap((id) => byId.get(id).parents));
    const heads = [...visible].filter((id) => !inner.has(id)).sort();
    const label = `views ${c.name} ${JSON.stringify(q.versions ?? {})} asOf ${q.asOf}`;
    if (canon(heads) !== canon(q.heads)) fail(`${label}: heads ${heads} != ${q.heads}`);
    if (heads.length === 0) { if (q.head !== null) fail(`${label}: head ${q.head}, want none`); checked++; continue; }
    let head = byId.get(heads[0]);
    const g = new Map(byId);
    if (heads.length > 1) { head = mergeGraph(views.schemas, g, heads).merge; g.set(head.id, head); }
    const r = readValue(views.schemas, g, head, q.versions);
    if (head.id !== q.head || head.ts !== q.ts || r.schema !== q.schema || canon(r.data) !== canon(q.data)) fail(`${label}: ${head.id} ${r.schema} ${canon(r.data)} != ${q.head} ${q.schema} ${canon(q.data)}`);
    checked++;
  }
  for (const q of c.at) {
    const r = readValue(views.schemas, byId, byId.get(q.id), q.versions);
    if (!!r.unreadable !== !!q.unreadable || !r.unreadable && (r.schema !== q.schema || canon(r.data) !== canon(q.data))) fail(`views ${c.name} at ${q.id}: ${canon(r)} != ${canon(q)}`);
    checked++;
  }
}

console.log(`merge vectors OK: ${checked} cases`);
