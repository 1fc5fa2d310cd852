/**
 * Automatic pruning (manager/prune.ts, manager/registry.ts `prunable`; docs/configuration.md
 * "registry"): a position heard only in the round of its first heartbeat expires after
 * registry.expire_never_online_ms, a node offline for registry.prune_offline_after_ms is removed
 * (0 turns either off); a real board, heard in every round, never expires. Removal goes through
 * the DELETE /api/v1/nodes/:id code path (manager/removal.ts): open alerts resolved, store row
 * deleted, `node.rm` in the history with who `manager`; counted by reason.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NodePruner } from '../../manager/prune.js';
import { nodeRow } from '../../manager/records.js';
import { NodeRegistry } from '../../manager/registry.js';
import { wireEvents } from '../../manager/wiring.js';
import { fakeHeartbeatData } from '../../testkit/bodies.js';
import { serverDeps } from '../../testkit/server.js';

const T = { suspect_after_rounds: 2, offline_after_rounds: 3 };
const T0 = 1_800_000_000_000;

describe('NodeRegistry.prunable', () => {
  it('never came online: heard in one round only, once old enough; a second round confirms', () => {
    let now = T0;
    const reg = new NodeRegistry(T, () => now);
    reg.ingestHeartbeat(fakeHeartbeatData('10.0.0.1', 1, 1)); // a real board: answers round 0 and 1
    reg.ingestHeartbeat(fakeHeartbeatData('10.0.0.2', 1, 2)); // heard once
    reg.ingestHeartbeat(fakeHeartbeatData('10.0.0.2', 1, 2)); // ...twice in the same round: still once
    reg.endRound();
    now += 1000;
    reg.ingestHeartbeat(fakeHeartbeatData('10.0.0.1', 1, 1));
    assert.deepEqual(reg.prunable(now, 5000, 0), [], 'not old enough yet');
    now = T0 + 5000;
    assert.deepEqual(reg.prunable(now, 5000, 0), [{ id: '1-2-0', reason: 'never_online' }]);
    assert.deepEqual(reg.prunable(now, 0, 0), [], '0 = off');
    // The once-heard position answers a later round: it came online after all.
    reg.endRound();
    reg.ingestHeartbeat(fakeHeartbeatData('10.0.0.2', 1, 2));
    assert.deepEqual(reg.prunable(now + 60_000, 5000, 0), []);
  });

  it('offline too long; a restored position heard once is unconfirmed until it reports again', () => {
    let now = T0;
    const reg = new NodeRegistry(T, () => now);
    const hb = (ip: string, slot: number) => fakeHeartbeatData(ip, 1, slot);
    const row = (slot: number, first: number, last: number) => ({
      id: `1-${slot}-0`,
      box_id: 1,
      slot_id: slot,
      cpu_id: 0,
      host_ip: `10.0.0.${slot}`,
      claimants: [],
      heartbeat: hb(`10.0.0.${slot}`, slot),
      state: 'offline' as const,
      state_since: T0 - 100_000,
      first_seen: first,
      last_seen: last,
    });
    reg.restore([row(1, T0 - 900_000, T0 - 200_000), row(2, T0 - 900_000, T0 - 900_000), row(3, T0, T0)]);
    assert.deepEqual(
      reg.prunable(now, 600_000, 0).map((p) => p.id),
      ['1-2-0'],
      'heard once before the restart, 15 min ago',
    );
    reg.ingestHeartbeat(hb('10.0.0.3', 3)); // reports after the restart: confirmed
    now += 700_000;
    assert.deepEqual(
      reg.prunable(now, 600_000, 50_000).map((p) => `${p.id}:${p.reason}`),
      ['1-2-0:never_online', '1-1-0:offline'],
    );
    assert.deepEqual(reg.prunable(now, 0, 0), []);
  });
});

describe('NodePruner', () => {
  it('300 made-up positions expire with their node_offline alerts resolved; the real board stays', async () => {
    const d = serverDeps();
    d.store.setNodeSource((id) => nodeRow(d.registry, id));
    wireEvents({
      registry: d.registry,
      deployer: d.deployer,
      store: d.store,
      alerts: d.alerts,
      telemetry: d.telemetry,
      severities: () => ({ node_offline: 'critical', identity_conflict: 'critical' }),
      log: d.log,
    });
    const cfg = { expire_never_online_ms: 10_000, prune_offline_after_ms: 0 };
    let now = Date.now();
    const pruner = new NodePruner({ ...d, cfg, now: () => now });
    d.registry.ingestHeartbeat(fakeHeartbeatData('10.0.0.1', 1, 1));
    for (let i = 0; i < 300; i++)
      d.registry.ingestHeartbeat(fakeHeartbeatData('10.9.0.1', 2 + Math.floor(i / 100), i % 100));
    for (let r = 0; r < 4; r++) {
      d.registry.endRound();
      d.registry.ingestHeartbeat(fakeHeartbeatData('10.0.0.1', 1, 1));
    }
    d.store.flush();
    assert.equal(d.registry.nodes.size, 301);
    assert.equal(d.alerts.openOf('node_offline'), 300, 'the made-up positions went offline');
    assert.equal(d.store.nodes.load().length, 301);
    now = Date.now(); // the registry's clock is the real one: ages count from here
    assert.deepEqual(await pruner.sweep(), { never_online: 0, offline: 0 }, 'not old enough');
    now += 10_000;
    assert.deepEqual(await pruner.sweep(), { never_online: 300, offline: 0 });
    assert.deepEqual([...d.registry.nodes.keys()], ['1-1-0']);
    assert.equal(d.alerts.openAlerts().length, 0, 'their alerts are resolved');
    d.store.flush();
    assert.deepEqual(
      d.store.nodes.load().map((n) => n.id),
      ['1-1-0'],
      'their rows are gone',
    );
    const rm = d.store.listHistory({ limit: 1000 } as never).items.filter((e) => e.operation === 'node.rm');
    assert.equal(rm.length, 300);
    assert.equal(rm[0]?.who, 'manager');
    assert.match(
      rm[0]?.message ?? '',
      /never came online \(registry\.expire_never_online_ms\); 1 open alert\(s\) resolved/,
    );
    const text = await d.metrics.metrics();
    assert.match(text, /muster_manager_nodes_pruned_total\{reason="never_online"\} 300/);
    assert.match(text, /muster_manager_nodes_pruned_total\{reason="offline"\} 0/);
    d.close();
  });

  it('offline nodes go after prune_offline_after_ms (off by default); the sweep interval follows the ages', async () => {
    const d = serverDeps();
    let now = Date.now();
    const off = new NodePruner({ ...d, cfg: { expire_never_online_ms: 0, prune_offline_after_ms: 0 }, now: () => now });
    assert.equal(off.interval(), 0);
    const pruner = new NodePruner({
      ...d,
      metrics: new (await import('prom-client')).Registry(),
      cfg: { expire_never_online_ms: 600_000, prune_offline_after_ms: 3_600_000 },
      now: () => now,
    });
    assert.equal(pruner.interval(), 60_000);
    for (let r = 0; r < 2; r++) {
      d.registry.ingestHeartbeat(fakeHeartbeatData('10.0.0.1', 1, 1));
      d.registry.endRound();
    }
    for (let r = 0; r < 4; r++) d.registry.endRound();
    assert.equal(d.registry.nodes.get('1-1-0')?.state, 'offline');
    now = Date.now() + 3_599_000;
    assert.deepEqual(await pruner.sweep(), { never_online: 0, offline: 0 });
    now += 1100;
    assert.deepEqual(await pruner.sweep(), { never_online: 0, offline: 1 });
    assert.equal(d.registry.nodes.size, 0);
    d.close();
  });
});
