// The peer side of goat-gateway's benchmarks: PouchDB's pouchdb-server,
// measured the way goat-bench measures goat-gateway, on the same machine in
// the same run. goat-bench runs this script and reads the JSON it writes;
// docs/benchmarks.md explains the method.
//
//   node bench.mjs [--phase all|clone|live] --docs docs.ndjson --subs 1,100,1000 --samples 100 --reps 3 --work DIR --out peer-raw.json
//
// goat-bench runs the clone phase right after its own clone and heal
// scenarios and the live phase right after its live scenario, so that each
// comparison is made minutes apart on a machine whose load changes.
//
// What it measures (each against a pouchdb-server it starts with
// --in-memory, holding the documents of --docs):
//   clone:   PouchDB.replicate(remote, fresh in-memory db), with PouchDB's
//            default options and with batch_size 1000;
//   in-sync: the same replication again, with nothing to do;
//   live:    N continuous _changes feeds; a PUT of one document, timed from
//            sending it to each feed's line for it.
// Bytes on the wire are counted on the client's sockets (socket.bytesRead
// and bytesWritten: HTTP headers and compression included).

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import PouchDB from 'pouchdb-core';
import HttpAdapter from 'pouchdb-adapter-http';
import MemoryAdapter from 'pouchdb-adapter-memory';
import Replication from 'pouchdb-replication';
import { fetch as pouchFetch } from 'pouchdb-fetch';

PouchDB.plugin(HttpAdapter).plugin(MemoryAdapter).plugin(Replication);

const here = path.dirname(fileURLToPath(import.meta.url));

function parseArgs(argv) {
  const a = { subs: '1,100', samples: 20, reps: 1, warmup: 5, phase: 'all' };
  for (let i = 0; i < argv.length; i += 2) {
    a[argv[i].replace(/^--/, '')] = argv[i + 1];
  }
  a.subs = String(a.subs).split(',').filter(Boolean).map(Number);
  a.samples = Number(a.samples);
  a.reps = Number(a.reps);
  a.warmup = Number(a.warmup);
  if (!['all', 'clone', 'live'].includes(a.phase)) throw new Error(`--phase: all, clone or live, not ${a.phase}`);
  for (const k of ['work', 'out']) {
    if (!a[k]) throw new Error(`--${k} is required`);
  }
  if (a.phase !== 'live' && !a.docs) throw new Error('--docs is required');
  return a;
}

// summarize: nearest-rank percentiles, as goat-bench reports them.
function summarize(xs) {
  if (xs.length === 0) return { n: 0, min: 0, p50: 0, p90: 0, p99: 0, max: 0, mean: 0 };
  const s = [...xs].sort((a, b) => a - b);
  const rank = (q) => s[Math.max(0, Math.min(s.length - 1, Math.ceil(q * s.length) - 1))];
  return { n: s.length, min: s[0], p50: rank(0.5), p90: rank(0.9), p99: rank(0.99), max: s[s.length - 1], mean: s.reduce((a, b) => a + b, 0) / s.length };
}

const median = (xs) => summarize(xs).p50;

// doc is goat-bench's doc(i): the value of benchmark item i.
function doc(i) {
  const pad = (n) => String(n).padStart(2, '0');
  return {
    title: `Task ${i}: call the plumber about the kitchen sink`,
    done: i % 3 === 0,
    prio: i % 5,
    due: `2026-${pad(1 + (i % 12))}-${pad(1 + (i % 28))}T09:30:00.000Z`,
    tags: ['home', `room-${i % 7}`],
    notes: `Ask for a quote first; the last visit (#${i % 1000}) took two hours and the part was not in stock.`,
  };
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

// CountingAgent is a keep-alive agent that remembers its sockets, so the
// bytes they carried can be summed.
class CountingAgent extends http.Agent {
  constructor(opts) {
    super({ keepAlive: true, maxSockets: 16, ...opts });
    this.all = new Set();
  }
  createConnection(options, cb) {
    const s = super.createConnection(options, cb);
    this.all.add(s);
    return s;
  }
  bytes() {
    let r = 0, w = 0;
    for (const s of this.all) { r += s.bytesRead; w += s.bytesWritten; }
    return { in: r, out: w };
  }
  close() { this.destroy(); }
}

// remoteDB opens the server's database through a counting agent; requests
// counts the HTTP requests PouchDB made.
function remoteDB(url) {
  const agent = new CountingAgent();
  const stats = { requests: 0, agent };
  const db = new PouchDB(url, {
    fetch: (u, opts) => { stats.requests++; return pouchFetch(u, { ...opts, agent }); },
  });
  return { db, stats };
}

function request(agent, method, url, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request(url, { method, agent, headers: data ? { 'content-type': 'application/json', 'content-length': data.length } : {} }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        if (res.statusCode >= 400) reject(new Error(`${method} ${url}: ${res.statusCode} ${text.slice(0, 300)}`));
        else resolve(text);
      });
    });
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

async function startServer(work) {
  const port = await freePort();
  fs.mkdirSync(work, { recursive: true });
  const config = path.join(work, 'config.json');
  // Logging at "error" and not to stdout: the peer at its fastest.
  fs.writeFileSync(config, JSON.stringify({ log: { file: path.join(work, 'log.txt'), level: 'error' } }));
  const bin = path.join(here, 'node_modules', 'pouchdb-server', 'bin', 'pouchdb-server');
  const child = spawn(process.execPath, [bin, '--in-memory', '--host', '127.0.0.1', '--port', String(port), '--config', config, '--no-stdout-logs'], { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  const url = `http://127.0.0.1:${port}`;
  const agent = new http.Agent({ keepAlive: true });
  for (let i = 0; ; i++) {
    try {
      await request(agent, 'GET', url + '/');
      break;
    } catch (e) {
      if (child.exitCode !== null || i > 600) throw new Error(`pouchdb-server did not start: ${e.message}\n${output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return { url, child, agent, stop: () => new Promise((r) => { child.on('exit', r); child.kill('SIGTERM'); }) };
}

async function loadDocs(server, file) {
  await request(server.agent, 'PUT', server.url + '/bench');
  const rl = readline.createInterface({ input: fs.createReadStream(file), crlfDelay: Infinity });
  let batch = [];
  let n = 0;
  const t0 = performance.now();
  for await (const line of rl) {
    if (!line) continue;
    batch.push(JSON.parse(line));
    if (batch.length === 1000) {
      await request(server.agent, 'POST', server.url + '/bench/_bulk_docs', { docs: batch });
      n += batch.length;
      batch = [];
    }
  }
  if (batch.length) {
    await request(server.agent, 'POST', server.url + '/bench/_bulk_docs', { docs: batch });
    n += batch.length;
  }
  return { docs: n, seconds: (performance.now() - t0) / 1000 };
}

let dbSeq = 0;

async function clone(server, n, opts) {
  const { db: remote, stats } = remoteDB(server.url + '/bench');
  const local = new PouchDB(`clone-${dbSeq++}`, { adapter: 'memory' });
  const t0 = performance.now();
  const res = await PouchDB.replicate(remote, local, opts);
  const seconds = (performance.now() - t0) / 1000;
  const info = await local.info();
  if (info.doc_count !== n) throw new Error(`clone ended with ${info.doc_count} docs, want ${n} (${JSON.stringify(res)})`);
  const bytes = stats.agent.bytes();
  return { seconds, requests: stats.requests, bytes, local, remote, stats };
}

async function live(server, subs, samples, warmup, report) {
  const feedAgent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  const writeAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const total = samples + warmup;
  const index = new Map();
  const base = 1_000_000 + subs * 10_000;
  for (let i = 0; i < total; i++) index.set(`live-${base + i}`, i);
  const recv = Array.from({ length: subs }, () => new Float64Array(total));
  const delivered = new Int32Array(total);
  const sawAny = new Uint8Array(subs);
  let seenBy = 0;
  let waiting = null; // { i, resolve }
  const reqs = [];
  // The server sends a feed's headers with its first line, so the feeds
  // are not awaited here: the probe below waits until each one is live.
  let feedError = null;
  for (let s = 0; s < subs; s++) {
    const req = http.get(`${server.url}/bench/_changes?feed=continuous&since=now&heartbeat=10000`, { agent: feedAgent }, (res) => {
      if (res.statusCode !== 200) { feedError = new Error(`changes feed: ${res.statusCode}`); return; }
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        const now = performance.now();
        buf += chunk;
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (!line.trim()) continue;
          let ch;
          try { ch = JSON.parse(line); } catch { continue; }
          if (!sawAny[s]) { sawAny[s] = 1; seenBy++; }
          const i = index.get(ch.id);
          if (i === undefined || recv[s][i] !== 0) continue;
          recv[s][i] = now;
          delivered[i]++;
          if (waiting && waiting.i === i && delivered[i] === subs) waiting.resolve(true);
        }
      });
    });
    req.on('error', (e) => { feedError = e; });
    reqs.push(req);
  }
  // A feed listens some time after its request is sent (since=now is
  // resolved by the server): write probe documents until every feed has
  // seen one, then start.
  for (let k = 0; seenBy < subs; k++) {
    if (feedError) throw feedError;
    if (k === 100) throw new Error(`only ${seenBy} of ${subs} feeds became live`);
    await request(writeAgent, 'PUT', `${server.url}/bench/probe-${base}-${k}`, { probe: k });
    const t0 = performance.now();
    while (seenBy < subs && performance.now() - t0 < 500) await new Promise((r) => setTimeout(r, 5));
  }
  const send = new Float64Array(total), ack = new Float64Array(total), complete = new Uint8Array(total);
  for (let i = 0; i < total; i++) {
    const id = `live-${base + i}`;
    let timer;
    const done = new Promise((resolve) => {
      waiting = { i, resolve };
      timer = setTimeout(() => resolve(false), 2000);
    });
    send[i] = performance.now();
    await request(writeAgent, 'PUT', `${server.url}/bench/${id}`, doc(i));
    ack[i] = performance.now();
    if (delivered[i] === subs) waiting.resolve(true);
    complete[i] = (await done) ? 1 : 0;
    clearTimeout(timer);
  }
  const fromSend = [], fromAck = [], all = [], writes = [];
  let lost = 0;
  for (let i = warmup; i < total; i++) {
    writes.push(ack[i] - send[i]);
    let last = 0, seen = 0;
    for (let s = 0; s < subs; s++) {
      const r = recv[s][i];
      if (r === 0) continue;
      seen++;
      fromSend.push(r - send[i]);
      fromAck.push(r - ack[i]);
      last = Math.max(last, r);
    }
    lost += subs - seen;
    if (seen === subs) all.push(last - send[i]);
  }
  for (const r of reqs) r.destroy();
  feedAgent.destroy();
  writeAgent.destroy();
  report(`live ${subs}: p50 ${median(fromSend).toFixed(2)} ms, p99 ${summarize(fromSend).p99.toFixed(2)} ms, lost ${lost}`);
  return { subscribers: subs, samples, fromSendMs: summarize(fromSend), fromAckMs: summarize(fromAck), allMs: summarize(all), writeMs: summarize(writes), lost, dropped: 0 };
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const log = (m) => process.stderr.write(`pouchdb: ${m}\n`);
  const pkg = (...p) => JSON.parse(fs.readFileSync(path.join(here, 'node_modules', ...p, 'package.json'))).version;
  const out = {
    server: `pouchdb-server ${pkg('pouchdb-server')} (express-pouchdb ${pkg('express-pouchdb')}, pouchdb-core ${pkg('pouchdb-server', 'node_modules', 'pouchdb-core')}) --in-memory`,
    client: `pouchdb-core ${pkg('pouchdb-core')} + pouchdb-adapter-http, pouchdb-adapter-memory, pouchdb-replication; Node ${process.version}`,
    storage: 'server: in-memory (memdown), no fsync; client: in-memory',
    docs: 0, loadSeconds: 0, clone: [], inSync: { runs: 0 }, live: [], notes: [],
  };
  const server = await startServer(a.work);
  try {
    if (a.phase !== 'live') await clonePhase(server, a, out, log);
    if (a.phase !== 'clone') {
      if (a.phase === 'live') await request(server.agent, 'PUT', server.url + '/bench');
      for (const subs of a.subs) {
        try {
          out.live.push(await live(server, subs, a.samples, a.warmup, log));
        } catch (e) {
          out.notes.push(`live with ${subs} feeds failed: ${e.message}`);
          log(`live ${subs} failed: ${e.message}`);
        }
      }
    }
  } finally {
    await server.stop();
  }
  fs.writeFileSync(a.out, JSON.stringify(out, null, 2) + '\n');
}

// clonePhase loads the documents, clones them and checks a clone that is in
// sync.
async function clonePhase(server, a, out, log) {
  const load = await loadDocs(server, a.docs);
  out.docs = load.docs;
  out.loadSeconds = load.seconds;
  log(`loaded ${load.docs} docs in ${load.seconds.toFixed(1)} s`);

  // Repetitions go round the configurations, as goat-bench's go round the
  // codings, so that a change in load does not favour one of them.
  const cfgs = [{ name: 'default options (batch_size 100)', opts: {} }, { name: 'batch_size 1000', opts: { batch_size: 1000 } }];
  const secs = cfgs.map(() => []);
  const last = cfgs.map(() => null);
  for (let r = 0; r < a.reps; r++) {
    for (let i = 0; i < cfgs.length; i++) {
      const c = await clone(server, load.docs, cfgs[i].opts);
      secs[i].push(c.seconds);
      if (last[i]) await last[i].local.destroy();
      last[i] = c;
    }
  }
  for (let i = 0; i < cfgs.length; i++) {
    const c = last[i];
    out.clone.push({ config: cfgs[i].name, seconds: secs[i], medianSeconds: median(secs[i]), requests: c.requests, wireBytesIn: c.bytes.in, wireBytesOut: c.bytes.out });
    log(`clone (${cfgs[i].name}): median ${median(secs[i]).toFixed(2)} s (${secs[i].map((x) => x.toFixed(2)).join('/')}), ${c.requests} requests, ${(c.bytes.in / 1048576).toFixed(1)} MiB in`);
  }
  await last[0].local.destroy();
  const keep = last[1];

  // In-sync: replicate again into the last clone (same source URL, so
  // the replication finds its checkpoint), nothing to do.
  const ms = [];
  let req = 0, bytes = 0;
  const runs = Math.max(5, a.reps * 2);
  for (let r = 0; r < runs; r++) {
    const { db: remote, stats } = remoteDB(server.url + '/bench');
    const t0 = performance.now();
    const res = await PouchDB.replicate(remote, keep.local, { batch_size: 1000 });
    ms.push(performance.now() - t0);
    if (res.docs_written !== 0) throw new Error(`in-sync replication wrote ${res.docs_written} docs`);
    req = stats.requests;
    const b = stats.agent.bytes();
    bytes = b.in + b.out;
    stats.agent.close();
  }
  out.inSync = { ms: summarize(ms), requests: req, wireBytes: bytes, runs };
  log(`in-sync: ${req} requests, ${bytes} bytes, p50 ${median(ms).toFixed(1)} ms`);
  await keep.local.destroy();
}

main().catch((e) => {
  process.stderr.write(`pouchdb bench: ${e.stack || e}\n`);
  process.exit(1);
});
