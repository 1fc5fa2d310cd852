/**
 * The manager's telemetry as the manager uses it (manager/telemetry/index.ts): reports are only
 * enqueued on the ingest path and converted on the next turn of the event loop, points reach the
 * writer in order, the recent history works with InfluxDB off, the status and metrics; and the
 * REST routes (manager/routes/telemetry.ts) on a fastify instance.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Fastify from 'fastify';
import pino from 'pino';
import { Registry } from 'prom-client';
import type { ManagerConfig } from '../../manager/config.js';
import { telemetryRoutes } from '../../manager/routes/telemetry.js';
import { type NodeTags, type PointWriter, Telemetry, type WriteOutcome } from '../../manager/telemetry/index.js';
import { fakeHeartbeatData, fakeResourceData } from '../../testkit/bodies.js';
import { metric, waitFor } from '../helpers/daemons.js';

const T0 = Date.parse('2026-11-21T08:00:00.000Z');
const TAGS: NodeTags = { node: '1-3-0', box: 1, slot: 3, cpu: 0, hostname: 'fake-1-3-0', host_ip: '10.0.0.5' };

function cfg(enabled: boolean, over: Partial<ManagerConfig['telemetry']['influxdb']> = {}): ManagerConfig['telemetry'] {
  return {
    recent: { window_ms: 1_800_000, max_samples: 360 },
    influxdb: {
      enabled,
      url: 'http://user:secret@127.0.0.1:1',
      database: 'muster',
      username: '',
      password: '',
      retention_policy: '',
      batch_points: 1000,
      flush_interval_ms: 20,
      buffer_points: 10_000,
      timeout_ms: 1000,
      retry_max_ms: 100,
      query: { max_points: 1000, timeout_ms: 1000, max_concurrent: 2, max_reply_bytes: 1 << 20 },
      ...over,
    },
  };
}

/** Collects the lines written, as [measurement, time, line]. */
class Collect implements PointWriter<string> {
  points: { measurement: string; timestamp: number; line: string }[] = [];
  async ensureDatabase(): Promise<WriteOutcome> {
    return { kind: 'ok' };
  }
  async write(lines: string[]): Promise<WriteOutcome> {
    for (const line of lines)
      this.points.push({ measurement: line.split(',')[0] ?? '', timestamp: Number(line.split(' ').at(-1)), line });
    return { kind: 'ok' };
  }
}

const silent = pino({ level: 'silent' });

describe('telemetry', () => {
  it('a link-specification heartbeat: its metrics as a recent sample and cpu, memory, disk, node_state points', async () => {
    const w = new Collect();
    const now = T0;
    const t = new Telemetry(cfg(true), silent, new Registry(), () => now, w);
    await t.start();
    const tags: NodeTags = {
      node: 'node-001',
      box: -1,
      slot: -1,
      cpu: -1,
      hostname: 'server-01',
      host_ip: '192.168.1.100',
    };
    t.linkMetrics(tags, { cpu_usage: 45.2, memory_usage: 68.5, disk_usage: 34.1, load_average: 1.23 }, T0);
    t.linkMetrics(tags, { cpu_usage: 10 }, T0 + 30_000);
    await waitFor('points written', () => w.points.length === 6, 5000, 5);
    assert.deepEqual(
      w.points.map((p) => p.measurement),
      ['cpu', 'memory', 'disk', 'node_state', 'cpu', 'node_state'],
    );
    assert.equal(
      w.points[0]?.line,
      `cpu,box=-1,cpu=-1,host_ip=192.168.1.100,hostname=server-01,node=node-001,slot=-1 load_avg_1m=1.23,usage_percent=45.2 ${T0}`,
    );
    const view = t.recent('node-001');
    assert.equal(view?.samples.length, 2);
    assert.equal(view?.samples[0]?.cpu_usage_percent, 45.2);
    assert.equal(view?.samples[0]?.memory_usage_percent, 68.5);
    assert.equal(view?.samples[0]?.disk_usage_percent_max, 34.1);
    assert.equal(view?.samples[1]?.memory_usage_percent, null);
    await t.stop();
  });

  it('converts a report on arrival, keeps nothing of it, and hands the points over on the next turn, in order', async () => {
    const w = new Collect();
    let now = T0;
    const registry = new Registry();
    const t = new Telemetry(cfg(true), silent, registry, () => now, w);
    await t.start();
    const r = fakeResourceData('10.0.0.5', 7);
    t.heartbeat(TAGS, fakeHeartbeatData('10.0.0.5', 1, 3), T0);
    t.resource(TAGS, r, T0 + 1);
    t.nodeState(TAGS, 'suspect', 2, T0 + 2, 'missed 2 heartbeat rounds');
    // The sample is recorded at once; the points wait for the next turn, already converted: a
    // change to the report object afterwards changes nothing (no reference to it is kept).
    assert.equal(t.history.size().samples, 1);
    assert.equal(w.points.length, 0);
    r.resource.cpu.usage_percent = 99;
    await waitFor('points written', () => w.points.length === 8, 5000, 5);
    assert.deepEqual(
      w.points.map((p) => [p.measurement, p.timestamp]),
      [
        ['node_state', T0],
        ['cpu', T0 + 1],
        ['memory', T0 + 1],
        ['network', T0 + 1],
        ['disk', T0 + 1],
        ['gpu', T0 + 1],
        ['component', T0 + 1],
        ['node_state', T0 + 2],
      ],
    );
    assert.match(
      w.points[1]?.line ?? '',
      /usage_percent=7[ ,]/,
      'the cpu point has the figure the report had on arrival',
    );
    assert.match(
      w.points[7]?.line ?? '',
      / missed_rounds=2i,reason="missed 2 heartbeat rounds",state="suspect",state_code=1i /,
    );
    now = T0 + 1000;
    const v = t.recent('1-3-0');
    assert.equal(v?.samples.length, 1);
    assert.equal(v?.samples[0]?.cpu_usage_percent, 7);
    const s = t.status();
    assert.equal(s.influxdb.enabled, true);
    assert.equal(s.influxdb.url, 'http://127.0.0.1:1', 'credentials are not shown');
    assert.equal(s.influxdb.written, 8);
    assert.equal(s.influxdb.buffered, 0);
    assert.equal(s.influxdb.dropped, 0);
    assert.equal(s.influxdb.reachable, true);
    assert.ok(s.influxdb.last_write_at);
    assert.deepEqual(s.recent, { nodes: 1, samples: 1 });
    assert.equal(metric(await registry.metrics(), 'muster_manager_influx_points_written_total'), 8);
    await t.stop();
  });

  it('reports not yet converted count as buffered', async () => {
    const w = new Collect();
    const registry = new Registry();
    const t = new Telemetry(cfg(true), silent, registry, Date.now, w);
    t.resource(TAGS, fakeResourceData('10.0.0.5'), T0);
    assert.equal(metric(await registry.metrics(), 'muster_manager_influx_points_buffered'), 6);
    await t.stop();
  });

  it('with InfluxDB off: no points, but the recent history and the status', async () => {
    const registry = new Registry();
    const t = new Telemetry(cfg(false), silent, registry, () => T0 + 10);
    await t.start();
    t.heartbeat(TAGS, fakeHeartbeatData('10.0.0.5', 1, 3), T0);
    t.resource(TAGS, fakeResourceData('10.0.0.5', 3), T0);
    t.nodeState(TAGS, 'offline', 5, T0, 'missed 5 heartbeat rounds');
    assert.equal(t.recent('1-3-0')?.samples[0]?.cpu_usage_percent, 3);
    assert.deepEqual(t.status(), {
      influxdb: {
        enabled: false,
        url: 'http://127.0.0.1:1',
        database: 'muster',
        reachable: null,
        buffered: 0,
        written: 0,
        dropped: 0,
        last_error: null,
        last_write_at: null,
      },
      recent: { nodes: 1, samples: 1 },
    });
    await t.stop();
  });

  it('InfluxDB unreachable at start: start() resolves, a warning names the URL, points are buffered', async () => {
    const lines: Record<string, unknown>[] = [];
    const log = pino({ level: 'info' }, { write: (s: string) => lines.push(JSON.parse(s)) });
    const down: PointWriter = {
      ensureDatabase: async () => ({ kind: 'unreachable', error: 'connect ECONNREFUSED 127.0.0.1:1' }),
      write: async () => ({ kind: 'unreachable', error: 'connect ECONNREFUSED 127.0.0.1:1' }),
    };
    const t = new Telemetry(cfg(true), log, new Registry(), Date.now, down);
    await t.start();
    await waitFor('the warning', () => lines.some((l) => l.level === 40), 5000, 5);
    const warn = lines.find((l) => l.level === 40);
    assert.match(String(warn?.msg), /http:\/\/127\.0\.0\.1:1/);
    assert.match(String(warn?.err), /ECONNREFUSED/);
    t.resource(TAGS, fakeResourceData('10.0.0.5'), Date.now());
    const s = t.status();
    assert.equal(s.influxdb.reachable, false);
    assert.equal(s.influxdb.buffered, 6);
    assert.match(s.influxdb.last_error ?? '', /ECONNREFUSED/);
    await t.stop();
    assert.equal(t.status().influxdb.dropped, 6, 'lost at shutdown, and counted');
  });
});

describe('telemetry routes', () => {
  async function app() {
    const telemetry = new Telemetry(cfg(false), silent, new Registry(), Date.now);
    const registry = { nodes: new Set(['1-3-0', '2-1-0']) };
    const a = Fastify();
    await a.register(telemetryRoutes, { prefix: '/api/v1', telemetry, registry });
    await a.ready();
    return { a, telemetry };
  }

  it('GET /api/v1/nodes/:id/recent: samples, since, 404 for an unknown node, [] before a report', async () => {
    const { a, telemetry } = await app();
    const now = Date.now();
    telemetry.resource(TAGS, fakeResourceData('10.0.0.5', 1), now - 120_000);
    telemetry.resource(TAGS, fakeResourceData('10.0.0.5', 2), now - 1000);
    let r = await a.inject({ url: '/api/v1/nodes/1-3-0/recent' });
    assert.equal(r.statusCode, 200);
    let body = r.json() as { node: string; window_ms: number; samples: { at: string; cpu_usage_percent: number }[] };
    assert.equal(body.node, '1-3-0');
    assert.equal(body.window_ms, 1_800_000);
    assert.deepEqual(
      body.samples.map((s) => s.cpu_usage_percent),
      [1, 2],
    );
    assert.equal(body.samples[1]?.at, new Date(now - 1000).toISOString());
    r = await a.inject({ url: '/api/v1/nodes/1-3-0/recent?since=1m' });
    body = r.json();
    assert.deepEqual(
      body.samples.map((s) => s.cpu_usage_percent),
      [2],
    );
    r = await a.inject({
      url: `/api/v1/nodes/1-3-0/recent?since=${encodeURIComponent(new Date(now - 200_000).toISOString())}`,
    });
    assert.equal((r.json() as typeof body).samples.length, 2);
    r = await a.inject({ url: '/api/v1/nodes/2-1-0/recent' });
    assert.equal(r.statusCode, 200);
    assert.deepEqual(r.json(), { node: '2-1-0', window_ms: 1_800_000, samples: [] });
    r = await a.inject({ url: '/api/v1/nodes/9-9-9/recent' });
    assert.equal(r.statusCode, 404);
    assert.equal((r.json() as { error: string }).error, 'not_found');
    await a.close();
  });

  it('a bad since is 400 naming the field', async () => {
    const { a } = await app();
    const r = await a.inject({ url: '/api/v1/nodes/1-3-0/recent?since=yesterday' });
    assert.equal(r.statusCode, 400);
    const b = r.json() as { error: string; field: string; message: string };
    assert.equal(b.error, 'bad_request');
    assert.equal(b.field, 'since');
    assert.match(b.message, /since: cannot read "yesterday"/);
    await a.close();
  });

  it('GET /api/v1/telemetry is the status', async () => {
    const { a } = await app();
    const r = await a.inject({ url: '/api/v1/telemetry' });
    assert.equal(r.statusCode, 200);
    const b = r.json() as { influxdb: { enabled: boolean }; recent: { nodes: number } };
    assert.equal(b.influxdb.enabled, false);
    assert.equal(b.recent.nodes, 0);
    await a.close();
  });
});
