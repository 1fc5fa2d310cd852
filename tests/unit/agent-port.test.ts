/**
 * The agent's command port on node:http (agent/http/server.ts, commands.ts, files.ts) over a real
 * socket: the answers fastify gave before (404 shape, HEAD of a GET route, body bounds 413/400
 * with the spec's reply shape, the token checked before a byte of the body is read, the progress
 * route's parameter), /healthz and /metrics, the file routes' refusals and a download.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { Counter, Registry } from 'prom-client';
import { loadAgentConfig } from '../../agent/config.js';
import { Supervisor } from '../../agent/deploy/supervisor.js';
import { Roots } from '../../agent/files/paths.js';
import { Uploads } from '../../agent/files/uploads.js';
import { createCommandRegistry } from '../../agent/handlers/index.js';
import { commandRoutes } from '../../agent/http/commands.js';
import { fileRoutes } from '../../agent/http/files.js';
import { type AgentServer, createAgentServer, readJsonBody } from '../../agent/http/server.js';
import { ScreenCapturer } from '../../agent/screen/capture.js';
import { testRunner } from '../../testkit/exec.js';
import { inject, portOf } from '../helpers/agent-port.js';

const log = pino({ level: 'silent' });
const TOKEN = 'port-token';
const AUTH = { authorization: `Bearer ${TOKEN}` };
let tmp: string;
let server: AgentServer;
let stopExec: () => Promise<void>;
let uploads: Uploads;

before(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'muster-agent-port-'));
  const exec = testRunner({ dataDir: path.join(tmp, 'exec') });
  await exec.init();
  stopExec = () => exec.stop();
  const supervisor = new Supervisor(
    {},
    () => ({ cores: [], memoryBytes: 0, gpus: [] }),
    { dataDir: path.join(tmp, 'deploy'), stopGraceMs: 10, keepEndedMs: 0 },
    log,
  );
  await supervisor.init();
  const metrics = new Registry();
  new Counter({ name: 'muster_test_total', help: 'a test counter', registers: [metrics] }).inc(3);
  server = createAgentServer(log, metrics, () => ({
    status: 'ok',
    node: '1-2-0',
    version: 't',
    uptime_s: 1,
    multicast_joined: true,
    last_query_at: null,
  }));
  const registry = createCommandRegistry({ supervisor, exec, commands: exec.opts.commands, log });
  commandRoutes(server, registry, supervisor, { token: TOKEN, disabled: false }, log, {
    bodyLimit: 4096,
    maxJsonDepth: 8,
  });
  const root = path.join(tmp, 'files');
  mkdirSync(root);
  const cfg = loadAgentConfig(undefined, [], {});
  const { roots } = await Roots.open([root]);
  writeFileSync(path.join(root, 'hello.txt'), 'hello world\n');
  uploads = new Uploads(roots, cfg.files, log, () => {});
  fileRoutes(server, {
    roots,
    uploads,
    screen: new ScreenCapturer(cfg.screen),
    auth: { token: TOKEN, disabled: false },
    maxListEntries: 100,
    metrics,
    log,
  });
});

after(async () => {
  uploads?.stop();
  await server?.close();
  await stopExec?.();
  rmSync(tmp, { recursive: true, force: true });
});

/** Sends raw bytes on a new connection and returns what came back until the server closed it or `ms` passed. */
function raw(text: string | Buffer, ms = 2000): Promise<string> {
  return portOf(server).then(
    (port) =>
      new Promise((resolve) => {
        const s = net.connect(port, '127.0.0.1');
        let got = '';
        const t = setTimeout(() => {
          s.destroy();
          resolve(got);
        }, ms);
        s.on('data', (c) => {
          got += c.toString('latin1');
        });
        s.on('error', () => {});
        s.on('close', () => {
          clearTimeout(t);
          resolve(got);
        });
        s.write(text);
      }),
  );
}

describe('the agent command port (node:http)', () => {
  it('GET /healthz and /metrics answer; HEAD answers the headers only', async () => {
    const h = await inject(server, { method: 'GET', url: '/healthz' });
    assert.equal(h.statusCode, 200);
    assert.match(String(h.headers['content-type']), /^application\/json/);
    assert.deepEqual(h.json(), {
      status: 'ok',
      node: '1-2-0',
      version: 't',
      uptime_s: 1,
      multicast_joined: true,
      last_query_at: null,
    });
    const m = await inject(server, { method: 'GET', url: '/metrics' });
    assert.equal(m.statusCode, 200);
    assert.match(String(m.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    assert.match(m.body, /^muster_test_total 3$/m);
    const head = await inject(server, { method: 'HEAD', url: '/healthz' });
    assert.equal(head.statusCode, 200);
    assert.equal(head.body, '');
    assert.ok(Number(head.headers['content-length']) > 0);
  });

  it('an unknown path or method is a 404 in fastify`s shape', async () => {
    for (const [method, url] of [
      ['GET', '/nope'],
      ['POST', '/healthz'],
      ['GET', '/deploy'],
      ['GET', '/deploy/'],
      ['GET', '/deploy/a/b'],
      ['PATCH', '/files/content'],
      ['GET', '/exec'],
    ] as const) {
      const r = await inject(server, { method, url });
      assert.equal(r.statusCode, 404, `${method} ${url}`);
      assert.deepEqual(r.json(), { message: `Route ${method}:${url} not found`, error: 'Not Found', statusCode: 404 });
    }
  });

  it('a command without the token is refused (401, result 6) without reading its body', async () => {
    const r = await inject(server, {
      method: 'POST',
      url: '/deploy',
      payload: { api_version: 1, data: { mode: 'x' } },
    });
    assert.equal(r.statusCode, 401);
    const body = r.json() as { api_version: number; data: Record<string, unknown> };
    assert.equal(body.data.result, 6);
    assert.equal(body.data.mode, '', 'nothing of the unread body is echoed');
    assert.match(String(body.data.message), /^unauthorized: missing Authorization/);
    // The headers alone get the answer: the declared 1 MB body is never waited for.
    const got = await raw(
      'POST /deploy HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\nContent-Length: 1000000\r\n\r\n{',
      1000,
    );
    assert.match(got, /^HTTP\/1\.1 401 /);
    assert.match(got, /unauthorized: wrong token/);
  });

  it('command bodies: 413 over http.body_limit_bytes (declared or streamed), 400 too deep or not JSON', async () => {
    const declared = await raw(
      `POST /exec HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: 5000\r\n\r\n`,
      1000,
    );
    assert.match(declared, /^HTTP\/1\.1 413 /);
    assert.match(declared, /connection: close/i);
    assert.match(declared, /bad request: Request body is too large/);
    const chunked = await raw(
      `POST /exec HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nTransfer-Encoding: chunked\r\n\r\n` +
        `1400\r\n${'x'.repeat(0x1400)}\r\n0\r\n\r\n`,
      1000,
    );
    assert.match(chunked, /^HTTP\/1\.1 413 /);
    const deep = await inject(server, {
      method: 'POST',
      url: '/exec',
      headers: AUTH,
      payload: `${'['.repeat(9)}${']'.repeat(9)}`,
    });
    assert.equal(deep.statusCode, 400);
    const d = deep.json() as { data: Record<string, unknown> };
    assert.equal(d.data.result, 1);
    assert.match(String(d.data.message), /nested too deep: more than 8 levels \(http\.max_json_depth\)/);
    const notJson = await inject(server, { method: 'POST', url: '/exec', headers: AUTH, payload: '{"a":' });
    assert.equal(notJson.statusCode, 400);
    assert.equal((notJson.json() as { data: { message: string } }).data.message, 'bad request: body is not valid JSON');
    // Any content type is parsed as JSON; an empty body is no body (refused by the schema).
    const text = await inject(server, {
      method: 'POST',
      url: '/exec_status',
      headers: { ...AUTH, 'content-type': 'text/plain' },
      payload: JSON.stringify({ api_version: 1, data: { task_id: 'nope-1' } }),
    });
    assert.equal(text.statusCode, 404, text.body);
    const empty = await inject(server, { method: 'POST', url: '/exec', headers: AUTH });
    assert.equal(empty.statusCode, 400);
    assert.match((empty.json() as { data: { message: string } }).data.message, /^bad request: /);
  });

  it('readJsonBody settles when the client goes away mid-body', async () => {
    const req = Object.assign(new PassThrough(), { headers: { 'content-length': '100' }, complete: false });
    const pending = readJsonBody(req as unknown as IncomingMessage, { bodyLimit: 4096, maxJsonDepth: 8 });
    req.write('{"a":');
    req.destroy();
    assert.deepEqual(await pending, { ok: false, status: 400, message: 'the request was cut off' });
  });

  it('GET /deploy/:uuid: token first, then 404 for an unknown component', async () => {
    assert.equal((await inject(server, { method: 'GET', url: '/deploy/abc' })).statusCode, 401);
    const r = await inject(server, { method: 'GET', url: '/deploy/ab%20c', headers: AUTH });
    assert.equal(r.statusCode, 404);
    assert.deepEqual(r.json(), { error: 'not_found', message: 'no component ab c' });
    const long = await inject(server, { method: 'GET', url: `/deploy/${'u'.repeat(101)}`, headers: AUTH });
    assert.equal(long.statusCode, 404);
    assert.equal((long.json() as { error: string }).error, 'Not Found');
  });

  it('file routes: the token (401, connection closed), refusals as { error, message }, a download', async () => {
    const no = await inject(server, { method: 'GET', url: '/files/list?path=/' });
    assert.equal(no.statusCode, 401);
    assert.equal(no.headers.connection, 'close');
    assert.deepEqual(no.json(), {
      error: 'unauthorized',
      message: 'unauthorized: missing Authorization: Bearer token',
    });
    const missing = await inject(server, { method: 'GET', url: '/files/offset?path=/x', headers: AUTH });
    assert.equal(missing.statusCode, 400);
    assert.deepEqual(missing.json(), { error: 'bad_request', message: 'sha256 is required' });
    const outside = await inject(server, { method: 'GET', url: '/files/content?path=/etc/passwd', headers: AUTH });
    assert.equal(outside.statusCode, 403);
    assert.equal((outside.json() as { error: string }).error, 'outside_roots');
    const file = path.join(tmp, 'files', 'hello.txt');
    const got = await inject(server, {
      method: 'GET',
      url: `/files/content?path=${encodeURIComponent(file)}`,
      headers: AUTH,
    });
    assert.equal(got.statusCode, 200);
    assert.equal(got.headers['content-type'], 'application/octet-stream');
    assert.equal(got.headers['content-length'], '12');
    assert.equal(got.body, 'hello world\n');
    const list = await inject(server, {
      method: 'GET',
      url: `/files/list?path=${encodeURIComponent(path.join(tmp, 'files'))}`,
      headers: AUTH,
    });
    assert.equal(list.statusCode, 200);
    assert.match(list.body, /hello\.txt/);
    // A PUT refused before its body is read closes the connection instead of draining it.
    const put = await raw(
      `PUT /files/content?path=${encodeURIComponent(path.join(tmp, 'files', 'new'))}&sha256=${'0'.repeat(64)}&size=3 HTTP/1.1\r\n` +
        `Host: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: 10\r\n\r\n`,
      1000,
    );
    assert.match(put, /^HTTP\/1\.1 400 /);
    assert.match(put, /connection: close/i);
    assert.match(put, /content-length 10 is more than size - offset = 3/);
  });
});
