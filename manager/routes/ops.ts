/**
 * The operations endpoints (docs/operations.md "Health checks", "Prometheus metrics"), unprefixed
 * and outside the REST API scope:
 *
 *   GET /healthz → `{ status: 'ok', version }` (always open)
 *   GET /metrics → the Prometheus text of the daemon's registry; with `http.metrics_auth` it needs
 *       `Authorization: Bearer <token>` of any role (401 without), else it is open
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Registry } from 'prom-client';
import type { ApiError } from '../../common/api/errors.js';
import { HealthReplySchema } from '../../common/api/status.js';
import { VERSION } from '../../common/version.js';
import type { Access } from '../auth/access.js';
import { bearerOf } from '../auth/guard.js';

/** What the operations endpoints use. */
export interface OpsRoutesOptions {
  /** The daemon's Prometheus registry. */
  metrics: Registry;
  /** When set (http.metrics_auth), GET /metrics needs a valid token of any role. */
  metricsAccess?: Access | undefined;
  /** Serve GET /metrics here (false on a split API listener: it is on the report port). */
  serveMetrics?: boolean;
}

/** Registers GET /healthz and GET /metrics. */
export const opsRoutes: FastifyPluginAsyncTypebox<OpsRoutesOptions> = async (app, o) => {
  app.get('/healthz', { schema: { response: { 200: HealthReplySchema } } }, async () => ({
    status: 'ok' as const,
    version: VERSION,
  }));
  if (o.serveMetrics === false) return;
  app.get('/metrics', async (req, reply) => {
    const access = o.metricsAccess;
    if (access) {
      const token = bearerOf(req);
      if (token === undefined || !access.authenticate(token)) {
        access.metrics.refused.inc({ status: '401' });
        return reply
          .code(401)
          .header('www-authenticate', 'Bearer realm="muster"')
          .send({
            error: 'unauthorized',
            message: 'http.metrics_auth is on: send Authorization: Bearer <token>',
          } satisfies ApiError);
      }
    }
    reply.header('content-type', o.metrics.contentType);
    return o.metrics.metrics();
  });
};
