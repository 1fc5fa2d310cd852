/**
 * Telemetry (docs/telemetry.md), under the API prefix:
 *
 *   GET /nodes/:id/recent?since= → RecentView: samples oldest first; `since` a duration back from
 *       now (15m), an ISO date-time or ms since the epoch; 400 when unreadable, 404 for an unknown node
 *   GET /telemetry → TelemetryStatus
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { NodeParamsSchema } from '../../common/api/nodes.js';
import { RecentQuerySchema, RecentViewSchema, TelemetryStatusSchema } from '../../common/api/telemetry.js';
import { parseSince } from '../../common/time.js';
import type { NodeRegistry } from '../registry.js';
import type { Telemetry } from '../telemetry/index.js';
import { badRequest, ERROR_RESPONSES, notFound } from './shared.js';

/** What the telemetry routes use. */
export interface TelemetryRoutesOptions {
  telemetry: Pick<Telemetry, 'recent' | 'status' | 'history'>;
  /** Which nodes exist (a known node with no resource report yet has an empty history). */
  registry: { nodes: Pick<NodeRegistry['nodes'], 'has'> };
}

/** Registers GET /nodes/:id/recent and GET /telemetry. */
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
    '/telemetry',
    { config: { role: 'viewer' }, schema: { response: { 200: TelemetryStatusSchema, ...ERROR_RESPONSES } } },
    async () => telemetry.status(),
  );
};
