/**
 * The agent's command service (docs/configuration.md "service"; docs/operations.md "Health
 * checks", "Prometheus metrics"): `GET /healthz`, `GET /metrics`, and the command routes
 * (agent/http/commands.ts). Request bodies are limited to 1 MiB.
 */
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { createHttpServer } from '../../common/http.js';
import type { Logger } from '../../common/log.js';

/** Largest request body, bytes. */
const BODY_LIMIT = 1 << 20;

/** What `/healthz` answers. */
export interface Health {
  status: 'ok';
  node: string;
  version: string;
  uptime_s: number;
  multicast_joined: boolean;
  /** ISO time of the latest valid query, or null. */
  last_query_at: string | null;
}

/** A fastify instance with `/healthz` (from `health()`) and `/metrics` (from `metrics`). */
export function createAgentServer(log: Logger, metrics: Registry, health: () => Health): FastifyInstance {
  const app = createHttpServer(log, BODY_LIMIT);
  app.get('/healthz', async () => health());
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', metrics.contentType);
    return metrics.metrics();
  });
  return app;
}
