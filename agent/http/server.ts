/**
 * The agent's command service (docs/configuration.md "service" and "http"; docs/operations.md
 * "Health checks", "Prometheus metrics", "Agent footprint"): `GET /healthz`, `GET /metrics`, the
 * command routes (agent/http/commands.ts) and the file and screen routes (agent/http/files.ts),
 * on plain `node:http` with a small exact-path router: no framework, no schema compiler (the
 * agent's RSS budget; the command bodies are validated by the registry, agent/handlers/registry.ts).
 *
 * What the port does for every route, as it did when it ran on fastify:
 * - the token check of a route runs before any byte of its body is read (`before`);
 * - command bodies are read up to `http.body_limit_bytes` (413 from the content-length before a
 *   byte is read, or as soon as the bound is passed) and refused when nested deeper than
 *   `http.max_json_depth` (400, measured by a linear scan before `JSON.parse` runs, see
 *   common/json-depth.ts) or not JSON (400); an empty body is no body;
 * - an unknown path or method: 404 `{"message":"Route GET:/x not found","error":"Not Found","statusCode":404}`;
 *   `HEAD` of a GET route answers its headers;
 * - a handler that throws: 500 `{"statusCode":500,"error":"Internal Server Error","message":"internal error"}`
 *   (logged);
 * - timeouts: idle keep-alive connections close after 72 s, request headers must arrive within
 *   60 s; a request body has no overall time limit (uploads stream for as long as they send:
 *   `files.idle_timeout_ms` bounds their silences).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { jsonDepthExceeds, NOT_JSON_MESSAGE, tooDeepMessage } from '../../common/json-depth.js';
import type { Logger } from '../../common/log.js';
import type { Registry } from '../prom.js';

// node:http through getBuiltinModule, not `import`: an ESM import of node:http evaluates every
// export of the module, and its lazy WebSocket/EventSource exports load Node's internal undici
// (docs/operations.md "Agent footprint").
const nodeHttp = process.getBuiltinModule('node:http');

/** Largest request body by default, bytes (http.body_limit_bytes). */
export const DEFAULT_BODY_LIMIT = 1 << 20;
/** Deepest JSON nesting of a request body by default (http.max_json_depth). */
export const DEFAULT_MAX_JSON_DEPTH = 32;
/** An idle keep-alive connection is closed after this long, ms. */
export const KEEP_ALIVE_TIMEOUT_MS = 72_000;
/** The request line and headers must arrive within this, ms. */
export const HEADERS_TIMEOUT_MS = 60_000;
/** Longest path parameter (`/deploy/:uuid`); a longer one is not a route (404). */
export const MAX_PARAM_LENGTH = 100;

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

/** The depth scan, shared with the manager (common/json-depth.ts). */
export { jsonDepthExceeds };

/** One request as a route sees it. */
export interface AgentRequest {
  raw: IncomingMessage;
  method: string;
  /** The path and query as sent (for logs). */
  url: string;
  /** The path without the query. */
  path: string;
  /** The query string's parameters (the last of a repeated name wins). */
  query: Record<string, string | undefined>;
  /** The path parameter of a prefix route (`/deploy/:uuid` → `{ uuid }`), decoded. */
  params: Record<string, string>;
  /** The peer's address. */
  ip: string;
}

/** A route's handler: it answers through `res` (see {@link sendJson}); a throw is a 500. */
export type RouteHandler = (req: AgentRequest, res: ServerResponse) => Promise<void> | void;

/**
 * Runs before the body is read (the token check): true when it answered (the route's handler
 * then does not run), false to go on.
 */
export type BeforeHook = (req: AgentRequest, res: ServerResponse) => boolean;

interface Route {
  handler: RouteHandler;
  before?: BeforeHook | undefined;
  /** The name of the path parameter of a prefix route. */
  param?: string | undefined;
}

/** A body read by {@link readJsonBody}: the parsed value, or why it was refused. */
export type BodyResult = { ok: true; value: unknown } | { ok: false; status: 400 | 413; message: string };

/** Sends `body` as JSON with `status` (and `headers`), content-length set. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string | number> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/**
 * Reads a request body of at most `bounds.bodyLimit` bytes and parses it as JSON (whatever its
 * content type: agents that follow only the spec may send any or none). '' is no body
 * (`undefined`). Refusals: 413 `Request body is too large` (from the content-length before a
 * byte is read, or once the bound is passed: the rest is discarded), 400 for a body nested deeper
 * than `bounds.maxJsonDepth` (before parsing) or not JSON, 400 for a client gone mid-body (its
 * answer goes nowhere; the promise never stays pending).
 */
export function readJsonBody(req: IncomingMessage, bounds: BodyBounds): Promise<BodyResult> {
  const tooLarge = { ok: false, status: 413, message: 'Request body is too large' } as const;
  const declared = Number(req.headers['content-length']);
  if (declared > bounds.bodyLimit) {
    req.resume();
    return Promise.resolve(tooLarge);
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (r: BodyResult) => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
      resolve(r);
    };
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > bounds.bodyLimit) {
        chunks.length = 0;
        done(tooLarge);
        req.resume(); // the rest is read and dropped
      } else chunks.push(c);
    };
    const onError = (err: Error) => done({ ok: false, status: 400, message: err.message });
    // A client gone before the end of its body: settled (nobody reads the answer).
    const onClose = () => {
      if (!req.complete) done({ ok: false, status: 400, message: 'the request was cut off' });
    };
    const onEnd = () => {
      const text =
        chunks.length === 1 ? (chunks[0] as Buffer).toString('utf8') : Buffer.concat(chunks).toString('utf8');
      if (text === '') return done({ ok: true, value: undefined });
      if (jsonDepthExceeds(text, bounds.maxJsonDepth))
        return done({ ok: false, status: 400, message: tooDeepMessage(bounds.maxJsonDepth) });
      try {
        done({ ok: true, value: JSON.parse(text) });
      } catch {
        done({ ok: false, status: 400, message: NOT_JSON_MESSAGE });
      }
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

function queryOf(search: string): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  if (search.length > 1) for (const [k, v] of new URLSearchParams(search)) out[k] = v;
  return out;
}

/**
 * The command port: exact routes (`GET /healthz`) and prefix routes with one path parameter
 * (`GET /deploy/:uuid`), on one node:http server.
 */
export class AgentServer {
  private readonly routes = new Map<string, Route>();
  private readonly prefixes: { method: string; prefix: string; route: Route }[] = [];
  readonly server: Server;
  private closing = false;

  constructor(private readonly log: Logger) {
    this.server = nodeHttp.createServer(
      {
        keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
        headersTimeout: HEADERS_TIMEOUT_MS,
        // No overall request time limit: an upload streams for as long as it keeps sending.
        requestTimeout: 0,
      },
      (req, res) => void this.handle(req, res),
    );
  }

  /**
   * Adds a route. `path` is exact, or ends in `/:name` for a prefix route whose last segment is
   * the parameter `name` (non-empty, at most {@link MAX_PARAM_LENGTH} characters).
   * @throws Error when the method and path are already routed
   */
  route(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, handler: RouteHandler, before?: BeforeHook): void {
    const m = /^(.*\/):([a-z_]+)$/.exec(path);
    if (m) {
      this.prefixes.push({ method, prefix: m[1] as string, route: { handler, before, param: m[2] } });
      return;
    }
    const key = `${method} ${path}`;
    if (this.routes.has(key)) throw new Error(`route ${key} is registered twice`);
    this.routes.set(key, { handler, before });
  }

  /** Listens on `host:port`; resolves with the bound port. */
  async listen(o: { host: string; port: number }): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(o.port, o.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return (this.server.address() as AddressInfo).port;
  }

  /**
   * Stops listening, closes idle connections, and resolves once the requests in flight (a long
   * poll, an upload) have been answered and their connections closed.
   */
  async close(): Promise<void> {
    if (!this.server.listening) return;
    this.closing = true;
    const closed = new Promise((r) => this.server.close(r));
    this.server.closeIdleConnections();
    await closed;
  }

  private find(method: string, path: string): { route: Route; params: Record<string, string> } | null {
    const exact = this.routes.get(`${method} ${path}`);
    if (exact) return { route: exact, params: {} };
    for (const p of this.prefixes) {
      if (p.method !== method || !path.startsWith(p.prefix)) continue;
      const rest = path.slice(p.prefix.length);
      if (rest === '' || rest.includes('/') || rest.length > MAX_PARAM_LENGTH) continue;
      let value: string;
      try {
        value = decodeURIComponent(rest);
      } catch {
        continue;
      }
      return { route: p.route, params: { [p.route.param as string]: value } };
    }
    return null;
  }

  private async handle(raw: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = raw.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const method = raw.method ?? 'GET';
    // While closing, a request on a kept-alive connection is answered and the connection closed.
    if (this.closing) res.shouldKeepAlive = false;
    const found = this.find(method === 'HEAD' ? 'GET' : method, path);
    if (!found) {
      raw.resume();
      return sendJson(res, 404, { message: `Route ${method}:${url} not found`, error: 'Not Found', statusCode: 404 });
    }
    const req: AgentRequest = {
      raw,
      method,
      url,
      path,
      query: q < 0 ? {} : queryOf(url.slice(q)),
      params: found.params,
      ip: raw.socket.remoteAddress ?? '',
    };
    try {
      if (found.route.before?.(req, res)) return;
      await found.route.handler(req, res);
    } catch (err) {
      this.log.error({ url: url.slice(0, 300), err: (err as Error).stack ?? String(err) }, 'agent route threw');
      if (!res.headersSent)
        sendJson(res, 500, { statusCode: 500, error: 'Internal Server Error', message: 'internal error' });
      else res.destroy();
    }
  }
}

/**
 * The agent's server with `/healthz` (from `health()`) and `/metrics` (from `metrics`); the
 * command and file routes are added by agent/http/commands.ts and agent/http/files.ts.
 */
export function createAgentServer(log: Logger, metrics: Registry, health: () => Health): AgentServer {
  const app = new AgentServer(log);
  app.route('GET', '/healthz', (_req, res) => sendJson(res, 200, health()));
  app.route('GET', '/metrics', async (_req, res) => {
    const text = await metrics.metrics();
    res.writeHead(200, { 'content-type': metrics.contentType, 'content-length': Buffer.byteLength(text) });
    res.end(text);
  });
  return app;
}
