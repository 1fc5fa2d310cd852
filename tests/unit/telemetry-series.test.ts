/**
 * GET /api/v1/nodes/:id/series (docs/telemetry.md "Reading it back"): the bucket width, the
 * InfluxQL (escaping, bounds), the answer on a common time axis, and the route's bounds and bad
 * input against a fake InfluxDB: the range allow-list, node ids, InfluxDB off, max_concurrent,
 * timeout_ms, max_reply_bytes, InfluxDB's own errors, each counted in
 * muster_manager_influx_queries_total{result}. The real InfluxDB: tests/e2e/dashboard-influx.test.ts.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import type { SeriesReply } from '../../common/api/telemetry.js';
import { buildServer } from '../../manager/server.js';
import { Telemetry } from '../../manager/telemetry/index.js';
import {
  assembleSeries,
  type FetchLike,
  influxString,
  MAX_TAGS,
  SeriesError,
  seriesQuery,
  stepFor,
} from '../../manager/telemetry/series.js';
import { tokenHeaders } from '../../testkit/auth.js';
import { metric } from '../../testkit/process.js';
import { serverDeps, TEST_TELEMETRY_CONFIG } from '../../testkit/server.js';

describe('series queries: step, InfluxQL, assembly', () => {
  it('picks the smallest round step that keeps a line within max_points', () => {
    assert.equal(stepFor(3600, 1000), 5);
    assert.equal(stepFor(86_400, 1000), 120);
    assert.equal(stepFor(604_800, 1000), 900);
    assert.equal(stepFor(86_400, 10), 10_800);
    for (const [range, max] of [
      [3600, 1000],
      [86_400, 720],
      [604_800, 10],
      [604_800, 10_000],
    ] as const)
      assert.ok(Math.ceil(range / stepFor(range, max)) <= max, `${range}/${max}`);
  });

  it('quotes the node as a string literal and bounds time, buckets and tags', () => {
    assert.equal(influxString("a'b\\c"), "'a\\'b\\\\c'");
    const q = seriesQuery('1-3-0', 1000, 4600, 5, 'muster', '');
    const statements = q.split('; ');
    assert.equal(statements.length, 5);
    for (const s of statements) {
      assert.match(s, /WHERE "node" = '1-3-0' AND time >= 1000s AND time < 4600s GROUP BY time\(5s\)/);
      assert.match(s, /fill\(none\)/);
    }
    assert.match(statements[2]!, new RegExp(`GROUP BY time\\(5s\\), "gpu" fill\\(none\\) SLIMIT ${MAX_TAGS}$`));
    assert.match(statements[3]!, /non_negative_derivative\(last\("rx_bytes"\), 1s\) AS "rx_rate"/);
    assert.match(seriesQuery('x', 0, 5, 5, 'db', 'rp"1'), /FROM "db"\."rp\\"1"\."cpu"/);
  });

  it('puts every line on the common time axis, nulls where InfluxDB had no bucket', () => {
    const lines = assembleSeries(
      {
        results: [
          {
            statement_id: 0,
            series: [
              {
                name: 'cpu',
                columns: ['time', 'usage_percent', 'load_avg_1m', 'temperature'],
                values: [
                  [100, 10, 0.5, null],
                  [110, 20, 0.7, null],
                  [130, 40, 0.9, null],
                  [990, 99, 9, null], // outside the range: ignored
                ],
              },
            ],
          },
          { statement_id: 1 },
          {
            statement_id: 2,
            series: [{ name: 'gpu', tags: { gpu: '1' }, columns: ['time', 'compute_usage'], values: [[120, 55]] }],
          },
        ],
      },
      100,
      10,
      4,
    );
    const cpu = lines.find((l) => l.measurement === 'cpu' && l.field === 'usage_percent');
    assert.deepEqual(cpu?.values, [10, 20, null, 40]);
    assert.equal(cpu?.unit, '%');
    assert.equal(cpu?.tag, null);
    // A field never reported (temperature: all null) gets no line.
    assert.ok(!lines.some((l) => l.field === 'temperature'));
    const gpu = lines.find((l) => l.measurement === 'gpu');
    assert.deepEqual(gpu, {
      measurement: 'gpu',
      field: 'compute_usage',
      tag: '1',
      unit: '%',
      values: [null, null, 55, null],
    });
    assert.throws(
      () => assembleSeries({ results: [{ statement_id: 0, error: 'bad things' }] }, 0, 1, 1),
      (e: unknown) => e instanceof SeriesError && e.kind === 'error' && /bad things/.test(e.message),
    );
    assert.throws(() => assembleSeries({ error: 'no db' }, 0, 1, 1), SeriesError);
  });
});

/** A JSON answer of InfluxDB to /query. */
const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

describe('GET /api/v1/nodes/:id/series', () => {
  const d = serverDeps();
  let mode: 'ok' | 'hang' | 'huge' | 'error' | 'refused' = 'ok';
  const urls: string[] = [];
  let auth: string | undefined;
  const fake: FetchLike = async (url, init) => {
    urls.push(url);
    auth = init.headers.authorization;
    if (mode === 'refused') throw new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } });
    if (mode === 'hang')
      return new Promise((_, reject) => init.signal.addEventListener('abort', () => reject(init.signal.reason)));
    if (mode === 'huge') return new Response('x'.repeat(2 << 20));
    if (mode === 'error') return json({ error: 'error parsing query: found EOF' }, 400);
    const q = new URL(url).searchParams;
    const from = Number(/time >= (\d+)s/.exec(q.get('q') ?? '')?.[1]);
    return json({
      results: [
        {
          statement_id: 0,
          series: [{ name: 'cpu', columns: ['time', 'usage_percent'], values: [[from + 120, 42.5]] }],
        },
      ],
    });
  };
  const registry = new Registry();
  const telemetry = new Telemetry(
    {
      ...TEST_TELEMETRY_CONFIG,
      influxdb: {
        ...TEST_TELEMETRY_CONFIG.influxdb,
        enabled: true,
        url: 'http://u:secret@127.0.0.1:9',
        query: { max_points: 1000, timeout_ms: 200, max_concurrent: 2, max_reply_bytes: 1 << 20 },
      },
    },
    pino({ level: 'silent' }),
    registry,
    Date.now,
    { write: async () => ({ kind: 'ok' }), ensureDatabase: async () => ({ kind: 'ok' }) },
    fake,
  );
  const app = buildServer({ ...d, telemetry });
  const d2 = serverDeps();
  const off = buildServer({ ...d2 });
  after(async () => {
    await app.close();
    await off.close();
    d.close();
    d2.close();
  });
  const count = async (result: string) =>
    metric(await registry.metrics(), 'muster_manager_influx_queries_total', { result });
  const get = async (url: string, headers: Record<string, string>) => {
    const r = await app.inject({ method: 'GET', url, headers });
    return {
      status: r.statusCode,
      body: r.json() as SeriesReply & { error?: string; message?: string; field?: string },
    };
  };

  it('answers a viewer with at most max_points buckets, from InfluxDB with the credentials', async () => {
    const viewer = await tokenHeaders(d.access, 'vic', 'viewer');
    assert.equal((await app.inject({ method: 'GET', url: '/api/v1/nodes/1-3-0/series?range=24h' })).statusCode, 401);
    mode = 'ok';
    const r = await get('/api/v1/nodes/1-3-0/series?range=24h', viewer);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.step_s, 120);
    assert.equal(r.body.times.length, 720);
    assert.equal(r.body.times[1]! - r.body.times[0]!, 120);
    assert.equal(Date.parse(r.body.to) - Date.parse(r.body.from), 86_400_000);
    assert.deepEqual(r.body.lines[0]!.values.slice(0, 2), [null, 42.5]);
    const u = new URL(urls.at(-1)!);
    assert.equal(u.pathname, '/query');
    assert.equal(u.searchParams.get('db'), 'muster');
    assert.equal(u.searchParams.get('epoch'), 's');
    assert.equal(u.username, '');
    assert.equal(auth, `Basic ${Buffer.from('u:secret').toString('base64')}`);
    assert.equal(await count('ok'), 1);
    for (const [range, n] of [
      ['1h', 720],
      ['7d', 672],
    ] as const) {
      const x = await get(`/api/v1/nodes/1-3-0/series?range=${range}`, viewer);
      assert.equal(x.body.times.length, n);
    }
  });

  it('refuses a range outside the allow-list and a bad node id with 400, before any query', async () => {
    const viewer = await tokenHeaders(d.access, 'vic', 'viewer');
    const before = urls.length;
    for (const q of ['range=2h', 'range=', '', 'range=24h&range=7d', 'range=1h%27']) {
      const r = await get(`/api/v1/nodes/1-3-0/series?${q}`, viewer);
      assert.equal(r.status, 400, q);
      assert.equal(r.body.error, 'bad_request');
    }
    for (const id of ["1-3-0'%20OR%20'1'='1", '%22x%22', 'a'.repeat(80)]) {
      const r = await get(`/api/v1/nodes/${id}/series?range=1h`, viewer);
      assert.equal(r.status, 400, id);
    }
    assert.equal(urls.length, before);
  });

  it('bounds: timeout 504, busy 503, answer too large 502, unreachable 502, InfluxDB error 502; each counted', async () => {
    const viewer = await tokenHeaders(d.access, 'vic', 'viewer');
    mode = 'hang';
    const t0 = Date.now();
    const slow = await get('/api/v1/nodes/1-3-0/series?range=1h', viewer);
    assert.equal(slow.status, 504);
    assert.equal(slow.body.error, 'timeout');
    assert.ok(Date.now() - t0 < 5000);
    assert.equal(await count('timeout'), 1);

    // Two in flight (max_concurrent), the third refused at once.
    const a = get('/api/v1/nodes/1-3-0/series?range=1h', viewer);
    const b = get('/api/v1/nodes/1-3-0/series?range=1h', viewer);
    await new Promise((r) => setTimeout(r, 20));
    const c = await get('/api/v1/nodes/1-3-0/series?range=1h', viewer);
    assert.equal(c.status, 503);
    assert.equal(c.body.error, 'busy');
    assert.equal(await count('busy'), 1);
    assert.equal((await a).status, 504);
    assert.equal((await b).status, 504);

    mode = 'huge';
    const huge = await get('/api/v1/nodes/1-3-0/series?range=1h', viewer);
    assert.equal(huge.status, 502);
    assert.equal(huge.body.error, 'too_large');
    assert.equal(await count('too_large'), 1);

    mode = 'refused';
    const down = await get('/api/v1/nodes/1-3-0/series?range=1h', viewer);
    assert.equal(down.status, 502);
    assert.equal(down.body.error, 'unreachable');
    assert.match(down.body.message ?? '', /ECONNREFUSED/);
    assert.ok(!JSON.stringify(down.body).includes('secret'));

    mode = 'error';
    const bad = await get('/api/v1/nodes/1-3-0/series?range=1h', viewer);
    assert.equal(bad.status, 502);
    assert.match(bad.body.message ?? '', /error parsing query/);
    assert.equal(await count('error'), 1);
    mode = 'ok';
    assert.equal((await get('/api/v1/nodes/1-3-0/series?range=1h', viewer)).status, 200);
  });

  it('with InfluxDB off: 503 not_enabled', async () => {
    const viewer = await tokenHeaders(d2.access, 'vic', 'viewer');
    const r = await off.inject({ method: 'GET', url: '/api/v1/nodes/1-3-0/series?range=1h', headers: viewer });
    assert.equal(r.statusCode, 503);
    assert.equal(r.json().error, 'not_enabled');
  });
});
