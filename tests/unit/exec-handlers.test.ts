/**
 * The remote-execution commands through the agent's HTTP adapter (agent/http/commands.ts over
 * agent/handlers/index.ts), over a real socket on 127.0.0.1 (tests/helpers/agent-port.ts): the token is required, bodies that do
 * not match common/exec.ts are refused naming the field, and exec → exec_status (long poll) →
 * exec_kill → exec_file → command_set answer with the contract's reply data and HTTP statuses.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import { Supervisor } from '../../agent/deploy/supervisor.js';
import { createCommandRegistry } from '../../agent/handlers/index.js';
import { commandRoutes } from '../../agent/http/commands.js';
import { createAgentServer } from '../../agent/http/server.js';
import { CommandSetReplyData, ExecFileReplyData, ExecReplyData, ExecStatusReplyData } from '../../common/exec.js';
import { compile } from '../../common/validate.js';
import { testRunner } from '../../testkit/exec.js';
import { inject } from '../helpers/agent-port.js';

const log = pino({ level: 'silent' });
const TOKEN = 'handlers-token';

async function app() {
  const exec = testRunner();
  await exec.init();
  const supervisor = new Supervisor(
    {},
    () => ({ cores: [], memoryBytes: 0, gpus: [] }),
    {
      dataDir: exec.opts.dataDir,
      stopGraceMs: 10,
      keepEndedMs: 0,
    },
    log,
  );
  const registry = createCommandRegistry({ supervisor, exec, commands: exec.opts.commands, log });
  const server = createAgentServer(log, new Registry(), () => ({
    status: 'ok',
    node: '1-1-0',
    version: 't',
    uptime_s: 0,
    multicast_joined: false,
    last_query_at: null,
  }));
  commandRoutes(server, registry, supervisor, { token: TOKEN, disabled: false }, log);
  const post = async (name: string, data: unknown, token = TOKEN) => {
    const r = await inject(server, {
      method: 'POST',
      url: `/${name}`,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      payload: JSON.stringify({ api_version: 1, data }),
    });
    return { status: r.statusCode, data: (JSON.parse(r.body) as { data: Record<string, unknown> }).data };
  };
  return { server, exec, post };
}

describe('exec commands over the HTTP adapter', () => {
  it('requires the token and refuses malformed bodies naming the field', async () => {
    const { server, exec, post } = await app();
    assert.equal((await post('exec', { task_id: 't1', steps: [{ command_content: 'true' }] }, 'wrong')).status, 401);
    const noSteps = await post('exec', { task_id: 't1', steps: [] });
    assert.equal(noSteps.status, 400);
    assert.match(String(noSteps.data.message), /steps/);
    const badId = await post('exec', { task_id: '../etc', steps: [{ command_content: 'true' }] });
    assert.equal(badId.status, 400);
    assert.match(String(badId.data.message), /task_id/);
    const longWait = await post('exec_status', { task_id: 't1', wait_ms: 60_000 });
    assert.equal(longWait.status, 400);
    assert.match(String(longWait.data.message), /wait_ms/);
    const badCmd = await post('command_set', { action: 'put', name: '../x' });
    assert.equal(badCmd.status, 400);
    await server.close();
    await exec.stop();
  });

  it('exec, exec_status with a long poll, exec_kill, exec_file and command_set answer the contract', async () => {
    const { server, exec, post } = await app();
    const script = Buffer.from(`#!/bin/sh\necho "$1" > ${exec.opts.dataDir}/gen.out\necho made\n`);
    const put = await post('command_set', {
      action: 'put',
      name: 'gen',
      argument_count: 1,
      generate_file: `${exec.opts.dataDir}/gen.out`,
      content_b64: script.toString('base64'),
      sha256: createHash('sha256').update(script).digest('hex'),
    });
    assert.equal(put.status, 200);
    assert.ok(compile(CommandSetReplyData).check(put.data).ok);
    const bad = await post('command_set', {
      action: 'put',
      name: 'gen2',
      argument_count: 0,
      content_b64: script.toString('base64'),
      sha256: '0'.repeat(64),
    });
    assert.equal(bad.status, 400);
    assert.match(String(bad.data.message), /does not match/);

    const acc = await post('exec', {
      task_id: 'h1',
      steps: [
        { name: 'a', command: 'gen', args: ['payload'] },
        { name: 'b', command_content: 'sleep 30' },
      ],
    });
    assert.equal(acc.status, 200);
    assert.ok(compile(ExecReplyData).check(acc.data).ok);
    assert.deepEqual(acc.data, { task_id: 'h1', count: 2, result: 0, message: 'accepted' });
    assert.equal(
      (await post('exec', { task_id: 'h1', steps: [{ command_content: 'true' }] })).data.message,
      'already accepted',
    );

    const st = await post('exec_status', { task_id: 'h1', since: 0, wait_ms: 5000 });
    assert.equal(st.status, 200);
    assert.ok(compile(ExecStatusReplyData).check(st.data).ok, JSON.stringify(st.data));
    const until = Date.now() + 10_000;
    let steps = st.data.steps as { state: string }[];
    while (steps[1]?.state !== 'running' && Date.now() < until) {
      steps = (await post('exec_status', { task_id: 'h1', wait_ms: 500 })).data.steps as { state: string }[];
    }
    assert.equal(steps[1]?.state, 'running');
    const kill = await post('exec_kill', { task_id: 'h1', step: 'b' });
    assert.deepEqual(kill.data, { task_id: 'h1', step: 'b', result: 0, message: 'killing step b of task h1' });
    let end: Record<string, unknown> = {};
    while (Date.now() < until) {
      end = (await post('exec_status', { task_id: 'h1', wait_ms: 2000 })).data;
      if (end.state !== 'running') break;
    }
    assert.equal(end.state, 'killed');
    const file = await post('exec_file', { task_id: 'h1', step: 0 });
    assert.equal(file.status, 200);
    assert.ok(compile(ExecFileReplyData).check(file.data).ok);
    assert.equal(Buffer.from(String(file.data.content_b64), 'base64').toString(), 'payload\n');
    assert.equal((await post('exec_file', { task_id: 'h1', step: 1 })).status, 404);
    assert.equal((await post('exec_status', { task_id: 'nope' })).status, 404);
    assert.equal((await post('command_set', { action: 'rm', name: 'gen' })).status, 200);
    assert.equal((await post('command_set', { action: 'rm', name: 'gen' })).status, 404);
    await server.close();
    await exec.stop();
  });
});
