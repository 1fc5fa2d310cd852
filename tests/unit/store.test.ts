/**
 * The manager's SQLite store on real files: migrations, paging, retention in bounded steps,
 * batched node writes, an unreadable file set aside, a newer schema refused.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import type { ManagerConfig } from '../../manager/config.js';
import { MIGRATIONS } from '../../manager/store/migrations.js';
import { type NodeRow, Store, StoreError } from '../../manager/store/store.js';

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
  const d = mkdtempSync(path.join(os.tmpdir(), 'muster-store-'));
  dirs.push(d);
  return d;
};
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const DAY = 86_400_000;
const NOW = 1_800_000_000_000;

function row(id: string, last: number): NodeRow {
  const [b, s, c] = id.split('-').map(Number) as [number, number, number];
  return {
    id,
    box_id: b,
    slot_id: s,
    cpu_id: c,
    host_ip: '10.0.0.1',
    claimants: ['10.0.0.1'],
    hostname: `h-${id}`,
    heartbeat: null,
    state: 'online',
    state_since: NOW,
    first_seen: NOW,
    last_seen: last,
  };
}

describe('store', () => {
  it('creates the schema at the latest version, in WAL mode', () => {
    const dir = tmp();
    const s = Store.open(dir, cfg(), log, new Registry());
    assert.equal(s.version, MIGRATIONS.length);
    s.close();
    const db = new DatabaseSync(path.join(dir, 'muster.db'));
    assert.equal((db.prepare('PRAGMA journal_mode').get() as { journal_mode: string }).journal_mode, 'wal');
    db.close();
  });

  it('refuses a database written by a newer muster, naming the file', () => {
    const dir = tmp();
    const db = new DatabaseSync(path.join(dir, 'muster.db'));
    db.exec(`PRAGMA user_version = ${MIGRATIONS.length + 1}`);
    db.close();
    assert.throws(
      () => Store.open(dir, cfg(), log, new Registry()),
      (e: unknown) => e instanceof StoreError && /newer muster/.test((e as Error).message),
    );
  });

  it('sets an unreadable file aside and starts a new one', () => {
    const dir = tmp();
    writeFileSync(
      path.join(dir, 'muster.db'),
      'this is not a database, just some text long enough to be read'.repeat(100),
    );
    const s = Store.open(dir, cfg(), log, new Registry());
    assert.equal(s.version, MIGRATIONS.length);
    s.close();
    assert.ok(
      readdirSync(dir).some((f) => f.startsWith('muster.db.corrupt-')),
      'the old file is kept',
    );
  });

  it('a data_dir that cannot be created is a StoreError naming data_dir', () => {
    const dir = tmp();
    writeFileSync(path.join(dir, 'file'), '');
    assert.throws(
      () => Store.open(path.join(dir, 'file', 'sub'), cfg(), log, new Registry()),
      (e: unknown) => e instanceof StoreError && /^data_dir /.test((e as Error).message),
    );
  });

  it('writes touched nodes at flush, from their latest state', () => {
    const dir = tmp();
    const s = Store.open(dir, cfg(), log, new Registry());
    let last = NOW;
    s.setNodeSource((id) => row(id, last));
    s.touchNode('1-1-0');
    last = NOW + 5000;
    assert.equal(s.loadNodes().length, 0, 'nothing before the flush');
    s.flush();
    assert.equal(s.loadNodes()[0]?.last_seen, NOW + 5000);
    s.touchNode('1-1-0');
    s.close(); // close flushes
    const again = Store.open(dir, cfg(), log, new Registry());
    assert.deepEqual(again.loadNodes()[0]?.claimants, ['10.0.0.1']);
    again.close();
  });

  it('pages history newest first with next, and filters by node, kind and since', () => {
    const s = Store.open(tmp(), cfg(), log, new Registry());
    for (let i = 0; i < 25; i++) {
      s.addHistory({
        at: NOW + i,
        node: i % 2 ? '1-1-0' : '1-2-0',
        kind: i % 5 ? 'operation' : 'state',
        operation: `op${i}`,
        who: 'test',
      });
    }
    const p1 = s.listHistory({ limit: 10 });
    assert.equal(p1.items.length, 10);
    assert.equal(p1.items[0]?.operation, 'op24');
    assert.ok(p1.next !== null);
    const p2 = s.listHistory({ limit: 10, before: p1.next as number });
    const p3 = s.listHistory({ limit: 10, before: p2.next as number });
    assert.equal(p3.items.length, 5);
    assert.equal(p3.next, null);
    assert.equal(new Set([...p1.items, ...p2.items, ...p3.items].map((e) => e.id)).size, 25);
    assert.ok(s.listHistory({ limit: 100, node: '1-1-0' }).items.every((e) => e.node === '1-1-0'));
    assert.equal(s.listHistory({ limit: 100, kind: 'state' }).items.length, 5);
    assert.equal(s.listHistory({ limit: 100, since: NOW + 20 }).items.length, 5);
    s.close();
  });

  it('retention removes by age and by row count, in bounded steps, never open alerts', async () => {
    const s = Store.open(
      tmp(),
      cfg({ retention: { days: 30, max_rows: 500 }, cleanup_batch_rows: 50 }),
      log,
      new Registry(),
      () => NOW,
    );
    for (let i = 0; i < 1000; i++) {
      s.addHistory({
        at: i < 100 ? NOW - 40 * DAY : NOW - DAY,
        node: null,
        kind: 'operation',
        operation: 'q',
        who: 't',
      });
    }
    const base = {
      kind: 'threshold' as const,
      rule: 'r',
      severity: 'warning' as const,
      node: '1-1-0',
      metric: 'cpu.power',
      instance: null,
      value: 1,
      threshold: 0,
      op: '>' as const,
      message: 'm',
      source: 'manager' as const,
    };
    const old = s.openAlert({ ...base, key: 'old-open', first_seen: NOW - 60 * DAY, last_seen: NOW - 60 * DAY });
    const gone = s.openAlert({ ...base, key: 'old-resolved', first_seen: NOW - 60 * DAY, last_seen: NOW - 60 * DAY });
    s.resolveAlert(gone, NOW - 50 * DAY, 'cleared');
    // Bounded steps: the first step (50 rows) runs, then the event loop is free until the next.
    const running = s.cleanup();
    assert.equal(s.listHistory({ limit: 2000 }).items.length, 950, 'one step of cleanup_batch_rows, then a yield');
    const deleted = await running;
    assert.equal(deleted.history, 500, 'the 100 old ones and the oldest beyond 500 rows');
    assert.equal(deleted.alerts, 1);
    assert.ok(s.getAlert(old), 'an open alert is never deleted');
    assert.equal(s.getAlert(gone), undefined);
    assert.equal(s.listHistory({ limit: 1000 }).items.length, 500);
    s.close();
  });

  it('a failed write is counted and the manager goes on', async () => {
    const dir = tmp();
    const reg = new Registry();
    const s = Store.open(dir, cfg(), log, reg);
    // Make the database read-only underneath: writes fail, nothing throws.
    const db = new DatabaseSync(path.join(dir, 'muster.db'));
    db.exec("CREATE TRIGGER no_history BEFORE INSERT ON history BEGIN SELECT RAISE(ABORT, 'disk full (test)'); END");
    db.close();
    assert.equal(s.addHistory({ at: NOW, node: null, kind: 'manager', operation: 'start', who: 'manager' }), 0);
    const m = await reg.getSingleMetric('muster_manager_store_write_errors_total')?.get();
    assert.equal(m?.values.find((v) => v.labels.what === 'history')?.value, 1);
    s.close();
    assert.ok(existsSync(path.join(dir, 'muster.db')));
  });
});
