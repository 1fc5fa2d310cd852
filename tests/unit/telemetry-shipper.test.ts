/**
 * The InfluxDB write buffer (manager/telemetry/shipper.ts) against a fake writer: batches by size
 * and by time, one write in flight, oldest first, the bound with drop-oldest accounting, retries
 * with backoff for unreachable / 5xx, 4xx batches dropped as rejected, the database created when
 * missing, the last flush at stop, and the metrics and log lines that say all of it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import type { Point } from '../../manager/telemetry/points.js';
import {
  backoffMs,
  influxMetrics,
  PointShipper,
  type PointWriter,
  type ShipperOptions,
  type WriteOutcome,
} from '../../manager/telemetry/shipper.js';
import { metric, waitFor } from '../helpers/daemons.js';

/** Point number `i` (its id is in the `n` field). */
const pt = (i: number): Point => ({
  measurement: 'cpu',
  tags: { node: '1-1-0' },
  fields: { usage_percent: i },
  timestamp: 1_700_000_000_000 + i,
});
const pts = (from: number, n: number) => Array.from({ length: n }, (_, k) => pt(from + k));
const idOf = (p: Point) => p.fields.usage_percent as number;
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => from + k);

/** A writer whose answers the test scripts; records every batch and the concurrency. */
class FakeWriter implements PointWriter<Point> {
  batches: number[][] = [];
  written: number[] = [];
  ensures = 0;
  /** Next outcome(s) of write; when empty, `fallback`. */
  script: WriteOutcome[] = [];
  fallback: WriteOutcome = { kind: 'ok' };
  ensureOutcome: WriteOutcome = { kind: 'ok' };
  inFlight = 0;
  maxInFlight = 0;
  /** When set, writes wait for it. */
  gate: Promise<void> | null = null;

  async ensureDatabase(): Promise<WriteOutcome> {
    this.ensures++;
    return this.ensureOutcome;
  }

  async write(points: Point[]): Promise<WriteOutcome> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      this.batches.push(points.map(idOf));
      if (this.gate) await this.gate;
      else await Promise.resolve();
      const o = this.script.shift() ?? this.fallback;
      if (o.kind === 'ok') this.written.push(...points.map(idOf));
      if (o.kind === 'rejected' && o.refused !== null)
        this.written.push(...points.slice(0, points.length - o.refused).map(idOf));
      return o;
    } finally {
      this.inFlight--;
    }
  }
}

const DOWN: WriteOutcome = { kind: 'unreachable', error: 'connect ECONNREFUSED 127.0.0.1:1' };

function setup(over: Partial<ShipperOptions> = {}, writer = new FakeWriter()) {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => lines.push(JSON.parse(s)) });
  const registry = new Registry();
  const m = influxMetrics(registry);
  const opts: ShipperOptions = {
    url: 'http://127.0.0.1:1',
    database: 'muster',
    batch_points: 10,
    flush_interval_ms: 30,
    buffer_points: 100,
    retry_max_ms: 60,
    ...over,
  };
  const s = new PointShipper<Point>(opts, writer, log, m, Date.now);
  const page = () => registry.metrics();
  return { s, writer, lines, page, opts };
}

describe('telemetry write buffer', () => {
  it('backoff doubles from the first delay up to the most', () => {
    assert.equal(backoffMs(0, 100, 1000), 0);
    assert.equal(backoffMs(1, 100, 1000), 100);
    assert.equal(backoffMs(2, 100, 1000), 200);
    assert.equal(backoffMs(4, 100, 1000), 800);
    assert.equal(backoffMs(5, 100, 1000), 1000);
    assert.equal(backoffMs(500, 100, 1000), 1000);
  });

  it('writes full batches at once, oldest first, one write at a time; the rest after the flush interval', async () => {
    const { s, writer, page } = setup({ flush_interval_ms: 200 });
    s.start();
    await waitFor('database checked', () => writer.ensures === 1);
    s.add(pts(0, 25));
    await waitFor('two full batches written', () => writer.written.length === 20, 5000, 5);
    // The remaining 5 wait for the interval, then go in one write.
    assert.equal(s.stats().buffered, 5);
    await waitFor('the partial batch written after the interval', () => writer.written.length === 25, 5000, 10);
    assert.deepEqual(
      writer.batches.map((b) => b.length),
      [10, 10, 5],
    );
    assert.deepEqual(writer.written, range(0, 25));
    assert.equal(writer.maxInFlight, 1);
    const st = s.stats();
    assert.equal(st.written, 25);
    assert.equal(st.buffered, 0);
    assert.equal(st.dropped, 0);
    assert.equal(st.reachable, true);
    assert.ok(st.last_write_at);
    const p = await page();
    assert.equal(metric(p, 'muster_manager_influx_points_written_total'), 25);
    assert.equal(metric(p, 'muster_manager_influx_points_dropped_total'), 0);
    await s.stop(1000);
  });

  it('a slow write: points added meanwhile wait, never a second write in flight', async () => {
    const writer = new FakeWriter();
    let open: () => void = () => {};
    writer.gate = new Promise<void>((r) => {
      open = r;
    });
    const { s } = setup({ batch_points: 5 }, writer);
    s.start();
    await waitFor('database checked', () => writer.ensures === 1);
    s.add(pts(0, 5));
    await waitFor('first write in flight', () => writer.inFlight === 1, 5000, 5);
    s.add(pts(5, 20));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(writer.batches.length, 1, 'no second write while the first is in flight');
    assert.equal(s.stats().buffered, 25);
    writer.gate = null;
    open();
    await waitFor('everything written', () => writer.written.length === 25, 5000, 5);
    assert.deepEqual(writer.written, range(0, 25));
    assert.equal(writer.maxInFlight, 1);
    await s.stop(1000);
  });

  it('while InfluxDB is down: retries with backoff, drops exactly the oldest beyond the bound, then writes the newest', async () => {
    const writer = new FakeWriter();
    writer.fallback = DOWN;
    writer.ensureOutcome = DOWN;
    const { s, lines, page, opts } = setup({ buffer_points: 100, retry_max_ms: 80 }, writer);
    s.start();
    await waitFor('first attempt failed', () => s.stats().reachable === false, 5000, 5);
    const warn = lines.find((l) => String(l.msg).includes('unreachable'));
    assert.ok(warn, JSON.stringify(lines));
    assert.equal(warn.url, opts.url);
    assert.equal(warn.buffer_points, 100);
    assert.match(String(warn.msg), /http:\/\/127\.0\.0\.1:1/);

    for (let i = 0; i < 150; i += 30) s.add(pts(i, 30));
    const st = s.stats();
    assert.equal(st.buffered, 100);
    assert.equal(st.dropped, 50);
    assert.equal(st.written, 0);
    assert.equal(st.dropped + st.buffered, 150);
    let p = await page();
    assert.equal(metric(p, 'muster_manager_influx_points_dropped_total', { reason: 'buffer_full' }), 50);
    assert.equal(metric(p, 'muster_manager_influx_points_buffered'), 100);
    const dropLine = lines.find((l) => l.reason === 'buffer_full');
    assert.ok(dropLine, 'a drop is logged');
    assert.match(String(dropLine.msg), /buffer full/);

    // Backoff: the retry delay grows with the failures, up to retry_max_ms.
    await waitFor('a few retries', () => s.stats().failures >= 3, 5000, 5);
    const f = s.stats();
    assert.ok(f.retry_in_ms > 0 && f.retry_in_ms <= 80, JSON.stringify(f));
    assert.ok(f.last_error?.includes('ECONNREFUSED'));

    writer.fallback = { kind: 'ok' };
    writer.ensureOutcome = { kind: 'ok' };
    await waitFor('the buffer written after InfluxDB is back', () => s.stats().written === 100, 5000, 5);
    assert.deepEqual(writer.written, range(50, 150), 'the newest 100 are written, oldest first');
    assert.equal(s.stats().dropped, 50);
    assert.equal(s.stats().reachable, true);
    assert.ok(lines.some((l) => String(l.msg).includes('reachable again')));
    p = await page();
    assert.equal(metric(p, 'muster_manager_influx_points_written_total'), 100);
    assert.ok(metric(p, 'muster_manager_influx_write_errors_total', { kind: 'unreachable' }) >= 3);
    await s.stop(1000);
  });

  it('an unreachable or 5xx write is retried with the same points until it succeeds: nothing lost', async () => {
    const writer = new FakeWriter();
    writer.script = [DOWN, { kind: 'unreachable', error: 'HTTP 503' }];
    const { s } = setup({}, writer);
    s.start();
    s.add(pts(0, 10));
    await waitFor('written after two failures', () => writer.written.length === 10, 5000, 5);
    assert.deepEqual(writer.batches, [range(0, 10), range(0, 10), range(0, 10)]);
    assert.equal(s.stats().dropped, 0);
    await s.stop(1000);
  });

  it('a 4xx batch is dropped as rejected (not retried), a partial write counts only the refused points', async () => {
    const writer = new FakeWriter();
    writer.script = [
      { kind: 'rejected', error: 'HTTP 400: partial write: field type conflict dropped=3', refused: 3 },
      { kind: 'rejected', error: 'HTTP 400: unable to parse', refused: null },
    ];
    const { s, lines, page } = setup({ flush_interval_ms: 5000 }, writer);
    s.start();
    await waitFor('database checked', () => writer.ensures === 1);
    s.add(pts(0, 30));
    await waitFor('three batches settled', () => s.stats().written + s.stats().dropped === 30, 5000, 5);
    assert.equal(writer.batches.length, 3, 'no retry of a rejected batch');
    const st = s.stats();
    assert.equal(st.written, 7 + 10);
    assert.equal(st.dropped, 13);
    const p = await page();
    assert.equal(metric(p, 'muster_manager_influx_points_dropped_total', { reason: 'rejected' }), 13);
    assert.equal(metric(p, 'muster_manager_influx_write_errors_total', { kind: 'rejected' }), 2);
    const line = lines.find((l) => String(l.msg).includes('refused a batch'));
    assert.ok(line, JSON.stringify(lines));
    assert.match(String(line.err), /field type conflict/);
    assert.equal(line.level, 50, 'logged as an error');
    await s.stop(1000);
  });

  it('database not found: creates it and writes the same batch again', async () => {
    const writer = new FakeWriter();
    writer.script = [{ kind: 'no_database', error: 'HTTP 404: database not found: "muster"' }];
    const { s } = setup({}, writer);
    s.start();
    await waitFor('database checked', () => writer.ensures === 1);
    s.add(pts(0, 10));
    await waitFor('written', () => writer.written.length === 10, 5000, 5);
    assert.equal(writer.ensures, 2, 'checked again after "database not found"');
    assert.deepEqual(writer.batches, [range(0, 10), range(0, 10)]);
    await s.stop(1000);
  });

  it('401/403 keep the points and retry (configuration can be fixed)', async () => {
    const writer = new FakeWriter();
    writer.script = [{ kind: 'failed', error: 'HTTP 401: authorization failed' }];
    const { s, lines } = setup({}, writer);
    s.start();
    s.add(pts(0, 10));
    await waitFor('written', () => writer.written.length === 10, 5000, 5);
    assert.equal(s.stats().dropped, 0);
    assert.ok(lines.some((l) => String(l.msg).includes('credentials')));
    await s.stop(1000);
  });

  it('stop: one last flush of what is buffered', async () => {
    const writer = new FakeWriter();
    const { s } = setup({ flush_interval_ms: 60_000 }, writer);
    s.start();
    await waitFor('database checked', () => writer.ensures === 1);
    s.add(pts(0, 25));
    await waitFor('full batches written', () => writer.written.length === 20, 5000, 5);
    await s.stop(2000);
    assert.deepEqual(writer.written, range(0, 25));
    assert.equal(s.stats().dropped, 0);
  });

  it('stop while InfluxDB is down: what is left is dropped as shutdown and logged', async () => {
    const writer = new FakeWriter();
    writer.fallback = DOWN;
    const { s, lines, page } = setup({}, writer);
    s.start();
    s.add(pts(0, 7));
    await waitFor('a failed attempt', () => s.stats().failures >= 1, 5000, 5);
    await s.stop(500);
    const st = s.stats();
    assert.equal(st.buffered, 0);
    assert.equal(st.dropped, 7);
    const p = await page();
    assert.equal(metric(p, 'muster_manager_influx_points_dropped_total', { reason: 'shutdown' }), 7);
    assert.ok(lines.some((l) => l.reason === 'shutdown' && l.points === 7));
    s.add(pts(7, 1));
    assert.equal(s.stats().dropped, 8, 'points after stop are counted too');
  });

  it('a batch never holds more than the buffer', async () => {
    const writer = new FakeWriter();
    const { s } = setup({ batch_points: 50, buffer_points: 20, flush_interval_ms: 10 }, writer);
    s.start();
    s.add(pts(0, 45));
    await waitFor('written', () => writer.written.length === 20, 5000, 5);
    assert.ok(writer.batches.every((b) => b.length <= 20));
    assert.equal(s.stats().dropped, 25);
    await s.stop(1000);
  });
});
