/**
 * DELETE /api/v1/nodes/:id on the whole server with access control: 401 without a token, 403 for
 * an operator, 404 for an unknown node, 200 for an admin: the node is gone from the registry and
 * the store, its open alerts are resolved, the history records `node.rm` with who; a later
 * heartbeat creates it afresh.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nodeRow } from '../../manager/records.js';
import { API_PREFIX, buildServer } from '../../manager/server.js';
import { tokenHeaders } from '../../testkit/auth.js';
import { fakeHeartbeatData, heartbeatBody } from '../../testkit/bodies.js';
import { serverDeps } from '../../testkit/server.js';

describe('DELETE /api/v1/nodes/:id', () => {
  it('401 / 403 / 404, then 200: forgotten, alerts resolved, recorded with who', async () => {
    const d = serverDeps();
    d.store.setNodeSource((id) => nodeRow(d.registry, id));
    const app = buildServer(d);
    const admin = await tokenHeaders(d.access, 'root', 'admin');
    const operator = await tokenHeaders(d.access, 'op', 'operator');
    let r = await app.inject({
      method: 'POST',
      url: '/heartbeat',
      payload: heartbeatBody(fakeHeartbeatData('10.0.0.5', 1, 3)),
    });
    assert.equal(r.statusCode, 200);
    d.store.flush?.();
    d.alerts.raise(
      { kind: 'node_offline', rule: 'node_offline', severity: 'critical', node: '1-3-0', message: 'x' },
      1,
    );
    assert.equal(d.alerts.openAlerts().length, 1);
    assert.ok(
      d.store.nodes.load().some((n) => n.id === '1-3-0'),
      'the row was written',
    );

    const url = `${API_PREFIX}/nodes/1-3-0`;
    r = await app.inject({ method: 'DELETE', url });
    assert.equal(r.statusCode, 401);
    r = await app.inject({ method: 'DELETE', url, headers: operator });
    assert.equal(r.statusCode, 403);
    r = await app.inject({ method: 'DELETE', url: `${API_PREFIX}/nodes/9-9-9`, headers: admin });
    assert.equal(r.statusCode, 404);
    r = await app.inject({ method: 'DELETE', url, headers: admin });
    assert.equal(r.statusCode, 200);
    assert.deepEqual(r.json(), { node: '1-3-0', alerts_resolved: 1 });

    assert.equal(d.registry.nodes.has('1-3-0'), false);
    assert.equal(d.alerts.openAlerts().length, 0);
    d.store.flush?.();
    assert.equal(
      d.store.nodes.load().some((n) => n.id === '1-3-0'),
      false,
    );
    r = await app.inject({ url, headers: admin });
    assert.equal(r.statusCode, 404);
    const h = d.store.listHistory({ limit: 50 } as never);
    const rm = h.items.find((e) => e.operation === 'node.rm');
    assert.ok(rm, 'node.rm in the history');
    assert.match(rm.who ?? '', /^root\b/);

    r = await app.inject({
      method: 'POST',
      url: '/heartbeat',
      payload: heartbeatBody(fakeHeartbeatData('10.0.0.5', 1, 3)),
    });
    assert.equal(r.statusCode, 200);
    assert.equal(d.registry.nodes.has('1-3-0'), true);
    await app.close();
    d.close();
  });
});
