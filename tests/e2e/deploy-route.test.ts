/**
 * POST /deploy on a real agent process: auth and every malformed request are refused with the
 * spec's reply shape, a non-zero result naming the field, and the matching HTTP status; nothing
 * is started and the agent keeps serving.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort, getJson, type Proc, sets, startMuster, waitFor } from '../helpers/daemons.js';

const TOKEN = 'route-test-token';

/**
 * Four clients looping POST /deploy with a deeply nested body of argv[3] bytes to argv[1], two
 * without and two with the token argv[2]; one line on stdout per answered request. Runs until killed.
 */
const LOAD_CLIENTS = `
const [base, token, n] = process.argv.slice(1);
const half = Number(n) / 2;
const deep = '['.repeat(half) + ']'.repeat(half);
const client = async (auth) => {
  for (;;) {
    await fetch(base + '/deploy', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(auth ? { authorization: 'Bearer ' + token } : {}) },
      body: deep,
      signal: AbortSignal.timeout(10000),
    }).then((r) => r.arrayBuffer()).then(() => process.stdout.write('.\\n'), () => {});
  }
};
client(false); client(false); client(true); client(true);
`;

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

  it('refuses a missing or wrong token with result 6 and 401, before reading the body', async () => {
    for (const token of [null, 'wrong']) {
      const r = await post(start(), token);
      assert.equal(r.status, 401);
      assert.equal(r.body.api_version, 1);
      assert.equal(r.body.data.result, 6);
      assert.equal(r.body.data.uuid, '', 'nothing of the unread body is echoed (the shape is kept)');
      assert.equal(r.body.data.mode, '');
      assert.equal(r.body.data.type, '');
      assert.match(String(r.body.data.message), /unauthorized/);
    }
    // Not even a broken body is looked at without the token.
    const broken = await post('{not json', null);
    assert.equal(broken.status, 401);
  });

  it('a 1 MB deeply nested body: 401 unparsed without the token, 400 too deep with it; /healthz stays fast', async () => {
    const deep = `${'['.repeat(500_000)}${']'.repeat(500_000)}`;
    const noToken = await post(deep, null);
    assert.equal(noToken.status, 401);
    assert.equal(noToken.body.data.result, 6);
    const withToken = await post(deep);
    assert.equal(withToken.status, 400);
    assert.equal(withToken.body.data.result, 1);
    assert.match(String(withToken.body.data.message), /too deep.*http\.max_json_depth/);
    const objects = `${'{"a":'.repeat(40)}1${'}'.repeat(40)}`;
    assert.match(String((await post(objects)).body.data.message), /too deep/);

    // Four clients, in a process of their own so that their work does not slow the timing here,
    // send such bodies (two without, two with the token) while /healthz is timed.
    const timeHealthz = async (): Promise<number[]> => {
      const times: number[] = [];
      for (let i = 0; i < 200; i++) {
        const t0 = performance.now();
        const res = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(5000) });
        await res.arrayBuffer();
        times.push(performance.now() - t0);
        assert.equal(res.status, 200);
      }
      return times.sort((a, b) => a - b);
    };
    const idle = await timeHealthz();
    const load = spawn(process.execPath, ['-e', LOAD_CLIENTS, base, TOKEN, String(deep.length)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let sent = '';
    load.stdout.on('data', (c: Buffer) => {
      sent += c.toString();
    });
    let times: number[];
    try {
      await new Promise((r) => setTimeout(r, 500));
      times = await timeHealthz();
    } finally {
      load.kill('SIGTERM');
      await new Promise((r) => load.once('exit', r));
    }
    const bodies = sent.split('\n').filter(Boolean).length;
    const p50 = times[99] as number;
    const p99 = times[197] as number;
    console.log(
      `healthz p50/p99: idle ${(idle[99] as number).toFixed(1)}/${(idle[197] as number).toFixed(1)} ms; under 4 deep-body clients ${p50.toFixed(1)}/${p99.toFixed(1)} ms (${bodies} bodies of 1 MB answered)`,
    );
    assert.ok(bodies >= 8, `the clients kept sending (${bodies})`);
    assert.ok(p99 < 250, `/healthz p99 ${p99.toFixed(1)} ms under load`);
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
