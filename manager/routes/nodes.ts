/** The REST API for nodes under /api/v1/: the list, one node, an immediate query, the status. */
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { REPORT_URLS, type ReportUrl } from '../../common/constants.js';
import { VERSION } from '../../common/version.js';
import type { Manager } from '../manager.js';
import { type ApiError, whoOf } from '../server.js';
import { detail, listNodes } from '../views.js';

/**
 * GET /api/v1/nodes → `{ round, nodes: NodeSummary[] }`; GET /api/v1/nodes/:id → NodeDetail or 404;
 * POST /api/v1/query `{ url, wait_ms? }` → the answers; GET /api/v1/status.
 */
export function nodeRoutes(app: FastifyInstance, manager: Manager): void {
  const { cfg } = manager;
  app.get('/api/v1/nodes', async () => ({ round: manager.registry.round, nodes: listNodes(manager.registry) }));
  app.get(
    '/api/v1/nodes/:id',
    { schema: { params: Type.Object({ id: Type.String({ pattern: '^[0-9]+-[0-9]+-[0-9]+$' }) }) } },
    async (req, reply) => {
      const { id } = req.params as { id: string };
      const n = manager.registry.nodes.get(id);
      if (!n) return reply.code(404).send({ error: 'not_found', message: `no node ${id}` } satisfies ApiError);
      return detail(manager.registry, n);
    },
  );
  app.post(
    '/api/v1/query',
    {
      schema: {
        body: Type.Object({
          url: Type.Union(REPORT_URLS.map((u) => Type.Literal(u))),
          wait_ms: Type.Optional(Type.Integer({ minimum: 0, maximum: 60000 })),
        }),
      },
    },
    async (req) => {
      const { url, wait_ms } = req.body as { url: ReportUrl; wait_ms?: number };
      return manager.queryNow(url, wait_ms, whoOf(req));
    },
  );
  app.get('/api/v1/status', async () => ({
    version: VERSION,
    uptime_s: Math.round(process.uptime()),
    round: manager.registry.round,
    manager_ip: manager.advertiseIp,
    manager_port: cfg.http.port,
    nodes: manager.registry.countByState(),
    alerts_open: manager.alerts.countOpen(),
    database: manager.store.file,
    telemetry: manager.telemetry.status(),
  }));
}
