/**
 * The whole HTTP server (manager/server.ts) in process on real dependencies: the /api/v1 context
 * holds every route group, a hook added to that context covers every API route and none of the
 * wire-protocol routes (where the access check will hang), GET /healthz and /metrics (names as
 * documented), 404 for an unknown route; and the telemetry routes (manager/routes/telemetry.ts)
 * on a real NodeRegistry.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { createHttpServer } from '../../common/http.js';
import { apiRoutes } from '../../manager/routes/api.js';
import { reportRoutes } from '../../manager/routes/reports.js';
import { installErrorHandlers } from '../../manager/routes/shared.js';
import { telemetryRoutes } from '../../manager/routes/telemetry.js';
import { API_PREFIX, buildServer } from '../../manager/server.js';
import { tokenHeaders } from '../../testkit/auth.js';
import { fakeHeartbeatData, fakeResourceData, heartbeatBody } from '../../testkit/bodies.js';
import { serverDeps } from '../../testkit/server.js';

const log = pino({ level: 'silent' });
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('server', () => {
  it('serves the reports, every API group under /api/v1, /healthz, /metrics, and 404s', async () => {
    const d = serverDeps();
    const app = buildServer(d);
    const headers = await tokenHeaders(d.access);
    let r = await app.inject({
      method: 'POST',
      url: '/heartbeat',
      payload: heartbeatBody(fakeHeartbeatData('10.0.0.5', 1, 3)),
    });
    assert.equal(r.statusCode, 200);
    for (const url of [
      '/nodes',
      '/nodes/1-3-0',
      '/status',
      '/deployments',
      '/components',
      '/alerts',
      '/alert-rules',
      '/metrics-catalog',
      '/history',
      '/nodes/1-3-0/recent',
      '/telemetry',
    ]) {
      r = await app.inject({ url: `${API_PREFIX}${url}`, headers });
      assert.equal(r.statusCode, 200, url);
    }
    r = await app.inject({ url: '/healthz' });
    assert.deepEqual(Object.keys(r.json() as object), ['status', 'version']);
    r = await app.inject({ url: '/metrics' });
    assert.match(r.headers['content-type'] as string, /^text\/plain/);
    for (const name of [
      'muster_manager_nodes{state="online"} 1',
      'muster_manager_identity_conflicts 0',
      'muster_manager_reports_ingested_total{url="/heartbeat"} 1',
      'muster_manager_transitions_total{to="online"} 1',
      'muster_manager_alerts_open{severity="critical"} 0',
      'muster_manager_alerts_raised_total',
      'muster_manager_queries_sent_total',
      'muster_manager_ingest_seconds_bucket',
      'muster_manager_store_flush_seconds',
      'muster_manager_influx_',
      'process_cpu_seconds_total',
    ])
      assert.ok(r.body.includes(name), name);
    r = await app.inject({ url: '/api/v2/nodes' });
    assert.equal(r.statusCode, 404);
    assert.deepEqual(r.json(), { error: 'not_found', message: 'no route GET /api/v2/nodes' });
    await app.close();
    d.close();
  });

  it('a hook on the /api/v1 context covers every API route and no report route', async () => {
    const d = serverDeps();
    const app = createHttpServer(log, 1 << 20);
    installErrorHandlers(app, { bodyLimit: 1 << 20, log });
    await app.register(reportRoutes, { ingest: d.ingest, alerts: d.alerts });
    await app.register(
      async (api) => {
        api.addHook('onRequest', async (_req, reply) => reply.code(401).send({ error: 'unauthorized', message: 'no' }));
        await api.register(apiRoutes, d);
      },
      { prefix: API_PREFIX },
    );
    const routes = app.printRoutes({ commonPrefix: false });
    for (const url of [
      '/nodes',
      '/status',
      '/query',
      '/deployments',
      '/alerts',
      '/alert-rules/x',
      '/history',
      '/telemetry',
    ]) {
      const method = url === '/query' ? 'POST' : url.startsWith('/alert-rules/') ? 'DELETE' : 'GET';
      const r = await app.inject({ method, url: `${API_PREFIX}${url}` });
      assert.equal(r.statusCode, 401, `${url}\n${routes}`);
    }
    const r = await app.inject({
      method: 'POST',
      url: '/heartbeat',
      payload: heartbeatBody(fakeHeartbeatData('10.0.0.5', 1, 3)),
    });
    assert.equal(r.statusCode, 200);
    await app.close();
    d.close();
  });
});

describe('telemetry routes', () => {
  it('GET /api/v1/nodes/:id/recent on a real registry: samples, [] before a report, 404, 400', async () => {
    const d = serverDeps();
    const { registry } = d;
    registry.ingestHeartbeat(fakeHeartbeatData('10.0.0.5', 1, 3));
    registry.ingestHeartbeat(fakeHeartbeatData('10.0.0.6', 1, 4));
    d.telemetry.resource(
      { node: '1-3-0', box: 1, slot: 3, cpu: 0, hostname: 'h', host_ip: '10.0.0.5' },
      fakeResourceData('10.0.0.5', 9),
      Date.now(),
    );
    const app = createHttpServer(log, 1 << 20);
    installErrorHandlers(app, { bodyLimit: 1 << 20, log });
    await app.register(telemetryRoutes, { prefix: API_PREFIX, telemetry: d.telemetry, registry });
    let r = await app.inject({ url: '/api/v1/nodes/1-3-0/recent?since=5m&since=1h' });
    assert.equal(r.statusCode, 200);
    assert.deepEqual(r.json(), JSON.parse(JSON.stringify(d.telemetry.recent('1-3-0'))));
    assert.equal((r.json() as { samples: { cpu_usage_percent: number }[] }).samples[0]?.cpu_usage_percent, 9);
    r = await app.inject({ url: '/api/v1/nodes/1-4-0/recent' });
    assert.deepEqual(r.json(), { node: '1-4-0', window_ms: 60_000, samples: [] });
    r = await app.inject({ url: '/api/v1/nodes/1-5-0/recent' });
    assert.equal(r.statusCode, 404);
    r = await app.inject({ url: '/api/v1/nodes/1-3-0/recent?since=later' });
    assert.equal(r.statusCode, 400);
    assert.equal((r.json() as { field: string }).field, 'since');
    await app.close();
    d.close();
  });
});
