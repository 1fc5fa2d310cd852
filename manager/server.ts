/**
 * The manager's HTTP server on http.port (3926): the agents' report endpoints (docs/protocol.md
 * "2. Heartbeat", "3. Resource report", "4a. Agent alert"; 200 with an empty body), the REST API
 * under /api/v1/ (docs/operations.md "REST API") in its own plugin context, GET /healthz and
 * GET /metrics. Bad bodies get 400 with `{ error, field, message }`, oversized ones 413; nothing
 * is stored and the node keeps its last good data (docs/protocol.md "4. The manager's answers to
 * reports").
 */
import type { FastifyInstance } from 'fastify';
import { createHttpServer } from '../common/http.js';
import type { Logger } from '../common/log.js';
import type { Ingest } from './ingest.js';
import { type ApiOptions, apiRoutes } from './routes/api.js';
import { type OpsRoutesOptions, opsRoutes } from './routes/ops.js';
import { type ReportRoutesOptions, reportRoutes } from './routes/reports.js';
import { installErrorHandlers } from './routes/shared.js';

/** The prefix of the REST API. */
export const API_PREFIX = '/api/v1';

/** What the server serves. */
export type ServerOptions = ApiOptions &
  ReportRoutesOptions &
  OpsRoutesOptions & {
    ingest: Pick<Ingest, 'heartbeat' | 'resource' | 'refused'>;
    /** http.body_limit_bytes: larger bodies get 413. */
    bodyLimit: number;
    log: Logger;
  };

/** Builds the fastify app (not listening yet). */
export function buildServer(o: ServerOptions): FastifyInstance {
  const app = createHttpServer(o.log, o.bodyLimit);
  installErrorHandlers(app, {
    bodyLimit: o.bodyLimit,
    log: o.log,
    onReportRefused: (from, url, reason, message) => o.ingest.refused(from, url, reason, message),
  });
  void app.register(reportRoutes, { ingest: o.ingest, alerts: o.alerts });
  void app.register(opsRoutes, { metrics: o.metrics });
  void app.register(apiRoutes, { ...o, prefix: API_PREFIX });
  return app;
}
