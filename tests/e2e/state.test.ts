/**
 * The manager's memory and alerts on real parts (docs/operations.md "Alerts and history"): a
 * real manager process with its SQLite file, boards played over HTTP (heartbeats and resource reports in the spec's shape, as
 * agents send them), the CLI. Alerts fire (threshold with hold time, node offline, component
 * FAILED, an agent's own), operations are recorded, the manager is killed with SIGKILL while
 * reports keep coming, and after the restart `muster alerts`, `muster history`, the rules, the
 * nodes and the deployments are as they were; then alerts resolve as conditions clear.
 * Bad input: rules on unknown metrics, negative retention, a bad reload, a bad agent alert.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import YAML from 'yaml';
import type { AlertView, HistoryEntry, RuleView } from '../../manager/alerts/types.js';
import type { DeploymentRecord } from '../../manager/deploy.js';
import type { NodeSummary } from '../../manager/views.js';
import { fleetHeartbeat, fleetResource } from '../../testkit/fleet.js';
import { apiFetch, freePort, getJson, type Proc, runMuster, sets, startMuster, waitFor } from '../helpers/daemons.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'muster-state-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

async function call(base: string, method: string, p: string, body?: unknown) {
  const res = await apiFetch(`${base}${p}`, {
    method,
    ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
    signal: AbortSignal.timeout(5000),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : null };
}

/** Boards played over HTTP: index → what they report. */
class Boards {
  alive = new Set<number>();
  temp = new Map<number, number>();
  failed = new Set<number>();
  posted = 0;
  errors = 0;
  private timer: NodeJS.Timeout | undefined;
  private tick = 0;
  constructor(public base: string) {}

  start(ids: number[]): void {
    for (const i of ids) this.alive.add(i);
    this.timer = setInterval(() => void this.round(), 150);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async round(): Promise<void> {
    this.tick++;
    await Promise.all(
      [...this.alive].map(async (i) => {
        try {
          await this.post('/heartbeat', fleetHeartbeat(i));
          if (this.tick % 2 === 0) {
            const r = fleetResource(i, 1, 20, this.tick);
            r.data.resource.cpu.temperature = this.temp.get(i) ?? 50;
            for (const d of r.data.resource.disk) d.usage_percent = 40;
            r.data.resource.memory.usage_percent = 40;
            if (this.failed.has(i)) (r.data.component[0] as { state: string }).state = 'FAILED';
            await this.post('/resource', r);
          }
        } catch {
          this.errors++; // the manager is down (killed): agents just miss a round
        }
      }),
    );
  }

  private async post(url: string, body: unknown): Promise<void> {
    const res = await apiFetch(`${this.base}${url}`, {
      method: 'POST',
      body: JSON.stringify(body),
      headers: { 'content-type': 'application/json' },
      signal: AbortSignal.timeout(2000),
    });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`${url}: ${res.status}`);
    this.posted++;
  }
}

const HOT = 0; // 1-1-0: cpu over 80 °C
const QUIET = 2; // 1-2-0: goes silent → offline
const BROKEN = 4; // 1-3-0: a component FAILED

describe('manager state across a SIGKILL; alerts fire and resolve', () => {
  let httpPort: number;
  let mcastPort: number;
  let base: string;
  let manager: Proc | undefined;
  let boards: Boards;
  const dataDir = path.join(tmp, 'manager');
  const configFile = path.join(tmp, 'manager.yaml');
  const cli = (args: string[]) => runMuster([...args, '--manager', base]);

  const startManager = async () => {
    manager = startMuster(['manager', '--config', configFile]);
    await waitFor('the manager to serve', () => getJson(`${base}/api/v1/status`), 20_000);
  };

  before(async () => {
    httpPort = await freePort();
    mcastPort = await freePort();
    base = `http://127.0.0.1:${httpPort}`;
    writeFileSync(
      configFile,
      YAML.stringify({
        http: { host: '127.0.0.1', port: httpPort },
        multicast: { interface: '127.0.0.1', port: mcastPort },
        query: { heartbeat_interval_ms: 400, resource_interval_ms: 800 },
        liveness: { suspect_after_rounds: 2, offline_after_rounds: 4 },
        data_dir: dataDir,
        store: { flush_interval_ms: 200 },
        deploy: { timeout_ms: 3000, token: 't' },
        alerts: {
          rules: { hot: { metric: 'cpu.temperature', op: '>', threshold: 80, for_ms: 1500, severity: 'critical' } },
        },
        log: { level: 'info' },
      }),
    );
    await startManager();
    boards = new Boards(base);
  });

  after(async () => {
    boards?.stop();
    await manager?.stop();
  });

  it('records alerts, operations and transitions, and keeps them through a SIGKILL', async () => {
    boards.temp.set(HOT, 90);
    boards.failed.add(BROKEN);
    boards.start([HOT, QUIET, BROKEN]);
    await waitFor(
      'three nodes online',
      async () =>
        (await getJson<{ nodes: NodeSummary[] }>(`${base}/api/v1/nodes`)).nodes.filter((n) => n.state === 'online')
          .length === 3,
    );
    boards.alive.delete(QUIET);

    // Operations: an API rule, a query, a deploy to an agent that is not there, an agent's alert.
    const put = await call(base, 'PUT', '/api/v1/alert-rules/gpu_warm', {
      metric: 'gpu.temperature',
      op: '>',
      threshold: 500,
      for_ms: 1000,
      severity: 'info',
    });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    const q = await cli(['query', 'heartbeat', '--wait', '300']);
    assert.equal(q.code, 0, q.output);
    const dep = await call(base, 'POST', '/api/v1/deployments', {
      node: '1-1-0',
      mode: 'start',
      type: 'docker',
      url: '127.0.0.1:5000',
      file: 'app:1',
      require: { cpu: 1, memory: 67108864, gpu: 0 },
    });
    assert.equal(dep.status, 202, JSON.stringify(dep.body));
    const agentAlert = await call(base, 'POST', '/alert', {
      api_version: 1,
      data: {
        host_ip: '127.20.1.5',
        box_id: 1,
        slot_id: 3,
        cpu_id: 0,
        name: 'sensor_over_limit',
        state: 'firing',
        severity: 'warning',
        message: 'board fan 2 stopped',
        instance: 'fan2',
        metric: 'fan.rpm',
        value: 0,
        threshold: 1000,
      },
    });
    assert.equal(agentAlert.status, 200, JSON.stringify(agentAlert.body));

    const open = await waitFor(
      'hot, offline and component alerts',
      async () => {
        const { alerts } = await getJson<{ alerts: AlertView[] }>(`${base}/api/v1/alerts?open=true`);
        const kinds = new Set(alerts.map((a) => `${a.kind}:${a.node}`));
        return (
          ['threshold:1-1-0', 'node_offline:1-2-0', 'component_failed:1-3-0', 'agent:1-3-0'].every((k) =>
            kinds.has(k),
          ) && alerts
        );
      },
      20_000,
    );
    const hot = open.find((a) => a.kind === 'threshold') as AlertView;
    assert.equal(hot.rule, 'hot');
    assert.equal(hot.severity, 'critical');
    assert.equal(hot.value, 90);
    assert.equal(hot.threshold, 80);
    assert.ok(Date.parse(hot.last_seen) - Date.parse(hot.first_seen) >= 1500, 'fired after the hold time');
    await waitFor('the deploy result', async () => {
      const { deployments } = await getJson<{ deployments: DeploymentRecord[] }>(`${base}/api/v1/deployments`);
      return deployments[0]?.result === -1;
    });

    // `muster node` shows the recent trend from the manager's memory (no InfluxDB here).
    const shown = await cli(['node', '1-1-0']);
    assert.equal(shown.code, 0, shown.output);
    assert.match(shown.output, /^recent \(\d+ samples, last \d+ min; min \/ last \/ max\)$/m);
    assert.match(shown.output, /^ {2}cpu temp +[▁▂▃▄▅▆▇█ ]+ {2}\d+(\.\d+)? \/ 90(\.0)? \/ 90(\.0)? °C$/m);

    // What must survive: every history entry and alert so far, the rules, the nodes.
    const historyBefore = (await getJson<{ history: HistoryEntry[] }>(`${base}/api/v1/history?limit=1000`)).history;
    const ops = historyBefore.map((e) => e.operation);
    for (const op of ['start', 'online', 'offline', 'alert-rule.put', 'query', 'deploy.start', 'FAILED'])
      assert.ok(ops.includes(op), `history has ${op}: ${ops.join(', ')}`);
    const deploy = historyBefore.find((e) => e.operation === 'deploy.start') as HistoryEntry;
    assert.equal(deploy.result, -1);
    assert.equal(deploy.node, '1-1-0');
    assert.equal((deploy.args as { file: string }).file, 'app:1');
    const alertsBefore = (await getJson<{ alerts: AlertView[] }>(`${base}/api/v1/alerts?limit=1000`)).alerts;
    const rulesBefore = (await getJson<{ rules: RuleView[] }>(`${base}/api/v1/alert-rules`)).rules;

    // SIGKILL while the boards keep reporting.
    const postedBefore = boards.posted;
    await waitFor('reports flowing', () => boards.posted > postedBefore + 10);
    await manager?.stop('SIGKILL');
    const errorsAtKill = boards.errors;
    await waitFor('reports failing while the manager is down', () => boards.errors > errorsAtKill);
    await startManager();

    // The operator's view after the restart: the CLI.
    const a = await cli(['alerts', '--json', '--all']);
    assert.equal(a.code, 0, a.output);
    const alertsAfter = (JSON.parse(a.output) as { alerts: AlertView[] }).alerts;
    for (const x of alertsBefore) {
      const y = alertsAfter.find((z) => z.id === x.id);
      assert.ok(y, `alert ${x.id} (${x.kind} ${x.node}) survived`);
      assert.equal(y.kind, x.kind);
      assert.equal(y.first_seen, x.first_seen);
      if (x.state === 'open' && x.kind !== 'threshold') assert.equal(y.state, 'open', `${x.kind} still open`);
    }
    const h = await cli(['history', '--json', '--all']);
    assert.equal(h.code, 0, h.output);
    const historyAfter = (JSON.parse(h.output) as { history: HistoryEntry[] }).history;
    for (const e of historyBefore) {
      assert.deepEqual(
        historyAfter.find((x) => x.id === e.id),
        e,
        `history entry ${e.id} (${e.operation}) survived unchanged`,
      );
    }
    assert.equal(historyAfter.filter((e) => e.kind === 'manager' && e.operation === 'start').length, 2);
    const rulesAfter = (await getJson<{ rules: RuleView[] }>(`${base}/api/v1/alert-rules`)).rules;
    assert.deepEqual(rulesAfter, rulesBefore);
    const nodes = (await getJson<{ nodes: NodeSummary[] }>(`${base}/api/v1/nodes`)).nodes;
    assert.deepEqual(nodes.map((n) => n.id).sort(), ['1-1-0', '1-2-0', '1-3-0']);
    assert.equal(nodes.find((n) => n.id === '1-2-0')?.state, 'offline');
    assert.equal(nodes.find((n) => n.id === '1-2-0')?.hostname, 'board-1-2-0', 'identity restored');
    const { deployments } = await getJson<{ deployments: DeploymentRecord[] }>(`${base}/api/v1/deployments`);
    assert.equal(deployments.find((d) => d.id === deploy.ref)?.result, -1);

    // Conditions clear: the quiet board returns, the hot one cools, the component recovers.
    boards.alive.add(QUIET);
    boards.temp.set(HOT, 50);
    boards.failed.delete(BROKEN);
    await call(base, 'POST', '/alert', {
      api_version: 1,
      data: {
        host_ip: '127.20.1.5',
        box_id: 1,
        slot_id: 3,
        cpu_id: 0,
        name: 'sensor_over_limit',
        state: 'resolved',
        message: 'fan 2 back',
        instance: 'fan2',
      },
    });
    await waitFor(
      'every alert resolved',
      async () => (await getJson<{ alerts: AlertView[] }>(`${base}/api/v1/alerts?open=true`)).alerts.length === 0,
      20_000,
    );
    const offline = (await getJson<{ alerts: AlertView[] }>(`${base}/api/v1/alerts?kind=node_offline&node=1-2-0`))
      .alerts[0];
    assert.ok(offline?.resolved_at);
    assert.match(offline.message, /back online/);
    const text = await cli(['alerts']);
    assert.equal(text.code, 0, text.output);
    assert.match(text.output, /node_offline/);
    const hist = await cli(['history', '--node', '1-2-0']);
    assert.equal(hist.code, 0, hist.output);
    assert.match(hist.output, /offline/);
  });
});

describe('bad input: rules, retention, reloads, agent alerts', () => {
  it('a rule on an unknown metric or a negative retention stops the start with the key named', async () => {
    const d = path.join(tmp, 'bad');
    const r1 = await runMuster([
      'manager',
      ...sets({ data_dir: d, 'alerts.rules': '{x: {metric: cpu.temprature, op: ">", threshold: 1}}' }),
    ]);
    assert.equal(r1.code, 2, r1.output);
    assert.match(r1.output, /alerts\.rules\.x\.metric: unknown metric "cpu\.temprature"; known: cpu\.usage_percent/);
    const r2 = await runMuster(['manager', ...sets({ data_dir: d, 'store.retention.days': '-1' })]);
    assert.equal(r2.code, 2, r2.output);
    assert.match(r2.output, /store\.retention\.days/);
    const file = path.join(tmp, 'a-file');
    writeFileSync(file, '');
    const r3 = await runMuster([
      'manager',
      ...sets({ data_dir: path.join(file, 'sub'), 'http.port': await freePort(), 'multicast.interface': '127.0.0.1' }),
    ]);
    assert.equal(r3.code, 1, r3.output);
    assert.match(r3.output, /data_dir .*cannot create/);
  });

  it('at run time bad input is refused with the field named, and the manager keeps serving', async () => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const file = path.join(tmp, 'reload.yaml');
    const cfg = (rules: unknown, days = 30) =>
      YAML.stringify({
        http: { host: '127.0.0.1', port },
        multicast: { interface: '127.0.0.1', port: 39999 },
        data_dir: path.join(tmp, 'reload'),
        store: { retention: { days, max_rows: 0 } },
        alerts: { rules },
      });
    writeFileSync(file, cfg({}));
    const m = startMuster(['manager', '--config', file]);
    try {
      await waitFor('the manager', () => getJson(`${base}/api/v1/status`), 20_000);
      const defaults = (await getJson<{ rules: RuleView[] }>(`${base}/api/v1/alert-rules`)).rules;
      assert.ok(
        defaults.some((r) => r.name === 'cpu_temperature_high' && r.source === 'config'),
        'default rules',
      );
      const bad = await call(base, 'PUT', '/api/v1/alert-rules/x', { metric: 'cpu.temprature', op: '>', threshold: 1 });
      assert.equal(bad.status, 400);
      assert.equal(bad.body?.field, '/metric');
      const badOp = await call(base, 'PUT', '/api/v1/alert-rules/x', { metric: 'cpu.power', op: '=>', threshold: 1 });
      assert.equal(badOp.status, 400);
      assert.equal(badOp.body?.field, '/op');
      const badName = await call(base, 'PUT', '/api/v1/alert-rules/Bad%20Name', {
        metric: 'cpu.power',
        op: '>',
        threshold: 1,
      });
      assert.equal(badName.status, 400);
      const badSince = await call(base, 'GET', '/api/v1/history?since=yesterday');
      assert.equal(badSince.status, 400);
      assert.equal(badSince.body?.field, 'since');
      const badLimit = await call(base, 'GET', '/api/v1/alerts?limit=0');
      assert.equal(badLimit.body?.field, 'limit');
      const badAlert = await call(base, 'POST', '/alert', {
        api_version: 1,
        data: { host_ip: '10.0.0.1', box_id: 1, slot_id: 1, cpu_id: 0, name: 'x', state: 'burning', message: '' },
      });
      assert.equal(badAlert.status, 400);
      assert.equal(badAlert.body?.field, '/data/state');

      // A reload with a bad rule, then with a negative retention: refused, the running config stays.
      writeFileSync(file, cfg({ y: { metric: 'nope', op: '>', threshold: 1 } }));
      m.proc.kill('SIGHUP');
      const refused = (key: RegExp) =>
        m
          .output()
          .split('\n')
          .some((l) => /config reload refused/.test(l) && key.test(l));
      await waitFor('the refusal logged', () => refused(/alerts\.rules\.y\.metric: unknown metric/));
      writeFileSync(file, cfg({}, -5));
      m.proc.kill('SIGHUP');
      await waitFor('the second refusal', () => refused(/store\.retention\.days/));
      assert.deepEqual((await getJson<{ rules: RuleView[] }>(`${base}/api/v1/alert-rules`)).rules, defaults);
      // A good reload applies the rule.
      writeFileSync(file, cfg({ warm: { metric: 'cpu.temperature', op: '>=', threshold: 70, for_ms: 5000 } }));
      m.proc.kill('SIGHUP');
      const warm = await waitFor('the reloaded rule', async () => {
        const { rules } = await getJson<{ rules: RuleView[] }>(`${base}/api/v1/alert-rules`);
        return rules.length === defaults.length + 1 && rules.find((r) => r.name === 'warm');
      });
      assert.deepEqual(
        { ...warm, updated_at: undefined },
        {
          name: 'warm',
          metric: 'cpu.temperature',
          op: '>=',
          threshold: 70,
          for_ms: 5000,
          severity: 'warning',
          enabled: true,
          source: 'config',
          updated_at: undefined,
        },
      );
      const conflict = await call(base, 'DELETE', '/api/v1/alert-rules/warm');
      assert.equal(conflict.status, 409);
      assert.equal((await getJson<{ version: string }>(`${base}/api/v1/status`)).version.length > 0, true);
    } finally {
      await m.stop();
    }
  });
});
