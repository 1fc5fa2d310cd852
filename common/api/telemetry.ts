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
