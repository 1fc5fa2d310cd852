/**
 * The WebSocket node link from its specification alone (docs/links.md "The WebSocket node link"):
 * a client written against the link specification — the `ws` package and JSON, none of muster's
 * code — talks to a real `muster manager`:
 *
 * - a bad token: the upgrade is accepted, `error` INVALID_TOKEN arrives, the socket closes 1008;
 *   a token bound to another node is refused the same way;
 * - welcome → node_register → register_response → heartbeat (metrics) → heartbeat_ack; the node is
 *   listed by `muster nodes` with LINK ws, its metrics in the API;
 * - a task through REST: execute_command → command_started → command_result → command_received,
 *   the result (stdout, exit code) in the task; a command left unanswered gets COMMAND_TIMEOUT;
 * - PARSE_ERROR (bad JSON), UNKNOWN_MESSAGE_TYPE, NODE_NOT_FOUND (heartbeat before registering),
 *   DATABASE_ERROR (a node beyond registry.max_nodes);
 * - bounds: a message over link.max_message_bytes closes 1009, a flood closes 1008;
 * - liveness: a node that stops heartbeating goes suspect, then offline, in its own intervals;
 * - a link cut in the middle of a command: the result sent on the next connection completes the
 *   task, once;
 * - a manager restart: the node is listed LINK ws before it reconnects, a task for it fails as
 *   "not connected to the link" (not over HTTP), and it is online again once it reconnects.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import YAML from 'yaml';
import { apiFetch, freePort, getJson, type Proc, runMuster, startMuster, waitFor } from '../helpers/daemons.js';

interface Msg {
  type: string;
  id: string;
  timestamp: string;
  data: Record<string, unknown>;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** A spec client: the messages it received, waiting for one, sending envelopes. */
class SpecClient {
  readonly ws: WebSocket;
  readonly got: Msg[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private readonly waiters = new Set<() => void>();

  constructor(url: string) {
    this.ws = new WebSocket(url);
    this.ws.on('message', (raw) => {
      this.got.push(JSON.parse(String(raw)) as Msg);
      for (const w of this.waiters) w();
    });
    this.closed = new Promise((resolve) => {
      this.ws.on('close', (code, reason) => {
        resolve({ code, reason: String(reason) });
        for (const w of this.waiters) w();
      });
    });
    this.ws.on('error', () => {});
  }

  opened(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
  }

  send(type: string, data: unknown, id: string = randomUUID()): string {
    this.ws.send(JSON.stringify({ type, id, timestamp: new Date().toISOString(), data }));
    return id;
  }

  /** The first message received (from `from` on) matching `pred`, waiting up to `ms`. */
  async next(pred: (m: Msg) => boolean, ms = 10_000): Promise<Msg> {
    const deadline = Date.now() + ms;
    for (;;) {
      const hit = this.got.find(pred);
      if (hit) {
        this.got.splice(this.got.indexOf(hit), 1);
        return hit;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching message within ${ms} ms; got ${JSON.stringify(this.got)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, left);
        const self = this;
        function done() {
          clearTimeout(t);
          self.waiters.delete(done);
          resolve();
        }
        this.waiters.add(done);
      });
    }
  }
}

const checkEnvelope = (m: Msg) => {
  assert.match(m.id, UUID4, `id of ${m.type}`);
  assert.match(m.timestamp, RFC3339, `timestamp of ${m.type}`);
  assert.equal(typeof m.data, 'object');
};

describe('the WebSocket node link, from its specification alone', () => {
  let tmp: string;
  let manager: Proc;
  let base: string;
  let wsBase: string;
  let token: string;
  let cfg: string;
  const clients: SpecClient[] = [];
  const connect = (q: string) => {
    const c = new SpecClient(`${wsBase}/api/v1/ws?${q}`);
    clients.push(c);
    return c;
  };

  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'muster-wslink-'));
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    wsBase = `ws://127.0.0.1:${port}`;
    cfg = path.join(tmp, 'manager.yaml');
    writeFileSync(
      cfg,
      YAML.stringify({
        http: { host: '127.0.0.1', port },
        multicast: { interface: '127.0.0.1', port: await freePort() },
        query: { heartbeat_interval_ms: 300, resource_interval_ms: 600 },
        liveness: { suspect_after_rounds: 2, offline_after_rounds: 5 },
        registry: { max_nodes: 4 },
        link: {
          // The specification's cadence: a node is not suspect before 2 × 30 s (a busy machine cannot flake it).
          heartbeat_interval_ms: 30000,
          max_message_bytes: 65536,
          max_messages_per_second: 20,
          command_grace_ms: 500,
          register_timeout_ms: 20000,
        },
        data_dir: path.join(tmp, 'data'),
      }),
    );
    manager = startMuster(['manager', '--config', cfg]);
    await waitFor('the manager', () => getJson(`${base}/api/v1/status`), 60_000);
    const r = await runMuster(['--manager', base, 'links', 'tokens', 'create', '--json']);
    assert.equal(r.code, 0, r.output);
    const created = JSON.parse(r.output.trim().split('\n').at(-1) as string) as {
      id: string;
      token: string;
      node: null;
    };
    assert.match(created.id, /^lt_/);
    assert.equal(created.node, null);
    token = created.token;
  });

  after(async () => {
    for (const c of clients) c.ws.terminate();
    await manager?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('a bad token: the upgrade is accepted, INVALID_TOKEN is sent, the socket closes 1008', async () => {
    const c = connect('token=default-token&node_id=node-x');
    await c.opened();
    const e = await c.next((m) => m.type === 'error');
    checkEnvelope(e);
    assert.equal(e.data.error_code, 'INVALID_TOKEN');
    assert.equal(typeof e.data.message, 'string');
    assert.equal(typeof e.data.details, 'string');
    assert.equal((await c.closed).code, 1008);
  });

  it('a token bound to another node is refused', async () => {
    const r = await runMuster(['--manager', base, 'links', 'tokens', 'create', '--node', 'node-bound', '--json']);
    assert.equal(r.code, 0, r.output);
    const bound = JSON.parse(r.output.trim().split('\n').at(-1) as string) as { token: string; node: string };
    assert.equal(bound.node, 'node-bound');
    const c = connect(`token=${encodeURIComponent(bound.token)}&node_id=node-other`);
    await c.opened();
    assert.equal((await c.next((m) => m.type === 'error')).data.error_code, 'INVALID_TOKEN');
    assert.equal((await c.closed).code, 1008);
  });

  it('registers, heartbeats, runs a command and answers it; every other error code is provoked', async () => {
    const c = connect(`token=${encodeURIComponent(token)}&node_id=node-001`);
    await c.opened();
    const welcome = await c.next((m) => m.type === 'welcome');
    checkEnvelope(welcome);
    assert.equal(welcome.data.node_id, 'node-001');

    // A heartbeat before node_register: the node is unknown.
    c.send('heartbeat', { node_id: 'node-001', status: 'online', metrics: { cpu_usage: 1 } });
    assert.equal((await c.next((m) => m.type === 'error')).data.error_code, 'NODE_NOT_FOUND');

    const regId = c.send('node_register', {
      node_id: 'node-001',
      hostname: 'server-01',
      ip_address: '192.168.1.100',
      os_info: 'Ubuntu 22.04 LTS',
    });
    const reg = await c.next((m) => m.type === 'register_response');
    assert.equal(reg.id, regId);
    assert.equal(reg.data.success, true);
    assert.equal(reg.data.node_id, 'node-001');
    assert.equal(typeof reg.data.message, 'string');

    // A threshold rule on a figure the link carries: the node's heartbeat raises its alert.
    const rule = await apiFetch(`${base}/api/v1/alert-rules/link_mem`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ metric: 'memory.usage_percent', op: '>', threshold: 60, for_ms: 0 }),
    });
    assert.equal(rule.status, 200, await rule.text());

    const hbId = c.send('heartbeat', {
      node_id: 'node-001',
      status: 'online',
      metrics: { cpu_usage: 45.2, memory_usage: 68.5, disk_usage: 34.1, load_average: 1.23 },
    });
    const ack = await c.next((m) => m.type === 'heartbeat_ack');
    assert.equal(ack.id, hbId);
    assert.deepEqual(ack.data, { received: true, node_id: 'node-001' });
    await waitFor(
      'the link_mem alert of node-001',
      async () =>
        (
          await getJson<{ alerts: { rule: string | null; node: string | null }[] }>(
            `${base}/api/v1/alerts?open=true&node=node-001`,
          )
        ).alerts.some((a) => a.rule === 'link_mem'),
      10_000,
      200,
    );
    // A heartbeat for a node this connection is not: unknown here.
    c.send('heartbeat', { node_id: 'node-999', status: 'online' });
    const nf = await c.next((m) => m.type === 'error');
    assert.equal(nf.data.error_code, 'NODE_NOT_FOUND');
    assert.match(String(nf.data.details), /node-999/);

    // Bad JSON, an unknown type.
    c.ws.send('{"type": "heartbeat", ');
    const pe = await c.next((m) => m.type === 'error');
    assert.equal(pe.data.error_code, 'PARSE_ERROR');
    checkEnvelope(pe);
    c.send('invalid_type', {});
    const ue = await c.next((m) => m.type === 'error');
    assert.equal(ue.data.error_code, 'UNKNOWN_MESSAGE_TYPE');
    assert.match(String(ue.data.message), /invalid_type/);
    assert.match(String(ue.data.details), /node_register, heartbeat/);

    // Listed like any node, with its link, address, host name and metrics.
    const nodes = await runMuster(['--manager', base, 'nodes']);
    assert.equal(nodes.code, 0, nodes.output);
    const row = nodes.output.split('\n').find((l) => l.startsWith('node-001'));
    assert.ok(row, nodes.output);
    assert.match(row, /server-01\s+192\.168\.1\.100\s+ONLINE\s+45\.2\s+68\.5/);
    assert.match(row, /\bws$/);
    const detail = await getJson<{ link: string; link_info: { metrics: Record<string, number>; os_info: string } }>(
      `${base}/api/v1/nodes/node-001`,
    );
    assert.equal(detail.link, 'ws');
    assert.equal(detail.link_info.os_info, 'Ubuntu 22.04 LTS');
    assert.equal(detail.link_info.metrics.load_average, 1.23);

    // A task: execute_command → command_started → command_result → command_received.
    const submit = await apiFetch(`${base}/api/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ target: 'node-001', steps: [{ command_content: 'ls -la /home' }], timeout: '30s' }),
    });
    assert.equal(submit.status, 202, await submit.clone().text());
    const taskId = ((await submit.json()) as { task: { id: string } }).task.id;
    const cmd = await c.next((m) => m.type === 'execute_command');
    checkEnvelope(cmd);
    assert.equal(cmd.data.command_text, 'ls -la /home');
    assert.equal(typeof cmd.data.command_id, 'string');
    assert.equal(cmd.data.timeout, 30);
    c.send('command_started', { command_id: cmd.data.command_id }, cmd.id);
    const resId = c.send('command_result', {
      command_id: cmd.data.command_id,
      exit_code: 0,
      stdout: 'total 24\ndrwxr-xr-x 3 user user 4096 Jan 21 10:00 .',
      stderr: '',
      execution_time_ms: 125,
    });
    const rec = await c.next((m) => m.type === 'command_received');
    assert.equal(rec.id, resId);
    assert.deepEqual(rec.data, { received: true, node_id: 'node-001' });
    const task = await waitFor(
      'the task to end',
      async () => {
        const t = await getJson<{
          task: { state: string; results: { state: string; exit_code: number; steps: { stdout: string }[] }[] };
        }>(`${base}/api/v1/tasks/${taskId}`);
        return t.task.state === 'running' ? null : t.task;
      },
      10_000,
    );
    assert.equal(task.state, 'done', JSON.stringify(task));
    assert.equal(task.results[0]?.state, 'done');
    assert.equal(task.results[0]?.exit_code, 0);
    assert.match(JSON.stringify(task.results[0]?.steps), /drwxr-xr-x 3 user user/);
    // The same result again (a node resending after a lost ack): acknowledged, recorded once.
    const again = c.send('command_result', {
      command_id: cmd.data.command_id,
      exit_code: 0,
      stdout: 'x',
      stderr: '',
      execution_time_ms: 1,
    });
    assert.equal((await c.next((m) => m.type === 'command_received')).id, again);

    // A command left unanswered: COMMAND_TIMEOUT, and the task says timeout.
    const slow = await apiFetch(`${base}/api/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ target: 'node-001', steps: [{ command_content: 'sleep 100', timeout: 1 }] }),
    });
    assert.equal(slow.status, 202);
    const slowId = ((await slow.json()) as { task: { id: string } }).task.id;
    const slowCmd = await c.next((m) => m.type === 'execute_command');
    assert.equal(slowCmd.data.timeout, 1);
    const te = await c.next((m) => m.type === 'error', 10_000);
    assert.equal(te.data.error_code, 'COMMAND_TIMEOUT');
    assert.match(String(te.data.details), new RegExp(String(slowCmd.data.command_id)));
    const slowTask = await waitFor(
      'the slow task to end',
      async () => {
        const t = await getJson<{ task: { state: string; results: { state: string }[] } }>(
          `${base}/api/v1/tasks/${slowId}`,
        );
        return t.task.state === 'running' ? null : t.task;
      },
      10_000,
    );
    assert.equal(slowTask.results[0]?.state, 'timeout', JSON.stringify(slowTask));

    // DATABASE_ERROR: nodes beyond registry.max_nodes (4) cannot be recorded.
    let dbError: Msg | undefined;
    for (let i = 0; i < 5 && !dbError; i++) {
      const o = connect(`token=${encodeURIComponent(token)}&node_id=filler-${i}`);
      await o.opened();
      await o.next((m) => m.type === 'welcome');
      o.send('node_register', { node_id: `filler-${i}` });
      const answer = await o.next((m) => m.type === 'register_response' || m.type === 'error');
      if (answer.type === 'error') dbError = answer;
    }
    assert.ok(dbError, 'a node beyond registry.max_nodes is refused');
    assert.equal(dbError.data.error_code, 'DATABASE_ERROR');
    assert.match(String(dbError.data.details), /registry\.max_nodes/);
  });

  it('a node given no node_id gets a UUID', async () => {
    const c = connect(`token=${encodeURIComponent(token)}`);
    await c.opened();
    const w = await c.next((m) => m.type === 'welcome');
    assert.match(String(w.data.node_id), UUID4);
  });

  it('bounds: a message over link.max_message_bytes closes 1009; a flood closes 1008', async () => {
    const big = connect(`token=${encodeURIComponent(token)}&node_id=big`);
    await big.opened();
    big.send('heartbeat', { status: 'x'.repeat(70_000) });
    assert.equal((await big.closed).code, 1009);
    const flood = connect(`token=${encodeURIComponent(token)}&node_id=flood`);
    await flood.opened();
    for (let i = 0; i < 200 && flood.ws.readyState === WebSocket.OPEN; i++) flood.send('heartbeat', {});
    const closed = await flood.closed;
    assert.equal(closed.code, 1008);
    assert.match(closed.reason, /max_messages_per_second/);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /muster_manager_link_closed_total\{reason="rate"\} [1-9]/);
    assert.match(metrics, /muster_manager_link_refused_total\{reason="invalid_token"\} [1-9]/);
    assert.match(metrics, /muster_manager_link_errors_total\{code="COMMAND_TIMEOUT"\} [1-9]/);
  });

  it("liveness in the node's own intervals: suspect, then offline, when its heartbeats stop", async () => {
    const c = connect(`token=${encodeURIComponent(token)}&node_id=node-001`);
    await c.opened();
    // A 1 s cadence (the heartbeat_interval_s extension), so that liveness moves within the test.
    c.send('node_register', { node_id: 'node-001', heartbeat_interval_s: 1 });
    await c.next((m) => m.type === 'register_response');
    for (let i = 0; i < 3; i++) {
      c.send('heartbeat', { node_id: 'node-001', status: 'online', metrics: { cpu_usage: 2 } });
      await c.next((m) => m.type === 'heartbeat_ack');
      await new Promise((r) => setTimeout(r, 1000));
    }
    const state = async () => (await getJson<{ state: string }>(`${base}/api/v1/nodes/node-001`)).state;
    assert.equal(await state(), 'online');
    await waitFor('suspect', async () => (await state()) === 'suspect', 6000, 100);
    await waitFor('offline', async () => (await state()) === 'offline', 8000, 100);
    c.send('heartbeat', { node_id: 'node-001', status: 'online' });
    await c.next((m) => m.type === 'heartbeat_ack');
    assert.equal(await state(), 'online');
  });

  // The registry is full (registry.max_nodes 4, filled above): these reuse nodes registered there.
  it('a link cut in the middle of a command: the result sent on the next connection completes the task once', async () => {
    const first = connect(`token=${encodeURIComponent(token)}&node_id=filler-0`);
    await first.opened();
    first.send('node_register', { node_id: 'filler-0' });
    await first.next((m) => m.type === 'register_response');
    const submit = await apiFetch(`${base}/api/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ target: 'filler-0', steps: [{ command_content: 'echo cut' }], timeout: '30s' }),
    });
    assert.equal(submit.status, 202);
    const taskId = ((await submit.json()) as { task: { id: string } }).task.id;
    const cmd = await first.next((m) => m.type === 'execute_command');
    first.send('command_started', { command_id: cmd.data.command_id }, cmd.id);
    first.ws.terminate();
    await first.closed;
    const second = connect(`token=${encodeURIComponent(token)}&node_id=filler-0`);
    await second.opened();
    second.send('node_register', { node_id: 'filler-0' });
    await second.next((m) => m.type === 'register_response');
    const result = {
      command_id: cmd.data.command_id,
      exit_code: 0,
      stdout: 'delivered-after-reconnect\n',
      stderr: '',
      execution_time_ms: 3,
    };
    const r1 = second.send('command_result', result);
    assert.equal((await second.next((m) => m.type === 'command_received')).id, r1);
    // The node did not see the ack in time and sends it once more: acknowledged, not recorded again.
    const r2 = second.send('command_result', { ...result, stdout: 'a second copy\n' });
    assert.equal((await second.next((m) => m.type === 'command_received')).id, r2);
    const task = await waitFor(
      'the task to end',
      async () => {
        const t = await getJson<{ task: { state: string; results: { state: string; steps: unknown[] }[] } }>(
          `${base}/api/v1/tasks/${taskId}`,
        );
        return t.task.state === 'running' ? null : t.task;
      },
      10_000,
    );
    assert.equal(task.results.length, 1);
    assert.equal(task.results[0]?.state, 'done', JSON.stringify(task));
    const steps = JSON.stringify(task.results[0]?.steps);
    assert.equal((steps.match(/delivered-after-reconnect/g) ?? []).length, 1, steps);
    assert.doesNotMatch(steps, /a second copy/);
  });

  it('after a manager restart a linked node is listed LINK ws before it reconnects, and online once it has', async () => {
    const c = connect(`token=${encodeURIComponent(token)}&node_id=filler-1`);
    await c.opened();
    c.send('node_register', {
      node_id: 'filler-1',
      hostname: 'restart-host',
      os_info: 'Debian',
      heartbeat_interval_s: 60,
    });
    await c.next((m) => m.type === 'register_response');
    c.send('heartbeat', { node_id: 'filler-1', status: 'online', metrics: { cpu_usage: 33.5 } });
    await c.next((m) => m.type === 'heartbeat_ack');
    await manager.stop();
    assert.ok((await c.closed).code > 0);
    manager = startMuster(['manager', '--config', cfg]);
    await waitFor('the restarted manager', () => getJson(`${base}/api/v1/status`), 60_000);
    const before = await getJson<{ link: string; hostname: string; state: string; cpu_percent: number }>(
      `${base}/api/v1/nodes/filler-1`,
    );
    assert.equal(before.link, 'ws', JSON.stringify(before));
    assert.equal(before.hostname, 'restart-host');
    assert.equal(before.cpu_percent, 33.5);
    const nodes = await runMuster(['--manager', base, 'nodes']);
    assert.match(nodes.output, /^filler-1\s.*\bws$/m, nodes.output);
    // Not connected yet: a task for it is refused by the link, not tried over HTTP.
    const submit = await apiFetch(`${base}/api/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ target: 'filler-1', steps: [{ command_content: 'true' }], timeout: '10s' }),
    });
    assert.equal(submit.status, 202, await submit.clone().text());
    const taskId = ((await submit.json()) as { task: { id: string } }).task.id;
    const task = await waitFor(
      'the task to end',
      async () => {
        const t = await getJson<{ task: { state: string; results: { state: string; message: string }[] } }>(
          `${base}/api/v1/tasks/${taskId}`,
        );
        return t.task.state === 'running' ? null : t.task;
      },
      20_000,
    );
    assert.match(JSON.stringify(task.results), /not connected to the link/, JSON.stringify(task));
    const again = connect(`token=${encodeURIComponent(token)}&node_id=filler-1`);
    await again.opened();
    again.send('node_register', { node_id: 'filler-1' });
    await again.next((m) => m.type === 'register_response');
    again.send('heartbeat', { node_id: 'filler-1', status: 'online' });
    await again.next((m) => m.type === 'heartbeat_ack');
    const after = await getJson<{ link: string; state: string }>(`${base}/api/v1/nodes/filler-1`);
    assert.equal(after.link, 'ws');
    assert.equal(after.state, 'online');
  });
});
