/**
 * The seed executor API server (agent/exec/osreapi.ts) in-process against hostile and odd
 * clients: auth modes (token, none configured, disabled), a request that never finishes (the
 * request-time bound), a body declared too large (refused unread), routes and methods it does not
 * serve, the max_requests refusal, and the list's sort keys.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import { OsreapiServer } from '../../agent/exec/osreapi.js';
import type { CommandAuth } from '../../agent/http/commands.js';
import { testRunner } from '../../testkit/exec.js';
import { metric } from '../../testkit/process.js';

async function serve(auth: CommandAuth, runnerOpts: Parameters<typeof testRunner>[0] = {}) {
  const runner = testRunner(runnerOpts);
  await runner.init();
  const metrics = new Registry();
  const server = new OsreapiServer(
    runner,
    { host: '127.0.0.1', port: 0, auth, bodyLimit: 4096, maxJsonDepth: 8, requestTimeoutMs: 600, keepMs: 3_600_000 },
    pino({ level: 'silent' }),
    metrics,
  );
  const port = await server.listen();
  return {
    base: `http://127.0.0.1:${port}`,
    port,
    metrics,
    runner,
    async close() {
      await server.close();
      await runner.stop();
    },
  };
}

describe('seed executor API server', () => {
  it('checks the token: refused without, with a wrong one, and when none is configured', async () => {
    const s = await serve({ token: 'tok', disabled: false });
    assert.equal((await fetch(s.base)).status, 401);
    assert.equal((await fetch(s.base, { headers: { authorization: 'Bearer nope' } })).status, 401);
    assert.equal((await fetch(s.base, { headers: { authorization: 'Bearer tok' } })).status, 200);
    assert.equal(
      metric(await s.metrics.metrics(), 'muster_agent_osreapi_refused_total', { reason: 'unauthorized' }),
      2,
    );
    await s.close();
    const none = await serve({ token: null, disabled: false });
    const r = await fetch(none.base, { headers: { authorization: 'Bearer anything' } });
    assert.equal(r.status, 401);
    assert.match(((await r.json()) as { message: string }).message, /no token is configured/);
    await none.close();
    const open = await serve({ token: null, disabled: true });
    assert.equal((await fetch(open.base)).status, 200);
    await open.close();
  });

  it('drops a request that does not arrive within the request timeout', async () => {
    const s = await serve({ token: null, disabled: true });
    const sock = net.connect(s.port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    sock.write('POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n[');
    let got = '';
    sock.on('data', (d) => {
      got += d.toString();
    });
    const t0 = Date.now();
    await new Promise((r) => sock.once('close', r));
    assert.ok(Date.now() - t0 < 5000, 'closed by the server');
    assert.match(got, /408/);
    assert.equal(metric(await s.metrics.metrics(), 'muster_agent_osreapi_refused_total', { reason: 'timeout' }), 1);
    await s.close();
  });

  it('refuses a body declared larger than the limit without reading it', async () => {
    const s = await serve({ token: null, disabled: true });
    const sock = net.connect(s.port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    sock.write('POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 10000000\r\nconnection: close\r\n\r\n');
    let got = '';
    sock.on('data', (d) => {
      got += d.toString();
    });
    await new Promise((r) => sock.once('close', r));
    assert.match(got, /^HTTP\/1.1 413/);
    assert.match(got, /http.body_limit_bytes/);
    await s.close();
  });

  it('answers 404 and 405 for what it does not serve, and 400 for a bad sort', async () => {
    const s = await serve({ token: null, disabled: true });
    assert.equal((await fetch(`${s.base}/a/b`)).status, 404);
    const malformed = await fetch(`${s.base}/%E0%A4%A`);
    assert.equal(malformed.status, 200);
    assert.deepEqual(await malformed.json(), { code: 1003, message: 'id不存在, 沒有数据' });
    assert.equal((await fetch(`${s.base}/`, { method: 'DELETE' })).status, 405);
    assert.equal((await fetch(`${s.base}/x`, { method: 'POST', body: '[]' })).status, 405);
    assert.equal((await fetch(`${s.base}/`, { method: 'PUT' })).status, 400);
    assert.equal((await fetch(`${s.base}/?sort=nope`)).status, 400);
    for (const sort of ['end', 'ttl', 'start', 'completed'])
      assert.equal((await fetch(`${s.base}/?sort=${sort}`)).status, 200, sort);
    const empty = await fetch(`${s.base}/`, { method: 'POST', body: '[]' });
    assert.equal(empty.status, 400);
    const badStep = await fetch(`${s.base}/`, { method: 'POST', body: '[{"name":"bad name!","command_content":"x"}]' });
    assert.equal(badStep.status, 400);
    assert.match(((await badStep.json()) as { message: string }).message, /step 0: name/);
    await s.close();
  });

  it('answers 503 when exec.max_requests tasks are running', async () => {
    const s = await serve({ token: null, disabled: true }, { maxRequests: 1 });
    const post = () => fetch(`${s.base}/`, { method: 'POST', body: '[{"command_content":"sleep 5"}]' });
    const first = (await (await post()).json()) as { code: number; data: { id: string } };
    assert.equal(first.code, 0);
    const second = await post();
    assert.equal(second.status, 503);
    assert.match(((await second.json()) as { message: string }).message, /exec.max_requests/);
    const list = (await (await fetch(s.base)).json()) as { data: { running: number; tasks: { state: string }[] } };
    assert.equal(list.data.running, 1);
    assert.deepEqual(
      (await (await fetch(`${s.base}/${first.data.id}?action=kill`, { method: 'PUT' })).json()) as unknown,
      { code: 0, message: '成功' },
    );
    await s.close();
  });
});
