/**
 * The manager's HTTP server on port 3926: the report endpoints of seed 003 (POST /heartbeat,
 * POST /resource: 200 with an empty body), the REST API under /api/v1/, and GET /metrics.
 * Bad bodies get 400 with `{ error, field, message }`, oversized ones 413; nothing is stored and
 * the node keeps its last good data.
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { REPORT_URLS, type ReportUrl } from '../common/constants.js';
import { createHttpServer } from '../common/http.js';
import type { Logger } from '../common/log.js';
import { HeartbeatBody, ResourceBody } from '../common/protocol.js';
import { describeErrors, type RawError } from '../common/validate.js';
import { VERSION } from '../common/version.js';
import type { Manager } from './manager.js';
import { detail, listNodes } from './views.js';

/** An API error body. */
export interface ApiError {
  error: string;
  field?: string;
  message: string;
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

  // --- seed 003 report endpoints -------------------------------------------------------------
  app.post('/heartbeat', { schema: { body: HeartbeatBody } }, async (req, reply) => {
    manager.ingestHeartbeat((req.body as HeartbeatBody).data);
    return reply.code(200).send();
  });
  app.post('/resource', { schema: { body: ResourceBody } }, async (req, reply) => {
    manager.ingestResource((req.body as ResourceBody).data);
    return reply.code(200).send();
  });

  // --- REST API for the CLI ------------------------------------------------------------------
  app.get('/api/v1/nodes', async () => ({ round: manager.registry.round, nodes: listNodes(manager.registry) }));
  app.get(
    '/api/v1/nodes/:id',
    { schema: { params: Type.Object({ id: Type.String({ pattern: '^[0-9]+-[0-9]+-[0-9]+$' }) }) } },
    async (req, reply) => {
      const { id } = req.params as { id: string };
      const n = manager.registry.nodes.get(id);
      if (!n) return reply.code(404).send({ error: 'not_found', message: `no node ${id}` } satisfies ApiError);
      return detail(manager.registry, n);
    },
  );
  app.post(
    '/api/v1/query',
    {
      schema: {
        body: Type.Object({
          url: Type.Union(REPORT_URLS.map((u) => Type.Literal(u))),
          wait_ms: Type.Optional(Type.Integer({ minimum: 0, maximum: 60000 })),
        }),
      },
    },
    async (req) => {
      const { url, wait_ms } = req.body as { url: ReportUrl; wait_ms?: number };
      return manager.queryNow(url, wait_ms);
    },
  );
  app.get('/api/v1/status', async () => ({
    version: VERSION,
    uptime_s: Math.round(process.uptime()),
    round: manager.registry.round,
    manager_ip: manager.advertiseIp,
    manager_port: cfg.http.port,
    nodes: manager.registry.countByState(),
  }));
  app.get('/healthz', async () => ({ status: 'ok', version: VERSION }));
  app.get('/metrics', async (_req, reply) => {
    manager.refreshGauges();
    reply.header('content-type', registry.contentType);
    return registry.metrics();
  });
  return app;
}
