/**
 * The whole HTTP server (manager/server.ts) in process on real dependencies: the /api/v1 context
 * holds every route group, a hook added to that context covers every API route and none of the
 * wire-protocol routes (where the access check will hang), GET /healthz and /metrics (names as
 * documented), 404 for an unknown route; and the telemetry routes (manager/routes/telemetry.ts)
 * on a real NodeRegistry.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { createHttpServer } from '../../common/http.js';
import type { DeployOutcome } from '../../manager/agents/client.js';
import { AlertEngine, alertMetrics } from '../../manager/alerts/engine.js';
import { ComponentTracker } from '../../manager/components.js';
import { Deployer } from '../../manager/deploy.js';
import { Ingest } from '../../manager/ingest.js';
import { createMetricsRegistry } from '../../manager/metrics.js';
import { NodeRegistry, registryMetrics } from '../../manager/registry.js';
import { QueryRounds } from '../../manager/rounds.js';
import { apiRoutes } from '../../manager/routes/api.js';
import { reportRoutes } from '../../manager/routes/reports.js';
import { installErrorHandlers } from '../../manager/routes/shared.js';
import { telemetryRoutes } from '../../manager/routes/telemetry.js';
import { API_PREFIX, buildServer } from '../../manager/server.js';
import { Store } from '../../manager/store/store.js';
import { Telemetry } from '../../manager/telemetry/index.js';
import { fakeHeartbeatData, fakeResourceData, heartbeatBody } from '../../testkit/bodies.js';

const log = pino({ level: 'silent' });
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Every dependency of the server, built as the composition root does (manager/app.ts). */
function deps() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'muster-routes-'));
  dirs.push(dir);
  const metrics = createMetricsRegistry();
  const store = Store.open(
    dir,
    {
      file: 'muster.db',
      flush_interval_ms: 1000,
      retention: { days: 0, max_rows: 0 },
      cleanup_interval_ms: 60000,
      cleanup_batch_rows: 100,
    },
    log,
    metrics,
  );
  const alerts = new AlertEngine(store, log);
  alertMetrics(metrics, alerts);
  const components = new ComponentTracker(store, alerts, 'warning');
  const registry = new NodeRegistry({ suspect_after_rounds: 2, offline_after_rounds: 3 });
  registryMetrics(metrics, registry);
  const telemetry = new Telemetry(
    {
      recent: { window_ms: 60_000, max_samples: 10 },
      influxdb: {
        enabled: false,
        url: 'http://127.0.0.1:1',
        database: 'muster',
        username: '',
        password: '',
        retention_policy: '',
        batch_points: 10,
        flush_interval_ms: 100,
        buffer_points: 100,
        timeout_ms: 100,
        retry_max_ms: 100,
      },
    },
    log,
    metrics,
  );
  const ingest = new Ingest({ registry, store, components, alerts, telemetry, log, metrics });
  const unreachable = async (): Promise<DeployOutcome> => ({ ok: false, result: -1, message: 'unreachable' });
  const deployer = new Deployer(
    { progress_poll_ms: 50 },
    registry,
    { deploy: unreachable, progress: async () => null },
    log,
  );
  const rounds = new QueryRounds({
    cfg: { heartbeat_interval_ms: 1000, resource_interval_ms: 1000, jitter_ms: 0, jitter_per_node_ms: 0 },
    querier: { send: async () => {} },
    registry,
    ingest,
    store,
    log,
    metrics,
  });
  return {
    registry,
    alerts,
    store,
    telemetry,
    deployer,
    rounds,
    ingest,
    metrics,
    database: store.file,
    managerIp: '10.0.0.1',
    managerPort: 3926,
    bodyLimit: 1 << 20,
    log,
    close: () => store.close(),
  };
}

describe('server', () => {
  it('serves the reports, every API group under /api/v1, /healthz, /metrics, and 404s', async () => {
    const d = deps();
    const app = buildServer(d);
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
      r = await app.inject({ url: `${API_PREFIX}${url}` });
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
    const d = deps();
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
    const d = deps();
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
