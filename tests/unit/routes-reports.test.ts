/**
 * The wire-protocol routes (manager/routes/reports.ts) and the query route
 * (manager/routes/query.ts) in process, on a real Ingest (NodeRegistry, Store in a temporary
 * directory, AlertEngine, ComponentTracker, Telemetry with InfluxDB off): 200 with an empty body
 * and the report stored; 400 naming the field, counted by reason; an agent's alert raised and
 * resolved; a query now collecting the boards that answer it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import { createHttpServer } from '../../common/http.js';
import { AlertEngine, alertMetrics } from '../../manager/alerts/engine.js';
import { ComponentTracker } from '../../manager/components.js';
import { Ingest } from '../../manager/ingest.js';
import { NodeRegistry } from '../../manager/registry.js';
import { QueryRounds } from '../../manager/rounds.js';
import { queryRoutes } from '../../manager/routes/query.js';
import { reportRoutes } from '../../manager/routes/reports.js';
import { installErrorHandlers } from '../../manager/routes/shared.js';
import { Store } from '../../manager/store/store.js';
import { Telemetry } from '../../manager/telemetry/index.js';
import { fakeHeartbeatData, fakeResourceData, heartbeatBody, resourceBody } from '../../testkit/bodies.js';
import { TEST_STORE_CONFIG, TEST_TELEMETRY_CONFIG } from '../../testkit/server.js';

const log = pino({ level: 'silent' });
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function server(maxOpenPerKind?: number) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'muster-routes-'));
  dirs.push(dir);
  const metrics = new Registry();
  const store = Store.open(dir, TEST_STORE_CONFIG, log, metrics);
  const alerts = new AlertEngine(store, log, maxOpenPerKind);
  const components = new ComponentTracker(store, alerts, 'warning');
  const registry = new NodeRegistry({ suspect_after_rounds: 2, offline_after_rounds: 3 });
  store.setNodeSource(() => undefined);
  const telemetry = new Telemetry(TEST_TELEMETRY_CONFIG, log, metrics);
  const ingest = new Ingest({ registry, store, components, alerts, telemetry, log, metrics });
  const app = createHttpServer(log, 4096);
  installErrorHandlers(app, { bodyLimit: 4096, log, onReportRefused: (...a) => ingest.refused(...a) });
  await app.register(reportRoutes, { ingest, alerts });
  return { app, store, alerts, registry, ingest, metrics, telemetry, close: () => store.close() };
}

const metricValue = async (m: Registry, name: string, labels: Record<string, string>) =>
  (await m.getSingleMetric(name)?.get())?.values.find((v) =>
    Object.entries(labels).every(([k, x]) => v.labels[k] === x),
  )?.value ?? 0;

describe('report routes', () => {
  it('POST /heartbeat and /resource: 200 with an empty body, the report stored and counted', async () => {
    const { app, registry, metrics, telemetry, close } = await server();
    let r = await app.inject({
      method: 'POST',
      url: '/heartbeat',
      payload: heartbeatBody(fakeHeartbeatData('10.0.0.5', 1, 3)),
    });
    assert.equal(r.statusCode, 200);
    assert.equal(r.body, '');
    r = await app.inject({ method: 'POST', url: '/resource', payload: resourceBody(fakeResourceData('10.0.0.5', 4)) });
    assert.equal(r.statusCode, 200);
    assert.equal(r.body, '');
    const b = registry.boardOf(registry.nodes.get('1-3-0') as never);
    assert.equal(b?.resource?.resource.cpu.usage_percent, 4);
    assert.equal(await metricValue(metrics, 'muster_manager_reports_ingested_total', { url: '/resource' }), 1);
    assert.equal(telemetry.recent('1-3-0')?.samples.length, 1);
    await app.close();
    close();
  });

  it('a refused report: 400 naming the field (or /), 413 when too large, counted by reason; nothing stored', async () => {
    const { app, registry, metrics, close } = await server();
    const bad = heartbeatBody(fakeHeartbeatData('10.0.0.5', 1, 3)) as unknown as { data: Record<string, unknown> };
    bad.data.box_id = 'one';
    let r = await app.inject({ method: 'POST', url: '/heartbeat', payload: bad });
    assert.equal(r.statusCode, 400);
    assert.deepEqual(r.json(), {
      error: 'bad_request',
      field: '/data/box_id',
      message: '/data/box_id must be integer',
    });
    r = await app.inject({
      method: 'POST',
      url: '/resource',
      payload: '{"api_version":',
      headers: { 'content-type': 'text/plain' },
    });
    assert.equal(r.statusCode, 400);
    assert.deepEqual(r.json(), { error: 'bad_request', field: '/', message: 'body is not valid JSON' });
    r = await app.inject({ method: 'POST', url: '/heartbeat', payload: 'x'.repeat(5000) });
    assert.equal(r.statusCode, 413);
    assert.deepEqual(r.json(), { error: 'payload_too_large', message: 'body larger than 4096 bytes' });
    assert.equal(registry.nodes.size, 0);
    for (const [url, reason] of [
      ['/heartbeat', 'schema'],
      ['/resource', 'json'],
      ['/heartbeat', 'too_large'],
    ] as const)
      assert.equal(await metricValue(metrics, 'muster_manager_reports_rejected_total', { url, reason }), 1, reason);
    await app.close();
    close();
  });

  it("POST /alert raises an agent's alert, then resolves it", async () => {
    const { app, store, close } = await server();
    const body = (state: 'firing' | 'resolved') => ({
      api_version: 1,
      data: {
        host_ip: '10.0.0.5',
        box_id: 1,
        slot_id: 3,
        cpu_id: 0,
        name: 'component_crashed',
        state,
        severity: 'critical',
        message: 'app died',
        instance: 'u-1',
      },
    });
    let r = await app.inject({ method: 'POST', url: '/alert', payload: body('firing') });
    assert.equal(r.statusCode, 200);
    const raised = r.json() as { id: number; state: string };
    assert.equal(raised.state, 'open');
    assert.equal(store.getAlert(raised.id)?.node, '1-3-0');
    r = await app.inject({ method: 'POST', url: '/alert', payload: body('resolved') });
    assert.deepEqual(r.json(), { state: 'resolved' });
    r = await app.inject({ method: 'POST', url: '/alert', payload: body('resolved') });
    assert.deepEqual(r.json(), { state: 'not_open' });
    r = await app.inject({
      method: 'POST',
      url: '/alert',
      payload: { api_version: 1, data: { ...body('firing').data, name: 'Bad Name' } },
    });
    assert.equal(r.statusCode, 400);
    assert.equal((r.json() as { field: string }).field, '/data/name');
    await app.close();
    close();
  });
});

describe('agent alerts bounded (alerts.max_open_per_kind)', () => {
  it('POST /alert beyond the bound: 503 alerts_full, nothing opened, counted; an open one still updates', async () => {
    const { app, alerts, store, close } = await server(2);
    const prom = new Registry();
    alertMetrics(prom, alerts);
    const body = (name: string) => ({
      api_version: 1,
      data: { host_ip: '10.0.0.5', box_id: 1, slot_id: 3, cpu_id: 0, name, state: 'firing', message: 'x' },
    });
    for (const name of ['a1', 'a2']) {
      const r = await app.inject({ method: 'POST', url: '/alert', payload: body(name) });
      assert.equal(r.statusCode, 200);
    }
    const r = await app.inject({ method: 'POST', url: '/alert', payload: body('a3') });
    assert.equal(r.statusCode, 503);
    assert.equal((r.json() as { error: string }).error, 'alerts_full');
    assert.equal((await app.inject({ method: 'POST', url: '/alert', payload: body('a1') })).statusCode, 200);
    assert.equal(await metricValue(prom, 'muster_manager_alerts_dropped_total', { kind: 'agent' }), 1);
    const open = store.listAlerts({ open: true, limit: 10 }).items;
    assert.deepEqual(open.map((a) => a.rule).sort(), ['a1', 'a2', 'alerts_capped']);
    await app.close();
    close();
  });
});

describe('query route', () => {
  it('POST /api/v1/query sends a query and collects one answer per board; 400 for a bad url', async () => {
    const { app, store, ingest, registry, metrics, close } = await server();
    // Boards that answer a heartbeat query a few ms after it leaves (one of them twice).
    const querier = {
      async send(url: string) {
        if (url !== '/heartbeat') return;
        setTimeout(() => ingest.heartbeat(fakeHeartbeatData('10.0.0.5', 1, 3)), 5);
        setTimeout(() => ingest.heartbeat(fakeHeartbeatData('10.0.0.6', 1, 4)), 10);
        setTimeout(() => ingest.heartbeat(fakeHeartbeatData('10.0.0.5', 1, 3)), 15);
      },
    };
    const rounds = new QueryRounds({
      cfg: { heartbeat_interval_ms: 1000, resource_interval_ms: 1000, jitter_ms: 0, jitter_per_node_ms: 0 },
      querier,
      registry,
      ingest,
      store,
      log,
      metrics,
    });
    await app.register(queryRoutes, { prefix: '/api/v1', rounds });
    let r = await app.inject({ method: 'POST', url: '/api/v1/query', payload: { url: '/heartbeat', wait_ms: 100 } });
    assert.equal(r.statusCode, 200);
    const q = r.json() as {
      url: string;
      wait_ms: number;
      sent_at: string;
      answers: { node: string; host_ip: string; ms: number }[];
    };
    assert.equal(q.url, '/heartbeat');
    assert.equal(q.wait_ms, 100);
    assert.deepEqual(
      q.answers.map((a) => [a.node, a.host_ip]),
      [
        ['1-3-0', '10.0.0.5'],
        ['1-4-0', '10.0.0.6'],
      ],
    );
    assert.ok(q.answers.every((a) => typeof a.ms === 'number'));
    const h = store.listHistory({ limit: 5, kind: 'operation' }).items[0];
    assert.equal(h?.operation, 'query');
    assert.equal(h?.result, 2);
    r = await app.inject({ method: 'POST', url: '/api/v1/query', payload: { url: '/deploy' } });
    assert.equal(r.statusCode, 400);
    assert.equal((r.json() as { field: string }).field, '/url');
    r = await app.inject({ method: 'POST', url: '/api/v1/query', payload: { url: '/resource', wait_ms: 60001 } });
    assert.equal((r.json() as { field: string }).field, '/wait_ms');
    await app.close();
    close();
  });
});
