/**
 * `muster exec`, `muster task` and `muster commands` in process against a real manager server on
 * a socket with simulated boards (testkit/exec-sim.ts): live `node | line` output from the event
 * stream, the summary table, exit 1 when a node fails, a YAML DAG file, the catalog verbs and
 * --command, task list/show/logs, bad files refused before anything is sent.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it, mock } from 'node:test';
import { CliError } from '../../cli/client.js';
import { batchOption, targetOption } from '../../cli/commands/exec.js';
import { parseTaskFile } from '../../cli/commands/task.js';
import { program } from '../../cli/main.js';
import { buildServer } from '../../manager/server.js';
import { tokenHeaders } from '../../testkit/auth.js';
import { heartbeatData } from '../../testkit/bodies.js';
import { SimFleet, simAgents } from '../../testkit/exec-sim.js';
import { serverDeps, TEST_EXEC_CONFIG } from '../../testkit/server.js';

/** Runs `muster <args>` in this process; returns the exit code and everything printed. */
async function muster(args: string[], manager: string, token: string): Promise<{ code: number; out: string }> {
  let out = '';
  const take = (...a: unknown[]) => {
    out += `${a.join(' ')}\n`;
  };
  const log = mock.method(console, 'log', take);
  const err = mock.method(console, 'error', take);
  const saved = { ...process.env };
  Object.assign(process.env, { MUSTER_MANAGER_URL: manager, MUSTER_CLI_CONFIG: '/nonexistent', MUSTER_TOKEN: token });
  try {
    await program().parseAsync(['node', 'muster', ...args]);
    return { code: 0, out };
  } catch (err) {
    if (err instanceof CliError) return { code: err.exitCode, out: `${out}${err.message}` };
    throw err;
  } finally {
    log.mock.restore();
    err.mock.restore();
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
}

describe('muster exec, task, commands', () => {
  const fleet = new SimFleet();
  const d = serverDeps({ agents: simAgents(fleet), exec: { ...TEST_EXEC_CONFIG, status_wait_ms: 200 } });
  const app = buildServer(d);
  let base = '';
  let admin = '';
  let operator = '';
  let viewer = '';
  const dir = mkdtempSync(path.join(os.tmpdir(), 'muster-cli-exec-'));
  before(async () => {
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const tok = async (u: string, r: 'admin' | 'operator' | 'viewer') =>
      (await tokenHeaders(d.access, u, r)).authorization.replace(/^Bearer /, '');
    admin = await tok('root', 'admin');
    operator = await tok('op', 'operator');
    viewer = await tok('vi', 'viewer');
    for (const slot of [1, 2, 3]) {
      d.registry.ingestHeartbeat(
        heartbeatData({
          box_id: 1,
          slot_id: slot,
          cpu_id: 0,
          host_ip: `10.0.0.${slot}`,
          board_type: slot === 2 ? 'CPU' : 'GPU',
        }),
      );
    }
  });
  after(async () => {
    await app.close();
    d.close();
  });

  it('exec streams node | line, then the summary; exit 0', async () => {
    const r = await muster(['exec', '--target', 'board_type=GPU', '--', 'echo hello'], base, operator);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /^1-1-0 \| hello$/m);
    assert.match(r.out, /^1-3-0 \| hello$/m);
    assert.doesNotMatch(r.out, /1-2-0/);
    assert.match(r.out, /NODE\s+STATE\s+EXIT\s+DURATION/);
    assert.match(r.out, /done: 2 nodes, 2 done, 0 failed, 0 skipped/);
  });

  it('exec exits 1 when a node fails; --batch 1 --fail-fast skips the rest; viewers are refused', async () => {
    let r = await muster(['exec', '--target', 'all', '--batch', '1', '--fail-fast', '--', 'exit 4'], base, operator);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /1-1-0\s+failed\s+4/);
    assert.match(r.out, /1-2-0\s+skipped/);
    assert.match(r.out, /task \S+ failed: 3 of 3 nodes did not succeed/);
    r = await muster(['exec', '--target', 'all', '--', 'echo x'], base, viewer);
    assert.equal(r.code, 5, r.out);
    assert.throws(() => targetOption('bad!!'), /bad node pattern/);
    assert.throws(() => batchOption('0'), /a number of nodes/);
  });

  it('task run: a three-step DAG from YAML, with live lines; task list, show, logs', async () => {
    const file = path.join(dir, 'steps.yaml');
    writeFileSync(
      file,
      [
        '- name: fetch',
        '  run: echo fetched',
        '- name: build',
        '  run: echo built',
        '  depends_on: [fetch]',
        '- name: test',
        '  command_content: echo tested',
        '  depends_on: fetch',
        '  env: { MODE: fast }',
      ].join('\n'),
    );
    const r = await muster(['task', 'run', file, '--target', '1-1-0'], base, operator);
    assert.equal(r.code, 0, r.out);
    for (const w of ['fetched', 'built', 'tested']) assert.match(r.out, new RegExp(`^1-1-0 \\| ${w}$`, 'm'));
    const list = await muster(['task', 'list'], base, viewer);
    assert.match(list.out, /ID\s+WHEN\s+WHO\s+TARGET/);
    const id = /task (\S+) done/.exec(r.out)?.[1] as string;
    const show = await muster(['task', 'show', id.slice(0, 8)], base, viewer);
    assert.equal(show.code, 0, show.out);
    assert.match(show.out, /build\s+done\s+0/);
    const logs = await muster(['task', 'logs', id], base, viewer);
    assert.match(logs.out, /1-1-0 \| tested/);
  });

  it('task files with a cycle, unknown key or no steps are refused before sending', async () => {
    const bad = path.join(dir, 'bad.yaml');
    writeFileSync(bad, '- {name: a, run: x, depends_on: [b]}\n- {name: b, run: y, depends_on: [a]}\n');
    const r = await muster(['task', 'run', bad, '--target', 'all'], base, operator);
    assert.equal(r.code, 1);
    assert.match(r.out, /dependency cycle: a → b → a/);
    assert.throws(() => parseTaskFile('- {name: a, rn: x}'), /unknown key rn/);
    assert.throws(() => parseTaskFile('steps: []'), /expected a list of steps/);
    assert.deepEqual(parseTaskFile('parallel: true\nsteps:\n  - run: x\n'), {
      steps: [{ command_content: 'x' }],
      parallel: true,
    });
  });

  it('commands add, list, exec --command, rm', async () => {
    const script = path.join(dir, 'hello.sh');
    writeFileSync(script, '#!/bin/sh\necho from catalog\n');
    let r = await muster(['commands', 'add', 'hello', '--file', script, '--args', '1'], base, operator);
    assert.equal(r.code, 5, 'operators cannot add');
    r = await muster(['commands', 'add', 'hello', '--file', script, '--args', '1'], base, admin);
    assert.equal(r.code, 0, r.out);
    r = await muster(['commands', 'list'], base, operator);
    assert.match(r.out, /^hello\s+1\s+-\s+\d+/m);
    r = await muster(['exec', '--command', 'hello', '--target', '1-3-0', '--', 'arg1'], base, operator);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /1-3-0 \| from catalog/);
    r = await muster(['commands', 'rm', 'hello'], base, admin);
    assert.equal(r.code, 0, r.out);
  });
});
