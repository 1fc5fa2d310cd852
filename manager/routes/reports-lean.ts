/**
 * The lean report path (docs/protocol.md "2. Heartbeat", "3. Resource report", "4. The manager's
 * answers to reports"; docs/operations.md "Sizing"): POST /heartbeat and POST /resource on the
 * report listener are answered straight from node:http, before fastify sees them, because a
 * fleet sends thousands of them per second and fastify's request machinery (request/reply
 * objects, hooks, content-type lookup, async handler) cost about as much CPU as the manager's own
 * work on each report. Every other request goes to fastify.
 *
 * It answers exactly as the fastify routes of manager/routes/reports.ts do (they stay registered:
 * the route table, `inject` in tests, and any request this path does not take):
 *   - the same body bound (http.body_limit_bytes → 413 `payload_too_large`, connection closed),
 *     nesting bound (http.max_json_depth → 400, muster_manager_bodies_too_deep_total) and JSON
 *     parse (400 `body is not valid JSON`), both connection-closing like fastify's body errors;
 *   - the same validator: the schemas of common/protocol.ts compiled by fastify's own compiler
 *     (@fastify/ajv-compiler) with the same ajv options (common/http.ts AJV_OPTIONS), the error
 *     phrased by common/validate.ts describeErrors as the error handler does (manager/routes/shared.ts);
 *   - the same answer (answerReport: source check, ingest, 503 registry_full);
 *   - refusals counted and logged through Ingest.refused with the same reasons.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import AjvCompiler from '@fastify/ajv-compiler';
import type { FastifyServerFactory } from 'fastify';
import type { ReportUrl } from '../../common/constants.js';
import { AJV_OPTIONS, jsonDepthExceeds, NOT_JSON_MESSAGE, tooDeepMessage } from '../../common/http.js';
import type { Logger } from '../../common/log.js';
import { HeartbeatBody, ResourceBody } from '../../common/protocol.js';
import { describeErrors, type RawError } from '../../common/validate.js';
import type { Ingest } from '../ingest.js';
import { answerReport, type ReportRoutesOptions } from './reports.js';
import { type ApiError, badRequest, type RefusalReason } from './shared.js';

/** What the lean path needs. */
export interface LeanReportOptions {
  ingest: ReportRoutesOptions['ingest'] & Pick<Ingest, 'refused'>;
  /** http.body_limit_bytes. */
  bodyLimit: number;
  /** http.max_json_depth; undefined = no depth bound. */
  maxJsonDepth?: number;
  /** Called for a body refused for its depth (counts muster_manager_bodies_too_deep_total). */
  onTooDeep?: () => void;
  log: Logger;
}

/** A compiled ajv validator: true when valid, else `errors` holds the first error. */
type Validate = ((value: unknown) => boolean) & { errors?: RawError[] | null };

/**
 * The body validators of the two report routes, compiled as fastify compiles a route's body
 * schema (same compiler package, same options), from the one schema source, common/protocol.ts.
 */
export function reportValidators(): Record<ReportUrl, Validate> {
  const build = AjvCompiler()({}, { customOptions: { ...AJV_OPTIONS } } as never) as unknown as (route: {
    schema: unknown;
    method: string;
    url: string;
    httpPart: string;
  }) => Validate;
  return {
    '/heartbeat': build({ schema: HeartbeatBody, method: 'POST', url: '/heartbeat', httpPart: 'body' }),
    '/resource': build({ schema: ResourceBody, method: 'POST', url: '/resource', httpPart: 'body' }),
  };
}

const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * The request's Content-Length (NaN when absent), read from its raw headers: `req.headers` would
 * build the whole header object, which nothing else on this path needs.
 */
function contentLength(req: IncomingMessage): number {
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 14 && name.toLowerCase() === 'content-length') return Number(raw[i + 1]);
  }
  return Number.NaN;
}
const EMPTY_200 = { 'content-length': 0 } as const;

function sendJson(res: ServerResponse, status: number, body: ApiError, close: boolean): void {
  const text = JSON.stringify(body);
  const headers: http.OutgoingHttpHeaders = { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(text) };
  if (close) headers.connection = 'close';
  res.writeHead(status, headers).end(text);
}

/**
 * The lean path's request filter: takes POST /heartbeat and POST /resource (query string
 * ignored, as fastify's router does) and answers them; returns false for anything else, which
 * the caller passes to fastify.
 */
export function leanReports(o: LeanReportOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const validators = reportValidators();
  const { ingest, bodyLimit, maxJsonDepth, log } = o;

  const refuse = (
    req: IncomingMessage,
    res: ServerResponse,
    url: ReportUrl,
    status: number,
    body: ApiError,
    reason: RefusalReason | undefined,
    close: boolean,
  ) => {
    ingest.refused(req.socket.remoteAddress ?? '', url, reason, body.message);
    sendJson(res, status, body, close);
  };

  const answer = (req: IncomingMessage, res: ServerResponse, url: ReportUrl, text: string) => {
    let doc: unknown;
    if (text !== '') {
      if (maxJsonDepth !== undefined && jsonDepthExceeds(text, maxJsonDepth)) {
        o.onTooDeep?.();
        return refuse(req, res, url, 400, badRequest('/', tooDeepMessage(maxJsonDepth)), 'too_deep', true);
      }
      try {
        doc = JSON.parse(text);
      } catch {
        return refuse(req, res, url, 400, badRequest('/', NOT_JSON_MESSAGE), 'json', true);
      }
    }
    const validate = validators[url];
    if (!validate(doc)) {
      const e = describeErrors(validate.errors ?? []);
      return refuse(req, res, url, 400, badRequest(e.field, `${e.field} ${e.message}`), 'schema', false);
    }
    let a: ReturnType<typeof answerReport>;
    try {
      a = answerReport(ingest, url, doc as HeartbeatBody | ResourceBody, req.socket.remoteAddress);
    } catch (err) {
      log.error({ err: (err as Error).message, url }, 'request failed');
      return refuse(req, res, url, 500, { error: 'internal', message: 'internal error' }, undefined, false);
    }
    if (a.body) sendJson(res, a.status, a.body, false);
    else res.writeHead(200, EMPTY_200).end();
  };

  return (req, res) => {
    if (req.method !== 'POST') return false;
    const raw = req.url ?? '';
    const q = raw.indexOf('?');
    const path = q < 0 ? raw : raw.slice(0, q);
    if (path !== '/heartbeat' && path !== '/resource') return false;
    const url: ReportUrl = path;
    const tooLarge = () =>
      refuse(
        req,
        res,
        url,
        413,
        { error: 'payload_too_large', message: `body larger than ${bodyLimit} bytes` },
        'too_large',
        true,
      );
    if (contentLength(req) > bodyLimit) {
      tooLarge();
      return true;
    }
    const chunks: Buffer[] = [];
    let received = 0;
    const onData = (c: Buffer) => {
      received += c.length;
      if (received > bodyLimit) {
        stop();
        tooLarge();
        return;
      }
      chunks.push(c);
    };
    const onEnd = () => {
      stop();
      const text =
        chunks.length === 1 ? (chunks[0] as Buffer).toString('utf8') : Buffer.concat(chunks, received).toString('utf8');
      answer(req, res, url, text);
    };
    const onError = (err: Error) => {
      stop();
      // A request that broke off mid-body: fastify answers 400 (nobody reads it) and counts it as json.
      refuse(req, res, url, 400, badRequest('/', err.message), 'json', true);
    };
    const stop = () => {
      req.removeListener('data', onData);
      req.removeListener('end', onEnd);
      req.removeListener('error', onError);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    return true;
  };
}

/**
 * A fastify `serverFactory` whose node:http server answers the two report routes on the lean
 * path and hands every other request to fastify; the server gets fastify's own timeouts
 * (keep-alive 72 s, no request or connection timeout unless configured).
 */
export function leanReportServerFactory(o: LeanReportOptions): FastifyServerFactory {
  const lean = leanReports(o);
  return (handler, opts) => {
    const server = http.createServer((req, res) => {
      if (!lean(req, res)) handler(req, res);
    });
    server.keepAliveTimeout = Number(opts.keepAliveTimeout ?? 72_000);
    server.requestTimeout = Number(opts.requestTimeout ?? 0);
    server.setTimeout(Number(opts.connectionTimeout ?? 0));
    return server;
  };
}
