/**
 * Telemetry (docs/telemetry.md), under the API prefix:
 *
 *   GET /nodes/:id/recent?since= → RecentView: samples oldest first; `since` a duration back from
 *       now (15m), an ISO date-time or ms since the epoch; 400 when unreadable, 404 for an unknown node
 *   GET /nodes/:id/series?range=1h|24h|7d → SeriesReply: the node's figures from InfluxDB in at
 *       most telemetry.influxdb.query.max_points buckets (manager/telemetry/series.ts); 400 for
 *       another range, 503 when InfluxDB is off (not_enabled) or max_concurrent queries run (busy),
 *       504 when InfluxDB does not answer within query.timeout_ms, 502 when it is unreachable,
 *       refuses the query or answers over query.max_reply_bytes
 *   GET /telemetry → TelemetryStatus
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { NodeParamsSchema } from '../../common/api/nodes.js';
import {
  RecentQuerySchema,
  RecentViewSchema,
  SeriesQuerySchema,
  SeriesReplySchema,
  TelemetryStatusSchema,
} from '../../common/api/telemetry.js';
import { parseSince } from '../../common/time.js';
import type { NodeRegistry } from '../registry.js';
import type { Telemetry } from '../telemetry/index.js';
import { SeriesError } from '../telemetry/series.js';
import { badRequest, ERROR_RESPONSES, notFound } from './shared.js';

/** What the telemetry routes use. */
export interface TelemetryRoutesOptions {
  telemetry: Pick<Telemetry, 'recent' | 'status' | 'history' | 'series'>;
  /** Which nodes exist (a known node with no resource report yet has an empty history). */
  registry: { nodes: Pick<NodeRegistry['nodes'], 'has'> };
}

/** HTTP status of a failed series query, by kind. */
const SERIES_STATUS: Record<SeriesError['kind'], number> = {
  busy: 503,
  timeout: 504,
  unreachable: 502,
  too_large: 502,
  error: 502,
};

/** Registers GET /nodes/:id/recent, GET /nodes/:id/series and GET /telemetry. */
export const telemetryRoutes: FastifyPluginAsyncTypebox<TelemetryRoutesOptions> = async (
  app,
  { telemetry, registry },
) => {
  app.get(
    '/nodes/:id/recent',
    {
      config: { role: 'viewer' },
      schema: {
        params: NodeParamsSchema,
        querystring: RecentQuerySchema,
        response: { 200: RecentViewSchema, ...ERROR_RESPONSES },
      },
    },
    async (req, reply) => {
      const { id } = req.params;
      const q = req.query.since;
      let since: number | undefined;
      if (q !== undefined) {
        const text = Array.isArray(q) ? (q[q.length - 1] ?? '') : q;
        try {
          since = parseSince(text, 'since');
        } catch (err) {
          return reply.code(400).send(badRequest('since', (err as Error).message));
        }
      }
      const view = telemetry.recent(id, since);
      if (view) return view;
      if (!registry.nodes.has(id)) return reply.code(404).send(notFound(`no node ${id}`));
      // Known, but no resource report yet.
      return { node: id, window_ms: telemetry.history.windowMs, samples: [] };
    },
  );

  app.get(
    '/nodes/:id/series',
    {
      config: { role: 'viewer' },
      schema: {
        params: NodeParamsSchema,
        querystring: SeriesQuerySchema,
        response: { 200: SeriesReplySchema, ...ERROR_RESPONSES },
      },
    },
    async (req, reply) => {
      const reader = telemetry.series;
      if (!reader) {
        return reply.code(503).send({
          error: 'not_enabled',
          message: 'InfluxDB is off (telemetry.influxdb.enabled): only the recent window (/nodes/:id/recent) is kept',
        });
      }
      try {
        return await reader.read(req.params.id, req.query.range);
      } catch (err) {
        if (!(err instanceof SeriesError)) throw err;
        return reply.code(SERIES_STATUS[err.kind]).send({ error: err.kind, message: err.message });
      }
    },
  );

  app.get(
    '/telemetry',
    { config: { role: 'viewer' }, schema: { response: { 200: TelemetryStatusSchema, ...ERROR_RESPONSES } } },
    async () => telemetry.status(),
  );
};
