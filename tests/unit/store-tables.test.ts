/**
 * The store's core and table modules on real files: node:sqlite specifics (undefined values,
 * errcode, numbers), transactions that roll back whole, the batched flush kept dirty on failure,
 * migrations, each table module's reads and writes, and a new table added the documented way.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import type { NodeResult, TaskRecord } from '../../common/api/tasks.js';
import type { ManagerConfig } from '../../manager/config.js';
import type { DeploymentRecord } from '../../manager/deploy.js';
import {
  bindable,
  type FlushSource,
  inTransaction,
  type RetentionRule,
  SQLITE_CORRUPT,
  StoreCore,
  StoreError,
  sqliteCode,
  type TableModule,
} from '../../manager/store/core.js';
import { MIGRATIONS } from '../../manager/store/migrations.js';
import { Retention } from '../../manager/store/retention.js';
import { type NewAlert, type NodeRow, Store } from '../../manager/store/store.js';

const log = pino({ level: 'silent' });
const cfg = (over: Partial<ManagerConfig['store']> = {}): ManagerConfig['store'] => ({
  file: 'muster.db',
  flush_interval_ms: 1000,
  retention: { days: 0, max_rows: 0 },
  cleanup_interval_ms: 60000,
  cleanup_batch_rows: 100,
  ...over,
});
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'muster-store-tables-'));
  dirs.push(d);
  return d;
};
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const DAY = 86_400_000;
const NOW = 1_800_000_000_000;

function node(id: string, last: number): NodeRow {
  const [b, s, c] = id.split('-').map(Number) as [number, number, number];
  return {
    id,
    box_id: b,
    slot_id: s,
    cpu_id: c,
    host_ip: '10.0.0.1',
    claimants: ['10.0.0.1', '10.0.0.2'],
    hostname: `h-${id}`,
    heartbeat: '{"hostname":"h"}',
    state: 'online',
    state_since: NOW,
    first_seen: NOW,
    last_seen: last,
  };
}

const alert = (key: string, at = NOW): NewAlert => ({
  key,
  kind: 'threshold',
  rule: 'cpu_hot',
  severity: 'warning',
  node: '1-1-0',
  metric: 'cpu.temp',
  instance: null,
  value: 90,
  threshold: 85,
  op: '>',
  message: 'hot',
  source: 'manager',
  first_seen: at,
  last_seen: at,
});

async function writeErrors(reg: Registry, what: string): Promise<number> {
  const m = await reg.getSingleMetric('muster_manager_store_write_errors_total')?.get();
  return m?.values.find((v) => v.labels.what === what)?.value ?? 0;
}

/** A second connection on the store's file, as another process would have. */
function side(dir: string): DatabaseSync {
  return new DatabaseSync(path.join(dir, 'muster.db'));
}

describe('store core: node:sqlite', () => {
  it('opens in WAL mode with synchronous = NORMAL', () => {
    const core = StoreCore.open(tmp(), cfg(), log, new Registry());
    assert.equal((core.db.prepare('PRAGMA journal_mode').get() as { journal_mode: string }).journal_mode, 'wal');
    assert.equal((core.db.prepare('PRAGMA synchronous').get() as { synchronous: number }).synchronous, 1);
    core.close();
  });

  it('bindable maps undefined to null, and hands back a row without undefined as it is', () => {
    const clean = { a: 1, b: null, c: 'x' };
    assert.equal(bindable(clean), clean);
    assert.deepEqual(bindable({ a: 1, b: undefined, c: 'x' }), { a: 1, b: null, c: 'x' });
  });

  it('rows carrying undefined are written with NULL, not refused', async () => {
    const dir = tmp();
    const reg = new Registry();
    const s = Store.open(dir, cfg(), log, reg);
    const n = { ...node('1-1-0', NOW), hostname: undefined, heartbeat: undefined } as unknown as NodeRow;
    s.saveNode(n);
    s.saveComponent({
      node: '1-1-0',
      uuid: 'u1',
      type: 'docker',
      name: undefined,
      cid: undefined,
      state: 'RUNNING',
      deployment: undefined,
      first_seen: NOW,
      last_seen: NOW,
    } as unknown as Parameters<Store['saveComponent']>[0]);
    const id = s.openAlert({ ...alert('k'), instance: undefined, op: undefined } as unknown as NewAlert);
    assert.ok(id > 0);
    s.addHistory({ at: NOW, node: undefined as unknown as null, kind: 'manager', operation: 'start', who: 'manager' });
    assert.equal(await writeErrors(reg, 'node'), 0);
    assert.equal(await writeErrors(reg, 'component'), 0);
    assert.equal(await writeErrors(reg, 'alert'), 0);
    assert.equal(await writeErrors(reg, 'history'), 0);
    assert.equal(s.loadNodes()[0]?.hostname, null);
    assert.equal(s.loadComponents()[0]?.name, null);
    assert.equal(s.getAlert(id)?.op, null);
    assert.equal(s.listHistory({ limit: 1 }).items[0]?.node, null);
    s.close();
  });

  it('integer columns and ids come back as numbers', () => {
    const s = Store.open(tmp(), cfg(), log, new Registry());
    s.saveNode(node('1-2-0', NOW + 1));
    const id = s.openAlert(alert('k'));
    assert.equal(typeof id, 'number');
    const r = s.loadNodes()[0] as NodeRow;
    for (const k of ['box_id', 'slot_id', 'cpu_id', 'state_since', 'first_seen', 'last_seen'] as const) {
      assert.equal(typeof r[k], 'number', k);
    }
    assert.equal(r.last_seen, NOW + 1);
    assert.equal(typeof s.loadOpenAlerts()[0]?.id, 'number');
    assert.equal(s.deleteRule('none'), false);
    s.close();
  });

  it('sqliteCode reads the primary code from errcode', () => {
    const db = new DatabaseSync(':memory:');
    db.exec('CREATE TABLE t (a PRIMARY KEY); INSERT INTO t VALUES (1)');
    try {
      db.exec('INSERT INTO t VALUES (1)');
      assert.fail('the insert must fail');
    } catch (err) {
      assert.equal((err as { errcode: number }).errcode, 1555, 'SQLITE_CONSTRAINT_PRIMARYKEY');
      assert.equal(sqliteCode(err), 19, 'SQLITE_CONSTRAINT');
    }
    assert.equal(sqliteCode(new Error('x')), -1);
    assert.equal(sqliteCode(undefined), -1);
    db.close();
  });

  it('a database whose schema page is corrupt (SQLITE_CORRUPT) is set aside and a new one started', () => {
    const dir = tmp();
    const file = path.join(dir, 'muster.db');
    Store.open(dir, cfg(), log, new Registry()).close();
    // Keep SQLite's 100-byte header (so it is not SQLITE_NOTADB) and spoil the rest of page 1.
    const buf = readFileSync(file);
    buf.fill(0xff, 100, 4096);
    writeFileSync(file, buf);
    const probe = new DatabaseSync(file);
    assert.throws(
      () => probe.exec('PRAGMA journal_mode = WAL'),
      (e: unknown) => sqliteCode(e) === SQLITE_CORRUPT,
    );
    probe.close();
    const s = Store.open(dir, cfg(), log, new Registry());
    assert.equal(s.version, MIGRATIONS.length);
    s.saveNode(node('1-1-0', NOW));
    assert.equal(s.loadNodes().length, 1);
    s.close();
    const files = readdirSync(dir);
    const aside = files.find((f) => /^muster\.db\.corrupt-\d+$/.test(f));
    assert.ok(aside, `the corrupt file is kept (${files.join(', ')})`);
    assert.equal(
      readFileSync(path.join(dir, aside))
        .subarray(100, 4096)
        .every((b) => b === 0xff),
      true,
      'as it was',
    );
  });

  it('a file that cannot be opened for another reason is a StoreError, and nothing is moved', () => {
    const dir = tmp();
    mkdirSync(path.join(dir, 'muster.db')); // SQLITE_CANTOPEN, not corrupt
    assert.throws(
      () => Store.open(dir, cfg(), log, new Registry()),
      (e: unknown) => e instanceof StoreError && /^store\.file .*cannot open/.test((e as Error).message),
    );
    assert.deepEqual(readdirSync(dir), ['muster.db']);
  });
});

describe('store core: transactions and migrations', () => {
  it('inTransaction rolls back everything when a statement fails, and rethrows', () => {
    const db = new DatabaseSync(':memory:');
    db.exec('CREATE TABLE t (a INTEGER NOT NULL)');
    assert.throws(() =>
      inTransaction(db, () => {
        db.prepare('INSERT INTO t VALUES (1)').run();
        db.prepare('INSERT INTO t VALUES (NULL)').run();
      }),
    );
    assert.equal(db.isTransaction, false);
    assert.equal((db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n, 0);
    assert.equal(
      inTransaction(db, () => db.prepare('INSERT INTO t VALUES (2)').run().changes),
      1,
    );
    db.close();
  });

  it('a migration that fails leaves nothing of itself and the version where it was', () => {
    const dir = tmp();
    const bad = [
      ...MIGRATIONS,
      { name: 'half', sql: 'CREATE TABLE half_a (a); CREATE TABLE half_b (b); INSERT INTO nope VALUES (1);' },
    ];
    assert.throws(
      () => StoreCore.open(dir, cfg(), log, new Registry(), Date.now, bad),
      (e: unknown) => e instanceof StoreError,
    );
    const db = side(dir);
    assert.equal((db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version, MIGRATIONS.length);
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map(
      (r) => r.name,
    );
    assert.ok(tables.includes('nodes'));
    assert.ok(!tables.includes('half_a') && !tables.includes('half_b'), tables.join(', '));
    db.close();
  });

  it('migrates an older database step by step to the latest version', () => {
    const dir = tmp();
    const first = StoreCore.open(dir, cfg(), log, new Registry(), Date.now, MIGRATIONS);
    assert.equal(first.version, MIGRATIONS.length);
    first.close();
    const more = [
      ...MIGRATIONS,
      { name: 'add x', sql: 'CREATE TABLE x (a)' },
      { name: 'add y', sql: 'CREATE TABLE y (b)' },
    ];
    const next = StoreCore.open(dir, cfg(), log, new Registry(), Date.now, more);
    assert.equal(next.version, MIGRATIONS.length + 2);
    next.db.prepare('INSERT INTO y VALUES (1)').run();
    next.close();
    // The released store refuses the newer file and leaves it as it is.
    assert.throws(() => Store.open(dir, cfg(), log, new Registry()), /newer muster/);
  });

  it('a failed flush writes nothing (nodes and alerts roll back together) and keeps both dirty', async () => {
    const dir = tmp();
    const reg = new Registry();
    const s = Store.open(dir, cfg(), log, reg);
    s.saveNode(node('1-1-0', NOW));
    const id = s.openAlert(alert('k'));
    s.setNodeSource((n) => node(n, NOW + 9000));
    s.touchNode('1-1-0');
    s.touchAlert(id, 95, NOW + 9000, 'hotter');
    const db = side(dir);
    db.exec("CREATE TRIGGER no_touch BEFORE UPDATE ON alerts BEGIN SELECT RAISE(ABORT, 'disk full (test)'); END");
    s.flush();
    assert.equal(await writeErrors(reg, 'flush'), 1);
    assert.equal(s.loadNodes()[0]?.last_seen, NOW, 'the node written first in the flush was rolled back');
    assert.equal(s.listAlerts({ limit: 1 }).items[0]?.value, 95, 'the API still shows the latest value from memory');
    db.exec('DROP TRIGGER no_touch');
    db.close();
    s.flush();
    assert.equal(s.loadNodes()[0]?.last_seen, NOW + 9000, 'tried again at the next flush');
    s.close();
    const again = Store.open(dir, cfg(), log, new Registry());
    assert.equal(again.loadOpenAlerts()[0]?.value, 95);
    assert.equal(again.loadOpenAlerts()[0]?.last_seen, NOW + 9000);
    again.close();
  });

  it('start() flushes on the timer; reconfigure() applies a new interval; close() stops it', async () => {
    const s = Store.open(tmp(), cfg({ flush_interval_ms: 60_000 }), log, new Registry());
    s.setNodeSource((n) => node(n, NOW + 1));
    s.start();
    s.touchNode('1-1-0');
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(s.loadNodes().length, 0, 'not before the interval');
    s.reconfigure(cfg({ flush_interval_ms: 100 }));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(s.loadNodes().length, 1);
    s.close();
    s.close(); // idempotent
    s.touchNode('1-2-0');
    s.flush(); // after close: nothing, no throw
    assert.equal(s.addHistory({ at: NOW, node: null, kind: 'manager', operation: 'x', who: 't' }), 0);
  });
});

describe('store table modules', () => {
  it('nodes: a transition written now drops the node from the dirty set; a bad claimants list reads as [host_ip]', () => {
    const dir = tmp();
    const s = Store.open(dir, cfg(), log, new Registry());
    let built = 0;
    s.setNodeSource((n) => {
      built++;
      return node(n, NOW + 5);
    });
    s.touchNode('1-1-0');
    s.saveNode(node('1-1-0', NOW + 1));
    s.flush();
    assert.equal(built, 0, 'saved at once, so not built again at the flush');
    assert.deepEqual(s.nodes.load()[0]?.claimants, ['10.0.0.1', '10.0.0.2']);
    const db = side(dir);
    db.exec("UPDATE nodes SET claimants = 'not json'");
    db.close();
    assert.deepEqual(s.loadNodes()[0]?.claimants, ['10.0.0.1']);
    s.close();
  });

  it('history: finish sets result and message of the operation with that ref; transitions by node, oldest first', () => {
    const s = Store.open(tmp(), cfg(), log, new Registry());
    s.addHistory({ at: NOW, node: '1-1-0', kind: 'operation', operation: 'deploy', who: 'u', ref: 'd1' });
    s.finishHistory('d1', 0, 'done');
    const e = s.listHistory({ limit: 1 }).items[0];
    assert.equal(e?.result, 0);
    assert.equal(e?.message, 'done');
    for (let i = 0; i < 5; i++) {
      s.addHistory({
        at: NOW + i,
        node: i % 2 ? '1-1-0' : '1-2-0',
        kind: 'state',
        operation: i % 2 ? 'online' : 'offline',
        args: { i },
        who: 'manager',
      });
    }
    const t = s.history.recentTransitions(2);
    assert.deepEqual(
      t.get('1-2-0')?.map((x) => x.args?.i),
      [2, 4],
    );
    assert.deepEqual(
      t.get('1-1-0')?.map((x) => x.args?.i),
      [1, 3],
    );
    s.close();
  });

  it('alerts: a touch shows in pages at once, is written by the flush, and resolve writes it with the resolution', () => {
    const dir = tmp();
    const s = Store.open(dir, cfg(), log, new Registry());
    const a = s.openAlert(alert('a'));
    const b = s.openAlert(alert('b'));
    s.touchAlert(a, 91, NOW + 10, 'hot 91');
    s.touchAlert(0, 1, NOW, 'never written: ignored');
    assert.equal(s.getAlert(a)?.value, 90, 'getAlert reads the row');
    assert.equal(s.listAlerts({ limit: 10, open: true }).items.find((x) => x.id === a)?.value, 91);
    s.touchAlert(b, 99, NOW + 20, 'hot 99');
    s.resolveAlert(b, NOW + 30, 'cleared');
    const rb = s.getAlert(b);
    assert.equal(rb?.state, 'resolved');
    assert.equal(rb?.value, 99);
    assert.equal(rb?.message, 'cleared');
    assert.equal(rb?.last_seen, new Date(NOW + 30).toISOString());
    s.flush();
    assert.equal(s.getAlert(a)?.value, 91);
    assert.deepEqual(
      s.loadOpenAlerts().map((x) => x.id),
      [a],
    );
    assert.equal(s.listAlerts({ limit: 10, open: false }).items.length, 1);
    s.close();
  });

  it('rules: put replaces by name, delete says whether it existed, a row that is not JSON is skipped', () => {
    const dir = tmp();
    const s = Store.open(dir, cfg(), log, new Registry());
    const rule = {
      name: 'hot',
      source: 'api' as const,
      metric: 'cpu.temp',
      op: '>' as const,
      threshold: 80,
      for_ms: 0,
      severity: 'warning' as const,
      enabled: true,
      updated_at: NOW,
    };
    s.putRule(rule);
    s.putRule({ ...rule, threshold: 85, updated_at: NOW + 1 });
    assert.deepEqual(s.loadRules(), [{ ...rule, threshold: 85, updated_at: NOW + 1 }]);
    const db = side(dir);
    db.exec("INSERT INTO alert_rules VALUES ('broken', 'api', '{', 0)");
    db.close();
    assert.deepEqual(
      s.rules.load().map((r) => r.name),
      ['hot'],
    );
    assert.equal(s.deleteRule('hot'), true);
    assert.equal(s.deleteRule('hot'), false);
    s.close();
  });

  it('deployments and components: newest first-n oldest first; a null field keeps what the component had', () => {
    const s = Store.open(tmp(), cfg(), log, new Registry());
    for (let i = 0; i < 4; i++) {
      s.saveDeployment({
        id: `d${i}`,
        node: '1-1-0',
        at: new Date(NOW + i).toISOString(),
      } as unknown as DeploymentRecord);
    }
    s.saveDeployment({
      id: 'd1',
      node: '1-1-0',
      at: new Date(NOW + 1).toISOString(),
      finished_at: new Date(NOW + 9).toISOString(),
      result: 0,
    } as unknown as DeploymentRecord);
    assert.deepEqual(
      s.loadDeployments(3).map((d) => d.id),
      ['d1', 'd2', 'd3'],
    );
    assert.equal(s.deployments.load(10).find((d) => d.id === 'd1')?.result, 0);
    const c = {
      node: '1-1-0',
      uuid: 'u',
      type: 'docker',
      name: 'web',
      cid: 'abc',
      state: null,
      deployment: 'd1',
      first_seen: NOW,
      last_seen: NOW,
    };
    s.saveComponent(c);
    s.saveComponent({
      ...c,
      type: null,
      name: null,
      cid: null,
      deployment: null,
      state: 'RUNNING',
      last_seen: NOW + 5,
    });
    assert.deepEqual(
      s.loadComponents().map((r) => ({ ...r })),
      [{ ...c, state: 'RUNNING', last_seen: NOW + 5 }],
    );
    s.close();
  });

  it('retention runs each module’s rules in order: history, alerts, deployments, components, tasks', async () => {
    const s = Store.open(
      tmp(),
      cfg({ retention: { days: 30, max_rows: 0 }, cleanup_batch_rows: 10 }),
      log,
      new Registry(),
      () => NOW,
    );
    const old = NOW - 40 * DAY;
    s.saveDeployment({
      id: 'done',
      node: 'n',
      at: new Date(old).toISOString(),
      finished_at: new Date(old).toISOString(),
    } as unknown as DeploymentRecord);
    s.saveDeployment({ id: 'running', node: 'n', at: new Date(old).toISOString() } as unknown as DeploymentRecord);
    const base = { node: 'n', type: null, name: null, cid: null, deployment: null, first_seen: old, last_seen: old };
    s.saveComponent({ ...base, uuid: 'gone', state: 'GONE' });
    s.saveComponent({ ...base, uuid: 'running', state: 'RUNNING' });
    s.saveComponent({ ...base, uuid: 'unseen', state: null });
    s.addHistory({ at: old, node: null, kind: 'manager', operation: 'start', who: 'm' });
    // An old finished task goes with its node rows and files; one under way never.
    const task = (id: string, finished: boolean) =>
      ({
        id,
        who: 'm',
        at: new Date(old).toISOString(),
        finished_at: finished ? new Date(old).toISOString() : null,
        state: finished ? 'done' : 'running',
        nodes: ['n'],
      }) as unknown as TaskRecord;
    const nodeRes = { node: 'n', state: 'done', exit_code: 0 } as unknown as NodeResult;
    for (const [id, finished] of [
      ['t-done', true],
      ['t-running', false],
    ] as const) {
      s.tasks.save(task(id, finished));
      s.tasks.saveNode(task(id, finished), nodeRes);
      s.tasks.saveFile(task(id, finished), {
        node: 'n',
        step: 0,
        path: '/tmp/x',
        size: 1,
        sha256: 'x',
        content: new Uint8Array([1]),
      });
    }
    const deleted = await s.cleanup();
    assert.deepEqual(Object.keys(deleted), [
      'history',
      'alerts',
      'deployments',
      'components',
      'instance_events',
      'tasks',
      'task_nodes',
      'task_files',
    ]);
    assert.deepEqual(deleted, {
      history: 1,
      alerts: 0,
      deployments: 1,
      components: 1,
      instance_events: 0,
      tasks: 1,
      task_nodes: 1,
      task_files: 1,
    });
    assert.equal(s.tasks.get('t-done'), undefined);
    assert.equal(s.tasks.get('t-running')?.results?.[0]?.state, 'done');
    assert.equal(s.tasks.file('t-running', 'n', 0)?.size, 1);
    assert.deepEqual(
      s.loadDeployments(10).map((d) => d.id),
      ['running'],
    );
    assert.deepEqual(
      s
        .loadComponents()
        .map((c) => c.uuid)
        .sort(),
      ['running', 'unseen'],
    );
    s.close();
  });
});

describe('adding a table (the header of manager/store/core.ts)', () => {
  /** A table the way users, tokens, tasks or files will come: its migration, its module, one register line. */
  class VisitsTable implements TableModule {
    readonly tables = ['visits'];
    readonly retained: readonly RetentionRule[] = [{ table: 'visits', key: 'rowid', date: 'seen', keep: 'pinned = 1' }];
    readonly dirty: FlushSource;
    private readonly seen = new Map<string, number>();
    private readonly upsert: StatementSync;

    constructor(private readonly core: StoreCore) {
      this.upsert = core.db.prepare(
        'INSERT INTO visits (id, seen, pinned) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET seen = excluded.seen',
      );
      const seen = this.seen;
      this.dirty = {
        get pending() {
          return seen.size > 0;
        },
        take: () => {
          const batch = [...seen];
          seen.clear();
          return {
            rows: batch.length,
            write: () => {
              for (const [id, at] of batch) this.upsert.run(id, at, 0);
            },
            committed: () => {},
            failed: () => {
              for (const [id, at] of batch) if (!seen.has(id)) seen.set(id, at);
            },
          };
        },
      };
    }

    pin(id: string, at: number): void {
      this.core.guard('visit', undefined, () => this.upsert.run(id, at, 1));
    }

    touch(id: string, at: number): void {
      this.seen.set(id, at);
    }

    count(): number {
      return (this.core.db.prepare('SELECT count(*) AS n FROM visits').get() as { n: number }).n;
    }
  }

  it('is one migration, one module and one register line; flush and retention take it in', async () => {
    const migrations = [
      ...MIGRATIONS,
      {
        name: 'visits',
        sql: 'CREATE TABLE visits (id TEXT PRIMARY KEY, seen INTEGER NOT NULL, pinned INTEGER NOT NULL)',
      },
    ];
    const core = StoreCore.open(
      tmp(),
      cfg({ retention: { days: 1, max_rows: 0 } }),
      log,
      new Registry(),
      () => NOW,
      migrations,
    );
    const sessions = core.register(new VisitsTable(core));
    const retention = new Retention(core);
    sessions.pin('keep', NOW - 10 * DAY);
    sessions.touch('old', NOW - 10 * DAY);
    sessions.touch('new', NOW);
    assert.equal(sessions.count(), 1);
    core.flush();
    assert.equal(sessions.count(), 3);
    assert.deepEqual(await retention.run(), { visits: 1 });
    assert.equal(sessions.count(), 2);
    core.close();
  });
});

describe('store across a SIGKILL', () => {
  it('keeps every write committed at once and the flushed ones; loses only what was still dirty', async () => {
    const dir = tmp();
    const storeTs = path.resolve(import.meta.dirname, '../../manager/store/store.ts');
    // A child opens the store, writes, flushes, dirties more, says so and waits to be killed.
    const script = `
      import pino from 'pino';
      import { Registry } from 'prom-client';
      import { Store } from ${JSON.stringify(storeTs)};
      const cfg = ${JSON.stringify(cfg({ flush_interval_ms: 60_000 }))};
      const s = Store.open(${JSON.stringify(dir)}, cfg, pino({ level: 'silent' }), new Registry());
      const row = () => (${JSON.stringify(node('1-1-0', 0))});
      let last = ${NOW};
      s.setNodeSource((id) => ({ ...row(), last_seen: last }));
      s.start();
      for (let i = 0; i < 500; i++) s.addHistory({ at: ${NOW} + i, node: '1-1-0', kind: 'operation', operation: 'op' + i, who: 't' });
      const id = s.openAlert(${JSON.stringify(alert('k'))});
      s.touchNode('1-1-0');
      s.flush();
      last = ${NOW} + 1000;
      s.touchNode('1-1-0');
      s.touchAlert(id, 99, ${NOW} + 1000, 'dirty');
      process.stdout.write('ready\\n');
      setInterval(() => {}, 1000);
    `;
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: path.resolve(import.meta.dirname, '../..'),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (b: Buffer) => b.toString().includes('ready') && resolve());
      child.on('exit', (code) => reject(new Error(`child exited ${code} before ready`)));
    });
    const gone = new Promise((r) => child.on('exit', r));
    child.kill('SIGKILL');
    await gone;
    assert.ok(readdirSync(dir).includes('muster.db-wal'), 'killed with its WAL in place');
    const s = Store.open(dir, cfg(), log, new Registry());
    assert.equal(s.listHistory({ limit: 1000 }).items.length, 500, 'every history entry');
    assert.equal(s.loadNodes()[0]?.last_seen, NOW, 'the node as of the last flush');
    const open = s.loadOpenAlerts();
    assert.equal(open.length, 1, 'the alert opened');
    assert.equal(open[0]?.value, 90, 'its dirty value was not flushed');
    s.close();
  });
});
