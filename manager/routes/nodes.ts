/**
 * The nodes (docs/operations.md "REST API"), under the API prefix:
 *
 *   GET /nodes → `{ round, nodes: NodeSummary[] }`, by box, slot, cpu
 *   GET /nodes/:id → NodeDetail; 404 for an unknown node, 400 for an id that is not box-slot-cpu
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { NodeDetailSchema, NodeListReplySchema, NodeParamsSchema } from '../../common/api/nodes.js';
import type { NodeRegistry } from '../registry.js';
import { detail, listNodes } from '../views.js';
import { ERROR_RESPONSES, notFound } from './shared.js';

/** What the node routes use. */
export interface NodeRoutesOptions {
  registry: NodeRegistry;
}

/** Registers GET /nodes and GET /nodes/:id. */
export const nodeRoutes: FastifyPluginAsyncTypebox<NodeRoutesOptions> = async (app, { registry }) => {
  app.get(
    '/nodes',
    { config: { role: 'viewer' }, schema: { response: { 200: NodeListReplySchema, ...ERROR_RESPONSES } } },
    async () => ({
      round: registry.round,
      nodes: listNodes(registry),
    }),
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
};
