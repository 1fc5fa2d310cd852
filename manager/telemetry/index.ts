/**
 * Telemetry of the manager (docs/telemetry.md): every report as InfluxDB 1.x points (when
 * telemetry.influxdb.enabled) and a short in-memory history per node (always).
 *
 * The ingest path only enqueues: heartbeat(), resource() and nodeState() push the report
 * reference, the node's tags and the arrival time on an intake queue, O(1). The queue is drained
 * on the next turn of the event loop (setImmediate): reports become points, as line-protocol
 * strings (~220 bytes each), for the write buffer (manager/telemetry/shipper.ts), and samples for
 * the recent history. Writes to InfluxDB run from timers, never on a request.
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
  resourcePointCount,
  resourcePoints,
  toLine,
} from './points.js';
import { RecentHistory, type RecentView } from './recent.js';
import { type FetchLike, SeriesReader, seriesMetrics } from './series.js';
import { influxMetrics, PointShipper, type PointWriter } from './shipper.js';

export type { NodeTags } from './points.js';
export type { RecentSample, RecentView } from './recent.js';
export type { PointWriter, WriteOutcome } from './shipper.js';
export type { TelemetryStatus };

/** Longest the last flush at stop() may take, ms (the CLI exits 5 s after SIGTERM regardless). */
const STOP_FLUSH_MAX_MS = 3000;

/** A report waiting to be converted. */
type Entry =
  | { kind: 'heartbeat'; tags: NodeTags; h: HeartbeatData; at: number }
  | { kind: 'resource'; tags: NodeTags; r: ResourceData; at: number }
  | { kind: 'link'; tags: NodeTags; m: LinkMetrics; at: number }
  | { kind: 'state'; tags: NodeTags; state: NodeStateName; missed: number; at: number; reason: string };

/** The manager's telemetry: InfluxDB points and the recent history. */
export class Telemetry {
  /** The in-memory recent history of every node. */
  readonly history: RecentHistory;
  /** Points as line protocol, for InfluxDB; null when it is off. */
  private readonly shipper: PointShipper<string> | null;
  private intake: Entry[] = [];
  /** Points the intake will become (resource reports: an upper bound). */
  private intakePoints = 0;
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

  /** A heartbeat of node `tags` arrived at `at` (ms since the epoch): one node_state point (online). O(1). */
  heartbeat(tags: NodeTags, h: HeartbeatData, at: number): void {
    if (!this.shipper) return;
    this.enqueue({ kind: 'heartbeat', tags, h, at }, 1);
  }

  /** A resource report of node `tags` arrived at `at` (ms since the epoch): points and a recent sample. O(1). */
  resource(tags: NodeTags, r: ResourceData, at: number): void {
    this.enqueue({ kind: 'resource', tags, r, at }, this.shipper ? resourcePointCount(r) : 0);
  }

  /**
   * The `metrics` of a link-specification heartbeat of node `tags` at `at` (docs/links.md "Linked
   * nodes"): a recent-history sample (cpu, memory and disk usage) and, with InfluxDB, the points
   * of linkMetricsPoints. O(1).
   */
  linkMetrics(tags: NodeTags, m: LinkMetrics, at: number): void {
    this.enqueue({ kind: 'link', tags, m, at }, this.shipper ? 4 : 0);
  }

  /**
   * Node `tags` changed liveness state at `at`: one node_state point with `reason`.
   * @param missedRounds completed heartbeat rounds without a heartbeat (0 when it came online)
   */
  nodeState(
    tags: NodeTags,
    state: 'online' | 'suspect' | 'offline',
    missedRounds: number,
    at: number,
    reason: string,
  ): void {
    if (!this.shipper) return;
    this.enqueue({ kind: 'state', tags, state, missed: missedRounds, at, reason }, 1);
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

  /** Points held for InfluxDB, including reports not converted yet. */
  private buffered(): number {
    return (this.shipper?.buffered() ?? 0) + this.intakePoints;
  }

  private enqueue(e: Entry, points: number): void {
    this.intake.push(e);
    this.intakePoints += points;
    if (this.drainTimer === null) {
      this.drainTimer = setImmediate(() => this.drain());
    }
  }

  /** Converts the intake: points (as line protocol) to the shipper, samples to the history. */
  private drain(): void {
    if (this.drainTimer !== null) {
      clearImmediate(this.drainTimer);
      this.drainTimer = null;
    }
    if (this.intake.length === 0) return;
    const entries = this.intake;
    this.intake = [];
    this.intakePoints = 0;
    const lines: string[] = [];
    for (const e of entries) {
      try {
        if (e.kind === 'resource') {
          this.history.add(e.tags.node, e.r, e.at);
          if (this.shipper) for (const p of resourcePoints(e.tags, e.r, e.at)) lines.push(toLine(p));
        } else if (e.kind === 'link') {
          const m = e.m;
          this.history.addFigures(e.tags.node, e.at, [
            m.cpu_usage ?? null,
            null,
            m.memory_usage ?? null,
            null,
            null,
            null,
            m.disk_usage ?? null,
          ]);
          if (this.shipper) for (const p of linkMetricsPoints(e.tags, m, e.at)) lines.push(toLine(p));
        } else if (e.kind === 'heartbeat') {
          lines.push(toLine(heartbeatPoint(e.tags, e.h, e.at)));
        } else {
          lines.push(toLine(nodeStatePoint(e.tags, e.state, e.missed, e.at, e.reason)));
        }
      } catch (err) {
        // A report the schema let through but that cannot be converted: said, never silent.
        this.rl.warn(
          `telemetry-convert:${e.tags.node}`,
          { node: e.tags.node, kind: e.kind, err: (err as Error).message },
          'telemetry: cannot convert a report; it is not recorded',
        );
      }
    }
    this.shipper?.add(lines);
  }
}
