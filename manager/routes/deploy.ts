/**
 * The REST API for workloads under /api/v1/: deployments (a start or stop sent to a node's agent,
 * manager/deploy.ts) and the components the nodes report.
 *
 *   POST /api/v1/deployments `{ node, mode, type, uuid?, id?, url?, file?, require?, instance_id?, index? }`
 *        → 202 `{ deployment }` at once; the agent call goes on in the background
 *   GET  /api/v1/deployments?node=&limit= → `{ deployments }`, oldest first
 *   GET  /api/v1/deployments/:id → `{ deployment }` (with progress, and result once done)
 *   GET  /api/v1/components?node= → `{ components: [{ node, host_ip, ...component }] }`
 */
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { Require } from '../../common/protocol.js';
import { DeployRefused } from '../deploy.js';
import type { Manager } from '../manager.js';
import { type ApiError, whoOf } from '../server.js';
import { listComponents } from '../views.js';

const NodeId = Type.String({ pattern: '^[0-9]+-[0-9]+-[0-9]+$', description: 'node id box-slot-cpu' });
const WorkloadType = Type.Union([Type.Literal('docker'), Type.Literal('bar')]);

/** Body of POST /api/v1/deployments. Conditional rules (start needs url, file, require) are checked in code. */
export const DeploymentBody = Type.Object(
  {
    node: NodeId,
    mode: Type.Union([Type.Literal('start'), Type.Literal('stop')]),
    type: Type.Optional(WorkloadType),
    uuid: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    id: Type.Optional(Type.Union([Type.String({ minLength: 1 }), Type.Integer({ minimum: 1 })])),
    url: Type.Optional(Type.String({ minLength: 1 })),
    file: Type.Optional(Type.String({ minLength: 1 })),
    require: Type.Optional(Require),
    instance_id: Type.Optional(Type.String()),
    index: Type.Optional(Type.Integer()),
  },
  { additionalProperties: false },
);
type DeploymentBody = {
  node: string;
  mode: 'start' | 'stop';
  type?: 'docker' | 'bar';
  uuid?: string;
  id?: string | number;
  url?: string;
  file?: string;
  require?: Require;
  instance_id?: string;
  index?: number;
};

const bad = (field: string, message: string): ApiError => ({ error: 'bad_request', field, message });

/** Registers the deployment and component routes (the Deployer is the manager's). */
export function deployRoutes(app: FastifyInstance, manager: Manager): void {
  const { deployer } = manager;

  app.post('/api/v1/deployments', { schema: { body: DeploymentBody } }, async (req, reply) => {
    const b = req.body as DeploymentBody;
    const who = whoOf(req);
    try {
      if (b.mode === 'start') {
        for (const k of ['type', 'url', 'file', 'require'] as const) {
          if (b[k] === undefined) return reply.code(400).send(bad(`/${k}`, `/${k} is required for a start`));
        }
        const { deployment } = deployer.start(
          b.node,
          {
            type: b.type as 'docker' | 'bar',
            uuid: b.uuid,
            url: b.url as string,
            file: b.file as string,
            require: b.require as Require,
            instance_id: b.instance_id,
            index: b.index,
          },
          who,
        );
        return reply.code(202).send({ deployment });
      }
      if (b.uuid === undefined) return reply.code(400).send(bad('/uuid', '/uuid is required for a stop'));
      const { deployment } = deployer.stop(b.node, { uuid: b.uuid, type: b.type, id: b.id }, who);
      return reply.code(202).send({ deployment });
    } catch (err) {
      if (err instanceof DeployRefused) {
        return reply.code(err.status).send({
          error: err.code,
          ...(err.field ? { field: err.field } : {}),
          message: err.message,
        } satisfies ApiError);
      }
      throw err;
    }
  });

  app.get(
    '/api/v1/deployments',
    {
      schema: {
        querystring: Type.Object({
          node: Type.Optional(NodeId),
          limit: Type.Optional(Type.String({ pattern: '^[0-9]+$', description: 'newest N' })),
        }),
      },
    },
    async (req) => {
      const q = req.query as { node?: string; limit?: string };
      return {
        deployments: deployer.list({ node: q.node, limit: q.limit === undefined ? undefined : Number(q.limit) }),
      };
    },
  );

  app.get(
    '/api/v1/deployments/:id',
    { schema: { params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }) } },
    async (req, reply) => {
      const { id } = req.params as { id: string };
      const deployment = deployer.get(id);
      if (!deployment)
        return reply.code(404).send({ error: 'not_found', message: `no deployment ${id}` } satisfies ApiError);
      return { deployment };
    },
  );

  app.get(
    '/api/v1/components',
    { schema: { querystring: Type.Object({ node: Type.Optional(NodeId) }) } },
    async (req) => {
      const { node } = req.query as { node?: string };
      return { components: listComponents(manager.registry, node) };
    },
  );
}
