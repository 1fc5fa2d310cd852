/** The REST API for telemetry under /api/v1/: a node's recent history and the InfluxDB writer's status. */
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { parseSince } from '../../common/time.js';
import type { Manager } from '../manager.js';
import type { ApiError } from '../server.js';
import type { RecentView } from '../telemetry/index.js';

/**
 * GET /api/v1/nodes/:id/recent?since= → RecentView (samples oldest first; `since` a duration back
 * from now such as 15m, an ISO date-time or ms since the epoch; 400 when unreadable, 404 for an
 * unknown node); GET /api/v1/telemetry → TelemetryStatus.
 */
export function telemetryRoutes(app: FastifyInstance, manager: Manager): void {
  app.get(
    '/api/v1/nodes/:id/recent',
    { schema: { params: Type.Object({ id: Type.String({ pattern: '^[0-9]+-[0-9]+-[0-9]+$' }) }) } },
    async (req, reply) => {
      const { id } = req.params as { id: string };
      const q = req.query as { since?: string | string[] };
      let since: number | undefined;
      if (q.since !== undefined) {
        const text = Array.isArray(q.since) ? (q.since[q.since.length - 1] ?? '') : q.since;
        try {
          since = parseSince(text, 'since');
        } catch (err) {
          return reply
            .code(400)
            .send({ error: 'bad_request', field: 'since', message: (err as Error).message } satisfies ApiError);
        }
      }
      const view = manager.telemetry.recent(id, since);
      if (view) return view;
      if (!manager.registry.nodes.has(id))
        return reply.code(404).send({ error: 'not_found', message: `no node ${id}` } satisfies ApiError);
      // Known, but no resource report yet.
      return { node: id, window_ms: manager.cfg.telemetry.recent.window_ms, samples: [] } satisfies RecentView;
    },
  );
  app.get('/api/v1/telemetry', async () => manager.telemetry.status());
}
