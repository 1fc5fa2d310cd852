/**
 * The node and status routes (manager/routes/nodes.ts, manager/routes/status.ts) in process, on
 * a real NodeRegistry: the answers are the views exactly (the response schemas drop nothing, the
 * unknown fields of a board's heartbeat included), 404 for an unknown node, 400 for a bad id.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import { createHttpServer } from '../../common/http.js';
import { AlertEngine } from '../../manager/alerts/engine.js';
import { NodeRegistry } from '../../manager/registry.js';
import { nodeRoutes } from '../../manager/routes/nodes.js';
import { installErrorHandlers } from '../../manager/routes/shared.js';
import { statusRoutes } from '../../manager/routes/status.js';
import { Store } from '../../manager/store/store.js';
import { Telemetry } from '../../manager/telemetry/index.js';
import { detail, listNodes } from '../../manager/views.js';
import { fakeHeartbeatData, fakeResourceData } from '../../testkit/bodies.js';
import { TEST_STORE_CONFIG, TEST_TELEMETRY_CONFIG } from '../../testkit/server.js';

const log = pino({ level: 'silent' });
const json = (v: unknown) => JSON.parse(JSON.stringify(v)) as unknown;
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A registry with 1-3-0 (heartbeat with an unknown field, resource report) and 1-4-0 (heartbeat only). */
function fleet(): NodeRegistry {
  const registry = new NodeRegistry({ suspect_after_rounds: 2, offline_after_rounds: 3 });
  registry.ingestHeartbeat({ ...fakeHeartbeatData('10.0.0.5', 1, 3), x_future: { a: 1 } } as never);
  registry.ingestResource(fakeResourceData('10.0.0.5', 7));
  registry.ingestHeartbeat(fakeHeartbeatData('10.0.0.6', 1, 4));
  registry.endRound();
  return registry;
}

async function server(registry: NodeRegistry) {
  const app = createHttpServer(log, 1 << 20);
  installErrorHandlers(app, { bodyLimit: 1 << 20, log });
  await app.register(nodeRoutes, {
    prefix: '/api/v1',
    registry,
    alerts: { openOn: () => [], resolve: () => false, forgetHolds: () => {} },
    store: { removeNode: () => {}, addHistory: () => 0 },
  });
  await app.ready();
  return app;
}

describe('node routes', () => {
  it('GET /api/v1/nodes is the round and every summary, as built', async () => {
    const registry = fleet();
    const app = await server(registry);
    const r = await app.inject({ url: '/api/v1/nodes' });
    assert.equal(r.statusCode, 200);
    assert.deepEqual(r.json(), json({ round: registry.round, nodes: listNodes(registry) }));
    assert.equal((r.json() as { nodes: unknown[] }).nodes.length, 2);
    await app.close();
  });

  it('GET /api/v1/nodes/:id is the detail, with the heartbeat as the board sent it', async () => {
    const registry = fleet();
    const app = await server(registry);
    const r = await app.inject({ url: '/api/v1/nodes/1-3-0' });
    assert.equal(r.statusCode, 200);
    const n = registry.nodes.get('1-3-0');
    assert.ok(n);
    assert.deepEqual(r.json(), json(detail(registry, n)));
    const body = r.json() as { heartbeat: { x_future?: unknown }; free: unknown; resource: unknown };
    assert.deepEqual(body.heartbeat.x_future, { a: 1 });
    assert.deepEqual(body.free, { cores: 7, memory_bytes: 12884901888, gpus: null, gpus_total: 1 });
    const bare = await app.inject({ url: '/api/v1/nodes/1-4-0' });
    assert.equal((bare.json() as { resource: unknown }).resource, null);
    await app.close();
  });

  it('a node put back after a restart answers with its transitions as stored, a conflict entry included', async () => {
    const registry = new NodeRegistry({ suspect_after_rounds: 2, offline_after_rounds: 3 });
    const at = '2026-11-21T08:00:00.000Z';
    // The composition root puts back the history's `state` entries, which also record conflicts and moves.
    const transitions = [
      { node: '1-3-0', from: null, to: 'online', at, reason: 'first heartbeat' },
      { node: '1-3-0', from: null, to: 'conflict', at, reason: '' },
    ] as never;
    registry.restore(
      [
        {
          id: '1-3-0',
          box_id: 1,
          slot_id: 3,
          cpu_id: 0,
          host_ip: '10.0.0.5',
          claimants: ['10.0.0.5'],
          heartbeat: fakeHeartbeatData('10.0.0.5', 1, 3),
          state: 'online',
          state_since: Date.parse(at),
          first_seen: Date.parse(at),
          last_seen: Date.parse(at),
        },
      ],
      new Map([['1-3-0', transitions]]),
    );
    const app = await server(registry);
    const r = await app.inject({ url: '/api/v1/nodes/1-3-0' });
    assert.equal(r.statusCode, 200);
    assert.deepEqual(
      (r.json() as { transitions: { to: string }[] }).transitions.map((t) => t.to),
      ['online', 'conflict'],
    );
    await app.close();
  });

  it('404 for an unknown node, 400 naming params/id for an id that is not a node id', async () => {
    const app = await server(fleet());
    let r = await app.inject({ url: '/api/v1/nodes/9-9-9' });
    assert.equal(r.statusCode, 404);
    assert.deepEqual(r.json(), { error: 'not_found', message: 'no node 9-9-9' });
    r = await app.inject({ url: '/api/v1/nodes/node-001' });
    assert.equal(r.statusCode, 404, 'a linked node id is a node id (docs/links.md)');
    r = await app.inject({ url: '/api/v1/nodes/-1-3' });
    assert.equal(r.statusCode, 400);
    const b = r.json() as { error: string; field: string; message: string };
    assert.equal(b.error, 'bad_request');
    assert.equal(b.field, 'params/id');
    assert.match(b.message, /^params\/id must match pattern/);
    await app.close();
  });
});

describe('status route', () => {
  it('GET /api/v1/status: version, round, address, counts, database, telemetry', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'muster-routes-'));
    dirs.push(dir);
    const store = Store.open(dir, TEST_STORE_CONFIG, log, new Registry());
    const alerts = new AlertEngine(store, log);
    alerts.raise({ kind: 'node_offline', rule: 'node_offline', severity: 'critical', node: '1-4-0', message: 'x' }, 1);
    const telemetry = new Telemetry(TEST_TELEMETRY_CONFIG, log, new Registry());
    const registry = fleet();
    const app = createHttpServer(log, 1 << 20);
    await app.register(statusRoutes, {
      prefix: '/api/v1',
      registry,
      alerts,
      telemetry,
      database: store.file,
      managerIp: '10.0.0.1',
      managerPort: 3926,
    });
    const r = await app.inject({ url: '/api/v1/status' });
    assert.equal(r.statusCode, 200);
    const s = r.json() as Record<string, unknown>;
    assert.deepEqual(Object.keys(s), [
      'version',
      'uptime_s',
      'round',
      'manager_ip',
      'manager_port',
      'nodes',
      'alerts_open',
      'database',
      'telemetry',
    ]);
    assert.equal(s.round, 1);
    assert.equal(s.manager_ip, '10.0.0.1');
    assert.deepEqual(s.nodes, { online: 2, suspect: 0, offline: 0 });
    assert.deepEqual(s.alerts_open, { critical: 1, warning: 0, info: 0 });
    assert.equal(s.database, store.file);
    assert.deepEqual(s.telemetry, json(telemetry.status()));
    await app.close();
    store.close();
  });
});
