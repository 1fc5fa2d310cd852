/**
 * agent/net/download.ts, the one bounded downloader of bundles and image tarballs: the body lands
 * whole in dest with its sha256, and every failure is a DownloadError of the right reason with
 * nothing left in dest.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  createDownloadDispatcher,
  type DownloadError,
  type DownloadFailure,
  download,
} from '../../agent/net/download.js';

const BODY = Buffer.alloc(100_000, 7);

describe('download', () => {
  let dir: string;
  let base: string;
  const server = http.createServer((req, res) => {
    if (req.url === '/ok') return void res.writeHead(200, { 'content-length': BODY.length, etag: '"e1"' }).end(BODY);
    if (req.url === '/cond' && req.headers['if-none-match'] === '"e1"') return void res.writeHead(304).end();
    if (req.url === '/moved') return void res.writeHead(302, { location: '/ok' }).end();
    if (req.url === '/declared') return void res.writeHead(200, { 'content-length': 10_000_000 }).end();
    if (req.url === '/stream') {
      res.writeHead(200);
      const push = (): void => {
        while (!res.destroyed) if (!res.write(Buffer.alloc(16_384))) return void res.once('drain', push);
      };
      return push();
    }
    if (req.url === '/stall') return void res.writeHead(200, { 'content-length': 1000 }).write('x');
    res.writeHead(404).end();
  });
  const dispatcher = createDownloadDispatcher(2000);
  const get = (p: string, over: { maxBytes?: number; timeoutMs?: number; headers?: Record<string, string> } = {}) =>
    download(`${base}${p}`, {
      dest: path.join(dir, 'out'),
      maxBytes: over.maxBytes ?? 1_000_000,
      signal: AbortSignal.timeout(over.timeoutMs ?? 5000),
      timeoutMs: over.timeoutMs ?? 5000,
      dispatcher,
      sha256: true,
      accept304: true,
      ...(over.headers ? { headers: over.headers } : {}),
    });
  const failsWith = async (p: Promise<unknown>, reason: DownloadFailure, re: RegExp) => {
    await assert.rejects(p, (err: DownloadError) => {
      assert.equal(err.name, 'DownloadError');
      assert.equal(err.reason, reason);
      assert.match(err.message, re);
      return true;
    });
    assert.equal(existsSync(path.join(dir, 'out')), false, 'nothing is left in dest');
  };

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'muster-dl-'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await rm(dir, { recursive: true, force: true });
  });

  it('writes the whole body with its sha256, following redirects', async () => {
    for (const p of ['/ok', '/moved']) {
      const got = await get(p);
      assert.equal(got.status, 200);
      if (got.status !== 200) return;
      assert.equal(got.bytes, BODY.length);
      assert.equal(got.sha256, createHash('sha256').update(BODY).digest('hex'));
      assert.deepEqual(await readFile(path.join(dir, 'out')), BODY);
      await rm(path.join(dir, 'out'));
    }
  });

  it('accepts a 304 of a conditional GET without writing', async () => {
    assert.equal((await get('/cond', { headers: { 'if-none-match': '"e1"' } })).status, 304);
    assert.equal(existsSync(path.join(dir, 'out')), false);
  });

  it('fails on another status, on too large a body (declared or streamed), on a timeout', async () => {
    await failsWith(get('/absent'), 'status', /^HTTP 404$/);
    await failsWith(get('/declared'), 'too_large', /Content-Length 9\.5 MiB is larger than the bundle limit/);
    await failsWith(get('/stream', { maxBytes: 50_000 }), 'too_large', /more than the 48\.8 KiB allowed/);
    await failsWith(get('/stall', { timeoutMs: 300 }), 'timeout', /^timed out after 300 ms$/);
  });

  it('fails on a refused connection', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    await assert.rejects(
      download(`http://127.0.0.1:${port}/x`, {
        dest: path.join(dir, 'out'),
        maxBytes: 10,
        signal: AbortSignal.timeout(5000),
        timeoutMs: 5000,
        dispatcher,
      }),
      (err: DownloadError) => err.reason === 'network' && /ECONNREFUSED/.test(err.message),
    );
  });
});
