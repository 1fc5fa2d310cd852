/**
 * The agent's command service (docs/configuration.md "service" and "http"; docs/operations.md
 * "Health checks", "Prometheus metrics"): `GET /healthz`, `GET /metrics`, and the command routes
 * (agent/http/commands.ts). Request bodies are bounded in size (`http.body_limit_bytes`, 413) and
 * in JSON nesting depth (`http.max_json_depth`, 400 `too deep`): the depth is measured by a
 * linear scan of the text before `JSON.parse` runs, so a deeply nested body costs one pass over
 * its bytes, never a recursive parse. Bodies are only read after the token check (commands.ts).
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { createHttpServer, jsonDepthExceeds } from '../../common/http.js';
import type { Logger } from '../../common/log.js';

/** Largest request body by default, bytes (http.body_limit_bytes). */
export const DEFAULT_BODY_LIMIT = 1 << 20;
/** Deepest JSON nesting of a request body by default (http.max_json_depth). */
export const DEFAULT_MAX_JSON_DEPTH = 32;

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

/** Bounds of request bodies. */
export interface BodyBounds {
  /** Largest body, bytes; a larger one is refused with 413. */
  bodyLimit: number;
  /** Deepest nesting of objects and arrays; a deeper body is refused with 400 before parsing. */
  maxJsonDepth: number;
}

/** The depth scan, shared with the manager (common/http.ts). */
export { jsonDepthExceeds };

/**
 * A fastify instance with `/healthz` (from `health()`) and `/metrics` (from `metrics`), whose
 * JSON body parser enforces `bounds` (default 1 MiB, depth 32).
 */
export function createAgentServer(
  log: Logger,
  metrics: Registry,
  health: () => Health,
  bounds: BodyBounds = { bodyLimit: DEFAULT_BODY_LIMIT, maxJsonDepth: DEFAULT_MAX_JSON_DEPTH },
): FastifyInstance {
  const app = createHttpServer(log, bounds.bodyLimit);
  // The shared parser (common/http.ts) with a depth bound in front of JSON.parse.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => {
    const text = body as string;
    const fail = (message: string, code: string) => {
      const err = new Error(message) as FastifyError;
      err.statusCode = 400;
      err.code = code;
      done(err, undefined);
    };
    if (text === '') return done(null, undefined);
    if (jsonDepthExceeds(text, bounds.maxJsonDepth)) {
      return fail(
        `body is nested too deep: more than ${bounds.maxJsonDepth} levels (http.max_json_depth)`,
        'MUSTER_JSON_TOO_DEEP',
      );
    }
    try {
      done(null, JSON.parse(text));
    } catch {
      fail('body is not valid JSON', 'FST_ERR_CTP_INVALID_JSON_BODY');
    }
  });
  app.get('/healthz', async () => health());
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', metrics.contentType);
    return metrics.metrics();
  });
  return app;
}
