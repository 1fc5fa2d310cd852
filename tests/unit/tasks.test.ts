/**
 * The manager's remote execution (manager/tasks/, manager/routes/tasks.ts, commands.ts;
 * docs/exec.md "Manager: targets, batches, tasks") on the real server with fastify.inject and a
 * fake AgentClient over simulated boards (testkit/exec-sim.ts): target resolution at submit,
 * sliding-window batches, fail_fast, the task timeout, kills, agent restarts, allow_raw, the
 * command-set catalog and generate_file, the SSE stream, history, roles and bad input refused
 * before any agent is called.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { HistoryEntry } from '../../common/api/history.js';
import type { TaskLine, TaskRecord } from '../../common/api/tasks.js';
import type { HeartbeatData } from '../../common/protocol.js';
import { buildServer } from '../../manager/server.js';
import type { TaskRunner } from '../../manager/tasks/runner.js';
import { tokenHeaders } from '../../testkit/auth.js';
import { heartbeatData } from '../../testkit/bodies.js';
import { SimFleet, simAgents } from '../../testkit/exec-sim.js';
import { serverDeps, TEST_EXEC_CONFIG } from '../../testkit/server.js';

type Headers = { authorization: string };

async function setup(exec: Partial<typeof TEST_EXEC_CONFIG> = {}) {
  const fleet = new SimFleet();
  const d = serverDeps({
    agents: simAgents(fleet),
    exec: { ...TEST_EXEC_CONFIG, status_wait_ms: 200, ...exec },
  });
  const app = buildServer(d);
  await app.ready();
  const admin = await tokenHeaders(d.access, 'admin', 'admin');
  const operator = await tokenHeaders(d.access, 'otto', 'operator');
  const viewer = await tokenHeaders(d.access, 'vera', 'viewer');
  const join = (id: string, over: Partial<HeartbeatData> = {}) => {
    const [box_id, slot_id, cpu_id] = id.split('-').map(Number) as [number, number, number];
    d.registry.ingestHeartbeat(
      heartbeatData({ box_id, slot_id, cpu_id, host_ip: `10.0.${box_id}.${slot_id * 2 + cpu_id}`, ...over }),
    );
  };
  return {
    d,
    app,
    fleet,
    admin,
    operator,
    viewer,
    join,
    runner: d.runner as TaskRunner,
    close: async () => {
      await app.close();
      d.close();
    },
  };
}

// biome-ignore lint/suspicious/noExplicitAny: the tests read the answers' fields freely
async function submit(app: FastifyInstance, h: Headers, body: object): Promise<{ status: number; body: any }> {
  const r = await app.inject({ method: 'POST', url: '/api/v1/tasks', headers: h, payload: body });
  return { status: r.statusCode, body: r.json() };
}

const script = (...ops: string[]) => ops.join('\n');
const done = async (s: Awaited<ReturnType<typeof setup>>, id: string) => (await s.runner.wait(id)) as TaskRecord;

describe('tasks: targets and batches', () => {
  it('resolves the target at submit time and keeps the node list with the task', async () => {
    const s = await setup();
    after(s.close);
    s.join('1-1-0');
    s.join('1-2-0', { board_type: 'CPU' });
    s.join('1-3-0');
    const r = await submit(s.app, s.operator, {
      target: 'board_type=GPU',
      steps: [{ command_content: script('echo hi', 'sleep 100') }],
    });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const id = r.body.task.id as string;
    assert.deepEqual(r.body.task.nodes, ['1-1-0', '1-3-0']);
    assert.match(r.body.task.who, /^otto\//, 'who: the operator (user/token)');
    // A GPU board joining after the submit is not part of it.
    s.join('1-4-0');
    const t = await done(s, id);
    assert.deepEqual(t.nodes, ['1-1-0', '1-3-0']);
    assert.equal(t.state, 'done');
    assert.equal(s.fleet.boards.has('1-4-0'), false);
    const stored = (await s.app.inject({ url: `/api/v1/tasks/${id}`, headers: s.viewer })).json().task as TaskRecord;
    assert.deepEqual(
      stored.results?.map((x) => [x.node, x.state, x.exit_code, x.steps[0]?.stdout_tail]),
      [
        ['1-1-0', 'done', 0, 'hi\n'],
        ['1-3-0', 'done', 0, 'hi\n'],
      ],
    );
    const miss = await submit(s.app, s.operator, { target: 'board_type=FPGA', steps: [{ command_content: 'echo x' }] });
    assert.equal(miss.status, 400);
    assert.match(miss.body.message, /matches no node/);
  });

  it('batch 2 is a sliding window: the next node starts as soon as one finishes', async () => {
    const s = await setup();
    after(s.close);
    const ids = ['1-1-0', '1-2-0', '1-3-0', '1-4-0', '1-5-0'];
    for (const id of ids) s.join(id);
    // Each node sleeps per its slot: 1-1-0 is quick, 1-2-0 slow; 1-3-0 must start before 1-2-0 ends.
    let running = 0;
    let most = 0;
    const starts: Record<string, number> = {};
    const ends: Record<string, number> = {};
    s.runner.on('node', (_t: TaskRecord, r: { node: string; end: string }) => {
      running--;
      ends[r.node] = Date.parse(r.end);
    });
    const origExec = s.fleet.board('x').exec;
    void origExec;
    for (const id of ids) {
      const b = s.fleet.board(id);
      const exec = b.exec.bind(b);
      b.exec = (d) => {
        running++;
        most = Math.max(most, running);
        starts[id] = Date.now();
        const slow = id === '1-2-0' ? 600 : 50;
        return exec({ ...d, steps: [{ command_content: `sleep ${slow}` }] });
      };
    }
    const r = await submit(s.app, s.operator, { target: '1-*-0', batch: 2, steps: [{ command_content: 'sleep 1' }] });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    assert.equal(r.body.task.batch_size, 2);
    const t = await done(s, r.body.task.id);
    assert.equal(t.state, 'done');
    assert.equal(most, 2, 'never more than the batch at once');
    assert.ok((starts['1-3-0'] as number) < (ends['1-2-0'] as number), '1-3-0 started while 1-2-0 still ran');
    const pct = await submit(s.app, s.operator, { target: 'all', batch: '25%', steps: [{ command_content: 'echo' }] });
    assert.equal(pct.body.task.batch_size, 2, '25% of 5 nodes, rounded up');
    await done(s, pct.body.task.id);
  });

  it('fail_fast with a batch of one: the first failure skips the rest', async () => {
    const s = await setup();
    after(s.close);
    for (const id of ['1-1-0', '1-2-0', '1-3-0', '1-4-0']) s.join(id);
    s.fleet.board('1-2-0').exec = (
      (orig) => (d) =>
        orig({ ...d, steps: [{ command_content: 'exit 3' }] })
    )(s.fleet.board('1-2-0').exec.bind(s.fleet.board('1-2-0')));
    const r = await submit(s.app, s.operator, {
      target: 'all',
      batch: 1,
      fail_fast: true,
      steps: [{ command_content: 'echo ok' }],
    });
    const t = await done(s, r.body.task.id);
    assert.equal(t.state, 'failed');
    assert.deepEqual(
      t.results?.map((x) => [x.node, x.state, x.exit_code]),
      [
        ['1-1-0', 'done', 0],
        ['1-2-0', 'failed', 3],
        ['1-3-0', 'skipped', null],
        ['1-4-0', 'skipped', null],
      ],
    );
    assert.match(t.results?.[2]?.message ?? '', /fail_fast/);
    assert.equal(s.fleet.boards.get('1-3-0')?.calls.exec, undefined, 'never sent to 1-3-0');
    assert.deepEqual(t.summary, { nodes: 4, done: 1, failed: 1, skipped: 2, running: 0, pending: 0 });
  });
});

describe('tasks: time limits, kills, restarts', () => {
  it('a task timeout kills what runs and skips what has not started', async () => {
    const s = await setup();
    after(s.close);
    for (const id of ['1-1-0', '1-2-0', '1-3-0']) s.join(id);
    const r = await submit(s.app, s.operator, {
      target: 'all',
      batch: 2,
      timeout: '300ms',
      steps: [{ command_content: script('echo start', 'sleep 10000') }],
    });
    assert.equal(r.body.task.timeout_ms, 300);
    const t = await done(s, r.body.task.id);
    assert.equal(t.state, 'timeout');
    assert.deepEqual(
      t.results?.map((x) => x.state),
      ['timeout', 'timeout', 'skipped'],
    );
    for (const id of ['1-1-0', '1-2-0']) assert.equal(s.fleet.board(id).running, 0, `${id}: nothing left running`);
  });

  it('kills one node’s part, then the whole task', async () => {
    const s = await setup();
    after(s.close);
    for (const id of ['1-1-0', '1-2-0', '1-3-0']) s.join(id);
    const r = await submit(s.app, s.operator, {
      target: 'all',
      batch: 2,
      steps: [{ command_content: script('echo start', 'sleep 10000') }],
    });
    const id = r.body.task.id as string;
    await waitFor(() => s.fleet.board('1-2-0').running === 1);
    let k = await s.app.inject({
      method: 'POST',
      url: `/api/v1/tasks/${id}/kill`,
      headers: s.operator,
      payload: { node: '1-2-0' },
    });
    assert.equal(k.statusCode, 200, k.body);
    // 1-3-0 takes the freed slot; then the whole task is killed.
    await waitFor(() => s.fleet.board('1-3-0').running === 1);
    k = await s.app.inject({ method: 'POST', url: `/api/v1/tasks/${id}/kill`, headers: s.viewer, payload: {} });
    assert.equal(k.statusCode, 403, 'a viewer kills nothing');
    k = await s.app.inject({ method: 'POST', url: `/api/v1/tasks/${id}/kill`, headers: s.operator, payload: {} });
    assert.equal(k.statusCode, 200);
    const t = await done(s, id);
    assert.equal(t.state, 'killed');
    assert.deepEqual(
      t.results?.map((x) => x.state),
      ['killed', 'killed', 'killed'],
    );
    for (const n of ['1-1-0', '1-2-0', '1-3-0']) assert.equal(s.fleet.board(n).running, 0);
    k = await s.app.inject({ method: 'POST', url: `/api/v1/tasks/${id}/kill`, headers: s.operator, payload: {} });
    assert.equal(k.statusCode, 409);
    k = await s.app.inject({ method: 'POST', url: '/api/v1/tasks/nope/kill', headers: s.operator, payload: {} });
    assert.equal(k.statusCode, 404);
  });

  it('an agent restarted mid-task: unreachable for a while, then the task reported interrupted', async () => {
    const s = await setup();
    after(s.close);
    s.join('1-1-0');
    const b = s.fleet.board('1-1-0');
    const r = await submit(s.app, s.operator, {
      target: '1-1-0',
      steps: [{ command_content: script('echo start', 'sleep 10000') }],
    });
    await waitFor(() => b.running === 1);
    b.down = true;
    b.restart();
    await new Promise((res) => setTimeout(res, 400));
    b.down = false;
    const t = await done(s, r.body.task.id);
    assert.equal(t.results?.[0]?.state, 'interrupted');
    assert.equal(t.state, 'failed');
    assert.equal(b.running, 0);
  });

  it('an agent gone for longer than exec.lost_after_ms: its part is an error', async () => {
    const s = await setup({ lost_after_ms: 300 });
    after(s.close);
    s.join('1-1-0');
    const b = s.fleet.board('1-1-0');
    const r = await submit(s.app, s.operator, { target: '1-1-0', steps: [{ command_content: 'sleep 10000' }] });
    await waitFor(() => b.running === 1);
    b.down = true;
    const t = await done(s, r.body.task.id);
    assert.equal(t.results?.[0]?.state, 'error');
    assert.match(t.results?.[0]?.message ?? '', /exec\.lost_after_ms/);
  });
});

describe('tasks: command sets, roles, bad input, stream, history', () => {
  it('catalog: admins add and remove, operators list and run; allow_raw:false refuses raw and runs the entry; generate_file fetched back', async () => {
    const s = await setup();
    after(s.close);
    s.join('1-1-0');
    s.join('1-2-0');
    s.fleet.board('1-2-0').allowRaw = false;
    const entry = {
      exec: 'shot',
      argument_count: 1,
      generate_file: '/tmp/shot.png',
      content_b64: Buffer.from('#!/bin/sh\necho shot\n').toString('base64'),
    };
    let r = await s.app.inject({ method: 'POST', url: '/api/v1/commands', headers: s.operator, payload: entry });
    assert.equal(r.statusCode, 403, 'operators do not manage the catalog');
    r = await s.app.inject({
      method: 'POST',
      url: '/api/v1/commands',
      headers: s.admin,
      payload: { ...entry, content_b64: Buffer.from('no shebang').toString('base64') },
    });
    assert.equal(r.statusCode, 400);
    r = await s.app.inject({ method: 'POST', url: '/api/v1/commands', headers: s.admin, payload: entry });
    assert.equal(r.statusCode, 201, r.body);
    r = await s.app.inject({ url: '/api/v1/commands', headers: s.viewer });
    assert.equal(r.statusCode, 403);
    r = await s.app.inject({ url: '/api/v1/commands', headers: s.operator });
    assert.deepEqual(
      r.json().commands.map((c: { name: string }) => c.name),
      ['shot'],
    );
    // Pushed to the boards in the background.
    await waitFor(() => s.fleet.board('1-2-0').entries().length === 1);

    const raw = await submit(s.app, s.operator, { target: 'all', steps: [{ command_content: 'echo raw' }] });
    const rt = await done(s, raw.body.task.id);
    assert.deepEqual(
      rt.results?.map((x) => x.state),
      ['done', 'failed'],
    );
    assert.match(rt.results?.[1]?.message ?? '', /allow_raw/);

    const wrongArgs = await submit(s.app, s.operator, { target: 'all', steps: [{ command: 'shot' }] });
    assert.equal(wrongArgs.status, 400);
    assert.match(wrongArgs.body.message, /takes 1 argument, 0 given/);
    const unknown = await submit(s.app, s.operator, { target: 'all', steps: [{ command: 'nope' }] });
    assert.equal(unknown.status, 400);

    const ok = await submit(s.app, s.operator, { target: '1-2-0', steps: [{ command: 'shot', args: ['a'] }] });
    const t = await done(s, ok.body.task.id);
    assert.equal(t.results?.[0]?.state, 'done');
    assert.deepEqual(
      t.results?.[0]?.files.map((f) => [f.path, f.kept]),
      [['/tmp/shot.png', true]],
    );
    r = await s.app.inject({
      url: `/api/v1/tasks/${t.id}/file?node=1-2-0&step=0`,
      headers: s.operator,
    });
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(Buffer.from(r.json().file.content_b64, 'base64').toString(), 'generated by 1-2-0 step 0\n');

    r = await s.app.inject({ method: 'DELETE', url: '/api/v1/commands/shot', headers: s.admin });
    assert.equal(r.statusCode, 200);
    await waitFor(() => s.fleet.board('1-2-0').entries().length === 0);
  });

  it('viewers run nothing (403); cycles, unknown deps and duplicate names are refused before any agent is called', async () => {
    const s = await setup();
    after(s.close);
    s.join('1-1-0');
    const v = await submit(s.app, s.viewer, { target: 'all', steps: [{ command_content: 'echo' }] });
    assert.equal(v.status, 403);
    const cases: [object[], RegExp][] = [
      [
        [
          { name: 'a', command_content: 'echo', depends_on: ['b'] },
          { name: 'b', command_content: 'echo', depends_on: ['a'] },
        ],
        /dependency cycle: a → b → a/,
      ],
      [[{ name: 'a', command_content: 'echo', depends_on: ['zz'] }], /unknown step "zz"/],
      [
        [
          { name: 'a', command_content: 'echo' },
          { name: 'a', command_content: 'echo' },
        ],
        /duplicate step name "a"/,
      ],
      [[{ name: 'a' }], /exactly one of command_content/],
    ];
    for (const [steps, re] of cases) {
      const r = await submit(s.app, s.operator, { target: 'all', steps });
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.match(r.body.message, re);
    }
    for (const body of [
      { target: 'all', steps: [] },
      { target: 'all', steps: [{ command_content: 'echo' }], batch: '0%' },
      { target: 'all', steps: [{ command_content: 'echo' }], batch: 0 },
      { target: 'all', steps: [{ command_content: 'echo' }], timeout: 'soon' },
      { target: 'bad key!=x=y', steps: [{ command_content: 'echo' }] },
      { target: 'all', steps: [{ command_content: 'echo' }], extra: 1 },
    ]) {
      const r = await submit(s.app, s.operator, body);
      assert.equal(r.status, 400, JSON.stringify(body));
    }
    assert.equal(s.fleet.board('1-1-0').calls.exec, undefined, 'no agent was called');
  });

  it('bounds: max_nodes_per_task and max_concurrent_tasks refuse and count', async () => {
    const s = await setup({ max_nodes_per_task: 2, max_concurrent_tasks: 1 });
    after(s.close);
    for (const id of ['1-1-0', '1-2-0', '1-3-0']) s.join(id);
    let r = await submit(s.app, s.operator, { target: 'all', steps: [{ command_content: 'echo' }] });
    assert.equal(r.status, 400);
    assert.match(r.body.message, /exec\.max_nodes_per_task/);
    r = await submit(s.app, s.operator, { target: '1-1-0', steps: [{ command_content: 'sleep 300' }] });
    assert.equal(r.status, 202);
    const second = await submit(s.app, s.operator, { target: '1-2-0', steps: [{ command_content: 'echo' }] });
    assert.equal(second.status, 429);
    await done(s, r.body.task.id);
    const m = await s.d.metrics.getSingleMetricAsString('muster_manager_tasks_refused_total');
    assert.match(m, /reason="too_many_nodes"} 1/);
    assert.match(m, /reason="too_many_tasks"} 1/);
  });

  it('the event stream: live lines with the node id, node results, then the summary; history has every run', async () => {
    const s = await setup();
    after(s.close);
    s.join('1-1-0');
    s.join('1-2-0');
    await s.app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(s.app.server.address() as { port: number }).port}`;
    const r = await submit(s.app, s.operator, {
      target: 'all',
      steps: [
        { name: 'one', command_content: script('echo first', 'sleep 50') },
        { name: 'two', command_content: 'echo second', depends_on: ['one'] },
        { name: 'three', command_content: 'lines 3 100', depends_on: ['one'] },
      ],
    });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const res = await fetch(`${base}/api/v1/tasks/${r.body.task.id}/events`, { headers: s.viewer });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    const text = await res.text();
    const events = text
      .split('\n\n')
      .filter((e) => e.startsWith('event:'))
      .map((e) => {
        const [ev, data] = e.split('\n');
        return { event: ev?.slice(7), data: JSON.parse(data?.slice(6) ?? 'null') };
      });
    const lines = events.filter((e) => e.event === 'line').map((e) => e.data as TaskLine);
    for (const node of ['1-1-0', '1-2-0']) {
      assert.deepEqual(
        lines
          .filter((l) => l.node === node)
          .map((l) => l.line)
          .sort(),
        ['first', 'line 1', 'line 2', 'line 3', 'second'],
      );
    }
    assert.deepEqual(
      lines.map((l) => l.seq),
      lines.map((_, i) => i + 1),
    );
    assert.equal(events.filter((e) => e.event === 'node').length, 2);
    const last = events[events.length - 1];
    assert.equal(last?.event, 'summary');
    assert.equal((last?.data as TaskRecord | undefined)?.state, 'done');
    // A late reader of an ended task gets the held lines and the summary.
    const again = await (
      await fetch(`${base}/api/v1/tasks/${r.body.task.id}/events?since=5`, { headers: s.viewer })
    ).text();
    assert.equal((again.match(/event: line/g) ?? []).length, lines.length - 5);
    // History: one entry for the task and one per node, with who ran it.
    const h = (await s.app.inject({ url: '/api/v1/history?limit=100', headers: s.viewer })).json()
      .history as HistoryEntry[];
    const mine = h.filter(
      (e) => e.operation === 'exec' && (e.args?.task === r.body.task.id || e.ref === r.body.task.id),
    );
    assert.deepEqual(mine.map((e) => e.node).sort(), ['1-1-0', '1-2-0', null].sort());
    for (const e of mine) assert.match(e.who, /^otto\//);
    assert.equal(mine.find((e) => e.node === null)?.result, 0);
    assert.equal(mine.find((e) => e.node === '1-1-0')?.result, 0);
    const list = (await s.app.inject({ url: '/api/v1/tasks', headers: s.viewer })).json().tasks as TaskRecord[];
    assert.equal(list[0]?.id, r.body.task.id);
    assert.equal(list[0]?.results, undefined);
  });

  it('secrets in env_vars are kept out of the record and the API; the agent gets them', async () => {
    const s = await setup();
    after(s.close);
    s.join('1-1-0');
    let seen: string[] = [];
    const b = s.fleet.board('1-1-0');
    const exec = b.exec.bind(b);
    b.exec = (d) => {
      seen = d.steps[0]?.env_vars ?? [];
      return exec(d);
    };
    const r = await submit(s.app, s.operator, {
      target: 'all',
      steps: [{ command_content: 'echo', env_vars: ['API_TOKEN=s3cret', 'MODE=fast'] }],
    });
    assert.deepEqual(r.body.task.steps[0].env_vars, ['API_TOKEN=***', 'MODE=fast']);
    await done(s, r.body.task.id);
    assert.deepEqual(seen, ['API_TOKEN=s3cret', 'MODE=fast']);
    const got = await s.app.inject({ url: `/api/v1/tasks/${r.body.task.id}`, headers: s.viewer });
    assert.ok(!got.body.includes('s3cret'));
  });
});

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}
