/**
 * Telemetry over REST (docs/telemetry.md): `GET /api/v1/nodes/:id/recent` (a node's in-memory
 * recent history, the trend lines of `muster node`) and `GET /api/v1/telemetry` (the InfluxDB
 * writer's status).
 */
import { type Static, Type } from 'typebox';
import { NodeIdSchema } from './primitives.js';

/** The figures of a recent sample, in the order they are kept. */
export const RECENT_FIELDS = [
  'cpu_usage_percent',
  'cpu_temperature',
  'memory_usage_percent',
  'cpu_power',
  'gpu_temperature_max',
  'gpu_usage_max',
  'disk_usage_percent_max',
] as const;
/** One figure of a recent sample. */
export type RecentField = (typeof RECENT_FIELDS)[number];

const figure = () => Type.Union([Type.Number(), Type.Null()]);

/**
 * One sample: the report's arrival time (ISO-8601) and its figures, null when not reported:
 * cpu_usage_percent (%), cpu_temperature (°C), memory_usage_percent (%), cpu_power (W),
 * gpu_temperature_max (°C, hottest GPU), gpu_usage_max (%, busiest GPU compute),
 * disk_usage_percent_max (%, fullest mount point).
 */
export const RecentSampleSchema = Type.Object({
  at: Type.String({ description: 'ISO time the resource report arrived' }),
  ...(Object.fromEntries(RECENT_FIELDS.map((f) => [f, figure()])) as { [K in RecentField]: ReturnType<typeof figure> }),
});
/** One sample of a node's recent history. */
export type RecentSample = Static<typeof RecentSampleSchema>;

/** A node's recent history (GET /api/v1/nodes/:id/recent): samples oldest first. */
export const RecentViewSchema = Type.Object({
  node: NodeIdSchema,
  window_ms: Type.Integer({
    minimum: 0,
    description: 'how far back the history reaches, ms (telemetry.recent.window_ms)',
  }),
  samples: Type.Array(RecentSampleSchema),
});
/** A node's recent history. */
export type RecentView = Static<typeof RecentViewSchema>;

/** Query string of GET /api/v1/nodes/:id/recent. */
export const RecentQuerySchema = Type.Object({
  since: Type.Optional(
    Type.Union([Type.String(), Type.Array(Type.String())], {
      description: 'a duration back from now (15m), an ISO date-time or ms since the epoch; the last one given wins',
    }),
  ),
});
/** Query string of GET /api/v1/nodes/:id/recent. */
export type RecentQuery = Static<typeof RecentQuerySchema>;

/** GET /api/v1/telemetry: the InfluxDB writer and the recent history. */
export const TelemetryStatusSchema = Type.Object({
  influxdb: Type.Object({
    enabled: Type.Boolean(),
    url: Type.String({ description: 'base URL, credentials removed' }),
    database: Type.String(),
    reachable: Type.Union([Type.Boolean(), Type.Null()], {
      description: 'whether the last attempt got an answer; null before the first one (or when disabled)',
    }),
    buffered: Type.Integer({ minimum: 0, description: 'points waiting to be written' }),
    written: Type.Integer({ minimum: 0, description: 'points written since the manager started' }),
    dropped: Type.Integer({ minimum: 0, description: 'points dropped since the manager started' }),
    last_error: Type.Union([Type.String(), Type.Null()]),
    last_write_at: Type.Union([Type.String(), Type.Null()], { description: 'ISO time of the last successful write' }),
  }),
  recent: Type.Object({
    nodes: Type.Integer({ minimum: 0, description: 'nodes with a history' }),
    samples: Type.Integer({ minimum: 0, description: 'samples held in all' }),
  }),
});
/** GET /api/v1/telemetry. */
export type TelemetryStatus = Static<typeof TelemetryStatusSchema>;

/**
 * The ranges of GET /api/v1/nodes/:id/series (docs/telemetry.md "Reading it back"), in seconds:
 * an allow-list, nothing else is accepted.
 */
export const SERIES_RANGES = { '1h': 3600, '24h': 86_400, '7d': 604_800 } as const;
/** A range of GET /api/v1/nodes/:id/series. */
export type SeriesRange = keyof typeof SERIES_RANGES;

/** Query string of GET /api/v1/nodes/:id/series. */
export const SeriesQuerySchema = Type.Object({
  range: Type.Union(
    (Object.keys(SERIES_RANGES) as SeriesRange[]).map((r) => Type.Literal(r)),
    { description: 'how far back from now: 1h, 24h or 7d' },
  ),
});
/** Query string of GET /api/v1/nodes/:id/series. */
export type SeriesQuery = Static<typeof SeriesQuerySchema>;

/** One line of a series answer: a field of a measurement (of one GPU, interface or mount point). */
export const SeriesLineSchema = Type.Object({
  measurement: Type.String({ description: 'cpu, memory, gpu, network or disk (docs/telemetry.md "Schema")' }),
  field: Type.String({
    description: 'the field (network: rx_rate / tx_rate, bytes per second from the rx_bytes / tx_bytes counters)',
  }),
  tag: Type.Union([Type.String(), Type.Null()], {
    description: 'the GPU index, interface or mount point; null for cpu and memory',
  }),
  unit: Type.String({ description: '%, °C, W, V, A, B/s or "" (load)' }),
  values: Type.Array(Type.Union([Type.Number(), Type.Null()]), {
    description: 'one per entry of `times`: the bucket aggregate (mean; disk: last; network: rate), null when empty',
  }),
});
/** One line of a series answer. */
export type SeriesLine = Static<typeof SeriesLineSchema>;

/** Answer of GET /api/v1/nodes/:id/series: a node's figures from InfluxDB, aggregated in buckets. */
export const SeriesReplySchema = Type.Object({
  node: NodeIdSchema,
  range: Type.String(),
  from: Type.String({ description: 'ISO time of the first bucket' }),
  to: Type.String({ description: 'ISO time the last bucket ends' }),
  step_s: Type.Integer({
    minimum: 1,
    description: 'bucket width, s: the range over telemetry.influxdb.query.max_points, rounded up to a round step',
  }),
  times: Type.Array(Type.Integer(), { description: 'start of each bucket, s since the epoch, oldest first' }),
  lines: Type.Array(SeriesLineSchema),
});
/** Answer of GET /api/v1/nodes/:id/series. */
export type SeriesReply = Static<typeof SeriesReplySchema>;
