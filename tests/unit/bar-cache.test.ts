/**
 * The bar bundle cache (agent/drivers/bar/fetch.ts) against a local HTTP server: LRU eviction by
 * bytes (never a pinned blob or one a running component uses), removal of refused blobs, the
 * start-up sweep of crash left-overs, index mode 0600 and no URL credentials in it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { BundleCache } from '../../agent/drivers/bar/fetch.js';

const FILES: Record<string, Buffer> = {
  'a.bin': randomBytes(1000),
  'b.bin': randomBytes(1000),
  'c.bin': randomBytes(1000),
  'd.bin': randomBytes(1000),
};
let server: http.Server;
let base = '';
let tmp = '';
const auths: string[] = [];
const log = pino({ level: 'silent' });
const noProgress = () => {};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'muster-cache-unit-'));
  server = http.createServer((req, res) => {
    auths.push(req.headers.authorization ?? '');
    const body = FILES[path.basename((req.url ?? '').split('?')[0] ?? '')];
    if (!body) return res.writeHead(404).end();
    res.writeHead(200, { 'content-length': body.length }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server.close();
  await rm(tmp, { recursive: true, force: true });
});

let n = 0;
const newCache = (over: { cacheMaxBytes?: number; inUse?: () => string[] } = {}) => {
  const cacheDir = path.join(tmp, `cache${++n}`);
  return { cacheDir, cache: new BundleCache({ cacheDir, timeoutMs: 5000, maxBytes: 1 << 20, log, ...over }) };
};
const blobs = async (dir: string) => (await readdir(dir)).filter((f) => /^[0-9a-f]{64}$/.test(f)).sort();

describe('bundle cache', () => {
  test('past cache_max_bytes the least recently fetched blob goes first', async () => {
    const { cacheDir, cache } = newCache({ cacheMaxBytes: 2500 });
    const shas: Record<string, string> = {};
    for (const f of ['a.bin', 'b.bin', 'c.bin']) {
      const b = await cache.fetch(`${base}/${f}`, noProgress);
      shas[f] = b.sha256;
      b.release();
      await sleep(5);
    }
    assert.deepEqual(await blobs(cacheDir), [shas['b.bin'], shas['c.bin']].sort(), 'a.bin was evicted');
    assert.equal(await cache.bytes(), 2000);
    // Using b again makes c the oldest.
    (await cache.fetch(`${base}/b.bin`, noProgress)).release();
    await sleep(5);
    const d = await cache.fetch(`${base}/d.bin`, noProgress);
    d.release();
    assert.deepEqual(await blobs(cacheDir), [shas['b.bin'], d.sha256].sort(), 'c.bin was evicted');
  });

  test('a pinned blob and a blob a running component uses are never evicted', async () => {
    const used = new Set<string>();
    const { cacheDir, cache } = newCache({ cacheMaxBytes: 1500, inUse: () => [...used] });
    const a = await cache.fetch(`${base}/a.bin`, noProgress);
    used.add(a.sha256);
    a.release();
    await sleep(5);
    const b = await cache.fetch(`${base}/b.bin`, noProgress); // still pinned
    await sleep(5);
    const c = await cache.fetch(`${base}/c.bin`, noProgress);
    assert.deepEqual(await blobs(cacheDir), [a.sha256, b.sha256, c.sha256].sort(), 'all in use: over the bound');
    b.release();
    c.release();
    await sleep(5);
    (await cache.fetch(`${base}/d.bin`, noProgress)).release();
    const left = await blobs(cacheDir);
    assert.ok(left.includes(a.sha256), 'the running component’s blob stays');
    assert.ok(!left.includes(b.sha256) && !left.includes(c.sha256), 'released blobs were evicted');
  });

  test('discard removes a refused blob and its entries; at once or at its last release', async () => {
    const { cacheDir, cache } = newCache();
    const a = await cache.fetch(`${base}/a.bin`, noProgress);
    a.release();
    await cache.discard(a.sha256);
    assert.deepEqual(await blobs(cacheDir), []);
    assert.doesNotMatch(await readFile(path.join(cacheDir, 'index.json'), 'utf8'), /a\.bin/);
    const b1 = await cache.fetch(`${base}/b.bin`, noProgress);
    const b2 = await cache.fetch(`${base}/b.bin`, noProgress);
    await cache.discard(b1.sha256);
    b1.release();
    assert.ok(existsSync(b2.path), 'kept while another start holds it');
    b2.release();
    await cache.bytes(); // waits for the queued removal
    assert.ok(!existsSync(b2.path));
  });

  test('the sweep removes .tmp-* downloads, orphan blobs and index temp files', async () => {
    const { cacheDir, cache } = newCache();
    (await cache.fetch(`${base}/a.bin`, noProgress)).release();
    const orphan = 'f'.repeat(64);
    await writeFile(path.join(cacheDir, '.tmp-0b5e'), 'partial');
    await writeFile(path.join(cacheDir, orphan), 'refused by an older agent');
    await writeFile(path.join(cacheDir, 'index.json.123.tmp'), '{');
    const again = new BundleCache({ cacheDir, timeoutMs: 5000, maxBytes: 1 << 20, log });
    await again.sweep();
    const names = (await readdir(cacheDir)).sort();
    assert.equal(names.length, 2, names.join(' '));
    assert.ok(names.includes('index.json'));
    assert.ok(!names.includes(orphan));
  });

  test('credentials go into the request only; the index is mode 0600 and holds none', async () => {
    const { cacheDir, cache } = newCache();
    const withCreds = base.replace('http://', 'http://agent:hunter2@');
    const lines: string[] = [];
    (await cache.fetch(`${withCreds}/a.bin?token=t0psecret&v=1`, (l) => lines.push(l))).release();
    assert.equal(auths.at(-1), `Basic ${Buffer.from('agent:hunter2').toString('base64')}`);
    const index = await readFile(path.join(cacheDir, 'index.json'), 'utf8');
    for (const secret of ['hunter2', 't0psecret']) {
      assert.ok(!index.includes(secret), index);
      assert.ok(!lines.join('\n').includes(secret), lines.join('\n'));
    }
    assert.match(index, /http:\/\/\*\*\*@127\.0\.0\.1:\d+\/a\.bin\?token=\*\*\*&v=1/);
    assert.equal((await stat(path.join(cacheDir, 'index.json'))).mode & 0o777, 0o600);
    await assert.rejects(cache.fetch(`${withCreds}/missing.bin`, noProgress), (err: Error) => {
      assert.ok(!err.message.includes('hunter2'), err.message);
      assert.match(err.message, /HTTP 404/);
      return true;
    });
  });
});
