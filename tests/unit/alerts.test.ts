/**
 * The alert engine on recorded metric sequences (a real SQLite store in a temp dir): hold time,
 * resolution, per-instance alerts, rules from config and API, event alerts, and what survives a
 * reopen of the database.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, beforeEach, describe, it } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import type { ResourceData } from '../../common/protocol.js';
import { isMetric, metricCatalog, readMetric } from '../../manager/alerts/catalog.js';
import { AlertEngine, alertKey, alertMetrics, CAPPED_RULE, RuleError } from '../../manager/alerts/engine.js';
import type { ManagerConfig } from '../../manager/config.js';
import { Store } from '../../manager/store/store.js';
import { fleetResource } from '../../testkit/fleet.js';

const log = pino({ level: 'silent' });
const storeCfg: ManagerConfig['store'] = {
  file: 'muster.db',
  flush_interval_ms: 1000,
  retention: { days: 0, max_rows: 0 },
  cleanup_interval_ms: 60000,
  cleanup_batch_rows: 100,
};
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function open(dir?: string, maxOpenPerKind?: number): { store: Store; engine: AlertEngine; dir: string } {
  const d = dir ?? mkdtempSync(path.join(os.tmpdir(), 'muster-alerts-'));
  if (!dir) dirs.push(d);
  const store = Store.open(d, storeCfg, log, new Registry());
  const engine = new AlertEngine(store, log, maxOpenPerKind);
  engine.restore();
  return { store, engine, dir: d };
}

/** A resource report with the given cpu temperature and / usage. */
function report(temp: number | null, rootDisk = 50): ResourceData {
  const r = fleetResource(1).data;
  r.resource.cpu.temperature = temp;
  for (const d of r.resource.disk) d.usage_percent = d.mount_point === '/' ? rootDisk : 10;
  return r;
}

const T0 = 1_800_000_000_000;
const NODE = '1-2-0';

describe('metric catalog', () => {
  it('names every numeric figure of a resource report, per instance for lists', () => {
    const names = metricCatalog().map((m) => m.name);
    for (const n of [
      'cpu.temperature',
      'cpu.power',
      'memory.usage_percent',
      'disk.usage_percent',
      'gpu.temperature',
      'network.rx_errors',
      'component.cpu.load',
    ])
      assert.ok(names.includes(n), n);
    assert.equal(isMetric('cpu.temprature'), false);
    assert.equal(isMetric('gpu.index'), false);
    const r = report(71.5);
    assert.deepEqual(readMetric('cpu.temperature', r), [{ instance: null, value: 71.5 }]);
    assert.deepEqual(
      readMetric('disk.usage_percent', r).map((s) => s.instance),
      r.resource.disk.map((d) => d.mount_point),
    );
    assert.deepEqual(readMetric('gpu.voltage', r), [
      { instance: '0', value: null },
      { instance: '1', value: null },
    ]);
    assert.equal(metricCatalog().find((m) => m.name === 'cpu.temperature')?.unit, '°C');
  });
});

describe('threshold rules', () => {
  let s: ReturnType<typeof open>;
  beforeEach(() => {
    s = open();
    s.engine.syncConfigRules(
      {
        hot: { metric: 'cpu.temperature', op: '>', threshold: 85, for_ms: 30_000, severity: 'critical' },
        full: { metric: 'disk.usage_percent', op: '>=', threshold: 90 },
      },
      T0,
    );
  });

  it('fires only after the condition held for for_ms, and resolves on the first clear report', () => {
    const seq: [number, number | null][] = [
      [0, 80],
      [5, 90], // hold starts
      [10, 92],
      [20, 91],
      [30, 93], // 25 s of hold: not yet
      [36, 94], // 31 s: fires
      [40, 95],
      [45, 70], // resolves
    ];
    const fired: number[] = [];
    const resolved: number[] = [];
    s.engine.on('raised', () => fired.push(fired.length));
    s.engine.on('resolved', () => resolved.push(resolved.length));
    let firedAt = -1;
    for (const [sec, t] of seq) {
      const before = fired.length;
      s.engine.evaluate(NODE, report(t), T0 + sec * 1000);
      if (fired.length > before) firedAt = sec;
    }
    assert.equal(firedAt, 36);
    assert.equal(fired.length, 1);
    assert.equal(resolved.length, 1);
    const [a] = s.store.listAlerts({ limit: 10 }).items;
    assert.ok(a);
    assert.equal(a.kind, 'threshold');
    assert.equal(a.rule, 'hot');
    assert.equal(a.severity, 'critical');
    assert.equal(a.state, 'resolved');
    assert.equal(a.first_seen, new Date(T0 + 5000).toISOString(), 'first seen = when the condition began');
    assert.equal(a.resolved_at, new Date(T0 + 45_000).toISOString());
    assert.equal(a.threshold, 85);
    assert.equal(a.op, '>');
    assert.equal(a.value, 70, 'the value that cleared it');
    assert.match(a.message, /no longer holds/);
  });

  it('one sample over the line does not fire; a dip resets the hold', () => {
    for (const [sec, t] of [
      [0, 90],
      [20, 80],
      [25, 90],
      [50, 91],
    ] as const)
      s.engine.evaluate(NODE, report(t), T0 + sec * 1000);
    assert.equal(s.store.listAlerts({ limit: 10 }).items.length, 0, '25 s of hold after the dip is not 30 s');
    s.engine.evaluate(NODE, report(91), T0 + 56_000);
    assert.equal(s.store.listAlerts({ open: true, limit: 10 }).items.length, 1);
  });

  it('a missing sensor (null) never fires and clears an open alert', () => {
    s.engine.syncConfigRules({ hot: { metric: 'cpu.temperature', op: '>', threshold: 85 } }, T0);
    s.engine.evaluate(NODE, report(null), T0);
    assert.equal(s.engine.openAlerts().length, 0);
    s.engine.evaluate(NODE, report(99), T0 + 1000);
    assert.equal(s.engine.openAlerts().length, 1);
    s.engine.evaluate(NODE, report(null), T0 + 2000);
    assert.equal(s.engine.openAlerts().length, 0);
    assert.match(s.store.listAlerts({ limit: 1 }).items[0]?.message ?? '', /has no reading/);
  });

  it('per-instance: one alert per disk, updated while open, resolved when the disk goes away', () => {
    s.engine.evaluate(NODE, report(50, 95), T0);
    s.engine.evaluate(NODE, report(50, 96), T0 + 1000);
    const open = s.engine.openAlerts();
    assert.equal(open.length, 1);
    assert.equal(open[0]?.instance, '/');
    assert.equal(open[0]?.value, 96, 'value follows the reports');
    assert.equal(open[0]?.last_seen, T0 + 1000);
    const r = report(50, 96);
    r.resource.disk = r.resource.disk.filter((d) => d.mount_point !== '/');
    s.engine.evaluate(NODE, r, T0 + 2000);
    assert.equal(s.engine.openAlerts().length, 0);
    assert.match(s.store.listAlerts({ limit: 1 }).items[0]?.message ?? '', /no longer reported/);
  });

  it('a hold needs the condition on every report: an instance that went away, or a node that went quiet, starts it again', () => {
    s.engine.syncConfigRules({ full: { metric: 'disk.usage_percent', op: '>', threshold: 90, for_ms: 10_000 } }, T0);
    s.engine.evaluate(NODE, report(50, 95), T0);
    const gone = report(50, 95);
    gone.resource.disk = gone.resource.disk.filter((d) => d.mount_point !== '/');
    s.engine.evaluate(NODE, gone, T0 + 5000);
    s.engine.evaluate(NODE, report(50, 95), T0 + 11_000);
    assert.equal(s.engine.openAlerts().length, 0, 'the hold restarted when / came back');
    s.engine.forgetHolds(NODE); // the node went suspect
    s.engine.evaluate(NODE, report(50, 95), T0 + 22_000);
    assert.equal(s.engine.openAlerts().length, 0, 'the hold restarted after the node went quiet');
    s.engine.evaluate(NODE, report(50, 95), T0 + 32_000);
    assert.equal(s.engine.openAlerts().length, 1);
  });

  it('nodes are independent', () => {
    s.engine.evaluate('1-1-0', report(50, 95), T0);
    s.engine.evaluate('1-2-0', report(50, 50), T0);
    assert.deepEqual(
      s.engine.openAlerts().map((a) => a.node),
      ['1-1-0'],
    );
  });

  it('open alerts and rules survive a reopen; last values are flushed', () => {
    s.engine.evaluate(NODE, report(50, 95), T0);
    s.engine.evaluate(NODE, report(50, 97), T0 + 1000);
    s.engine.putRule(
      'gpu_hot',
      { metric: 'gpu.temperature', op: '>', threshold: 80, for_ms: 1000, severity: 'warning' },
      T0,
    );
    s.store.close();
    const again = open(s.dir);
    const open2 = again.engine.openAlerts();
    assert.equal(open2.length, 1);
    assert.equal(open2[0]?.value, 97);
    assert.deepEqual(
      again.engine.listRules().map((r) => `${r.name}:${r.source}`),
      ['full:config', 'gpu_hot:api', 'hot:config'],
    );
    // The restored alert resolves like any other.
    again.engine.evaluate(NODE, report(50, 20), T0 + 5000);
    assert.equal(again.engine.openAlerts().length, 0);
    again.store.close();
  });
});

describe('rules: bad input and ownership', () => {
  it('an unknown metric is refused naming /metric and listing the known ones', () => {
    const { engine, store } = open();
    assert.throws(
      () => engine.putRule('x', { metric: 'cpu.temprature', op: '>', threshold: 1 }, T0),
      (e: unknown) => e instanceof RuleError && e.field === '/metric' && /cpu\.temperature/.test(e.message),
    );
    assert.throws(() => engine.putRule('Bad-Name', { metric: 'cpu.power', op: '>', threshold: 1 }, T0), RuleError);
    store.close();
  });

  it('config rules cannot be changed through the API; removing one from the config resolves its alerts', () => {
    const { engine, store } = open();
    engine.syncConfigRules({ hot: { metric: 'cpu.temperature', op: '>', threshold: 85 } }, T0);
    assert.throws(
      () => engine.putRule('hot', { metric: 'cpu.temperature', op: '>', threshold: 99 }, T0),
      (e: unknown) => e instanceof RuleError && e.status === 409,
    );
    assert.throws(
      () => engine.deleteRule('hot', T0),
      (e: unknown) => e instanceof RuleError && e.status === 409,
    );
    assert.throws(
      () => engine.deleteRule('nope', T0),
      (e: unknown) => e instanceof RuleError && e.status === 404,
    );
    engine.evaluate(NODE, report(90), T0);
    assert.equal(engine.openAlerts().length, 1);
    engine.syncConfigRules({}, T0 + 1000);
    assert.equal(engine.openAlerts().length, 0);
    assert.equal(engine.listRules().length, 0);
    store.close();
  });

  it('disabling a rule resolves its open alerts', () => {
    const { engine, store } = open();
    engine.putRule('hot', { metric: 'cpu.temperature', op: '>', threshold: 85 }, T0);
    engine.evaluate(NODE, report(90), T0);
    assert.equal(engine.openAlerts().length, 1);
    engine.putRule('hot', { metric: 'cpu.temperature', op: '>', threshold: 85, enabled: false }, T0 + 1);
    assert.equal(engine.openAlerts().length, 0);
    engine.evaluate(NODE, report(99), T0 + 2);
    assert.equal(engine.openAlerts().length, 0, 'a disabled rule does not fire');
    store.close();
  });
});

describe('event alerts', () => {
  it('one open alert per key: a repeat updates it; resolve then raise opens a new one', () => {
    const { engine, store } = open();
    const spec = {
      kind: 'node_offline' as const,
      rule: 'node_offline',
      severity: 'critical' as const,
      node: NODE,
      message: 'offline',
    };
    const a = engine.raise(spec, T0);
    const b = engine.raise({ ...spec, message: 'still offline' }, T0 + 1000);
    assert.equal(a?.id, b?.id);
    assert.equal(engine.openAlerts().length, 1);
    assert.equal(engine.resolve(alertKey('node_offline', NODE, 'node_offline'), T0 + 2000, 'back'), true);
    assert.equal(engine.resolve(alertKey('node_offline', NODE, 'node_offline'), T0 + 2000, 'back'), false);
    const c = engine.raise(spec, T0 + 3000);
    assert.notEqual(c?.id, a?.id);
    const all = store.listAlerts({ limit: 10 }).items;
    assert.deepEqual(
      all.map((x) => x.state),
      ['open', 'resolved'],
    );
    assert.equal(store.listAlerts({ open: true, limit: 10 }).items.length, 1);
    assert.equal(store.listAlerts({ node: '9-9-9', limit: 10 }).items.length, 0);
    assert.equal(store.listAlerts({ since: T0 + 2500, limit: 10 }).items.length, 1);
    store.close();
  });
});

describe('open alerts per kind are bounded (alerts.max_open_per_kind)', () => {
  const offline = (node: string) => ({
    kind: 'node_offline' as const,
    rule: 'node_offline',
    severity: 'critical' as const,
    node,
    message: `node ${node} is offline`,
  });

  it('beyond the bound a new alert of the kind is not opened but counted; one summary alert says so', async () => {
    const { store, engine } = open(undefined, 5);
    const prom = new Registry();
    alertMetrics(prom, engine);
    const dropped: string[] = [];
    engine.on('dropped', (d: { node: string }) => dropped.push(d.node));
    for (let i = 0; i < 50; i++) engine.raise(offline(`1-${i}-0`), T0 + i);
    // Another kind is not affected.
    assert.ok(engine.raise({ ...offline('1-0-0'), kind: 'identity_conflict', rule: 'identity_conflict' }, T0 + 60));
    assert.equal(engine.openOf('node_offline'), 5);
    assert.equal(dropped.length, 45);
    // An update of an alert already open is never refused.
    assert.ok(engine.raise(offline('1-0-0'), T0 + 70));
    assert.equal(engine.raise(offline('9-9-0'), T0 + 80), null);
    const opened = engine.openAlerts();
    const summary = opened.filter((a) => a.rule === CAPPED_RULE);
    assert.equal(summary.length, 1, 'one summary alert');
    assert.equal(summary[0]?.kind, 'node_offline');
    assert.equal(summary[0]?.node, null);
    assert.equal(summary[0]?.value, 46);
    assert.match(
      summary[0]?.message ?? '',
      /46 new node_offline alerts not opened: 5 are open \(alerts\.max_open_per_kind\)/,
    );
    assert.equal(opened.filter((a) => a.kind === 'node_offline').length, 6, '5 alerts and the summary');
    // Nothing beyond the bound reached the database either.
    assert.equal(store.listAlerts({ open: true, limit: 100 }).items.length, 7);
    const text = await prom.metrics();
    assert.match(text, /muster_manager_alerts_dropped_total\{kind="node_offline"\} 46/);
    // Below the bound again: the summary is resolved and new alerts open.
    assert.ok(engine.resolve(alertKey('node_offline', '1-0-0', 'node_offline'), T0 + 100, 'back'));
    assert.equal(
      engine.openAlerts().filter((a) => a.rule === CAPPED_RULE).length,
      0,
      'the summary is resolved below the bound',
    );
    assert.ok(engine.raise(offline('9-9-0'), T0 + 110));
    store.close();
  });

  it('a flood of agent alerts with distinct names is bounded too; the count survives a reopen', () => {
    const { store, engine, dir } = open(undefined, 3);
    for (let i = 0; i < 20; i++)
      engine.raise(
        { kind: 'agent', rule: `name_${i}`, severity: 'warning', node: NODE, message: 'x', source: 'agent' },
        T0 + i,
      );
    assert.equal(engine.openOf('agent'), 3);
    store.close();
    const again = open(dir, 3);
    assert.equal(again.engine.openOf('agent'), 3);
    const summary = again.engine.openAlerts().find((a) => a.rule === CAPPED_RULE);
    assert.equal(summary?.value, 17);
    again.engine.raise({ kind: 'agent', rule: 'more', severity: 'warning', node: NODE, message: 'x' }, T0 + 50);
    assert.equal(again.engine.openAlerts().find((a) => a.rule === CAPPED_RULE)?.value, 18);
    again.store.close();
  });
});

describe('threshold rules on link metrics', () => {
  it("reads a link-specification heartbeat's figures as a report's: fires, resolves, and never on a figure the link lacks", () => {
    const s = open();
    s.engine.syncConfigRules(
      {
        mem: { metric: 'memory.usage_percent', op: '>', threshold: 90, for_ms: 0, severity: 'warning' },
        root: { metric: 'disk.usage_percent', op: '>=', threshold: 95, for_ms: 0 },
        hot: { metric: 'cpu.temperature', op: '>', threshold: 0, for_ms: 0 },
      },
      T0,
    );
    const open_ = () =>
      s.engine
        .openAlerts()
        .filter((a) => a.node === 'node-001')
        .map((a) => `${a.rule}:${a.instance}`);
    s.engine.evaluateLinked('node-001', { cpu_usage: 10, memory_usage: 95, disk_usage: 96, load_average: 0.5 }, T0);
    assert.deepEqual(open_().sort(), ['mem:null', 'root:/']);
    s.engine.evaluateLinked('node-001', { cpu_usage: 10, memory_usage: 50, disk_usage: 96 }, T0 + 30_000);
    assert.deepEqual(open_(), ['root:/']);
    // A heartbeat without disk_usage: the disk instance is no longer reported, its alert resolves.
    s.engine.evaluateLinked('node-001', { memory_usage: 50 }, T0 + 60_000);
    assert.deepEqual(open_(), []);
  });
});
