/**
 * The manager's HTTP server on port 3926: the report endpoints of seed 003 (POST /heartbeat,
 * POST /resource: 200 with an empty body), the REST API under /api/v1/, and GET /metrics.
 * Bad bodies get 400 with `{ error, field, message }`, oversized ones 413; nothing is stored and
 * the node keeps its last good data.
 */
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import type { ReportUrl } from '../common/constants.js';
import { createHttpServer } from '../common/http.js';
import type { Logger } from '../common/log.js';
import { describeErrors, type RawError } from '../common/validate.js';
import { VERSION } from '../common/version.js';
import type { Manager } from './manager.js';
import { alertRoutes } from './routes/alerts.js';
import { deployRoutes } from './routes/deploy.js';
import { historyRoutes } from './routes/history.js';
import { nodeRoutes } from './routes/nodes.js';
import { reportRoutes } from './routes/reports.js';
import { telemetryRoutes } from './routes/telemetry.js';

/** An API error body. */
export interface ApiError {
  error: string;
  field?: string;
  message: string;
}

/**
 * Who ran an operation: the `x-muster-user` header (the CLI sends the user name, non-ASCII
 * percent-encoded), else `cli`. At most 100 characters.
 */
export function whoOf(req: FastifyRequest): string {
  const header = req.headers['x-muster-user'];
  let who = (Array.isArray(header) ? header[0] : header)?.trim() ?? '';
  try {
    who = decodeURIComponent(who);
  } catch {
    // not percent-encoded: keep it as sent
  }
  return who.slice(0, 100) || 'cli';
}

/** Builds the fastify app for `manager`. */
export function buildServer(manager: Manager, log: Logger): FastifyInstance {
  const { cfg, metrics: m } = manager;
  const registry = m.registry;
  const app = createHttpServer(log, cfg.http.body_limit_bytes);

  app.setErrorHandler((err: FastifyError, req, reply) => {
    const url = req.routeOptions.url;
    const isReport = url === '/heartbeat' || url === '/resource';
    let status = err.statusCode ?? 500;
    let body: ApiError;
    if (err.validation) {
      status = 400;
      const e = describeErrors(err.validation as unknown as RawError[]);
      const field =
        err.validationContext === 'body' ? e.field : `${err.validationContext}${e.field === '/' ? '' : e.field}`;
      body = { error: 'bad_request', field, message: `${field} ${e.message}` };
      if (isReport) m.rejected.inc({ url, reason: 'schema' });
    } else if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      body = { error: 'payload_too_large', message: `body larger than ${cfg.http.body_limit_bytes} bytes` };
      if (isReport) m.rejected.inc({ url, reason: 'too_large' });
    } else if (status === 400) {
      body = { error: 'bad_request', field: '/', message: err.message };
      if (isReport) m.rejected.inc({ url, reason: 'json' });
    } else if (status < 500) {
      body = { error: 'bad_request', message: err.message };
    } else {
      log.error({ err: err.message, url }, 'request failed');
      body = { error: 'internal', message: 'internal error' };
    }
    if (isReport) manager.noteRejected(req.ip, url as ReportUrl, body.message);
    return reply.code(status).send(body);
  });

  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ error: 'not_found', message: `no route ${req.method} ${req.url}` } satisfies ApiError),
  );
  reportRoutes(app, manager);
  nodeRoutes(app, manager);
  deployRoutes(app, manager);
  alertRoutes(app, manager);
  historyRoutes(app, manager);
  telemetryRoutes(app, manager);
  // Later capabilities register their routes here, one file each under manager/routes/.

  app.get('/healthz', async () => ({ status: 'ok', version: VERSION }));
  app.get('/metrics', async (_req, reply) => {
    manager.refreshGauges();
    reply.header('content-type', registry.contentType);
    return registry.metrics();
  });
  return app;
}
