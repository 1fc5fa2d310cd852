/**
 * The agent's cheap paths (docs/operations.md "Agent footprint"): procfs files read with three
 * system calls into a reused buffer (agent/collectors/procfile.ts), the `nvidia-smi` lookup that
 * replaces a spawn per tick when it is missing (agent/collectors/gpu.ts), and report delivery over
 * node:http (agent/link/reporter.ts) with its outcomes: delivered, refused status, timeout, connect.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { executableExists } from '../../agent/collectors/gpu.js';
import { PROC_FILE_MAX_BYTES, readProcFile } from '../../agent/collectors/procfile.js';
import { Reporter } from '../../agent/link/reporter.js';

let tmp: string;
before(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'muster-footprint-'));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('readProcFile', () => {
  it('reads a real procfs file whole, and the same as fs.readFile', async () => {
    const { readFile } = await import('node:fs/promises');
    const a = readProcFile('/proc/self/status');
    assert.match(a, /^Name:/);
    assert.ok(a.endsWith('\n'));
    assert.match(readProcFile('/proc/loadavg'), /^\d+\.\d+ \d+\.\d+ \d+\.\d+ /);
    assert.equal(readProcFile('/proc/version'), await readFile('/proc/version', 'utf8'));
  });

  it('grows its buffer for a file longer than 64 KiB and keeps every byte (UTF-8 too)', () => {
    const f = path.join(tmp, 'long');
    const text = `${'é'.repeat(50_000)}\n${'x'.repeat(100_000)}\nend`;
    writeFileSync(f, text);
    assert.equal(readProcFile(f), text);
    // and a short one after it: the reused buffer holds no stale tail
    writeFileSync(f, 'short');
    assert.equal(readProcFile(f), 'short');
  });

  it('refuses a file longer than its bound instead of growing without end', () => {
    const f = path.join(tmp, 'huge');
    writeFileSync(f, Buffer.alloc(PROC_FILE_MAX_BYTES + 1, 0x61));
    assert.throws(() => readProcFile(f), /longer than/);
  });

  it('throws ENOENT like fs.readFile for a missing file', () => {
    assert.throws(
      () => readProcFile(path.join(tmp, 'nope')),
      (e: NodeJS.ErrnoException) => e.code === 'ENOENT',
    );
  });

  it('never blocks the event loop on a FIFO put where a procfs file was expected', () => {
    const fifo = path.join(tmp, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const started = Date.now();
    let text: string | undefined;
    try {
      text = readProcFile(fifo);
    } catch (err) {
      assert.equal((err as NodeJS.ErrnoException).code, 'EAGAIN');
    }
    if (text !== undefined) assert.equal(text, '');
    assert.ok(Date.now() - started < 1000);
  });
});

describe('executableExists (the nvidia-smi lookup)', () => {
  it('finds a command on PATH or by its path, and not a missing or non-executable one', async () => {
    const bin = path.join(tmp, 'bin');
    execFileSync('mkdir', ['-p', bin]);
    const tool = path.join(bin, 'fake-smi');
    writeFileSync(tool, '#!/bin/sh\n');
    chmodSync(tool, 0o755);
    const plain = path.join(bin, 'not-exec');
    writeFileSync(plain, '');
    chmodSync(plain, 0o644);
    assert.equal(await executableExists('fake-smi', `/nonexistent:${bin}`), true);
    assert.equal(await executableExists(tool, ''), true);
    assert.equal(await executableExists('fake-smi', '/nonexistent'), false);
    assert.equal(await executableExists('not-exec', bin), false);
    assert.equal(await executableExists(path.join(bin, 'missing'), bin), false);
    assert.equal(await executableExists('fake-smi', ''), false);
  });
});

describe('Reporter over node:http', () => {
  let server: http.Server;
  let port: number;
  const seen: { url: string; body: string; ua: string | undefined; type: string | undefined }[] = [];
  let mode: 'ok' | 'status' | 'hang' = 'ok';
  before(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString();
      });
      req.on('end', () => {
        seen.push({ url: req.url ?? '', body, ua: req.headers['user-agent'], type: req.headers['content-type'] });
        if (mode === 'hang') return; // never answers
        res.writeHead(mode === 'ok' ? 200 : 400, { 'content-length': 0 }).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('POSTs the body as JSON with its user-agent, over one kept-alive connection', async () => {
    const r = new Reporter(2000, '9.9.9');
    const conns = new Set<unknown>();
    server.on('connection', (s) => conns.add(s));
    try {
      mode = 'ok';
      const a = await r.send('127.0.0.1', port, '/heartbeat', '{"a":1}');
      const b = await r.send('127.0.0.1', port, '/resource', '{"b":2}');
      assert.equal(a.ok, true);
      assert.equal(b.ok, true);
      assert.deepEqual(seen.slice(-2), [
        { url: '/heartbeat', body: '{"a":1}', ua: 'muster-agent/9.9.9', type: 'application/json' },
        { url: '/resource', body: '{"b":2}', ua: 'muster-agent/9.9.9', type: 'application/json' },
      ]);
      assert.equal(conns.size, 1);
    } finally {
      await r.close();
    }
  });

  it('a non-200 answer is dropped as `status`, a silent manager as `timeout`, a closed port as `connect`', async () => {
    const r = new Reporter(300, '1');
    try {
      mode = 'status';
      const s = await r.send('127.0.0.1', port, '/heartbeat', '{}');
      assert.deepEqual(s, { ok: false, reason: 'status', detail: 'HTTP 400' });
      mode = 'hang';
      const started = performance.now();
      const t = await r.send('127.0.0.1', port, '/resource', '{}');
      assert.equal(t.ok, false);
      assert.equal(!t.ok && t.reason, 'timeout');
      assert.ok(performance.now() - started < 2000);
      const closed = http.createServer();
      await new Promise<void>((res) => closed.listen(0, '127.0.0.1', res));
      const deadPort = (closed.address() as AddressInfo).port;
      await new Promise((res) => closed.close(res));
      const c = await r.send('127.0.0.1', deadPort, '/heartbeat', '{}');
      assert.equal(!c.ok && c.reason, 'connect');
      assert.match(!c.ok ? c.detail : '', /ECONNREFUSED/);
    } finally {
      mode = 'ok';
      await r.close();
    }
  });
});
