/**
 * The operations endpoints (docs/operations.md "Health checks", "Prometheus metrics"), unprefixed
 * and outside the REST API scope:
 *
 *   GET /healthz → `{ status: 'ok', version }`
 *   GET /metrics → the Prometheus text of the daemon's registry
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Registry } from 'prom-client';
import { HealthReplySchema } from '../../common/api/status.js';
import { VERSION } from '../../common/version.js';

/** What the operations endpoints use. */
export interface OpsRoutesOptions {
  /** The daemon's Prometheus registry. */
  metrics: Registry;
}

/** Registers GET /healthz and GET /metrics. */
export const opsRoutes: FastifyPluginAsyncTypebox<OpsRoutesOptions> = async (app, { metrics }) => {
  app.get('/healthz', { schema: { response: { 200: HealthReplySchema } } }, async () => ({
    status: 'ok' as const,
    version: VERSION,
  }));
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', metrics.contentType);
    return metrics.metrics();
  });
};
