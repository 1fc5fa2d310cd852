/**
 * Remote execution end to end (docs/exec.md "Manager: targets, batches, tasks"): a manager and
 * three agents, each in its own network namespace on one bridge, driven the way an operator does,
 * with the `muster` CLI run inside the manager's namespace. Boards: 1-1-0 (GPU, label rack=A),
 * 1-2-0 (CPU, exec.allow_raw: false), 1-3-0 (GPU).
 *
 * - a target by attribute (board_type=GPU) streams `node | line` and ends with the summary;
 * - a viewer's token is refused (403, exit 5) before anything runs;
 * - a batch of one with fail_fast: 1-2-0 refuses the raw command, so 1-3-0 never starts;
 * - the allow_raw:false board runs its command-set entry (added by the admin, pushed by the
 *   manager) and its generate_file is fetched back and read with `muster task file`;
 * - a kill mid-run (`muster task kill`): the task ends killed, no process left on the board;
 * - a task timeout: killed on the board, state timeout;
 * - an agent killed (SIGKILL) and restarted mid-task: the manager waits for it, the part ends
 *   interrupted, the step's processes are gone;
 * - a three-step DAG from a YAML file (`muster task run`) with live output of every step;
 * - `muster history` shows every run with who ran it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { markedProcesses } from '../../agent/exec/runner.js';
import type { HistoryEntry } from '../../common/api/history.js';
import type { TaskRecord } from '../../common/api/tasks.js';
import type { NodeSummary } from '../../manager/views.js';
import { type Proc, runMuster, sets, startMuster, watchDaemons } from '../helpers/daemons.js';
import { missingCommand, missingRoot, needs } from '../helpers/need.js';
import { createLan, type Lan } from '../helpers/netns.js';

const PREFIX = 'mxm';
const AGENTS = ['a1', 'a2', 'a3'] as const;
const MANAGER_PORT = 3926;
const TOKEN = 'exec-e2e-token-7d1e';
// Tokens go through the environment: --set refuses secrets (docs/configuration.md "Secrets").
process.env.MUSTER_MANAGER_DEPLOY_TOKEN = TOKEN;
process.env.MUSTER_AGENT_AUTH_TOKEN = TOKEN;

describe('remote execution through the manager and the CLI', needs(missingRoot(), missingCommand('ip')), () => {
  let lan: Lan | undefined;
  let manager: Proc | undefined;
  const agents = new Map<string, Proc>();
  const agentArgs = new Map<string, string[]>();
  const agentData = new Map<string, string>();
  const dirs: string[] = [];
  let managerUrl = '';
  let tmp = '';
  const tasks: string[] = [];

  const mkdir = (name: string) => {
    const d = mkdtempSync(path.join(os.tmpdir(), `muster-exec-${name}-`));
    dirs.push(d);
    return d;
  };
  const named = (): [string, Proc][] => [
    ...(manager ? [['manager', manager] as [string, Proc]] : []),
    ...[...agents].map(([h, p]) => [`agent ${h}`, p] as [string, Proc]),
  ];
  const logs = (): string =>
    named()
      .map(([name, p]) => {
        const out = p.output();
        return `----- ${name} -----\n${out.length > 4000 ? `...${out.slice(-4000)}` : out}`;
      })
      .join('\n');
  const { withLogs, until } = watchDaemons(() => named().filter(([n]) => n !== 'agent a3'), logs);

  /** `muster --manager <url> <args>` in the manager's namespace (as the test admin unless env says). */
  const cli = (args: string[], env?: NodeJS.ProcessEnv) =>
    runMuster(['--manager', managerUrl, ...args], {
      netns: lan?.ns('mgr'),
      timeoutMs: 40_000,
      ...(env ? { env } : {}),
    });
  /** Starts `muster <args>` in the manager's namespace and leaves it running (as the test admin). */
  const background = async (args: string[], token: string) =>
    startMuster(['--manager', managerUrl, ...args], {
      netns: lan?.ns('mgr'),
      env: { MUSTER_TOKEN: token, MUSTER_CLI_CONFIG: path.join(tmp, 'none.yaml') },
    });
  const taskId = (out: string): string => {
    const m = /task ([0-9a-f-]{36})/.exec(out);
    assert.ok(m, `no task id in: ${out}`);
    tasks.push(m[1] as string);
    return m[1] as string;
  };
  const show = async (id: string): Promise<TaskRecord> => {
    const r = await cli(['task', 'show', id, '--json']);
    assert.equal(r.code, 0, r.output);
    return JSON.parse(r.output) as TaskRecord;
  };
  let adminTok = '';

  before(
    async () => {
      lan = createLan({ prefix: PREFIX, hosts: ['mgr', ...AGENTS] });
      tmp = mkdir('cli');
      managerUrl = `http://${lan.ip('mgr')}:${MANAGER_PORT}`;
      manager = startMuster(
        [
          'manager',
          ...sets({
            'multicast.interface': 'eth0',
            'query.heartbeat_interval_ms': 500,
            'query.resource_interval_ms': 1000,
            'deploy.token_file': path.join(tmp, 'none'),
            'exec.status_wait_ms': 5000,
            'exec.call_timeout_ms': 3000,
            'log.level': 'warn',
            data_dir: mkdir('manager'),
          }),
        ],
        { netns: lan.ns('mgr') },
      );
      const identity: Record<string, Record<string, string | number>> = {
        a1: { 'identity.board_type': 'GPU', labels: '{ rack: A }' },
        a2: { 'identity.board_type': 'CPU', 'exec.allow_raw': 'false' },
        a3: { 'identity.board_type': 'GPU' },
      };
      for (const [i, h] of AGENTS.entries()) {
        const dir = mkdir(h);
        const args = [
          'agent',
          ...sets({
            'multicast.interface': 'eth0',
            'identity.box_id': 1,
            'identity.slot_id': i + 1,
            'identity.cpu_id': 0,
            'report.jitter_ms': 100,
            'collect.interval_ms': 1000,
            'auth.token_file': path.join(dir, 'none'),
            'deploy.docker_socket': '',
            'exec.osreapi.port': 0,
            'exec.kill_grace': '1s',
            'exec.commands_dir': path.join(dir, 'commands'),
            data_dir: path.join(dir, 'data'),
            ...identity[h],
          }),
        ];
        agentArgs.set(h, args);
        agentData.set(h, path.join(dir, 'data'));
        agents.set(h, startMuster(args, { netns: lan.ns(h) }));
      }
    },
    { timeout: 20_000 },
  );

  after(
    async () => {
      await Promise.allSettled(named().map(([, p]) => p.stop()));
      try {
        lan?.destroy();
      } finally {
        for (const d of dirs) rmSync(d, { recursive: true, force: true });
      }
    },
    { timeout: 20_000 },
  );

  test('the boards come online', { timeout: 40_000 }, () =>
    withLogs(async () => {
      await until(
        'nodes 1-1-0, 1-2-0, 1-3-0 online',
        async () => {
          const r = await cli(['nodes', '--json']);
          if (r.code !== 0) return false;
          const nodes = JSON.parse(r.output) as NodeSummary[];
          return ['1-1-0', '1-2-0', '1-3-0'].every((id) => nodes.find((n) => n.id === id)?.state === 'online');
        },
        30_000,
        500,
      );
      const t = await cli(['tokens', 'create', '--name', 'e2e-op', '--role', 'admin']);
      assert.equal(t.code, 0, t.output);
      adminTok = t.output.trim().split('\n').pop() as string;
    }),
  );

  test('a target by attribute: live lines from the GPU boards, then the summary', { timeout: 30_000 }, () =>
    withLogs(async () => {
      const r = await cli(['exec', '--target', 'board_type=GPU', '--', 'echo "hello from $(hostname)"; echo warn >&2']);
      assert.equal(r.code, 0, r.output);
      taskId(r.output);
      assert.match(r.output, /^1-1-0 \| hello from /m);
      assert.match(r.output, /^1-3-0 \| hello from /m);
      assert.match(r.output, /^1-1-0 \| warn$/m);
      assert.doesNotMatch(r.output, /1-2-0/);
      assert.match(r.output, /^1-1-0\s+done\s+0\s+/m);
      assert.match(r.output, /done: 2 nodes, 2 done, 0 failed, 0 skipped/);
    }),
  );

  test('a viewer runs nothing (403, exit 5)', { timeout: 20_000 }, () =>
    withLogs(async () => {
      const t = await cli(['tokens', 'create', '--name', 'e2e-viewer', '--role', 'viewer']);
      const viewer = t.output.trim().split('\n').pop() as string;
      const r = await cli(['exec', '--target', 'all', '--', 'true'], { MUSTER_TOKEN: viewer });
      assert.equal(r.code, 5, r.output);
      assert.match(r.output, /your role viewer cannot POST \/api\/v1\/tasks/);
    }),
  );

  test(
    'a batch of one with fail_fast: the allow_raw:false board refuses, the next never starts',
    { timeout: 30_000 },
    () =>
      withLogs(async () => {
        const r = await cli(['exec', '--target', 'all', '--batch', '1', '--fail-fast', '--', 'echo raw']);
        assert.equal(r.code, 1, r.output);
        const t = await show(taskId(r.output));
        assert.deepEqual(
          t.results?.map((x) => [x.node, x.state]),
          [
            ['1-1-0', 'done'],
            ['1-2-0', 'failed'],
            ['1-3-0', 'skipped'],
          ],
        );
        assert.match(t.results?.[1]?.message ?? '', /allow_raw/);
        assert.match(t.results?.[2]?.message ?? '', /fail_fast/);
      }),
  );

  test('the allow_raw:false board runs its command-set entry; the generate_file comes back', { timeout: 30_000 }, () =>
    withLogs(async () => {
      const gen = path.join(tmp, 'generated.txt');
      const script = path.join(tmp, 'report.sh');
      writeFileSync(script, `#!/bin/sh\necho "report $1"\necho "made on $(hostname) with $1" > ${gen}\n`);
      let r = await cli(['commands', 'add', 'report', '--file', script, '--args', '1', '--generate-file', gen]);
      assert.equal(r.code, 0, r.output);
      r = await cli(['exec', '--command', 'report', '--target', '1-2-0', '--', 'alpha']);
      assert.equal(r.code, 0, r.output);
      assert.match(r.output, /^1-2-0 \| report alpha$/m);
      const id = taskId(r.output);
      const t = await show(id);
      assert.deepEqual(
        t.results?.[0]?.files.map((f) => [f.path, f.kept]),
        [[gen, true]],
      );
      const out = path.join(tmp, 'fetched.txt');
      r = await cli(['task', 'file', id, '--node', '1-2-0', '--step', '0', '-o', out]);
      assert.equal(r.code, 0, r.output);
      assert.match(readFileSync(out, 'utf8'), /^made on .* with alpha$/m);
    }),
  );

  test('a kill mid-run leaves no process on the board', { timeout: 30_000 }, () =>
    withLogs(async () => {
      const p = await background(['exec', '--target', '1-1-0', '--', 'echo started; sleep 60'], adminTok);
      await until('the step to start', async () => /1-1-0 \| started/.test(p.output()), 15_000, 100);
      const id = taskId(p.output());
      assert.ok((markedProcesses(new Set([id])).get(id)?.length ?? 0) >= 1, 'the step runs on the board');
      const k = await cli(['task', 'kill', id]);
      assert.equal(k.code, 0, k.output);
      assert.equal(await p.exited, 1, p.output());
      assert.match(p.output(), /1-1-0\s+killed/);
      assert.equal((await show(id)).state, 'killed');
      await until('no process of the task left', async () => !markedProcesses(new Set([id])).get(id), 5000, 100);
    }),
  );

  test('a task timeout kills the step on the board', { timeout: 30_000 }, () =>
    withLogs(async () => {
      const r = await cli(['exec', '--target', '1-3-0', '--timeout', '2s', '--', 'echo t; sleep 60']);
      assert.equal(r.code, 1, r.output);
      const id = taskId(r.output);
      assert.match(r.output, /1-3-0\s+timeout/);
      assert.equal((await show(id)).state, 'timeout');
      await until('no process of the task left', async () => !markedProcesses(new Set([id])).get(id), 5000, 100);
    }),
  );

  test('an agent killed and restarted mid-task: interrupted, no orphan', { timeout: 40_000 }, () =>
    withLogs(async () => {
      const p = await background(['exec', '--target', '1-3-0', '--', 'echo r; sleep 60'], adminTok);
      await until('the step to start', async () => /1-3-0 \| r/.test(p.output()), 15_000, 100);
      const id = taskId(p.output());
      // The agent writes its task record (with the step's process group) asynchronously at the
      // step's start: kill it once the record holds the running step, as after any real uptime.
      const record = path.join(agentData.get('a3') as string, 'exec', 'tasks', `${id}.json`);
      await until(
        "the agent's record of the running step",
        async () => {
          try {
            return /"pgid":\d+/.test(readFileSync(record, 'utf8'));
          } catch {
            return false;
          }
        },
        5000,
        50,
      );
      await agents.get('a3')?.stop('SIGKILL');
      agents.set('a3', startMuster(agentArgs.get('a3') as string[], { netns: lan?.ns('a3') }));
      assert.equal(await p.exited, 1, p.output());
      assert.match(p.output(), /1-3-0\s+interrupted/, agents.get('a3')?.output());
      await until('no process of the task left', async () => !markedProcesses(new Set([id])).get(id), 10_000, 100);
    }),
  );

  test('a three-step DAG from a YAML file, with live output of each step', { timeout: 30_000 }, () =>
    withLogs(async () => {
      const file = path.join(tmp, 'steps.yaml');
      writeFileSync(
        file,
        [
          '- name: prepare',
          '  run: echo prepared',
          '- name: build',
          '  command_type: bash',
          '  run: for i in 1 2 3; do echo "built $i"; done',
          '  depends_on: [prepare]',
          '- name: check',
          '  run: echo "checked $MODE"',
          '  env: { MODE: quick }',
          '  depends_on: [prepare]',
        ].join('\n'),
      );
      const r = await cli(['task', 'run', file, '--target', 'label.rack=A']);
      assert.equal(r.code, 0, r.output);
      const id = taskId(r.output);
      for (const l of ['prepared', 'built 1', 'built 3', 'checked quick']) {
        assert.match(r.output, new RegExp(`^1-1-0 \\| ${l}$`, 'm'));
      }
      const t = await show(id);
      assert.deepEqual(t.nodes, ['1-1-0']);
      assert.deepEqual(
        t.results?.[0]?.steps.map((s) => [s.name, s.state]),
        [
          ['prepare', 'done'],
          ['build', 'done'],
          ['check', 'done'],
        ],
      );
    }),
  );

  test('muster history shows every run, with who ran it', { timeout: 20_000 }, () =>
    withLogs(async () => {
      const r = await cli(['history', '--limit', '500', '--json']);
      assert.equal(r.code, 0, r.output);
      const h = (JSON.parse(r.output) as { history: HistoryEntry[] }).history;
      for (const id of tasks) {
        const e = h.find((x) => x.operation === 'exec' && x.node === null && x.ref === id);
        assert.ok(e, `task ${id} in the history`);
        assert.match(e.who, /^admin/);
        assert.ok(h.some((x) => x.operation === 'exec' && x.node !== null && x.ref?.startsWith(`${id}/`)));
      }
    }),
  );
});
