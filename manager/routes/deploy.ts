/**
 * Workloads (docs/operations.md "REST API", "Deploying workloads"), under the API prefix:
 * deployments (a start or stop sent to a node's agent, manager/deploy.ts) and the components the
 * nodes report.
 *
 *   POST /deployments `{ node?, constraints?, scoring?, mode, type, uuid?, id?, url?, file?, require?, instance_id?, index? }`
 *        → 202 `{ deployment }` at once; the agent call goes on in the background. A start without
 *        `node` is placed (docs/scheduling.md "Placement"); 409 `placement_failed` explains why none fits
 *   GET  /deployments?node=&limit= → `{ deployments }`, oldest first
 *   GET  /deployments/:id → `{ deployment }` (with progress, and result once done)
 *   GET  /components?node= → `{ components: [{ node, host_ip, ...component }] }`
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import {
  DeploymentBodySchema,
  DeploymentListQuerySchema,
  DeploymentListReplySchema,
  DeploymentParamsSchema,
  DeploymentReplySchema,
} from '../../common/api/deploy.js';
import { ComponentListReplySchema, NodeFilterSchema } from '../../common/api/nodes.js';
import { type Constraint, parseConstraints } from '../../common/constraints.js';
import type { Deployer } from '../deploy.js';
import type { NodeRegistry } from '../registry.js';
import { PlacementFailed, type Placer } from '../scheduler/placer.js';
import { listComponents } from '../views.js';
import { type ApiError, badRequest, ERROR_RESPONSES, notFound, whoOf } from './shared.js';

/** What the deployment and component routes use. */
export interface DeployRoutesOptions {
  deployer: Pick<Deployer, 'start' | 'stop' | 'list' | 'get'>;
  /** Starts without a node: placement (manager/scheduler/). */
  placer: Pick<Placer, 'start'>;
  registry: NodeRegistry;
}

/** Registers the deployment and component routes. */
export const deployRoutes: FastifyPluginAsyncTypebox<DeployRoutesOptions> = async (
  app,
  { deployer, placer, registry },
) => {
  app.post(
    '/deployments',
    {
      config: { role: 'operator' },
      schema: { body: DeploymentBodySchema, response: { 202: DeploymentReplySchema, ...ERROR_RESPONSES } },
    },
    async (req, reply) => {
      const b = req.body;
      const who = whoOf(req);
      try {
        if (b.mode === 'start') {
          const { type, url, file, require } = b;
          if (type === undefined) return reply.code(400).send(badRequest('/type', '/type is required for a start'));
          if (url === undefined) return reply.code(400).send(badRequest('/url', '/url is required for a start'));
          if (file === undefined) return reply.code(400).send(badRequest('/file', '/file is required for a start'));
          if (require === undefined)
            return reply.code(400).send(badRequest('/require', '/require is required for a start'));
          const input = { type, uuid: b.uuid, url, file, require, instance_id: b.instance_id, index: b.index };
          if (b.node !== undefined) {
            if (b.constraints !== undefined || b.scoring !== undefined)
              return reply
                .code(400)
                .send(badRequest('/constraints', 'constraints and scoring are for a start without node'));
            const { deployment } = deployer.start(b.node, input, who);
            return reply.code(202).send({ deployment });
          }
          let constraints: Constraint[];
          try {
            constraints = parseConstraints(b.constraints ?? []);
          } catch (err) {
            return reply.code(400).send(badRequest('/constraints', (err as Error).message));
          }
          const { deployment } = placer.start({ ...input, constraints, scoring: b.scoring }, who);
          return reply.code(202).send({ deployment });
        }
        if (b.node === undefined) return reply.code(400).send(badRequest('/node', '/node is required for a stop'));
        if (b.uuid === undefined) return reply.code(400).send(badRequest('/uuid', '/uuid is required for a stop'));
        const { deployment } = deployer.stop(b.node, { uuid: b.uuid, type: b.type, id: b.id }, who);
        return reply.code(202).send({ deployment });
      } catch (err) {
        if (err instanceof PlacementFailed) {
          return reply.code(409).send({ error: 'placement_failed', message: err.message } satisfies ApiError);
        }
        throw err; // a DeployRefused is answered by the error handler (manager/refused.ts)
      }
    },
  );

  app.get(
    '/deployments',
    {
      config: { role: 'viewer' },
      schema: {
        querystring: DeploymentListQuerySchema,
        response: { 200: DeploymentListReplySchema, ...ERROR_RESPONSES },
      },
    },
    async (req) => {
      const q = req.query;
      return {
        deployments: deployer.list({ node: q.node, limit: q.limit === undefined ? undefined : Number(q.limit) }),
      };
    },
  );

  app.get(
    '/deployments/:id',
    {
      config: { role: 'viewer' },
      schema: { params: DeploymentParamsSchema, response: { 200: DeploymentReplySchema, ...ERROR_RESPONSES } },
    },
    async (req, reply) => {
      const { id } = req.params;
      const deployment = deployer.get(id);
      if (!deployment) return reply.code(404).send(notFound(`no deployment ${id}`));
      return { deployment };
    },
  );

  app.get(
    '/components',
    {
      config: { role: 'viewer' },
      schema: { querystring: NodeFilterSchema, response: { 200: ComponentListReplySchema, ...ERROR_RESPONSES } },
    },
    async (req) => ({ components: listComponents(registry, req.query.node) }),
  );
};
