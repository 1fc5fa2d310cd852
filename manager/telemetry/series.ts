/**
 * Reading a node's figures back from InfluxDB 1.x for the dashboard's charts (docs/telemetry.md
 * "Reading it back"): `GET /api/v1/nodes/:id/series?range=1h|24h|7d`.
 *
 * One InfluxQL request of five statements (cpu, memory, gpu, network, disk), aggregated in InfluxDB
 * with `GROUP BY time(step)` — InfluxQL's windowed aggregation, what Flux calls `aggregateWindow`
 * (InfluxDB 1.6, Debian's, has no Flux) — so at most `max_points` buckets per line come back
 * whatever the range, and at most {@link MAX_TAGS} GPUs, interfaces or mount points.
 *
 * Bounds (telemetry.influxdb.query): `max_points` buckets, `timeout_ms` per query, `max_concurrent`
 * queries in flight (one more is refused at once), `max_reply_bytes` read from InfluxDB. Every
 * outcome is counted in muster_manager_influx_queries_total{result}.
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import { SERIES_RANGES, type SeriesLine, type SeriesRange, type SeriesReply } from '../../common/api/telemetry.js';
import type { ManagerConfig } from '../config.js';
import { hostOptions } from './influx.js';

type InfluxConfig = ManagerConfig['telemetry']['influxdb'];

/** The telemetry.influxdb.query section (docs/configuration.md "telemetry"). */
export interface SeriesQueryConfig {
  /** Most buckets per line; the bucket width is the range over this, rounded up to a round step. */
  max_points: number;
  /** Time limit of one query to InfluxDB, ms. */
  timeout_ms: number;
  /** Most queries in flight; one more is refused (busy). */
  max_concurrent: number;
  /** Most bytes read of InfluxDB's answer. */
  max_reply_bytes: number;
}

/** Most GPUs, interfaces or mount points per answer (InfluxQL SLIMIT). */
export const MAX_TAGS = 8;

/** Round bucket widths, s: the chosen one is the smallest ≥ range / max_points. */
const STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400];

/** Outcomes of a series query, as counted in muster_manager_influx_queries_total{result}. */
export const QUERY_RESULTS = ['ok', 'busy', 'timeout', 'unreachable', 'too_large', 'error'] as const;
/** An outcome of a series query. */
export type QueryResult = (typeof QUERY_RESULTS)[number];

/** A series query that did not succeed; `kind` says why (the route maps it to a status). */
export class SeriesError extends Error {
  constructor(
    readonly kind: Exclude<QueryResult, 'ok'>,
    message: string,
  ) {
    super(message);
  }
}

/** The bucket width for `rangeS` seconds and at most `maxPoints` buckets, s. */
export function stepFor(rangeS: number, maxPoints: number): number {
  const want = rangeS / Math.max(1, maxPoints);
  return STEPS.find((s) => s >= want) ?? Math.ceil(want / 86_400) * 86_400;
}

/** `s` as an InfluxQL string literal (single quotes, `\` and `'` escaped). */
export function influxString(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** `s` as an InfluxQL identifier (double quotes, `\` and `"` escaped). */
function ident(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** What is read of each measurement: the aggregate per field, the tag a line is per. */
const PLAN: { m: string; tag: string | null; fields: [string, string, string][] }[] = [
  {
    m: 'cpu',
    tag: null,
    fields: [
      ['usage_percent', 'mean("usage_percent")', '%'],
      ['load_avg_1m', 'mean("load_avg_1m")', ''],
      ['load_avg_5m', 'mean("load_avg_5m")', ''],
      ['load_avg_15m', 'mean("load_avg_15m")', ''],
      ['temperature', 'mean("temperature")', '°C'],
      ['voltage', 'mean("voltage")', 'V'],
      ['current', 'mean("current")', 'A'],
      ['power', 'mean("power")', 'W'],
    ],
  },
  { m: 'memory', tag: null, fields: [['usage_percent', 'mean("usage_percent")', '%']] },
  {
    m: 'gpu',
    tag: 'gpu',
    fields: [
      ['compute_usage', 'mean("compute_usage")', '%'],
      ['mem_usage', 'mean("mem_usage")', '%'],
      ['temperature', 'mean("temperature")', '°C'],
      ['power', 'mean("power")', 'W'],
    ],
  },
  {
    m: 'network',
    tag: 'interface',
    fields: [
      ['rx_rate', 'non_negative_derivative(last("rx_bytes"), 1s)', 'B/s'],
      ['tx_rate', 'non_negative_derivative(last("tx_bytes"), 1s)', 'B/s'],
    ],
  },
  { m: 'disk', tag: 'mount_point', fields: [['usage_percent', 'last("usage_percent")', '%']] },
];

/**
 * The InfluxQL of a series query: one statement per measurement of node `node` over
 * [fromS, toS) in buckets of `stepS` (all in s since the epoch), `;`-separated.
 * @param rp the retention policy to read ("" = the database's default)
 */
export function seriesQuery(node: string, fromS: number, toS: number, stepS: number, database: string, rp: string) {
  const where = `"node" = ${influxString(node)} AND time >= ${fromS}s AND time < ${toS}s`;
  return PLAN.map((p) => {
    const from = rp ? `${ident(database)}.${ident(rp)}.${ident(p.m)}` : ident(p.m);
    const sel = p.fields.map(([name, agg]) => `${agg} AS ${ident(name)}`).join(', ');
    const group = `GROUP BY time(${stepS}s)${p.tag ? `, ${ident(p.tag)}` : ''} fill(none)`;
    return `SELECT ${sel} FROM ${from} WHERE ${where} ${group}${p.tag ? ` SLIMIT ${MAX_TAGS}` : ''}`;
  }).join('; ');
}

/** InfluxDB's JSON answer to /query (epoch=s). */
interface InfluxAnswer {
  error?: string;
  results?: {
    statement_id?: number;
    error?: string;
    series?: { name: string; tags?: Record<string, string>; columns: string[]; values: unknown[][] }[];
  }[];
}

/**
 * Lines on the common time axis from InfluxDB's answer to {@link seriesQuery}: one per field (and
 * tag value), a value per bucket (null where InfluxDB had none). Lines with no value at all are
 * left out. A bucket outside [fromS, fromS + n·stepS) is ignored.
 * @throws SeriesError `error` when the answer carries an error
 */
export function assembleSeries(answer: InfluxAnswer, fromS: number, stepS: number, n: number): SeriesLine[] {
  if (answer.error) throw new SeriesError('error', `InfluxDB: ${answer.error}`);
  const lines: SeriesLine[] = [];
  (answer.results ?? []).forEach((r, i) => {
    if (r.error) throw new SeriesError('error', `InfluxDB: ${r.error}`);
    const plan = PLAN[r.statement_id ?? i];
    if (!plan) return;
    for (const s of r.series ?? []) {
      const tag = plan.tag ? (s.tags?.[plan.tag] ?? '') : null;
      const cols = plan.fields.map(([name, , unit]) => ({
        name,
        unit,
        at: s.columns.indexOf(name),
        values: new Array<number | null>(n).fill(null),
      }));
      const ti = s.columns.indexOf('time');
      for (const row of s.values) {
        const t = Number(row[ti]);
        const k = Math.round((t - fromS) / stepS);
        if (!Number.isFinite(k) || k < 0 || k >= n) continue;
        for (const c of cols) {
          const v = row[c.at];
          if (typeof v === 'number' && Number.isFinite(v)) c.values[k] = v;
        }
      }
      for (const c of cols) {
        if (c.values.every((v) => v === null)) continue;
        lines.push({ measurement: plan.m, field: c.name, tag, unit: c.unit, values: c.values });
      }
    }
  });
  return lines;
}

/** The query metrics (docs/operations.md "Prometheus metrics"). */
export function seriesMetrics(registry: Registry) {
  const registers = [registry];
  const queries = new Counter({
    name: 'muster_manager_influx_queries_total',
    help: 'Series queries to InfluxDB (GET /api/v1/nodes/:id/series), by result: ok, busy (over telemetry.influxdb.query.max_concurrent), timeout (over query.timeout_ms), unreachable, too_large (answer over query.max_reply_bytes), error (InfluxDB refused it)',
    labelNames: ['result'],
    registers,
  });
  for (const result of QUERY_RESULTS) queries.inc({ result }, 0);
  return {
    queries: queries as Counter<'result'>,
    seconds: new Histogram({
      name: 'muster_manager_influx_query_seconds',
      help: 'Duration of series queries to InfluxDB, answered or not',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
  };
}

/** The fetch it uses (tests give their own). */
export type FetchLike = (
  url: string,
  init: { headers: Record<string, string>; signal: AbortSignal },
) => Promise<Response>;

/** Reads nodes' series from InfluxDB, within the bounds of telemetry.influxdb.query. */
export class SeriesReader {
  private inFlight = 0;
  private readonly queryUrl: string;
  private readonly auth: string | undefined;

  constructor(
    private readonly influx: InfluxConfig,
    private readonly cfg: SeriesQueryConfig,
    private readonly metrics: ReturnType<typeof seriesMetrics>,
    private readonly fetchImpl: FetchLike = fetch,
  ) {
    const h = hostOptions(influx.url);
    const username = influx.username || h.username;
    const password = influx.username ? influx.password : h.password;
    this.queryUrl = `${h.protocol}://${h.host}:${h.port}${h.path}/query`;
    this.auth = username ? `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` : undefined;
  }

  /**
   * Node `node`'s figures over the last `range` before `nowMs`, in buckets of
   * {@link stepFor}(range, max_points).
   * @throws SeriesError busy, timeout, unreachable, too_large or error (each counted)
   */
  async read(node: string, range: SeriesRange, nowMs = Date.now()): Promise<SeriesReply> {
    if (this.inFlight >= this.cfg.max_concurrent) {
      this.metrics.queries.inc({ result: 'busy' });
      throw new SeriesError(
        'busy',
        `${this.inFlight} series queries in flight already (telemetry.influxdb.query.max_concurrent)`,
      );
    }
    this.inFlight++;
    const end = this.metrics.seconds.startTimer();
    try {
      const reply = await this.query(node, range, nowMs);
      this.metrics.queries.inc({ result: 'ok' });
      return reply;
    } catch (err) {
      const e = err instanceof SeriesError ? err : new SeriesError('error', String((err as Error)?.message ?? err));
      this.metrics.queries.inc({ result: e.kind });
      throw e;
    } finally {
      end();
      this.inFlight--;
    }
  }

  private async query(node: string, range: SeriesRange, nowMs: number): Promise<SeriesReply> {
    const rangeS = SERIES_RANGES[range];
    const step = stepFor(rangeS, this.cfg.max_points);
    const n = Math.ceil(rangeS / step);
    const toS = Math.ceil(nowMs / 1000 / step) * step;
    const fromS = toS - n * step;
    const u = new URL(this.queryUrl);
    u.searchParams.set('db', this.influx.database);
    u.searchParams.set('epoch', 's');
    u.searchParams.set('q', seriesQuery(node, fromS, toS, step, this.influx.database, this.influx.retention_policy));
    const signal = AbortSignal.timeout(this.cfg.timeout_ms);
    const timeout = () =>
      new SeriesError('timeout', `InfluxDB gave no answer within ${this.cfg.timeout_ms} ms (query.timeout_ms)`);
    let res: Response;
    try {
      res = await this.fetchImpl(u.toString(), {
        headers: this.auth ? { authorization: this.auth } : {},
        signal,
      });
    } catch (err) {
      if (signal.aborted) throw timeout();
      const c = (err as { cause?: { code?: string; message?: string } })?.cause;
      throw new SeriesError('unreachable', `InfluxDB unreachable: ${c?.code ?? c?.message ?? (err as Error).message}`);
    }
    let text: string;
    try {
      text = await readCapped(res, this.cfg.max_reply_bytes);
    } catch (err) {
      if (err instanceof SeriesError) throw err;
      if (signal.aborted) throw timeout();
      throw new SeriesError('unreachable', `InfluxDB answer cut: ${(err as Error).message}`);
    }
    let answer: InfluxAnswer;
    try {
      answer = JSON.parse(text) as InfluxAnswer;
    } catch {
      throw new SeriesError('error', `InfluxDB answered HTTP ${res.status} with no JSON`);
    }
    if (!res.ok) throw new SeriesError('error', `InfluxDB: HTTP ${res.status}: ${answer.error ?? ''}`.trim());
    return {
      node,
      range,
      from: new Date(fromS * 1000).toISOString(),
      to: new Date(toS * 1000).toISOString(),
      step_s: step,
      times: Array.from({ length: n }, (_, i) => fromS + i * step),
      lines: assembleSeries(answer, fromS, step, n),
    };
  }
}

/**
 * The body of `res` as text, at most `max` bytes.
 * @throws SeriesError too_large beyond it (the rest is not read)
 */
async function readCapped(res: Response, max: number): Promise<string> {
  const declared = Number(res.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > max) {
    await res.body?.cancel().catch(() => undefined);
    throw new SeriesError('too_large', `InfluxDB's answer is ${declared} bytes, over query.max_reply_bytes (${max})`);
  }
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const r = await reader.read();
    if (r.done) break;
    size += r.value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => undefined);
      throw new SeriesError('too_large', `InfluxDB's answer is over query.max_reply_bytes (${max} bytes)`);
    }
    chunks.push(r.value);
  }
  return Buffer.concat(chunks).toString('utf8');
}
