/**
 * Telemetry of the manager (docs/telemetry.md): every report as InfluxDB 1.x points (when
 * telemetry.influxdb.enabled) and a short in-memory history per node (always).
 *
 * Reports are converted as they arrive, on the ingest path: the recent-history sample (7
 * figures) is written at once and, with InfluxDB on, the report's points become line-protocol
 * strings (~220 bytes each) held for the write buffer (manager/telemetry/shipper.ts), which gets
 * them in one batch on the next turn of the event loop (setImmediate). Nothing keeps the parsed
 * report past its request: holding a report's object tree across the event loop (as an intake
 * queue drained later did) made V8 promote every parse tree to the old generation and, in an
 * in-process measurement, nearly doubled the ingest's CPU (docs/operations.md "Sizing"; the
 * HTTP benchmark's figure moved less). Writes to InfluxDB run from timers, never on a request.
 */
import type { Registry } from 'prom-client';
import type { TelemetryStatus } from '../../common/api/telemetry.js';
import type { LinkMetrics } from '../../common/link.js';
import { type Logger, RateLimitedLog } from '../../common/log.js';
import type { HeartbeatData, ResourceData } from '../../common/protocol.js';
import type { ManagerConfig } from '../config.js';
import { InfluxWriter, redactUrl } from './influx.js';
import {
  heartbeatPoint,
  linkMetricsPoints,
  type NodeStateName,
  type NodeTags,
  nodeStatePoint,
  resourcePoints,
  toLine,
} from './points.js';
import { RecentHistory, type RecentView, sampleOf } from './recent.js';
import { type FetchLike, SeriesReader, seriesMetrics } from './series.js';
import { influxMetrics, PointShipper, type PointWriter } from './shipper.js';

export type { NodeTags } from './points.js';
export type { RecentSample, RecentView } from './recent.js';
export type { PointWriter, WriteOutcome } from './shipper.js';
export type { TelemetryStatus };

/** Longest the last flush at stop() may take, ms (the CLI exits 5 s after SIGTERM regardless). */
const STOP_FLUSH_MAX_MS = 3000;

/** The manager's telemetry: InfluxDB points and the recent history. */
export class Telemetry {
  /** The in-memory recent history of every node. */
  readonly history: RecentHistory;
  /** Points as line protocol, for InfluxDB; null when it is off. */
  private readonly shipper: PointShipper<string> | null;
  /** Points converted, as line protocol, not handed to the shipper yet (it gets them in one batch per turn). */
  private pending: string[] = [];
  private drainTimer: NodeJS.Immediate | null = null;
  private readonly rl: RateLimitedLog;
  private readonly url: string;
  /** Reads nodes' series back from InfluxDB (GET /api/v1/nodes/:id/series); null when InfluxDB is off. */
  readonly series: SeriesReader | null;

  /**
   * @param cfg the telemetry section of the manager config
   * @param registry Prometheus registry for the muster_manager_influx_* metrics
   * @param now the clock (ms since the epoch): the window of the recent history
   * @param writer where points go instead of InfluxDB (tests)
   * @param queryFetch the fetch of series queries instead of the real one (tests)
   */
  constructor(
    private readonly cfg: ManagerConfig['telemetry'],
    private readonly log: Logger,
    registry: Registry,
    private readonly now: () => number = Date.now,
    writer?: PointWriter<string>,
    queryFetch?: FetchLike,
  ) {
    this.rl = new RateLimitedLog(log);
    this.url = redactUrl(cfg.influxdb.url);
    this.history = new RecentHistory(cfg.recent.window_ms, cfg.recent.max_samples, now);
    const metrics = influxMetrics(registry, () => this.buffered());
    const i = cfg.influxdb;
    this.series = i.enabled ? new SeriesReader(i, i.query, seriesMetrics(registry), queryFetch) : null;
    this.shipper = i.enabled
      ? new PointShipper(
          {
            url: this.url,
            database: i.database,
            batch_points: i.batch_points,
            flush_interval_ms: i.flush_interval_ms,
            buffer_points: i.buffer_points,
            retry_max_ms: i.retry_max_ms,
          },
          writer ?? new InfluxWriter(i),
          log,
          metrics,
          now,
        )
      : null;
  }

  /**
   * Starts writing to InfluxDB (when enabled): the database is checked (created when missing) in
   * the background. Never throws when InfluxDB is unreachable: a warning names the URL and points
   * are buffered and retried.
   */
  async start(): Promise<void> {
    const i = this.cfg.influxdb;
    if (!this.shipper) return;
    this.log.info(
      { url: this.url, database: i.database, batch_points: i.batch_points, buffer_points: i.buffer_points },
      'telemetry: writing reports to InfluxDB',
    );
    this.shipper.start();
  }

  /** Stops the timers and makes one last flush attempt (at most timeout_ms, and 3 s). Never throws. */
  async stop(): Promise<void> {
    try {
      this.drain();
      await this.shipper?.stop(Math.min(this.cfg.influxdb.timeout_ms, STOP_FLUSH_MAX_MS));
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'telemetry: error while stopping');
    }
  }

  /** A heartbeat of node `tags` arrived at `at` (ms since the epoch): one node_state point (online). */
  heartbeat(tags: NodeTags, h: HeartbeatData, at: number): void {
    if (!this.shipper) return;
    this.convert(tags, 'heartbeat', () => [toLine(heartbeatPoint(tags, h, at))]);
  }

  /**
   * A resource report of node `tags` arrived at `at` (ms since the epoch): a recent sample and, with
   * InfluxDB, its points. Converted now; keeps no reference to `r`.
   */
  resource(tags: NodeTags, r: ResourceData, at: number): void {
    this.convert(tags, 'resource', () => {
      this.history.addFigures(tags.node, at, sampleOf(r));
      return this.shipper ? resourcePoints(tags, r, at).map(toLine) : null;
    });
  }

  /**
   * The `metrics` of a link-specification heartbeat of node `tags` at `at` (docs/links.md "Linked
   * nodes"): a recent-history sample (cpu, memory and disk usage) and, with InfluxDB, the points
   * of linkMetricsPoints.
   */
  linkMetrics(tags: NodeTags, m: LinkMetrics, at: number): void {
    this.convert(tags, 'link', () => {
      this.history.addFigures(tags.node, at, [
        m.cpu_usage ?? null,
        null,
        m.memory_usage ?? null,
        null,
        null,
        null,
        m.disk_usage ?? null,
      ]);
      return this.shipper ? linkMetricsPoints(tags, m, at).map(toLine) : null;
    });
  }

  /**
   * Node `tags` changed liveness state at `at`: one node_state point with `reason`.
   * @param missedRounds completed heartbeat rounds without a heartbeat (0 when it came online)
   */
  nodeState(tags: NodeTags, state: NodeStateName, missedRounds: number, at: number, reason: string): void {
    if (!this.shipper) return;
    this.convert(tags, 'state', () => [toLine(nodeStatePoint(tags, state, missedRounds, at, reason))]);
  }

  /** The recent history of `node` (samples at or after `sinceMs`, within the window); null when none. */
  recent(node: string, sinceMs?: number): RecentView | null {
    this.drain();
    return this.history.view(node, sinceMs);
  }

  /** Counters for GET /api/v1/telemetry. */
  status(): TelemetryStatus {
    this.drain();
    const i = this.cfg.influxdb;
    const s = this.shipper?.stats();
    return {
      influxdb: {
        enabled: i.enabled,
        url: this.url,
        database: i.database,
        reachable: s?.reachable ?? null,
        buffered: this.buffered(),
        written: s?.written ?? 0,
        dropped: s?.dropped ?? 0,
        last_error: s?.last_error ?? null,
        last_write_at: s?.last_write_at ?? null,
      },
      recent: this.history.size(),
    };
  }

  /** Points held for InfluxDB, including those not handed to the shipper yet. */
  private buffered(): number {
    return (this.shipper?.buffered() ?? 0) + this.pending.length;
  }

  /**
   * Runs one conversion: its lines (null: none) are held for the shipper, handed over on the next
   * turn. A report the schema let through but that cannot be converted is said, never silent, and
   * leaves nothing half-recorded for InfluxDB.
   */
  private convert(tags: NodeTags, kind: string, f: () => string[] | null): void {
    let lines: string[] | null;
    try {
      lines = f();
    } catch (err) {
      this.rl.warn(
        `telemetry-convert:${tags.node}`,
        { node: tags.node, kind, err: (err as Error).message },
        'telemetry: cannot convert a report; it is not recorded',
      );
      return;
    }
    if (lines === null || lines.length === 0) return;
    for (const l of lines) this.pending.push(l);
    if (this.drainTimer === null) this.drainTimer = setImmediate(() => this.drain());
  }

  /** Hands the converted points to the shipper. */
  private drain(): void {
    if (this.drainTimer !== null) {
      clearImmediate(this.drainTimer);
      this.drainTimer = null;
    }
    if (this.pending.length === 0) return;
    const lines = this.pending;
    this.pending = [];
    this.shipper?.add(lines);
  }
}
