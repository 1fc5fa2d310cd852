/**
 * Bundle safety on a real agent process (issue 12; docs/configuration.md `bar.*`,
 * docs/operations.md "A refused bundle"): a decompression bomb (a valid bar.yaml first, then a
 * member of random bytes followed by zeros that unpacks past `bar.max_unpacked_bytes`, made small
 * with --set) and a symlink chain defined out of order are refused with result 3 and a clear
 * message, counted in /metrics, and leave nothing on disk (no component dir, no temp dir, no
 * cached blob) while their cores are given back; the bundle cache is bounded (LRU, a running
 * component's blob kept); a url with credentials works, and the password appears nowhere in the
 * agent's log, its data dir or its /metrics.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { Header } from 'tar';
import { freePort, getJson, metric, type Proc, sets, startMuster, waitFor } from '../helpers/daemons.js';

const TOKEN = 'bundle-safety-token';
const PASSWORD = 'Pw-9f3c1d77e2';
const QUERY_TOKEN = 'Qt-51a0be6c34';
/** bar.max_unpacked_bytes for this agent: 4 MiB. */
const MAX_UNPACKED = 4 * 1024 * 1024;
/** bar.cache_max_bytes: room for two of the padded good bundles, not three. */
const CACHE_MAX = 250_000;
const MANIFEST = 'name: safe\nversion: "1"\ncommand: [./run.sh]\n';
const RUN = '#!/bin/sh\nexec sleep 300\n';

interface Entry {
  path: string;
  type?: 'File' | 'Directory' | 'SymbolicLink';
  body?: Buffer | string;
  linkpath?: string;
  mode?: number;
}

/** A gzip tar of exactly these entries, in this order. */
function tgz(entries: Entry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const type = e.type ?? 'File';
    const body = type === 'File' ? Buffer.from(e.body ?? '') : Buffer.alloc(0);
    const h = new Header({
      path: e.path,
      type,
      mode: e.mode ?? (type === 'Directory' ? 0o755 : 0o644),
      size: body.length,
      linkpath: e.linkpath ?? '',
      uid: 0,
      gid: 0,
      mtime: new Date(),
    });
    h.encode();
    blocks.push(h.block as Buffer, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks));
}

/** A good bundle padded with `pad` random (incompressible) bytes. */
const good = (pad: number) =>
  tgz([
    { path: 'bar.yaml', body: MANIFEST },
    { path: 'run.sh', body: RUN, mode: 0o755 },
    { path: 'pad.bin', body: randomBytes(pad) },
  ]);

/** Every file under `dir` (recursive), relative. */
function walk(dir: string, rel = ''): string[] {
  if (!existsSync(path.join(dir, rel))) return [];
  const out: string[] = [];
  for (const d of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${d.name}` : d.name;
    out.push(r);
    if (d.isDirectory()) out.push(...walk(dir, r));
  }
  return out;
}

describe('bundle safety on a real agent', { timeout: 180_000 }, () => {
  let agent: Proc;
  let base = '';
  let files = '';
  let dir = '';
  let server: http.Server;
  const served = new Map<string, Buffer>();
  const cores = os.cpus().length;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'muster-safety-'));
    writeFileSync(path.join(dir, 'token'), `${TOKEN}\n`);
    // Bomb: bar.yaml, then 256 KiB of random bytes followed by 16 MiB of zeros (ratio ~60, well
    // under node-tar's own heuristic): only bar.max_unpacked_bytes stops it.
    served.set(
      'bomb.tgz',
      tgz([
        { path: 'bar.yaml', body: MANIFEST },
        { path: 'run.sh', body: RUN, mode: 0o755 },
        { path: 'payload.bin', body: Buffer.concat([randomBytes(256 * 1024), Buffer.alloc(16 << 20)]) },
      ]),
    );
    // esc -> a/b/../.. is the bundle root while a and b do not exist; a -> . and b -> . follow.
    served.set(
      'chain.tgz',
      tgz([
        { path: 'bar.yaml', body: MANIFEST },
        { path: 'run.sh', body: RUN, mode: 0o755 },
        { path: 'esc', type: 'SymbolicLink', linkpath: 'a/b/../..' },
        { path: 'a', type: 'SymbolicLink', linkpath: '.' },
        { path: 'b', type: 'SymbolicLink', linkpath: '.' },
      ]),
    );
    for (const n of [1, 2, 3]) served.set(`good${n}.tgz`, good(100_000));
    served.set('all.tgz', good(10));
    server = http.createServer((req, res) => {
      const [p = ''] = (req.url ?? '').split('?');
      if (p.startsWith('/secret/')) {
        const want = `Basic ${Buffer.from(`muster:${PASSWORD}`).toString('base64')}`;
        if (req.headers.authorization !== want) return res.writeHead(401).end('who are you\n');
      }
      const body = served.get(path.basename(p));
      if (!body) return res.writeHead(404).end('not found\n');
      res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': body.length }).end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    files = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    agent = startMuster([
      'agent',
      ...sets({
        'multicast.interface': '127.0.0.1',
        'multicast.port': await freePort(),
        'service.port': port,
        data_dir: dir,
        'auth.token_file': path.join(dir, 'token'),
        'deploy.docker_socket': '',
        'deploy.stop_grace_ms': 1000,
        'deploy.reserve_memory_bytes': 0,
        'bar.max_unpacked_bytes': MAX_UNPACKED,
        'bar.cache_max_bytes': CACHE_MAX,
        'log.level': 'info',
      }),
    ]);
    await waitFor('agent healthz', () => getJson(`${base}/healthz`), 30_000).catch((e: Error) => {
      throw new Error(`${e.message}\n${agent.output()}`);
    });
  });

  after(async () => {
    await agent?.stop();
    server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const deploy = async (data: Record<string, unknown>) => {
    const res = await fetch(`${base}/deploy`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ api_version: 1, data }),
      signal: AbortSignal.timeout(60_000),
    });
    return { status: res.status, data: ((await res.json()) as { data: Record<string, unknown> }).data };
  };
  const start = (uuid: string, file: string, cpu = 1, url = files) =>
    deploy({ mode: 'start', type: 'bar', uuid, url, file, require: { cpu, memory: 8 << 20, gpu: 0 } });
  const stop = (uuid: string) => deploy({ mode: 'stop', type: 'bar', uuid });
  const metrics = async () => (await fetch(`${base}/metrics`)).text();
  const blobs = () => walk(path.join(dir, 'cache')).filter((f) => /^[0-9a-f]{64}$/.test(f));
  const output = () => `\nagent output:\n${agent.output().slice(-4000)}`;

  /** Nothing of `uuid` (from `file`) is on disk, no temp dir or download is left, and every core is free again. */
  const leftNothing = async (uuid: string, file: string) => {
    assert.ok(!existsSync(path.join(dir, 'components', uuid)), `components/${uuid} removed`);
    const stray = walk(dir).filter((f) => /\.unpack-|\.tmp-/.test(f));
    assert.deepEqual(stray, [], 'no temp dir or partial download left');
    const sha = createHash('sha256')
      .update(served.get(file) as Buffer)
      .digest('hex');
    assert.ok(!blobs().includes(sha), `the refused blob ${sha} is not kept in the cache`);
    assert.doesNotMatch(readFileSync(path.join(dir, 'cache', 'index.json'), 'utf8'), /bomb|chain/);
    const rec = await fetch(`${base}/deploy/${uuid}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(rec.status, 404, 'no record left');
    // Cores given back: a start that needs every core fits, then goes.
    const all = await start(`all-after-${uuid}`, 'all.tgz', cores);
    assert.equal(all.data.result, 0, JSON.stringify(all.data) + output());
    assert.equal((await stop(`all-after-${uuid}`)).data.result, 0);
  };

  it('a decompression bomb is refused while unpacking (result 3), counted, and leaves nothing', async () => {
    const t0 = Date.now();
    const r = await start('bomb-1', 'bomb.tgz');
    assert.equal(r.status, 502, JSON.stringify(r.data));
    assert.equal(r.data.result, 3);
    assert.equal(r.data.uuid, 'bomb-1');
    assert.match(String(r.data.message), /^bundle refused: unpacks to more than 4 MiB \(bar\.max_unpacked_bytes\)/);
    assert.ok(Date.now() - t0 < 20_000);
    assert.equal(metric(await metrics(), 'muster_agent_bundles_refused_total', { reason: 'unpacked_bytes' }), 1);
    assert.match(agent.output(), /bar bundle refused/);
    await leftNothing('bomb-1', 'bomb.tgz');
  });

  it('a symlink chain defined out of order is refused (result 3), counted, and leaves nothing', async () => {
    const r = await start('chain-1', 'chain.tgz');
    assert.equal(r.data.result, 3, JSON.stringify(r.data));
    assert.match(String(r.data.message), /symlink "esc" -> "a\/b\/\.\.\/\.\." resolves outside the bundle directory/);
    assert.equal(metric(await metrics(), 'muster_agent_bundles_refused_total', { reason: 'link' }), 1);
    await leftNothing('chain-1', 'chain.tgz');
  });

  it('the cache is bounded by bar.cache_max_bytes, least recently used first, a running blob kept', async () => {
    const before = blobs();
    assert.equal((await start('lru-1', 'good1.tgz')).data.result, 0); // keeps running
    for (const n of [2, 3]) {
      const r = await start(`lru-${n}`, `good${n}.tgz`);
      assert.equal(r.data.result, 0, JSON.stringify(r.data));
      assert.equal((await stop(`lru-${n}`)).data.result, 0);
    }
    const index = JSON.parse(readFileSync(path.join(dir, 'cache', 'index.json'), 'utf8')) as {
      entries: Record<string, { sha256: string; size: number }>;
    };
    const names = Object.keys(index.entries).map((u) => path.basename(u));
    assert.ok(names.includes('good1.tgz'), `the running component's blob stays: ${names}`);
    assert.ok(names.includes('good3.tgz'), `the newest stays: ${names}`);
    assert.ok(!names.includes('good2.tgz'), `the least recently used goes: ${names}`);
    const total = blobs()
      .filter((b) => !before.includes(b))
      .reduce((s, b) => s + statSync(path.join(dir, 'cache', b)).size, 0);
    assert.ok(total <= CACHE_MAX, `${total} bytes cached`);
    assert.equal(statSync(path.join(dir, 'cache', 'index.json')).mode & 0o777, 0o600, 'index.json is 0600');
    assert.equal((await stop('lru-1')).data.result, 0);
  });

  it('a url with credentials works; the password is in no log line, data file or metric', async () => {
    const withCreds = files.replace('http://', `http://muster:${PASSWORD}@`);
    const r = await start('cred-1', 'good1.tgz', 1, `${withCreds}/secret?token=${QUERY_TOKEN}`);
    assert.equal(r.data.result, 0, JSON.stringify(r.data) + output());
    const bad = await start('cred-2', 'missing.tgz', 1, `${withCreds}/secret?token=${QUERY_TOKEN}`);
    assert.equal(bad.data.result, 3);
    assert.match(String(bad.data.message), /HTTP 404/);
    const progress = await (
      await fetch(`${base}/deploy/cred-1`, { headers: { authorization: `Bearer ${TOKEN}` } })
    ).text();
    assert.equal((await stop('cred-1')).data.result, 0);

    const where: [string, string][] = [
      ['reply message', String(bad.data.message)],
      ['GET /deploy/cred-1', progress],
      ['/metrics', await metrics()],
      ['agent log', agent.output()],
    ];
    for (const f of walk(dir)) {
      const p = path.join(dir, f);
      if (statSync(p).isFile()) where.push([`data dir ${f}`, readFileSync(p).toString('latin1')]);
    }
    assert.ok(where.some(([w]) => w === 'data dir components.json'));
    for (const [w, text] of where) {
      assert.ok(!text.includes(PASSWORD), `the password appears in ${w}`);
      assert.ok(!text.includes(QUERY_TOKEN), `the query token appears in ${w}`);
    }
    assert.match(agent.output(), /http:\/\/\*\*\*@127\.0\.0\.1/, 'the log names the url, redacted');
  });
});
