/**
 * The report source check (manager/ingest.ts `checkSource`, docs/protocol.md "4. The manager's
 * answers to reports"): a report whose host_ip is not its TCP peer is refused with 400 naming
 * /data/host_ip and counted (or only counted with reports.require_source_match false); a board
 * claiming a position held by another address stays a conflict, never an overwrite.
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
import { ComponentTracker } from '../../manager/components.js';
import { Ingest, peerIPv4, sourceMatches } from '../../manager/ingest.js';
import { NodeRegistry } from '../../manager/registry.js';
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

async function server(requireSourceMatch: boolean) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'muster-routes-'));
  dirs.push(dir);
  const metrics = new Registry();
  const store = Store.open(dir, TEST_STORE_CONFIG, log, metrics);
  const alerts = new AlertEngine(store, log);
  const components = new ComponentTracker(store, alerts, 'warning');
  const registry = new NodeRegistry({ suspect_after_rounds: 2, offline_after_rounds: 3 });
  store.setNodeSource(() => undefined);
  const telemetry = new Telemetry(TEST_TELEMETRY_CONFIG, log, metrics);
  const ingest = new Ingest({
    registry,
    store,
    components,
    alerts,
    telemetry,
    log,
    metrics,
    reports: { require_source_match: requireSourceMatch },
  });
  const app = createHttpServer(log, 4096);
  installErrorHandlers(app, { bodyLimit: 4096, log, onReportRefused: (...a) => ingest.refused(...a) });
  await app.register(reportRoutes, { ingest, alerts });
  return { app, store, alerts, registry, ingest, metrics, telemetry, close: () => store.close() };
}

const metricValue = async (m: Registry, name: string, labels: Record<string, string>) =>
  (await m.getSingleMetric(name)?.get())?.values.find((v) =>
    Object.entries(labels).every(([k, x]) => v.labels[k] === x),
  )?.value ?? 0;

describe('report source check', () => {
  it('sourceMatches: same address, IPv4-mapped IPv6, and the loopback exemption', () => {
    const locals = new Set(['127.0.0.1', '192.168.10.254']);
    assert.equal(peerIPv4('::ffff:10.0.0.5'), '10.0.0.5');
    assert.equal(peerIPv4('::FFFF:10.0.0.5'), '10.0.0.5');
    assert.equal(sourceMatches('10.0.0.5', '10.0.0.5', locals), true);
    assert.equal(sourceMatches('::ffff:10.0.0.5', '10.0.0.5', locals), true);
    assert.equal(sourceMatches('10.0.0.6', '10.0.0.5', locals), false);
    assert.equal(sourceMatches('::ffff:10.0.0.6', '10.0.0.5', locals), false);
    assert.equal(sourceMatches(undefined, '10.0.0.5', locals), false);
    // A process on the manager's machine: a loopback host_ip or one of this machine's addresses.
    assert.equal(sourceMatches('127.0.0.1', '127.20.1.5', locals), true);
    assert.equal(sourceMatches('::1', '127.0.0.1', locals), true);
    assert.equal(sourceMatches('127.0.0.1', '192.168.10.254', locals), true);
    assert.equal(sourceMatches('127.0.0.1', '192.168.10.23', locals), false, 'another board, from this machine');
    // Not the other way round: a LAN peer cannot claim a loopback or a manager address.
    assert.equal(sourceMatches('192.168.10.23', '127.0.0.1', locals), false);
    assert.equal(sourceMatches('192.168.10.23', '192.168.10.254', locals), false);
  });

  it("a report for another board's host_ip from another address: 400 naming /data/host_ip, counted, nothing changed", async () => {
    const { app, registry, metrics, close } = await server(true);
    let r = await app.inject({
      method: 'POST',
      url: '/heartbeat',
      payload: heartbeatBody(fakeHeartbeatData('10.0.0.5', 1, 3)),
      remoteAddress: '::ffff:10.0.0.5',
    });
    assert.equal(r.statusCode, 200, r.body);
    r = await app.inject({
      method: 'POST',
      url: '/resource',
      payload: resourceBody(fakeResourceData('10.0.0.5', 4)),
      remoteAddress: '10.0.0.5',
    });
    assert.equal(r.statusCode, 200, r.body);
    const forged = heartbeatBody({ ...fakeHeartbeatData('10.0.0.5', 1, 3), hostname: 'evil' });
    r = await app.inject({ method: 'POST', url: '/heartbeat', payload: forged, remoteAddress: '10.0.0.66' });
    assert.equal(r.statusCode, 400);
    const body = r.json() as { error: string; field: string; message: string };
    assert.equal(body.error, 'bad_request');
    assert.equal(body.field, '/data/host_ip');
    assert.match(body.message, /10\.0\.0\.5 is not the address the report came from \(10\.0\.0\.66\)/);
    r = await app.inject({
      method: 'POST',
      url: '/resource',
      payload: resourceBody(fakeResourceData('10.0.0.5', 99)),
      remoteAddress: '10.0.0.66',
    });
    assert.equal(r.statusCode, 400);
    const n = registry.nodes.get('1-3-0');
    assert.ok(n);
    const b = registry.boardOf(n);
    assert.notEqual(b?.heartbeat?.hostname, 'evil');
    assert.equal(b?.resource?.resource.cpu.usage_percent, 4, 'the board keeps its data');
    assert.equal(n.claimants.size, 1);
    assert.equal(
      await metricValue(metrics, 'muster_manager_reports_rejected_total', {
        url: '/heartbeat',
        reason: 'source_mismatch',
      }),
      1,
    );
    assert.equal(await metricValue(metrics, 'muster_manager_reports_source_mismatch_total', { url: '/resource' }), 1);
    await app.close();
    close();
  });

  it('with require_source_match false a mismatch is only counted', async () => {
    const { app, registry, metrics, close } = await server(false);
    const r = await app.inject({
      method: 'POST',
      url: '/heartbeat',
      payload: heartbeatBody(fakeHeartbeatData('10.0.0.5', 1, 3)),
      remoteAddress: '10.0.0.66',
    });
    assert.equal(r.statusCode, 200);
    assert.ok(registry.nodes.get('1-3-0'));
    assert.equal(await metricValue(metrics, 'muster_manager_reports_source_mismatch_total', { url: '/heartbeat' }), 1);
    assert.equal(
      await metricValue(metrics, 'muster_manager_reports_rejected_total', {
        url: '/heartbeat',
        reason: 'source_mismatch',
      }),
      0,
    );
    await app.close();
    close();
  });

  it('a board claiming a position held by another address (its own source) is a conflict, not an overwrite', async () => {
    const { app, registry, close } = await server(true);
    const conflicts: unknown[] = [];
    registry.on('conflict', (c) => conflicts.push(c));
    let r = await app.inject({
      method: 'POST',
      url: '/heartbeat',
      payload: heartbeatBody({ ...fakeHeartbeatData('10.0.0.5', 1, 3), hostname: 'first' }),
      remoteAddress: '10.0.0.5',
    });
    assert.equal(r.statusCode, 200);
    r = await app.inject({
      method: 'POST',
      url: '/heartbeat',
      payload: heartbeatBody({ ...fakeHeartbeatData('10.0.0.7', 1, 3), hostname: 'second' }),
      remoteAddress: '10.0.0.7',
    });
    assert.equal(r.statusCode, 200);
    const n = registry.nodes.get('1-3-0');
    assert.ok(n);
    assert.equal(n.primary, '10.0.0.5', 'the position still shows the first board');
    assert.deepEqual([...n.claimants].sort(), ['10.0.0.5', '10.0.0.7']);
    assert.equal(registry.boardOf(n)?.heartbeat?.hostname, 'first');
    assert.equal(conflicts.length, 1);
    await app.close();
    close();
  });
});
