/**
 * POST /deploy on a real agent process: auth and every malformed request are refused with the
 * spec's reply shape, a non-zero result naming the field, and the matching HTTP status; nothing
 * is started and the agent keeps serving.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort, getJson, type Proc, sets, startMuster, waitFor } from '../helpers/daemons.js';

const TOKEN = 'route-test-token';

describe('agent POST /deploy refusals', () => {
  let agent: Proc;
  let base: string;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'muster-route-'));
    writeFileSync(path.join(dir, 'token'), `${TOKEN}\n`);
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
        'log.level': 'warn',
      }),
    ]);
    await waitFor('agent healthz', () => getJson(`${base}/healthz`), 30_000).catch((e: Error) => {
      throw new Error(`${e.message}\n${agent.output()}`);
    });
  });
  after(async () => {
    await agent?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const post = async (body: unknown, token: string | null = TOKEN) => {
    const res = await fetch(`${base}/deploy`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as { api_version: number; data: Record<string, unknown> } };
  };
  const start = (over: Record<string, unknown> = {}) => ({
    api_version: 1,
    data: {
      mode: 'start',
      type: 'bar',
      uuid: 'r1',
      url: 'http://127.0.0.1:9',
      file: 'a.tgz',
      require: { cpu: 1, memory: 1048576, gpu: 0 },
      ...over,
    },
  });

  it('refuses a missing or wrong token with result 6 and 401, echoing the request', async () => {
    for (const token of [null, 'wrong']) {
      const r = await post(start(), token);
      assert.equal(r.status, 401);
      assert.equal(r.body.api_version, 1);
      assert.equal(r.body.data.result, 6);
      assert.equal(r.body.data.uuid, 'r1');
      assert.match(String(r.body.data.message), /unauthorized/);
    }
  });

  it('refuses malformed requests with result 1 and 400, naming the field', async () => {
    const cases: [unknown, RegExp][] = [
      ['{not json', /JSON/],
      [{ api_version: 2, data: start().data }, /api_version/],
      [{ api_version: 1, data: { type: 'bar', uuid: 'r1' } }, /mode/],
      [{ api_version: 1, data: { mode: 'start', uuid: 'r1' } }, /type/],
      [{ api_version: 1, data: { mode: 'stop', type: 'bar' } }, /uuid/],
      [start({ mode: 'restart' }), /mode/],
      [start({ type: 'vm' }), /type/],
      [start({ require: { cpu: -1, memory: 1, gpu: 0 } }), /require\/cpu/],
      [start({ require: { cpu: 1, memory: -5, gpu: 0 } }), /require\/memory/],
      [start({ require: { cpu: 1.5, memory: 1, gpu: 0 } }), /require\/cpu/],
      [start({ require: undefined }), /require/],
      [start({ url: undefined }), /url/],
      [start({ file: '../etc/passwd' }), /file/],
      [start({ file: 'a/b.tgz' }), /file/],
      [start({ url: 'ftp://host/x' }), /url/],
      [start({ require: { cpu: 0, memory: 1, gpu: 0 } }), /require\.cpu/],
    ];
    for (const [body, field] of cases) {
      const r = await post(body);
      assert.equal(r.status, 400, `${JSON.stringify(body)} → ${JSON.stringify(r.body)}`);
      assert.equal(r.body.data.result, 1, JSON.stringify(r.body));
      assert.match(String(r.body.data.message), field, JSON.stringify(r.body));
    }
  });

  it('refuses an absurd requirement as insufficient (result 2, 409) saying what is short', async () => {
    const r = await post(start({ require: { cpu: 4096, memory: 2 ** 50, gpu: 64 } }));
    assert.equal(r.status, 409);
    assert.equal(r.body.data.result, 2);
    assert.match(String(r.body.data.message), /cpu: need 4096 cores/);
    assert.match(String(r.body.data.message), /memory: need/);
    assert.match(String(r.body.data.message), /gpu: need 64/);
  });

  it('a docker start on a board without a docker engine configured is a runtime error (4)', async () => {
    const r = await post(start({ type: 'docker', url: '127.0.0.1:5000', file: 'busybox:1' }));
    assert.equal(r.body.data.result, 4);
    assert.match(String(r.body.data.message), /no docker runtime/);
  });

  it('a stop of an unknown uuid is not found (5, 404); the agent still serves and holds nothing', async () => {
    const r = await post({ api_version: 1, data: { mode: 'stop', type: 'bar', uuid: 'never-started' } });
    assert.equal(r.status, 404);
    assert.equal(r.body.data.result, 5);
    const h = await getJson<{ status: string }>(`${base}/healthz`);
    assert.equal(h.status, 'ok');
    const rec = await fetch(`${base}/deploy/r1`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(rec.status, 404, 'no component record was left behind by the refused starts');
  });
});
