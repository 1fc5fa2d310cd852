/**
 * The write side of telemetry: a bounded buffer of points and the loop that writes them to
 * InfluxDB in batches, oldest first, one write in flight at a time, with backoff while InfluxDB
 * is down. The writer is injected (manager/telemetry/influx.ts is the real one, taking points as
 * line-protocol strings), so the logic here is tested against a fake.
 *
 * Accounting is exact: every point added is, at any time, either buffered (waiting or in the write
 * in flight), written, or dropped with a reason: `buffer_full` (the oldest, beyond buffer_points),
 * `rejected` (InfluxDB answered 4xx to its batch: it can never be written) or `shutdown` (still
 * buffered when the manager stopped). Drops are counted in metrics and logged (rate-limited).
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { type Logger, RateLimitedLog } from '../../common/log.js';

/**
 * What a write (or a database check) came to:
 * - `ok`: written;
 * - `rejected`: InfluxDB answered 4xx (bad points, field type conflict): the batch can never be
 *   written and is dropped; `refused` = points InfluxDB refused (a partial write says how many),
 *   null = all of them;
 * - `no_database`: the database does not exist: it is created, then the batch is tried again;
 * - `unreachable`: no answer (connection refused, timeout) or a 5xx: tried again with backoff;
 * - `failed`: an answer that says "not now" (401/403, a missing retention policy, another 404):
 *   tried again with backoff, logged as an error since someone has to fix the configuration.
 */
export type WriteOutcome =
  | { kind: 'ok' }
  | { kind: 'rejected'; error: string; refused: number | null }
  | { kind: 'no_database'; error: string }
  | { kind: 'unreachable'; error: string }
  | { kind: 'failed'; error: string };

/** Where points (of type P: line-protocol strings for InfluxDB) go. Neither method may throw. */
export interface PointWriter<P = string> {
  /** Writes one batch, oldest point first. */
  write(points: P[]): Promise<WriteOutcome>;
  /** Creates the database when it does not exist. `rejected` = cannot (e.g. no admin right): writes go ahead. */
  ensureDatabase(): Promise<WriteOutcome>;
}

/** Settings of a shipper (telemetry.influxdb.* of the manager config). */
export interface ShipperOptions {
  /** Base URL of InfluxDB as shown in logs (no credentials). */
  url: string;
  database: string;
  /** Most points per write. */
  batch_points: number;
  /** Longest time a point waits before a write is tried, ms; also the first retry delay. */
  flush_interval_ms: number;
  /** Most points waiting; beyond it the oldest are dropped (plus the one batch in flight). */
  buffer_points: number;
  /** Longest wait between retries, ms. */
  retry_max_ms: number;
}

/** Why points were dropped (label `reason` of muster_manager_influx_points_dropped_total). */
export type DropReason = 'buffer_full' | 'rejected' | 'shutdown';
const DROP_REASONS: readonly DropReason[] = ['buffer_full', 'rejected', 'shutdown'];

/** Counters of a shipper, for GET /api/v1/telemetry. */
export interface ShipperStats {
  /** Points waiting or in the write in flight. */
  buffered: number;
  written: number;
  dropped: number;
  dropped_by_reason: Record<DropReason, number>;
  /** Whether the last attempt got an answer from InfluxDB (null before the first attempt). */
  reachable: boolean | null;
  last_error: string | null;
  /** ISO time of the last successful write, null before it. */
  last_write_at: string | null;
  /** Failed attempts in a row (0 when the last one succeeded). */
  failures: number;
  /** Delay before the next attempt while backing off, ms (0 when not backing off). */
  retry_in_ms: number;
}

/**
 * The shipper's Prometheus metrics, registered on `registry`.
 * @param buffered read at each scrape for muster_manager_influx_points_buffered (else the shipper's own count)
 */
export function influxMetrics(registry: Registry, buffered?: () => number) {
  const registers = [registry];
  const dropped = new Counter({
    name: 'muster_manager_influx_points_dropped_total',
    help: 'Points never written to InfluxDB, by reason: buffer_full (oldest beyond telemetry.influxdb.buffer_points), rejected (InfluxDB refused the batch with a 4xx), shutdown (still buffered at stop)',
    labelNames: ['reason'],
    registers,
  });
  for (const reason of DROP_REASONS) dropped.inc({ reason }, 0);
  return {
    written: new Counter({
      name: 'muster_manager_influx_points_written_total',
      help: 'Points written to InfluxDB',
      registers,
    }),
    dropped,
    buffered: new Gauge({
      name: 'muster_manager_influx_points_buffered',
      help: 'Points waiting to be written to InfluxDB (including the batch being written)',
      registers,
      collect() {
        if (buffered) this.set(buffered());
      },
    }),
    errors: new Counter({
      name: 'muster_manager_influx_write_errors_total',
      help: 'Failed InfluxDB writes, by kind: unreachable (no answer or 5xx), failed (401/403/404: retried), no_database, rejected (4xx: dropped)',
      labelNames: ['kind'],
      registers,
    }),
    seconds: new Histogram({
      name: 'muster_manager_influx_write_seconds',
      help: 'Duration of InfluxDB writes (one batch each), successful or not',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    reachable: new Gauge({
      name: 'muster_manager_influx_reachable',
      help: '1 when the last InfluxDB attempt got an answer, 0 when not (-1 before the first attempt)',
      registers,
    }),
  };
}
export type InfluxMetrics = ReturnType<typeof influxMetrics>;

/**
 * Delay before retry number `failures` (1 = after the first failure), ms: `first` doubled per
 * failure, at most `max`.
 */
export function backoffMs(failures: number, first: number, max: number): number {
  if (failures <= 0) return 0;
  const exp = Math.min(failures - 1, 30);
  return Math.min(max, Math.max(1, first) * 2 ** exp);
}

const sleep = (ms: number) =>
  new Promise<void>((r) => {
    const t = setTimeout(r, ms);
    t.unref?.();
  });

/**
 * Buffers points and writes them in batches. `add` never blocks and never does I/O; writes run
 * from timers. Call `start` once and `stop` at shutdown.
 */
export class PointShipper<P = string> {
  /** Waiting points, oldest first, from index `head`. */
  private q: P[] = [];
  private head = 0;
  /** The batch being written (taken out of `q`), or null. */
  private inflight: P[] | null = null;
  /** The attempt under way (database check and/or write), or null: one at a time. */
  private busy: Promise<void> | null = null;
  /** Set when stop() gave up on the write in flight and counted its points as dropped. */
  private abandoned = false;
  private timer: NodeJS.Timeout | null = null;
  /** True while waiting out a backoff delay (a retry timer is set). */
  private backingOff = false;
  private dbReady = false;
  private stopped = false;
  private started = false;
  private failures = 0;
  private retryIn = 0;
  private written = 0;
  private readonly dropped: Record<DropReason, number> = { buffer_full: 0, rejected: 0, shutdown: 0 };
  private reachable: boolean | null = null;
  private lastError: string | null = null;
  private lastWriteAt: number | null = null;
  private readonly rl: RateLimitedLog;
  private readonly rlSlow: RateLimitedLog;
  /** Rate-limited like rl, at error level. */
  private readonly rlError: RateLimitedLog;
  private readonly batch: number;

  constructor(
    private readonly o: ShipperOptions,
    private readonly writer: PointWriter<P>,
    private readonly log: Logger,
    private readonly m: InfluxMetrics,
    private readonly now: () => number = Date.now,
  ) {
    this.rl = new RateLimitedLog(log);
    this.rlSlow = new RateLimitedLog(log, 60_000);
    this.rlError = new RateLimitedLog({ warn: log.error.bind(log) } as unknown as Logger);
    // A batch never holds more than the buffer may.
    this.batch = Math.max(1, Math.min(o.batch_points, o.buffer_points));
    m.buffered.set(0);
    m.reachable.set(-1);
  }

  /** Points waiting (not counting the batch in flight). */
  get waiting(): number {
    return this.q.length - this.head;
  }

  /** Starts writing: checks (creates) the database at once, then writes as points come. Never throws. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.pump();
  }

  /**
   * Adds points (oldest first). When more than buffer_points wait, the oldest are dropped and
   * counted. A write is started when a batch is full; otherwise within flush_interval_ms.
   */
  add(points: readonly P[]): void {
    if (points.length === 0) return;
    if (this.stopped) {
      this.drop('shutdown', points.length, 'manager stopping');
      return;
    }
    for (const p of points) this.q.push(p);
    this.enforceBound();
    this.m.buffered.set(this.buffered());
    if (!this.started || this.busy || this.backingOff) return;
    if (this.waiting >= this.batch) this.pump();
    else this.schedule(this.o.flush_interval_ms);
  }

  /** Points held: waiting plus in flight. */
  buffered(): number {
    return this.waiting + (this.inflight?.length ?? 0);
  }

  /** Counters for the status API. */
  stats(): ShipperStats {
    const dropped = this.dropped.buffer_full + this.dropped.rejected + this.dropped.shutdown;
    return {
      buffered: this.buffered(),
      written: this.written,
      dropped,
      dropped_by_reason: { ...this.dropped },
      reachable: this.reachable,
      last_error: this.lastError,
      last_write_at: this.lastWriteAt === null ? null : new Date(this.lastWriteAt).toISOString(),
      failures: this.failures,
      retry_in_ms: this.backingOff ? this.retryIn : 0,
    };
  }

  /**
   * Stops the timers and makes one last attempt to write what is buffered, within `budgetMs`
   * (the write in flight is waited for first). What is still buffered then is dropped as
   * `shutdown` and logged. Never throws.
   */
  async stop(budgetMs: number): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.clearTimer();
    const deadline = this.now() + budgetMs;
    const left = () => Math.max(0, deadline - this.now());
    try {
      if (this.busy) await Promise.race([this.busy, sleep(left())]);
      // One pass: batches while writes succeed and time is left; the first failure ends it.
      while (!this.busy && this.waiting > 0 && left() > 0) {
        const done = this.writeBatch();
        const finished = await Promise.race([done.then(() => true), sleep(left()).then(() => false)]);
        if (!finished || this.failures > 0) break;
      }
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'InfluxDB: error in the last flush');
    }
    const lost = this.buffered();
    if (lost > 0) {
      // A write still in flight is abandoned: its points may yet land, but are counted as dropped.
      if (this.inflight) this.abandoned = true;
      this.q = [];
      this.head = 0;
      this.inflight = null;
      this.drop('shutdown', lost, 'manager stopped before they could be written');
    }
    this.m.buffered.set(0);
  }

  // ---------------------------------------------------------------------------------------------

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Runs pump() after `ms`, unless a timer is already set. */
  private schedule(ms: number): void {
    if (this.timer || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.backingOff = false;
      this.pump();
    }, ms);
    this.timer.unref?.();
  }

  /** Starts the next write if none is in flight and none is waiting out a backoff. */
  private pump(): void {
    if (this.stopped || this.busy || this.backingOff) return;
    if (!this.dbReady || this.waiting > 0) void this.writeBatch();
  }

  /** Drops the oldest waiting points beyond buffer_points. */
  private enforceBound(): void {
    const over = this.waiting - this.o.buffer_points;
    if (over <= 0) return;
    for (let i = this.head; i < this.head + over; i++) (this.q as (P | undefined)[])[i] = undefined;
    this.head += over;
    this.compact();
    this.drop('buffer_full', over);
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.q.length) {
      this.q = this.q.slice(this.head);
      this.head = 0;
    }
  }

  private drop(reason: DropReason, n: number, why?: string): void {
    if (n <= 0) return;
    this.dropped[reason] += n;
    this.m.dropped.inc({ reason }, n);
    const fields = {
      reason,
      points: n,
      dropped_total: this.dropped[reason],
      buffer_points: this.o.buffer_points,
      url: this.o.url,
      ...(why ? { why } : {}),
    };
    if (reason === 'buffer_full') {
      this.rl.warn(
        'influx-drop-buffer_full',
        fields,
        'InfluxDB telemetry buffer full: dropped the oldest points (dropped_total so far); InfluxDB is down or slower than the reports',
      );
    } else if (reason === 'rejected') {
      // Logged by the caller with InfluxDB's answer.
    } else {
      this.rl.warn('influx-drop-shutdown', fields, 'InfluxDB telemetry: points not written at shutdown were dropped');
    }
  }

  /** Writes one batch (after creating the database when needed) and settles the outcome. */
  private writeBatch(): Promise<void> {
    const run = async () => {
      if (!this.dbReady) {
        const o = await this.writer.ensureDatabase();
        if (o.kind === 'ok' || o.kind === 'rejected') {
          if (o.kind === 'rejected')
            this.log.warn(
              { url: this.o.url, database: this.o.database, err: o.error },
              'InfluxDB: cannot check or create the database; writing anyway',
            );
          else if (this.reachable !== true)
            this.log.info({ url: this.o.url, database: this.o.database }, 'InfluxDB connected, database ready');
          this.dbReady = true;
          this.markUp();
        } else {
          this.failed(o);
          return;
        }
      }
      if (this.waiting === 0) return;
      const batch = this.q.slice(this.head, this.head + this.batch);
      for (let i = this.head; i < this.head + batch.length; i++) (this.q as (P | undefined)[])[i] = undefined;
      this.head += batch.length;
      this.compact();
      this.inflight = batch;
      const t0 = performance.now();
      let o: WriteOutcome;
      try {
        o = await this.writer.write(batch);
      } catch (err) {
        o = { kind: 'unreachable', error: (err as Error).message };
      }
      this.m.seconds.observe((performance.now() - t0) / 1000);
      if (this.abandoned) return; // stop() counted these points already
      this.inflight = null;
      switch (o.kind) {
        case 'ok':
          this.count(batch.length);
          this.lastError = null;
          this.markUp();
          break;
        case 'rejected': {
          const refused = o.refused === null ? batch.length : Math.min(batch.length, o.refused);
          this.count(batch.length - refused);
          this.m.errors.inc({ kind: 'rejected' });
          this.lastError = o.error;
          this.drop('rejected', refused);
          this.rlError.warn(
            'influx-rejected',
            {
              url: this.o.url,
              err: o.error,
              points: refused,
              dropped_total: this.dropped.rejected,
              first: String(batch[0]).slice(0, 300),
            },
            'InfluxDB refused a batch (it can never be written): its points are dropped',
          );
          this.markUp();
          break;
        }
        default:
          if (o.kind === 'no_database') this.dbReady = false;
          this.requeue(batch);
          this.failed(o);
      }
    };
    const p = run()
      .catch((err: Error) => {
        this.log.error({ err: err.stack ?? err.message }, 'InfluxDB: write loop error');
      })
      .finally(() => {
        if (this.busy === p) this.busy = null;
        this.m.buffered.set(this.buffered());
        // Points added while this attempt ran wait for this (add() does not start a write then).
        if (!this.backingOff) this.next();
      });
    this.busy = p;
    return p;
  }

  private count(n: number): void {
    if (n <= 0) return;
    this.written += n;
    this.m.written.inc(n);
    this.lastWriteAt = this.now();
  }

  /** Puts a batch that was not written back in front of the waiting points, then enforces the bound. */
  private requeue(batch: P[]): void {
    this.q = batch.concat(this.q.slice(this.head));
    this.head = 0;
    this.enforceBound();
  }

  /** After an answer that is not a failure: InfluxDB is up, the backoff is over. */
  private markUp(): void {
    const wasDown = this.reachable === false;
    this.reachable = true;
    this.m.reachable.set(1);
    this.failures = 0;
    this.retryIn = 0;
    if (wasDown)
      this.log.info(
        { url: this.o.url, buffered: this.buffered() },
        'InfluxDB reachable again: writing the buffered points',
      );
  }

  /** After an attempt settled well: a full batch waiting (a backlog) goes at once, else within the interval. */
  private next(): void {
    if (this.stopped) return;
    if (this.waiting >= this.batch) setImmediate(() => this.pump());
    else if (this.waiting > 0) this.schedule(this.o.flush_interval_ms);
  }

  private failed(o: Exclude<WriteOutcome, { kind: 'ok' } | { kind: 'rejected' }>): void {
    const wasUp = this.reachable !== false;
    this.failures++;
    this.lastError = o.error;
    this.m.errors.inc({ kind: o.kind });
    const delay = o.kind === 'no_database' && this.failures === 1 ? 0 : this.retryDelay();
    const fields = {
      url: this.o.url,
      database: this.o.database,
      err: o.error,
      buffered: this.buffered(),
      buffer_points: this.o.buffer_points,
      retry_in_ms: delay,
    };
    if (o.kind === 'unreachable') {
      this.reachable = false;
      this.m.reachable.set(0);
      if (wasUp)
        this.log.warn(
          fields,
          `InfluxDB at ${this.o.url} is unreachable: points are kept in memory (at most buffer_points, then the oldest are dropped) and retried every ≤ ${this.o.retry_max_ms} ms`,
        );
      else this.rlSlow.warn('influx-down', fields, `InfluxDB at ${this.o.url} still unreachable; points buffered`);
    } else if (o.kind === 'failed') {
      this.reachable = true;
      this.m.reachable.set(1);
      this.rlError.warn(
        'influx-failed',
        fields,
        'InfluxDB refuses writes for now (check telemetry.influxdb credentials, database and retention_policy): points are buffered and retried',
      );
    } else {
      this.reachable = true;
      this.m.reachable.set(1);
      this.log.info(fields, 'InfluxDB: database not found; creating it');
    }
    if (this.stopped) return;
    this.retryIn = delay;
    this.backingOff = true;
    this.clearTimer();
    this.schedule(delay);
  }

  private retryDelay(): number {
    return backoffMs(this.failures, Math.min(this.o.flush_interval_ms, this.o.retry_max_ms), this.o.retry_max_ms);
  }
}
