// An independent check of core/testdata/commits.json: it shares no code with
// the Go implementation. RFC 8785 is defined in terms of ECMAScript's
// JSON.stringify, so canonicalization here is the spec itself; hashing and
// Ed25519 come from Node's crypto. Run: node tools/vectors/verify-commits.mjs
import { createHash, createPrivateKey, createPublicKey, sign, verify } from "node:crypto";
import { readFileSync } from "node:fs";

const file = process.argv[2] ?? new URL("../../core/testdata/commits.json", import.meta.url);
const doc = JSON.parse(readFileSync(file, "utf8"));

function canon(v) {
  if (v === null || typeof v !== "object") return JSON.stringify(v);
  if (Array.isArray(v)) return "[" + v.map(canon).join(",") + "]";
  // Array.prototype.sort compares UTF-16 code units, as RFC 8785 requires.
  return "{" + Object.keys(v).sort().map((k) => JSON.stringify(k) + ":" + canon(v[k])).join(",") + "}";
}

const seed = Buffer.from(doc.seed, "hex");
const priv = createPrivateKey({
  key: Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), seed]),
  format: "der",
  type: "pkcs8",
});
const pubJwk = createPublicKey(priv).export({ format: "jwk" });
if (pubJwk.x !== doc.publicKey) throw new Error(`public key ${pubJwk.x} != ${doc.publicKey}`);
const pub = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: doc.publicKey }, format: "jwk" });

// Delta ops, written from the description in core/delta.go's doc comment.
function applyOps(base, ops) {
  const out = structuredClone(base);
  const cmp = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
  for (const o of ops) {
    const cur = out[o.field];
    switch (o.op) {
      case "set": out[o.field] = o.value; break;
      case "unset": delete out[o.field]; break;
      case "add": out[o.field] = [...new Set([...(cur ?? []), ...o.values])].sort(cmp); break;
      case "remove": out[o.field] = (cur ?? []).filter((x) => !o.values.includes(x)); break;
      case "put": out[o.field] = { ...(cur ?? {}), [o.key]: o.value }; break;
      case "del": { const m = { ...(cur ?? {}) }; delete m[o.key]; out[o.field] = m; break; }
      case "splice": {
        const cps = Array.from(cur ?? "");
        cps.splice(o.at, o.del, ...Array.from(o.ins));
        out[o.field] = cps.join("");
        break;
      }
      default: throw new Error(`unknown op ${o.op}`);
    }
  }
  return out;
}

let failed = 0, passed = 0;
for (const v of doc.vectors) {
  const problems = [];
  const c = canon(JSON.parse(v.input));
  if (c !== v.canonical) problems.push(`canonical differs:\n  ours ${c}\n  file ${v.canonical}`);
  const id = createHash("sha256").update(v.canonical, "utf8").digest("hex");
  if (id !== v.id) problems.push(`id ${id} != ${v.id}`);
  const full = JSON.parse(v.commit);
  if (full.id !== v.id) problems.push("commit.id differs");
  if (canon(full) !== v.commit) problems.push("commit is not canonical");
  const { id: _i, sig: _s, ...rest } = full;
  if (canon(rest) !== v.canonical) problems.push("commit without id and sig is not the canonical input");
  if (full.author === "merge") {
    if (v.sig !== undefined) problems.push("merge commit has a sig");
  } else {
    const sig = Buffer.from(v.sig, "base64url");
    if (!verify(null, Buffer.from(v.id, "hex"), pub, sig)) problems.push("signature does not verify");
    const ours = sign(null, Buffer.from(v.id, "hex"), priv).toString("base64url");
    if (ours !== v.sig) problems.push(`deterministic signature differs: ${ours}`);
  }
  if (v.result) {
    const got = applyOps(v.baseData, full.delta.ops);
    if (canon(got) !== canon(v.result)) problems.push(`delta result differs: ${canon(got)}`);
  }
  if (problems.length) {
    failed++;
    console.log(`FAIL ${v.name}\n  ${problems.join("\n  ")}`);
  } else passed++;
}
console.log(`vectors: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
