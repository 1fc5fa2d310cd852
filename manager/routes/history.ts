/**
 * The history over HTTP (issue 4, seed 000 查看节点运行记录): state transitions, operations
 * (deploys, queries, rule changes), component state changes and manager starts and stops.
 *
 *   GET /api/v1/history?node=&since=&kind=&limit=&before= → `{ history, next }`, newest first
 */
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { HistoryKind } from '../alerts/types.js';
import type { Manager } from '../manager.js';
import { PageQuery, readPage } from './alerts.js';

const KINDS: HistoryKind[] = ['state', 'operation', 'component', 'manager'];

/** Registers GET /api/v1/history. */
export function historyRoutes(app: FastifyInstance, manager: Manager): void {
  app.get(
    '/api/v1/history',
    {
      schema: {
        querystring: Type.Object(
          { ...PageQuery, kind: Type.Optional(Type.Union(KINDS.map((k) => Type.Literal(k)))) },
          { additionalProperties: false },
        ),
      },
    },
    async (req, reply) => {
      const q = req.query as { node?: string; kind?: HistoryKind; since?: string; limit?: string; before?: string };
      const p = readPage(q, reply);
      if (!p) return reply;
      const page = manager.store.listHistory({ ...p, node: q.node, kind: q.kind });
      return { history: page.items, next: page.next };
    },
  );
}
