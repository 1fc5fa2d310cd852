/**
 * The alert and history routes (manager/routes/alerts.ts, manager/routes/history.ts) in process,
 * on a real Store in a temporary directory and a real AlertEngine: lists and pages as stored,
 * rules put and deleted (with their history entries and `who`), 400 naming the field for a bad
 * query or rule, 404 and 409 as documented, 204 with no body.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import { createHttpServer } from '../../common/http.js';
import { metricCatalog } from '../../manager/alerts/catalog.js';
import { AlertEngine } from '../../manager/alerts/engine.js';
import { alertRoutes } from '../../manager/routes/alerts.js';
import { historyRoutes } from '../../manager/routes/history.js';
import { installErrorHandlers } from '../../manager/routes/shared.js';
import { Store } from '../../manager/store/store.js';
import { actAs } from '../../testkit/auth.js';
import { TEST_STORE_CONFIG } from '../../testkit/server.js';

const log = pino({ level: 'silent' });
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function server(configRules: Record<string, { metric: string; op: '>'; threshold: number }> = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'muster-routes-'));
  dirs.push(dir);
  const store = Store.open(dir, TEST_STORE_CONFIG, log, new Registry());
  const alerts = new AlertEngine(store, log);
  alerts.restore();
  alerts.syncConfigRules(configRules, Date.now());
  const app = createHttpServer(log, 1 << 20);
  installErrorHandlers(app, { bodyLimit: 1 << 20, log });
  actAs(app, 'zoë');
  await app.register(alertRoutes, { prefix: '/api/v1', alerts, store });
  await app.register(historyRoutes, { prefix: '/api/v1', store });
  await app.ready();
  return {
    app,
    store,
    alerts,
    close: async () => {
      await app.close();
      store.close();
    },
  };
}

describe('alert routes', () => {
  it('GET /api/v1/alerts lists as stored, newest first, with filters and pages', async () => {
    const { app, store, alerts, close } = await server();
    for (let i = 0; i < 3; i++)
      alerts.raise(
        { kind: 'agent', rule: `a${i}`, severity: i === 0 ? 'critical' : 'warning', node: '1-1-0', message: `m${i}` },
        1_800_000_000_000 + i,
      );
    let r = await app.inject({ url: '/api/v1/alerts' });
    assert.equal(r.statusCode, 200);
    const all = store.listAlerts({ limit: 50 });
    assert.deepEqual(r.json(), JSON.parse(JSON.stringify({ alerts: all.items, next: all.next })));
    r = await app.inject({ url: '/api/v1/alerts?limit=2' });
    const page = r.json() as { alerts: { id: number }[]; next: number };
    assert.equal(page.alerts.length, 2);
    assert.equal(page.next, page.alerts[1]?.id);
    r = await app.inject({ url: `/api/v1/alerts?before=${page.next}` });
    assert.deepEqual(
      (r.json() as { alerts: { rule: string }[]; next: null }).alerts.map((a) => a.rule),
      ['a0'],
    );
    r = await app.inject({ url: '/api/v1/alerts?severity=critical&open=true&node=1-1-0' });
    assert.deepEqual(
      (r.json() as { alerts: { rule: string }[] }).alerts.map((a) => a.rule),
      ['a0'],
    );
    r = await app.inject({ url: `/api/v1/alerts/${page.alerts[0]?.id}` });
    assert.equal((r.json() as { alert: { rule: string } }).alert.rule, 'a2');
    await close();
  });

  it('400 naming the field for a bad page or filter; 404 for an unknown alert', async () => {
    const { app, close } = await server();
    const cases: [string, string][] = [
      ['/api/v1/alerts?limit=0', 'limit'],
      ['/api/v1/alerts?limit=1001', 'limit'],
      ['/api/v1/alerts?since=soon', 'since'],
      ['/api/v1/alerts?severity=fatal', 'querystring/severity'],
      ['/api/v1/alerts?colour=red', 'querystring/colour'],
      ['/api/v1/alerts?node=-1-2', 'querystring/node'],
    ];
    for (const [url, field] of cases) {
      const r = await app.inject({ url });
      assert.equal(r.statusCode, 400, url);
      assert.equal((r.json() as { field: string }).field, field, url);
    }
    const r = await app.inject({ url: '/api/v1/alerts/77' });
    assert.equal(r.statusCode, 404);
    assert.deepEqual(r.json(), { error: 'not_found', message: 'no alert 77' });
    await close();
  });

  it('PUT and DELETE /api/v1/alert-rules/:name: the rule, its history entry and who; 204 without a body', async () => {
    const { app, store, close } = await server();
    let r = await app.inject({
      method: 'PUT',
      url: '/api/v1/alert-rules/gpu_hot',
      payload: { metric: 'gpu.temperature', op: '>', threshold: 85, for_ms: 30000, severity: 'critical' },
    });
    assert.equal(r.statusCode, 200);
    const rule = (r.json() as { rule: Record<string, unknown> }).rule;
    assert.deepEqual(
      { ...rule, updated_at: 'x' },
      {
        name: 'gpu_hot',
        metric: 'gpu.temperature',
        op: '>',
        threshold: 85,
        for_ms: 30000,
        severity: 'critical',
        enabled: true,
        source: 'api',
        updated_at: 'x',
      },
    );
    r = await app.inject({ url: '/api/v1/alert-rules' });
    assert.deepEqual((r.json() as { rules: unknown[] }).rules, [rule]);
    r = await app.inject({ method: 'DELETE', url: '/api/v1/alert-rules/gpu_hot' });
    assert.equal(r.statusCode, 204);
    assert.equal(r.body, '');
    r = await app.inject({ method: 'DELETE', url: '/api/v1/alert-rules/gpu_hot' });
    assert.equal(r.statusCode, 404);
    assert.equal((r.json() as { error: string }).error, 'not_found');
    const h = store.listHistory({ limit: 10, kind: 'operation' }).items;
    assert.deepEqual(
      h.map((e) => [e.operation, e.who]),
      [
        ['alert-rule.delete', 'zoë'],
        ['alert-rule.put', 'zoë'],
      ],
    );
    await close();
  });

  it('a bad rule is 400 naming the field; a rule of the config file is 409', async () => {
    const { app, close } = await server({ cfg_rule: { metric: 'cpu.temperature', op: '>', threshold: 90 } });
    const put = (name: string, payload: unknown) =>
      app.inject({ method: 'PUT', url: `/api/v1/alert-rules/${name}`, payload: payload as object });
    let r = await put('x', { metric: 'cpu.temprature', op: '>', threshold: 1 });
    assert.equal(r.statusCode, 400);
    assert.equal((r.json() as { field: string }).field, '/metric');
    r = await put('x', { metric: 'cpu.temperature', op: '=>', threshold: 1 });
    assert.equal(r.statusCode, 400);
    assert.equal((r.json() as { field: string }).field, '/op');
    r = await put('x', { metric: 'cpu.temperature', op: '>', threshold: 1, colour: 'red' });
    assert.equal((r.json() as { field: string }).field, '/colour');
    r = await put('Bad-Name', { metric: 'cpu.temperature', op: '>', threshold: 1 });
    assert.equal((r.json() as { field: string }).field, 'params/name');
    r = await put('cfg_rule', { metric: 'cpu.temperature', op: '>', threshold: 1 });
    assert.equal(r.statusCode, 409);
    assert.equal((r.json() as { error: string }).error, 'conflict');
    r = await app.inject({ method: 'DELETE', url: '/api/v1/alert-rules/cfg_rule' });
    assert.equal(r.statusCode, 409);
    await close();
  });

  it('GET /api/v1/metrics-catalog is the catalog', async () => {
    const { app, close } = await server();
    const r = await app.inject({ url: '/api/v1/metrics-catalog' });
    assert.deepEqual(r.json(), { metrics: metricCatalog() });
    await close();
  });
});

describe('history route', () => {
  it('GET /api/v1/history: entries as stored, by kind and node, paged; 400 for a bad kind', async () => {
    const { app, store, close } = await server();
    store.addHistory({
      at: 1,
      node: '1-1-0',
      kind: 'state',
      operation: 'online',
      args: { from: null },
      who: 'manager',
    });
    store.addHistory({ at: 2, node: null, kind: 'operation', operation: 'query', args: null, result: 3, who: 'cli' });
    store.addHistory({ at: 3, node: '1-2-0', kind: 'state', operation: 'suspect', args: null, who: 'manager' });
    let r = await app.inject({ url: '/api/v1/history' });
    assert.equal(r.statusCode, 200);
    const all = store.listHistory({ limit: 50 });
    assert.deepEqual(r.json(), JSON.parse(JSON.stringify({ history: all.items, next: all.next })));
    r = await app.inject({ url: '/api/v1/history?kind=state&node=1-1-0' });
    assert.deepEqual(
      (r.json() as { history: { operation: string; args: unknown }[] }).history.map((e) => [e.operation, e.args]),
      [['online', { from: null }]],
    );
    r = await app.inject({ url: '/api/v1/history?limit=1' });
    assert.equal((r.json() as { next: number | null }).next, all.items[0]?.id);
    r = await app.inject({ url: '/api/v1/history?kind=deploy' });
    assert.equal(r.statusCode, 400);
    assert.equal((r.json() as { field: string }).field, 'querystring/kind');
    await close();
  });
});
