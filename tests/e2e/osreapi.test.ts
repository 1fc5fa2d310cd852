/**
 * The seed executor API (docs/exec.md "The seed executor API") and the exec commands against a
 * real `muster agent` process: the seed's three examples adapted to Linux commands (sequence,
 * `?ansync=true`, the three-step DAG) with the exact response shapes and codes 0 / 1001 / 1002 /
 * 1003, the task list, kill (no process left), a huge output bounded, bad requests (unknown and
 * Windows command types, a cycle, not an array, too large, too deep, no token), an agent killed
 * mid-task and restarted (the task interrupted, no orphan), and a board in `allow_raw: false`
 * refusing a raw command while running its command-set entry put with `command_set`, followed
 * with `exec` + `exec_status` long polls on the service port.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { markedProcesses } from '../../agent/exec/runner.js';
import { freePort, type Proc, sets, startMuster, waitFor } from '../helpers/daemons.js';

const TOKEN = 'osreapi-e2e-token';
// The token goes through the environment: --set refuses secrets (docs/configuration.md "Secrets").
process.env.MUSTER_AGENT_AUTH_TOKEN = TOKEN;
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$/;
const GO_DURATION = /^(\d+h)?(\d+m)?[\d.]+(s|ms|µs)$/;

type Body = { code: number; message?: string; data?: unknown };
type SeedStep = {
  step: number;
  name: string;
  state: string;
  code: number;
  message: string;
  times: { begin: string; end: string; ttl: string };
};

describe('the seed executor API on a real agent', { timeout: 90_000 }, () => {
  let tmp: string;
  let agent: Proc | undefined;
  let servicePort: number;
  let seedPort: number;
  let base: string;

  async function start(extra: Record<string, string | number> = {}) {
    agent = startMuster([
      'agent',
      ...sets({
        'multicast.interface': '127.0.0.1',
        'multicast.port': await freePort(),
        'service.host': '127.0.0.1',
        'service.port': servicePort,
        'auth.token_file': path.join(tmp, 'none'),
        'deploy.docker_socket': '',
        'exec.osreapi.port': seedPort,
        'exec.kill_grace': '1s',
        'exec.max_output_bytes': 65536,
        'exec.commands_dir': path.join(tmp, 'commands'),
        data_dir: path.join(tmp, 'agent'),
        ...extra,
      }),
    ]);
    await waitFor('the seed API', () => call('GET', '/').then((r) => r.status === 200), 20_000);
  }

  async function call(method: string, p: string, body?: unknown, token: string | null = TOKEN) {
    const res = await fetch(`${base}${p}`, {
      method,
      headers: token ? { authorization: `Bearer ${token}` } : {},
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(10_000),
    });
    return { status: res.status, body: (await res.json()) as Body };
  }

  async function submit(steps: unknown[], query = ''): Promise<string> {
    const r = await call('POST', `/${query}`, steps);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(Object.keys(r.body).sort(), ['code', 'data']);
    assert.equal(r.body.code, 0);
    const data = r.body.data as { id: string; count: number };
    assert.deepEqual(Object.keys(data).sort(), ['count', 'id']);
    assert.equal(data.count, steps.length);
    return data.id;
  }

  /** Polls GET /<id> until its code is not 1001; returns the body. */
  async function result(id: string): Promise<Body> {
    return waitFor(
      `task ${id} to end`,
      async () => {
        const r = await call('GET', `/${id}`);
        assert.equal(r.status, 200);
        return r.body.code !== 1001 && r.body;
      },
      30_000,
      100,
    );
  }

  /** Sends a command to the service port (the manager's path). */
  async function command(name: string, data: unknown) {
    const res = await fetch(`http://127.0.0.1:${servicePort}/${name}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ api_version: 1, data }),
      signal: AbortSignal.timeout(30_000),
    });
    return { status: res.status, body: (await res.json()) as { api_version: number; data: Record<string, unknown> } };
  }

  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'muster-osreapi-'));
    servicePort = await freePort();
    seedPort = await freePort();
    base = `http://127.0.0.1:${seedPort}`;
    await start();
  });

  after(async () => {
    await agent?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('refuses a request without the agent token, before reading it', async () => {
    const none = await call('GET', '/', undefined, null);
    assert.equal(none.status, 401);
    assert.equal(none.body.code, 401);
    const wrong = await call('POST', '/', [{ command_content: 'true' }], 'nope');
    assert.equal(wrong.status, 401);
  });

  it('runs the sequence example: 1001 while it runs, then code 0 with every step in order', async () => {
    const id = await submit([
      { command_type: 'sh', command_content: 'echo "host=$envhost"', env_vars: ['envhost=www.q1.com', 'env2=value2'] },
      { command_type: 'bash', command_content: 'sleep 1.2', env_vars: ['env1=value1', 'env2=value2'] },
      { command_type: 'sh', command_content: 'echo "host=$envhost" >&2', env_vars: ['envhost=baidu.com'] },
    ]);
    assert.match(id, /^[0-9a-f-]{36}$/);
    const running = await call('GET', `/${id}`);
    assert.equal(running.status, 200);
    assert.deepEqual(running.body, { code: 1001, message: '执行中' });
    const done = await result(id);
    assert.deepEqual(Object.keys(done).sort(), ['code', 'data', 'message']);
    assert.equal(done.code, 0);
    assert.equal(done.message, '成功');
    const steps = done.data as SeedStep[];
    assert.equal(steps.length, 3);
    steps.forEach((s, i) => {
      assert.deepEqual(Object.keys(s).sort(), ['code', 'message', 'name', 'state', 'step', 'times']);
      assert.equal(s.step, i);
      assert.equal(s.name, `${id}-${i}`);
      assert.equal(s.state, '已结束');
      assert.equal(s.code, 0);
      assert.deepEqual(Object.keys(s.times).sort(), ['begin', 'end', 'ttl']);
      assert.match(s.times.begin, RFC3339);
      assert.match(s.times.end, RFC3339);
      assert.match(s.times.ttl, GO_DURATION);
      assert.match(s.times.ttl, /^47h59m/, 'ttl counts down from exec.keep (48h)');
    });
    assert.equal(steps[0]?.message, 'host=www.q1.com\n');
    assert.equal(steps[2]?.message, 'host=baidu.com\n', 'stderr is part of the message');
    // In order: each step began when the one before had ended.
    assert.ok(Date.parse(steps[2]?.times.begin ?? '') - Date.parse(steps[0]?.times.begin ?? '') >= 1000);
  });

  it('runs the ansync=true example: all steps at once', async () => {
    const t0 = Date.now();
    const id = await submit(
      [0, 1, 2].map((i) => ({ command_type: 'sh', command_content: `sleep 1; echo ${i}` })),
      '?ansync=true',
    );
    const done = await result(id);
    assert.equal(done.code, 0);
    assert.ok(Date.now() - t0 < 2900, `three 1 s steps at once took ${Date.now() - t0} ms`);
    assert.deepEqual(
      (done.data as SeedStep[]).map((s) => s.message),
      ['0\n', '1\n', '2\n'],
    );
  });

  it('runs the three-step DAG example: step1 and step2 after step0', async () => {
    const id = await submit(
      [
        { name: 'step0', command_type: 'sh', command_content: 'sleep 1; echo pong', env_vars: ['env1=a'] },
        { name: 'step1', command_type: 'sh', command_content: 'echo one', depends_on: ['step0'] },
        {
          name: 'step2',
          command_type: 'sh',
          command_content: 'env | grep ^env3=',
          env_vars: ['env3=c'],
          depends_on: ['step0'],
        },
      ],
      '?ansync=true',
    );
    const done = await result(id);
    assert.equal(done.code, 0, JSON.stringify(done));
    const [s0, s1, s2] = done.data as SeedStep[];
    assert.deepEqual([s0?.name, s1?.name, s2?.name], ['step0', 'step1', 'step2']);
    assert.equal(s2?.message, 'env3=c\n');
    for (const s of [s1, s2]) assert.ok(Date.parse(s?.times.begin ?? '') >= Date.parse(s0?.times.end ?? ''));
  });

  it('answers 1002 with the failed steps, 1003 for an unknown id, and lists the tasks', async () => {
    const id = await submit([
      { command_content: 'echo ok' },
      { command_content: 'echo exit 100; exit 100' },
      { command_content: 'echo never' },
    ]);
    const failed = await result(id);
    assert.deepEqual(failed, {
      code: 1002,
      message: '1, 执行失败',
      data: [{ code: 100, message: 'exit 100 exit status 100', step: 1 }],
    });
    assert.deepEqual((await call('GET', '/no-such-task')).body, { code: 1003, message: 'id不存在, 沒有数据' });
    const list = await call('GET', '/');
    assert.equal(list.status, 200);
    assert.deepEqual(Object.keys(list.body).sort(), ['code', 'data', 'message']);
    assert.equal(list.body.message, '成功');
    const data = list.body.data as { running: number; tasks: Record<string, unknown>[]; total: number };
    assert.deepEqual(Object.keys(data).sort(), ['running', 'tasks', 'total']);
    assert.equal(data.total, data.tasks.length);
    const mine = data.tasks.find((t) => t.id === id) as Record<string, unknown>;
    assert.deepEqual(Object.keys(mine).sort(), ['code', 'count', 'id', 'message', 'state', 'times']);
    assert.deepEqual([mine.state, mine.code, mine.count, mine.message], ['已结束', 1002, 3, '1, 执行失败']);
    const ok = data.tasks.find((t) => t.code === 0) as Record<string, unknown>;
    assert.equal(ok.message, '所有步骤执行成功');
    for (const sort of ['end', 'ttl']) assert.equal((await call('GET', `/?sort=${sort}`)).body.code, 0);
    assert.equal((await call('GET', '/?sort=bogus')).status, 400);
  });

  it('refuses bad requests with 400 and a message naming the problem', async () => {
    const bad = async (body: unknown, re: RegExp, status = 400) => {
      const r = await call('POST', '/', body);
      assert.equal(r.status, status, JSON.stringify(r.body));
      assert.equal(r.body.code, status);
      assert.match(r.body.message ?? '', re);
    };
    await bad({ command_content: 'true' }, /JSON array/);
    await bad('not json', /not valid JSON/);
    await bad([{ command_type: 'ruby', command_content: 'p 1' }], /unknown command_type "ruby"/);
    await bad([{ command_type: 'cmd', command_content: 'dir' }], /Windows type/);
    await bad(
      [
        { name: 'a', command_content: 'true', depends_on: ['b'] },
        { name: 'b', command_content: 'true', depends_on: ['a'] },
      ],
      /dependency cycle: (a → b → a|b → a → b)/,
    );
    await bad([{ name: 'a', command_content: 'true', depends_on: ['x'] }], /unknown dependencies: a → x/);
    await bad(
      [
        { name: 'a', command_content: 'true' },
        { name: 'a', command_content: 'true' },
      ],
      /duplicate step names: a/,
    );
    await bad([{ command_content: 'x'.repeat(1_100_000) }], /larger than/, 413);
    await bad(`${'['.repeat(40)}${']'.repeat(40)}`, /nested too deep/);
  });

  it('kills a task with PUT /<id>?action=kill, leaving no process', async () => {
    const id = await submit([{ command_content: 'sleep 30 & sleep 30; wait' }, { command_content: 'true' }]);
    await waitFor('the step to run', () => (markedProcesses(new Set([id])).get(id)?.length ?? 0) >= 2);
    assert.deepEqual((await call('PUT', `/${id}?action=kill`)).body, { code: 0, message: '成功' });
    const done = await result(id);
    assert.equal(done.code, 1002);
    assert.equal((done.data as { step: number }[])[0]?.step, 0);
    assert.equal(markedProcesses(new Set([id])).get(id), undefined, 'no process of the task is left');
    assert.equal((await call('PUT', `/${id}?action=stop`)).status, 400);
    assert.equal((await call('PUT', '/no-such?action=kill')).body.code, 1003);
  });

  it('bounds a huge output, keeping the tail', async () => {
    const id = await submit([{ command_content: 'head -c 5000000 /dev/zero | tr "\\0" x; echo; echo END' }]);
    const done = await result(id);
    assert.equal(done.code, 0);
    const msg = (done.data as SeedStep[])[0]?.message ?? '';
    assert.equal(Buffer.byteLength(msg), 65536);
    assert.ok(msg.endsWith('x\nEND\n'));
  });

  it('marks a task interrupted when the agent dies mid-task, and kills what it left', async () => {
    const pidFile = path.join(tmp, 'left.pid');
    const id = await submit([{ command_content: `sleep 60 & echo $! > ${pidFile}; sleep 60` }]);
    await waitFor('the step to run', () => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '');
    const left = Number(readFileSync(pidFile, 'utf8'));
    await agent?.stop('SIGKILL');
    assert.ok((markedProcesses(new Set([id])).get(id) ?? []).includes(left), 'the step outlived the agent');
    await start();
    const done = await result(id);
    assert.equal(done.code, 1002);
    assert.deepEqual(
      (done.data as { step: number; code: number }[]).map((d) => [d.step, d.code]),
      [[0, -1]],
    );
    assert.match((done.data as { message: string }[])[0]?.message ?? '', /agent restarted/);
    await waitFor('the leftovers to go', () => !markedProcesses(new Set([id])).get(id));
  });

  it('with allow_raw false refuses raw commands and runs command-set entries (exec, exec_status, exec_kill)', async () => {
    await agent?.stop();
    await start({ 'exec.allow_raw': 'false' });
    const script = Buffer.from('#!/bin/sh\necho "hello $1"\necho "kw $2" >&2\n');
    const put = await command('command_set', {
      action: 'put',
      name: 'hello',
      argument_count: 1,
      generate_file: null,
      content_b64: script.toString('base64'),
      sha256: createHash('sha256').update(script).digest('hex'),
    });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.deepEqual(
      (put.body.data.entries as { name: string }[]).map((e) => e.name),
      ['hello'],
    );
    const raw = await call('POST', '/', [{ command_content: 'id' }]);
    assert.equal(raw.status, 400);
    assert.match(raw.body.message ?? '', /exec.allow_raw is false/);
    const rawExec = await command('exec', { task_id: 'raw-1', steps: [{ command_content: 'id' }] });
    assert.equal(rawExec.status, 400);
    assert.equal(rawExec.body.data.result, 1);

    const seed = await submit([{ command: 'hello', args: ['world'], kwargs: { x: '1' } }]);
    const seedDone = await result(seed);
    assert.equal((seedDone.data as SeedStep[])[0]?.message, 'hello world\nkw --x=1\n');

    const acc = await command('exec', {
      task_id: 'mgr-1',
      steps: [{ name: 'greet', command: 'hello', args: ['a'], kwargs: { y: 'b' } }],
    });
    assert.deepEqual(acc.body.data, { task_id: 'mgr-1', count: 1, result: 0, message: 'accepted' });
    let since = 0;
    const lines: string[] = [];
    for (let i = 0; i < 20; i++) {
      const st = await command('exec_status', { task_id: 'mgr-1', since, wait_ms: 5000 });
      assert.equal(st.status, 200);
      for (const l of st.body.data.output as { line: string; stream: string }[]) lines.push(`${l.stream}:${l.line}`);
      since = st.body.data.next as number;
      if (st.body.data.state === 'done') break;
    }
    assert.deepEqual(lines.sort(), ['stderr:kw --y=b', 'stdout:hello a']);
    const wrongCount = await call('POST', '/', [{ command: 'hello', args: ['a', 'b'] }]);
    assert.match(wrongCount.body.message ?? '', /takes 1 arguments, got 2/);
    const missing = await command('exec_status', { task_id: 'nope' });
    assert.equal(missing.status, 404);
    assert.equal(missing.body.data.state, null);
    const killEnded = await command('exec_kill', { task_id: 'mgr-1' });
    assert.equal(killEnded.body.data.result, 0);
    assert.equal((await command('exec_kill', { task_id: 'nope' })).status, 404);
  });
});
