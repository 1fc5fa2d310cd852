/**
 * The nodes (docs/operations.md "REST API"), under the API prefix:
 *
 *   GET /nodes?target= → `{ round, nodes: NodeSummary[] }`, by box, slot, cpu; with `target` only the
 *     nodes it selects (the dashboard's preview of a task's or a push's boards); 400 for a bad target
 *   GET /nodes/:id → NodeDetail; 404 for an unknown node, 400 for an id that is not box-slot-cpu
 *   DELETE /nodes/:id (admin) → `{ node, alerts_resolved }`: forgets the node (registry and store
 *     row), resolves its open alerts, records `node.rm` in the history with who (manager/removal.ts,
 *     shared with automatic pruning); 404 when unknown
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import {
  NodeDetailSchema,
  NodeListQuerySchema,
  NodeListReplySchema,
  NodeParamsSchema,
  NodeRemovedReplySchema,
} from '../../common/api/nodes.js';
import { TargetError } from '../../common/target.js';
import type { NodeRegistry } from '../registry.js';
import { type RemovalDeps, removeNode } from '../removal.js';
import { resolveTarget } from '../targets.js';
import { detail, listNodes } from '../views.js';
import { badRequest, ERROR_RESPONSES, notFound, whoOf } from './shared.js';

/** What the node routes use. */
export interface NodeRoutesOptions {
  registry: NodeRegistry;
  alerts: RemovalDeps['alerts'];
  store: RemovalDeps['store'];
}

/** Registers GET /nodes, GET /nodes/:id and DELETE /nodes/:id. */
export const nodeRoutes: FastifyPluginAsyncTypebox<NodeRoutesOptions> = async (app, { registry, alerts, store }) => {
  app.get(
    '/nodes',
    {
      config: { role: 'viewer' },
      schema: { querystring: NodeListQuerySchema, response: { 200: NodeListReplySchema, ...ERROR_RESPONSES } },
    },
    async (req, reply) => {
      let nodes = listNodes(registry);
      if (req.query.target !== undefined) {
        let ids: Set<string>;
        try {
          ids = new Set(resolveTarget(registry, req.query.target).map((n) => n.id));
        } catch (err) {
          if (err instanceof TargetError) return reply.code(400).send(badRequest('/target', `target: ${err.message}`));
          throw err;
        }
        nodes = nodes.filter((n) => ids.has(n.id));
      }
      return { round: registry.round, nodes };
    },
  );

  app.get(
    '/nodes/:id',
    {
      config: { role: 'viewer' },
      schema: { params: NodeParamsSchema, response: { 200: NodeDetailSchema, ...ERROR_RESPONSES } },
    },
    async (req, reply) => {
      const n = registry.nodes.get(req.params.id);
      if (!n) return reply.code(404).send(notFound(`no node ${req.params.id}`));
      return detail(registry, n);
    },
  );

  app.delete(
    '/nodes/:id',
    {
      config: { role: 'admin' },
      schema: { params: NodeParamsSchema, response: { 200: NodeRemovedReplySchema, ...ERROR_RESPONSES } },
    },
    async (req, reply) => {
      const { id } = req.params;
      const removed = removeNode({ registry, alerts, store }, id, whoOf(req));
      return removed ?? reply.code(404).send(notFound(`no node ${id}`));
    },
  );
};
