/**
 * The store's write queue (docs/configuration.md#data_dir-and-store-the-managers-database): once
 * started, history, transitions, components and alerts are queued, not written on the caller's
 * turn; they go out in order, in transactions of at most batch_items, before any read; a full
 * queue drops and counts; one bad write in a batch loses only itself.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import type { ManagerConfig } from '../../manager/config.js';
import { type ComponentRow, Store } from '../../manager/store/store.js';

const log = pino({ level: 'silent' });
const cfg = (write_queue: ManagerConfig['store']['write_queue']): ManagerConfig['store'] => ({
  file: 'muster.db',
  flush_interval_ms: 60_000,
  retention: { days: 0, max_rows: 0 },
  cleanup_interval_ms: 600_000,
  cleanup_batch_rows: 100,
  write_queue,
});
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'muster-store-queue-'));
  dirs.push(d);
  return d;
};
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const NOW = 1_800_000_000_000;
const entry = (i: number) => ({
  at: NOW + i,
  node: '1-1-0',
  kind: 'operation' as const,
  operation: `op${i}`,
  who: 't',
});
/** Rows of `table` as another connection sees them (what is committed). */
const committed = (dir: string, table: string) => {
  const db = new DatabaseSync(path.join(dir, 'muster.db'));
  try {
    return Number((db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n);
  } finally {
    db.close();
  }
};
const waitUntil = async (ok: () => boolean, ms: number) => {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
};
const sample = async (reg: Registry, name: string, labels: Record<string, string> = {}) => {
  const m = (await reg.getMetricsAsJSON()).find((x) => x.name === name);
  const v = m?.values.find((x) => Object.entries(labels).every(([k, l]) => x.labels[k] === l));
  return v?.value ?? 0;
};

describe('store write queue', () => {
  it('queues once started: ids at once, nothing committed on the caller turn, written within delay_ms, in order', async () => {
    const dir = tmp();
    const reg = new Registry();
    const s = Store.open(dir, cfg({ max_items: 1000, batch_items: 100, delay_ms: 30 }), log, reg);
    const before = s.addHistory(entry(0));
    assert.ok(before > 0, 'before start: written at once');
    assert.equal(committed(dir, 'history'), 1);
    s.start();
    const ids = Array.from({ length: 5 }, (_, i) => s.addHistory(entry(i + 1)));
    assert.deepEqual(
      ids,
      [1, 2, 3, 4, 5].map((i) => before + i),
      'ids allocated in memory, in order',
    );
    const alert = s.openAlert({
      key: 'k',
      kind: 'threshold',
      rule: 'r',
      severity: 'warning',
      node: '1-1-0',
      metric: null,
      instance: null,
      value: null,
      threshold: null,
      op: null,
      message: 'm',
      source: 'manager',
      first_seen: NOW,
      last_seen: NOW,
    });
    s.resolveAlert(alert, NOW + 1, 'gone');
    assert.equal(committed(dir, 'history'), 1, 'queued, not written on this turn');
    assert.equal(s.queueDepth, 7);
    assert.equal(await sample(reg, 'muster_manager_store_queue_depth'), 7);
    await new Promise((r) => setTimeout(r, 120));
    assert.equal(committed(dir, 'history'), 6, 'written after delay_ms');
    assert.equal(s.queueDepth, 0);
    const a = s.getAlert(alert);
    assert.equal(a?.resolved_at !== null && a?.message, 'gone', 'the resolve ran after its open');
    s.close();
  });

  it('reads see every write queued before them; close() writes what waits', () => {
    const dir = tmp();
    const s = Store.open(dir, cfg({ max_items: 1000, batch_items: 100, delay_ms: 5000 }), log, new Registry());
    s.start();
    for (let i = 0; i < 3; i++) s.addHistory(entry(i));
    assert.equal(s.listHistory({ limit: 10 }).items.length, 3);
    s.addHistory(entry(9));
    s.close();
    assert.equal(committed(dir, 'history'), 4);
  });

  it('batches of at most batch_items, the event loop turning between them', async () => {
    const dir = tmp();
    const reg = new Registry();
    const s = Store.open(dir, cfg({ max_items: 10_000, batch_items: 50, delay_ms: 5000 }), log, reg);
    s.start();
    for (let i = 0; i < 175; i++) s.addHistory(entry(i));
    // A full batch goes on the next turn (setImmediate), not after delay_ms.
    await new Promise((r) => setImmediate(r));
    const after1 = committed(dir, 'history');
    assert.ok(after1 >= 50 && after1 < 175, `one batch per turn (${after1})`);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(committed(dir, 'history'), 175);
    const m = (await reg.getMetricsAsJSON()).find((x) => x.name === 'muster_manager_store_queue_batch_seconds');
    const count = m?.values.find((v) => (v as { metricName?: string }).metricName?.endsWith('_count'))?.value;
    assert.equal(count, 4, '175 writes in batches of 50');
    s.close();
  });

  it('a transaction stops once it has run batch_ms: slow writes never hold the event loop for long', async () => {
    const dir = tmp();
    const s = Store.open(
      dir,
      cfg({ max_items: 10_000, batch_items: 1000, delay_ms: 5000, batch_ms: 5 }),
      log,
      new Registry(),
    );
    s.start();
    // A write that takes ~0.25 ms (a slow disk): a full batch of them would hold the loop ~250 ms.
    const slow = () => {
      const end = performance.now() + 0.25;
      while (performance.now() < end);
    };
    for (let i = 0; i < 200; i++) s.addHistory(entry(i));
    const core = (s as unknown as { core: { enqueue(what: string, w: () => void): boolean } }).core;
    let ran = 0;
    for (let i = 0; i < 1000; i++)
      core.enqueue('slow', () => {
        slow();
        ran++;
      });
    // A full batch goes on the next turn.
    const t0 = performance.now();
    await new Promise((r) => setImmediate(r));
    const firstTurn = performance.now() - t0;
    assert.ok(ran < 1000, `the first transaction stopped early (${ran} slow writes ran)`);
    assert.ok(firstTurn < 100, `the first turn took ${Math.round(firstTurn)} ms, not ~250`);
    await waitUntil(() => ran === 1000, 5000);
    assert.equal(committed(dir, 'history'), 200);
    s.close();
  });

  it('the periodic flush waits for the queue, then writes touched nodes in steps, at most every touch_interval_ms per node', async () => {
    const dir = tmp();
    let now = NOW;
    const s = Store.open(
      dir,
      {
        ...cfg({ max_items: 100_000, batch_items: 2000, delay_ms: 20 }),
        flush_interval_ms: 100,
        touch_interval_ms: 60_000,
      },
      log,
      new Registry(),
      () => now,
    );
    const row = (id: string) => ({
      id,
      box_id: 1,
      slot_id: Number(id.split('-')[1]),
      cpu_id: 0,
      host_ip: '10.0.0.1',
      claimants: ['10.0.0.1'],
      hostname: null,
      heartbeat: null,
      state: states.get(id) ?? ('online' as const),
      state_since: NOW,
      first_seen: NOW,
      last_seen: now,
    });
    const states = new Map<string, 'online' | 'offline'>();
    s.setNodeSource(row);
    s.start();
    const ids = Array.from({ length: 1200 }, (_, i) => `1-${i}-0`);
    for (const id of ids) s.touchNode(id);
    // The queue holds writes: the flush waits for them (they are older than the touches).
    for (let i = 0; i < 50; i++) s.addHistory(entry(i));
    await waitUntil(() => committed(dir, 'nodes') === 1200, 3000);
    assert.equal(committed(dir, 'history'), 50);
    // Touched again within touch_interval_ms: not rewritten by the periodic flush...
    const lastSeen = () => {
      const db = new DatabaseSync(path.join(dir, 'muster.db'));
      try {
        return Number(
          (db.prepare("SELECT last_seen FROM nodes WHERE id = '1-5-0'").get() as { last_seen: number }).last_seen,
        );
      } finally {
        db.close();
      }
    };
    const first = lastSeen();
    now += 10_000;
    s.touchNode('1-5-0');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(lastSeen(), first, 'not rewritten 10 s after its last write');
    // ...but once the interval has passed, and a node saved for a state change at once.
    now += 60_000;
    await waitUntil(() => lastSeen() === now, 3000);
    states.set('1-7-0', 'offline');
    s.saveNode(row('1-7-0'));
    s.touchNode('1-7-0');
    s.close();
    const again = Store.open(dir, cfg(undefined), log, new Registry());
    assert.equal(again.loadNodes().find((n) => n.id === '1-7-0')?.state, 'offline');
    again.close();
  });

  it('a full queue drops the write, counts it by what, and keeps what it holds', async () => {
    const dir = tmp();
    const reg = new Registry();
    const s = Store.open(dir, cfg({ max_items: 100, batch_items: 1000, delay_ms: 5000 }), log, reg);
    s.start();
    const ids = Array.from({ length: 130 }, (_, i) => s.addHistory(entry(i)));
    assert.equal(ids.filter((id) => id === 0).length, 30, 'dropped writes answer 0');
    assert.equal(await sample(reg, 'muster_manager_store_queue_dropped_total', { what: 'history' }), 30);
    assert.equal(s.listHistory({ limit: 1000 }).items.length, 100);
    assert.deepEqual(
      s.listHistory({ limit: 1000 }).items.map((e) => e.id),
      ids.filter((id) => id > 0).reverse(),
      'no gap in the ids of the kept writes',
    );
    s.close();
  });

  it('one bad write in a batch loses only itself, counted as a write error', async () => {
    const dir = tmp();
    const reg = new Registry();
    const s = Store.open(dir, cfg({ max_items: 1000, batch_items: 1000, delay_ms: 5000 }), log, reg);
    s.start();
    s.addHistory(entry(1));
    // node NOT NULL: the row cannot be written.
    s.saveComponent({ node: null, uuid: 'u', state: 'RUNNING' } as unknown as ComponentRow);
    s.addHistory(entry(2));
    s.drain();
    assert.equal(committed(dir, 'history'), 2, 'the others are written');
    assert.equal(await sample(reg, 'muster_manager_store_write_errors_total', { what: 'component' }), 1);
    s.close();
  });
});
