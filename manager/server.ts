/**
 * The manager's HTTP servers. The report listener on http.port (3926): the agents' report
 * endpoints (docs/protocol.md "2. Heartbeat", "3. Resource report", "4a. Agent alert"; 200 with
 * an empty body), GET /healthz and GET /metrics, always plain HTTP. The REST API under /api/v1/
 * (docs/operations.md "REST API", "Users and access") in its own plugin context, behind the
 * access check: on the same listener by default, or on its own (http.api.host/port, optionally
 * HTTPS from http.api.tls) serving only /api/v1 and /healthz. The API listener also serves the
 * dashboard at / and the console API at /console/ (docs/dashboard.md). Bad bodies get 400 with
 * `{ error, field, message }`, oversized ones 413; nothing is stored and the node keeps its last
 * good data (docs/protocol.md "4. The manager's answers to reports").
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import { CONSOLE_PREFIX } from '../common/api/console.js';
import { AJV_OPTIONS, createHttpServer, installJsonParser } from '../common/http.js';
import type { Logger } from '../common/log.js';
import type { Access } from './auth/access.js';
import { EVENTS_DEFAULTS, type EventsConfig } from './events.js';
import type { Ingest } from './ingest.js';
import { type ApiOptions, apiRoutes } from './routes/api.js';
import { consoleRoutes } from './routes/console.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { type OpsRoutesOptions, opsRoutes } from './routes/ops.js';
import { type ReportRoutesOptions, reportRoutes } from './routes/reports.js';
import { leanReportServerFactory } from './routes/reports-lean.js';
import { installErrorHandlers } from './routes/shared.js';

/** The prefix of the REST API. */
export const API_PREFIX = '/api/v1';

/** What the server serves. */
export type ServerOptions = ApiOptions &
  ReportRoutesOptions &
  OpsRoutesOptions & {
    ingest: Pick<Ingest, 'heartbeat' | 'resource' | 'refused'> & Partial<Pick<Ingest, 'checkSource'>>;
    /** http.body_limit_bytes: larger bodies get 413. */
    bodyLimit: number;
    /** http.max_json_depth: bodies nested deeper get 400 before they are parsed (default 32). */
    maxJsonDepth?: number;
    /** http.metrics_auth: GET /metrics needs a token. */
    metricsAuth?: boolean;
    /** The `dashboard` config section; absent = the defaults (served, console on). */
    dashboard?: DashboardConfig;
    log: Logger;
  };

/** The `dashboard` config section (docs/configuration.md "dashboard"). */
export interface DashboardConfig {
  enabled: boolean;
  dir: string;
  console: boolean;
  /** How long POST /console/exec and /console/file wait for their task or push, ms. */
  console_wait_ms?: number;
  events: EventsConfig;
}

/** The `dashboard` section's defaults (config/manager.yaml). */
export const DASHBOARD_DEFAULTS: DashboardConfig = {
  enabled: true,
  dir: '',
  console: true,
  console_wait_ms: 60_000,
  events: EVENTS_DEFAULTS,
};

/** The API listener's routes: /api/v1, and the dashboard at / and the console API at /console when enabled. */
function registerApi(app: FastifyInstance, o: ServerOptions): void {
  const d = o.dashboard ?? DASHBOARD_DEFAULTS;
  void app.register(apiRoutes, { ...o, events: d.events, prefix: API_PREFIX });
  if (d.enabled) void app.register(dashboardRoutes, { dir: d.dir, log: o.log });
  if (d.console) {
    void app.register(consoleRoutes, {
      access: o.access,
      registry: o.registry,
      store: o.store,
      apiPrefix: API_PREFIX,
      waitMs: d.console_wait_ms ?? DASHBOARD_DEFAULTS.console_wait_ms ?? 60_000,
      prefix: CONSOLE_PREFIX,
    });
  }
}

/** The certificate and key of an HTTPS API listener (PEM contents). */
export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
}

/** Deepest JSON nesting of a request body by default (http.max_json_depth). */
export const DEFAULT_MAX_JSON_DEPTH = 32;

/** `muster_manager_bodies_too_deep_total`, once per registry (both listeners of a split setup share it). */
function tooDeepCounter(metrics: Registry): Counter {
  const name = 'muster_manager_bodies_too_deep_total';
  return (
    (metrics.getSingleMetric(name) as Counter | undefined) ??
    new Counter({
      name,
      help: 'Request bodies (reports and API) refused with 400 for nesting deeper than http.max_json_depth',
      registers: [metrics],
    })
  );
}

const depthOf = (o: ServerOptions): number => o.maxJsonDepth ?? DEFAULT_MAX_JSON_DEPTH;

function withErrors(app: FastifyInstance, o: ServerOptions): FastifyInstance {
  const tooDeep = tooDeepCounter(o.metrics);
  installErrorHandlers(app, {
    bodyLimit: o.bodyLimit,
    log: o.log,
    onTooDeep: () => tooDeep.inc(),
    onReportRefused: (from, url, reason, message) => o.ingest.refused(from, url, reason, message),
  });
  return app;
}

const metricsAccess = (o: ServerOptions): Access | undefined => (o.metricsAuth ? o.access : undefined);

/**
 * A fastify app on a node:http server that answers POST /heartbeat and /resource on the lean
 * report path (manager/routes/reports-lean.ts) and passes every other request to fastify.
 */
function reportListener(o: ServerOptions): FastifyInstance {
  const tooDeep = tooDeepCounter(o.metrics);
  const factory = leanReportServerFactory({
    ingest: o.ingest,
    bodyLimit: o.bodyLimit,
    maxJsonDepth: depthOf(o),
    onTooDeep: () => tooDeep.inc(),
    log: o.log,
  });
  return withErrors(createHttpServer(o.log, o.bodyLimit, depthOf(o), factory), o);
}

/** Builds the one fastify app serving reports, operations and the API (not listening yet). */
export function buildServer(o: ServerOptions): FastifyInstance {
  const app = reportListener(o);
  void app.register(reportRoutes, { ingest: o.ingest, alerts: o.alerts });
  void app.register(opsRoutes, { metrics: o.metrics, metricsAccess: metricsAccess(o) });
  registerApi(app, o);
  return app;
}

/** Builds the report listener of a split setup: reports, /healthz and /metrics only. */
export function buildReportServer(o: ServerOptions): FastifyInstance {
  const app = reportListener(o);
  void app.register(reportRoutes, { ingest: o.ingest, alerts: o.alerts });
  void app.register(opsRoutes, { metrics: o.metrics, metricsAccess: metricsAccess(o) });
  return app;
}

/**
 * Builds the API listener of a split setup: /api/v1 and /healthz only, over HTTPS when `tls` is
 * given. Parses bodies as the report listener does (common/http.ts).
 */
export function buildApiServer(o: ServerOptions, tls?: TlsFiles): FastifyInstance {
  const app = tls
    ? withErrors(httpsServer(o.log, o.bodyLimit, depthOf(o), tls), o)
    : withErrors(createHttpServer(o.log, o.bodyLimit, depthOf(o)), o);
  void app.register(opsRoutes, { metrics: o.metrics, serveMetrics: false });
  registerApi(app, o);
  return app;
}

/** common/http.ts's setup over HTTPS (that helper has no TLS option; the agent never needs one). */
function httpsServer(log: Logger, bodyLimit: number, maxJsonDepth: number, tls: TlsFiles): FastifyInstance {
  const app = Fastify({
    https: { cert: tls.cert, key: tls.key },
    loggerInstance: log as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit,
    ajv: { customOptions: { ...AJV_OPTIONS } },
  }) as unknown as FastifyInstance;
  installJsonParser(app, maxJsonDepth);
  return app;
}
