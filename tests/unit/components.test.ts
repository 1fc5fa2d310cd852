/**
 * The component tracker (docs/protocol.md "`component[]`: the agent's workloads"): a node's first
 * report is one history entry naming its components, then only changes are recorded, a report
 * that repeats the previous one costs nothing, and a component missing from a report is recorded
 * GONE even when a hostile report repeats another uuid to keep the count.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import { AlertEngine } from '../../manager/alerts/engine.js';
import { ComponentTracker } from '../../manager/components.js';
import { Store } from '../../manager/store/store.js';
import { component } from '../../testkit/bodies.js';
import { TEST_STORE_CONFIG } from '../../testkit/server.js';

const log = pino({ level: 'silent' });
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const T0 = 1_800_000_000_000;

function tracker() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'muster-components-'));
  dirs.push(dir);
  const store = Store.open(dir, TEST_STORE_CONFIG, log, new Registry());
  const alerts = new AlertEngine(store, log);
  const t = new ComponentTracker(store, alerts, 'warning');
  const history = () =>
    store
      .listHistory({ limit: 100 })
      .items.map((h) => h.message)
      .reverse();
  return { t, store, alerts, history };
}

const A = component({ uuid: 'u-a', config: { name: 'a', id: 'ia' } });
const B = component({ uuid: 'u-b', config: { name: 'b', id: 'ib' } });

describe('component tracker', () => {
  it('records changes only; a repeated report records nothing', () => {
    const { t, store, history } = tracker();
    t.observe('1-1-0', [A, B], T0);
    assert.deepEqual(history(), ['1-1-0 reports 2 components: a (u-a) RUNNING, b (u-b) RUNNING']);
    assert.deepEqual(
      store.loadComponents().map((c) => [c.uuid, c.state]),
      [
        ['u-a', 'RUNNING'],
        ['u-b', 'RUNNING'],
      ],
    );
    t.observe('1-1-0', [A, B], T0 + 1);
    t.observe('1-1-0', [A, B], T0 + 2);
    assert.equal(history().length, 1);
    t.observe('1-1-0', [A, { ...B, state: 'FAILED' }], T0 + 3);
    assert.equal(history().length, 2);
    assert.match(history()[1] ?? '', /RUNNING → FAILED/);
    // Same components in another order: no change recorded.
    t.observe('1-1-0', [{ ...B, state: 'FAILED' }, A], T0 + 4);
    assert.equal(history().length, 2);
    store.close();
  });

  it('a component left out is GONE, also when another uuid is repeated to keep the count', () => {
    const { t, store, history } = tracker();
    t.observe('1-1-0', [A, B], T0);
    t.observe('1-1-0', [A, A], T0 + 1);
    assert.equal(history().length, 2);
    assert.match(history()[1] ?? '', /component b \(u-b\) on 1-1-0 is no longer reported/);
    t.observe('1-1-0', [A], T0 + 2);
    assert.equal(history().length, 2, 'A alone, as known: nothing new');
    store.close();
  });

  it("a first report's FAILED component raises its alert; a huge report is listed in part", () => {
    const { t, store, alerts, history } = tracker();
    const many = Array.from({ length: 40 }, (_, i) =>
      component({ uuid: `u-${i}`, config: { name: `c${i}`, id: `i${i}` } }),
    );
    t.observe('1-2-0', [{ ...A, state: 'FAILED' }, ...many], T0);
    assert.equal(alerts.openOf('component_failed'), 1);
    assert.equal(history().length, 2);
    assert.equal(history()[0], 'component a (u-a) on 1-2-0: new → FAILED', 'a failure has its own entry');
    assert.match(history()[1] ?? '', /^1-2-0 reports 41 components: a \(u-a\) FAILED, .* and 9 more$/);
    assert.equal(store.loadComponents().length, 41);
    store.close();
  });
});
