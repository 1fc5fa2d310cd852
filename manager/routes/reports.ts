/** The report endpoints of seed 003 (状态协议): POST /heartbeat and POST /resource, 200 with an empty body. */
import type { FastifyInstance } from 'fastify';
import { HeartbeatBody, ResourceBody } from '../../common/protocol.js';
import type { Manager } from '../manager.js';

/** Registers POST /heartbeat and POST /resource; bodies are validated against common/protocol.ts. */
export function reportRoutes(app: FastifyInstance, manager: Manager): void {
  app.post('/heartbeat', { schema: { body: HeartbeatBody } }, async (req, reply) => {
    manager.ingestHeartbeat((req.body as HeartbeatBody).data);
    return reply.code(200).send();
  });
  app.post('/resource', { schema: { body: ResourceBody } }, async (req, reply) => {
    manager.ingestResource((req.body as ResourceBody).data);
    return reply.code(200).send();
  });
}
