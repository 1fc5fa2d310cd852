/**
 * The agent's cheap paths (docs/operations.md "Agent footprint"): procfs files read with three
 * system calls into a reused buffer (agent/collectors/procfile.ts), the `nvidia-smi` lookup that
 * replaces a spawn per tick when it is missing (agent/collectors/gpu.ts), and report delivery over
 * node:http (agent/link/reporter.ts) with its outcomes: delivered, refused status, timeout, connect;
 * and what a started agent (the bundle a board runs) has loaded: nothing it does not use.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { executableExists } from '../../agent/collectors/gpu.js';
import { PROC_FILE_MAX_BYTES, readProcFile } from '../../agent/collectors/procfile.js';
import { Reporter } from '../../agent/link/reporter.js';
import { freePort, ROOT, sets, waitFor } from '../helpers/daemons.js';

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

/**
 * What a started agent has loaded, as a board runs it: the sources bundled by
 * scripts/bundle-app.mjs (as `make dist` does), `muster agent` started on this Node.js with a
 * load hook that records each bundle chunk evaluated; the chunks are mapped to the packages they
 * hold through esbuild's metafile. Returns the packages and Node's built-in modules loaded.
 */
async function startPath(): Promise<{ packages: Set<string>; builtins: Set<string> }> {
  const { bundleApp } = (await import(pathToFileURL(path.join(ROOT, 'scripts', 'bundle-app.mjs')).href)) as {
    bundleApp(o: { root: string; outdir: string; version: string; commit: string }): Promise<{
      metafile: { outputs: Record<string, { inputs: Record<string, unknown> }> };
    }>;
  };
  const top = path.join(tmp, 'bundle');
  const built = await bundleApp({ root: ROOT, outdir: path.join(top, 'lib'), version: '0.0.0-test', commit: 'test' });
  symlinkSync(path.join(ROOT, 'config'), path.join(top, 'config'));
  const out = path.join(top, 'loaded.json');
  const hook = path.join(top, 'hook.mjs');
  writeFileSync(
    hook,
    `import { registerHooks } from 'node:module';
import { writeFileSync } from 'node:fs';
const urls = [];
registerHooks({ load(url, ctx, next) { urls.push(url); return next(url, ctx); } });
process.on('SIGUSR2', () => writeFileSync(${JSON.stringify(out)}, JSON.stringify({ urls, builtins: process.moduleLoadList })));
`,
  );
  const port = await freePort();
  const agent = spawn(
    process.execPath,
    [
      '--import',
      hook,
      path.join(top, 'lib', 'muster.js'),
      'agent',
      ...sets({
        'multicast.interface': '127.0.0.1',
        'multicast.port': 40000 + Math.floor(Math.random() * 9000),
        'service.host': '127.0.0.1',
        'service.port': port,
        'exec.osreapi.port': await freePort(), // on, as by default
        data_dir: path.join(top, 'data'),
        'log.level': 'error',
      }),
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  try {
    await waitFor(
      'the bundled agent to answer /healthz',
      async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok,
    );
    // One scrape of /metrics, as a monitoring system would: the scrape path counts too.
    assert.equal((await fetch(`http://127.0.0.1:${port}/metrics`)).status, 200);
    agent.kill('SIGUSR2');
    const seen = await waitFor('the hook to write what was loaded', () =>
      existsSync(out) ? (JSON.parse(readFileSync(out, 'utf8')) as { urls: string[]; builtins: string[] }) : null,
    );
    const chunks = new Set(
      seen.urls.filter((u) => u.startsWith('file:')).map((u) => path.basename(new URL(u).pathname)),
    );
    const packages = new Set<string>();
    for (const [file, o] of Object.entries(built.metafile.outputs)) {
      if (!chunks.has(path.basename(file))) continue;
      for (const input of Object.keys(o.inputs)) {
        const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input);
        if (m) packages.add(m[1] as string);
      }
    }
    const builtins = new Set(
      seen.builtins.filter((b) => b.startsWith('NativeModule ')).map((b) => b.slice('NativeModule '.length)),
    );
    return { packages, builtins };
  } finally {
    agent.kill('SIGKILL');
  }
}

describe('the agent\'s start path (docs/operations.md "Agent footprint")', () => {
  it('a started agent (bundle) has loaded no package or built-in it does not use at start', async () => {
    const { packages, builtins } = await startPath();
    // What it does use: the check is not vacuous.
    for (const p of ['commander', 'yaml', 'pino', 'prom-client']) assert.ok(packages.has(p), `${p} should be loaded`);
    for (const b of ['http', 'dgram']) assert.ok(builtins.has(b), `node:${b} should be loaded`);
    // The command port is node:http, downloads and the docker driver load on first use, the
    // WebSocket link only in its link.mode.
    for (const p of [
      'fastify',
      'ajv',
      '@fastify/ajv-compiler',
      'find-my-way',
      'undici',
      'dockerode',
      'ssh2',
      'ws',
      'tar',
      'influx',
    ])
      assert.ok(!packages.has(p), `${p} is loaded at start`);
    // prom-client's Pushgateway (https, tls) and cluster aggregator are not loaded; node:crypto
    // and node:zlib wait for the first hash, token check or screen capture.
    for (const b of ['https', 'tls', 'crypto', 'zlib', 'http2'])
      assert.ok(!builtins.has(b), `node:${b} is loaded at start`);
  });
});
