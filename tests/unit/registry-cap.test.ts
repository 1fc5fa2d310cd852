/**
 * registry.max_nodes: the NodeRegistry refuses a heartbeat for a new position once it holds the
 * cap (null, nothing recorded) and keeps accepting known positions; through the server, 20,000
 * heartbeats for made-up positions against a cap of 10,000 store 10,000 nodes, answer the rest
 * 503 `registry_full` naming the key, and count them in muster_manager_nodes_refused_total.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NodeRegistry } from '../../manager/registry.js';
import { buildServer } from '../../manager/server.js';
import { fakeHeartbeatData, heartbeatBody } from '../../testkit/bodies.js';
import { serverDeps } from '../../testkit/server.js';

describe('registry.max_nodes', () => {
  it('NodeRegistry refuses new positions beyond the cap, keeps known ones', () => {
    const reg = new NodeRegistry({ suspect_after_rounds: 2, offline_after_rounds: 3 }, Date.now, 2);
    assert.equal(reg.ingestHeartbeat(fakeHeartbeatData('10.0.0.1', 1, 1)), '1-1-0');
    assert.equal(reg.ingestHeartbeat(fakeHeartbeatData('10.0.0.2', 1, 2)), '1-2-0');
    assert.equal(reg.ingestHeartbeat(fakeHeartbeatData('10.0.0.3', 1, 3)), null);
    assert.equal(reg.nodes.size, 2);
    assert.equal(reg.boards.size, 2, 'a refused heartbeat leaves no board behind');
    assert.equal(reg.ingestHeartbeat(fakeHeartbeatData('10.0.0.1', 1, 1)), '1-1-0');
    assert.equal(
      reg.ingestHeartbeat(fakeHeartbeatData('10.0.0.9', 1, 2)),
      '1-2-0',
      'a known position on a new address',
    );
  });

  it('20,000 heartbeats for new positions: 10,000 stored, the rest 503, counted', async () => {
    const d = serverDeps({ maxNodes: 10_000 });
    const app = buildServer(d);
    let ok = 0;
    let full = 0;
    let last = '';
    for (let i = 0; i < 20_000; i++) {
      const box = Math.floor(i / 200);
      const slot = i % 200;
      const r = await app.inject({
        method: 'POST',
        url: '/heartbeat',
        payload: heartbeatBody(fakeHeartbeatData(`10.${box}.${slot}.1`, box, slot)),
      });
      if (r.statusCode === 200) ok++;
      else if (r.statusCode === 503) {
        full++;
        last = r.body;
      }
    }
    assert.equal(ok, 10_000);
    assert.equal(full, 10_000);
    assert.equal(d.registry.nodes.size, 10_000);
    const body = JSON.parse(last) as { error: string; message: string };
    assert.equal(body.error, 'registry_full');
    assert.match(body.message, /registry\.max_nodes/);
    const m = await app.inject({ url: '/metrics' });
    assert.match(m.body, /muster_manager_nodes_refused_total 10000/);
    assert.match(m.body, /muster_manager_reports_rejected_total\{url="\/heartbeat",reason="registry_full"\} 10000/);
    await app.close();
    d.close();
  });
});
