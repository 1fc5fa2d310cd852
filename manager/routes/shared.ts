/**
 * What the manager's route plugins share (docs/operations.md "REST API"): the error body and the
 * error handlers (validation errors named by field, 413, 404), the error responses of every
 * route, the paging of the lists and the caller's identity (set by the access check, manager/auth/guard.ts). The schemas themselves (the node-id
 * parameter `NodeParamsSchema`, the paging fields) are the contract's, in common/api/. Routes
 * import this module; it imports no route.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ApiError } from '../../common/api/errors.js';
import { DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT, type PageQuery } from '../../common/api/paging.js';
import type { ReportUrl } from '../../common/constants.js';
import { JSON_TOO_DEEP } from '../../common/http.js';
import type { Logger } from '../../common/log.js';
import { parseSince } from '../../common/time.js';
import { describeErrors, type RawError } from '../../common/validate.js';
import { whoIs } from '../auth/access.js';
import type {} from '../auth/guard.js';
import { Refused } from '../refused.js';

export { ERROR_RESPONSES } from '../../common/api/errors.js';
export type { ApiError };

/** Why a report was refused: `schema` (400), `json` (400, not JSON), `too_large` (413). */
export type RefusalReason = 'schema' | 'json' | 'too_large' | 'too_deep' | 'source_mismatch' | 'registry_full';

/** The report urls (docs/protocol.md "4. The manager's answers to reports"), whose refusals are counted. */
const REPORT_ROUTES = new Set<string>(['/heartbeat', '/resource']);

/** A 400 body naming `field`. */
export const badRequest = (field: string, message: string): ApiError => ({ error: 'bad_request', field, message });

/** A 404 body. */
export const notFound = (message: string): ApiError => ({ error: 'not_found', message });

/**
 * Who ran an operation, as the history records it (`who`): the authenticated user, or
 * `user/token` for an API token (docs/operations.md "Users and access"). Any self-declared header
 * (the former `x-muster-user`) is ignored. `unknown` only if called outside the access check.
 */
export function whoOf(req: FastifyRequest): string {
  return req.principal ? whoIs(req.principal) : 'unknown';
}

/** The paging fields read: `since` in ms since the epoch, `limit` 1..1000, `before` an id. */
export interface PageArgs {
  since?: number;
  limit: number;
  before?: number;
}

/**
 * Reads the paging fields of a list's query string (docs/operations.md "Paging and `--json`");
 * answers 400 naming the field when one is wrong.
 * @returns the parsed values, or null when the 400 reply was sent
 */
export function readPage(q: PageQuery, reply: FastifyReply): PageArgs | null {
  const limit = q.limit === undefined ? DEFAULT_PAGE_LIMIT : Number(q.limit);
  if (limit < 1 || limit > MAX_PAGE_LIMIT) {
    void reply.code(400).send(badRequest('limit', `limit ${q.limit}: must be 1..${MAX_PAGE_LIMIT}`));
    return null;
  }
  let since: number | undefined;
  if (q.since !== undefined) {
    try {
      since = parseSince(q.since, 'since');
    } catch (err) {
      void reply.code(400).send(badRequest('since', (err as Error).message));
      return null;
    }
  }
  return {
    limit,
    ...(since !== undefined ? { since } : {}),
    ...(q.before !== undefined ? { before: Number(q.before) } : {}),
  };
}

/** What the error handler needs. */
export interface ErrorHandlerOptions {
  /** http.body_limit_bytes, named in the 413 message. */
  bodyLimit: number;
  log: Logger;
  /**
   * Called for a refused report (POST /heartbeat, /resource) with the sender's address: count it
   * (reason undefined: a failure that is not the report's fault, not counted) and log it.
   */
  onReportRefused?: (from: string, url: ReportUrl, reason: RefusalReason | undefined, message: string) => void;
  /** Called for any body refused for its nesting depth (http.max_json_depth), report or API. */
  onTooDeep?: () => void;
}

/**
 * Installs the error and not-found handlers on `app` (they cover every plugin registered in it):
 * a {@link Refused} (a subsystem's refusal) is its status and code, a validation error is 400 naming the field (`/data/box_id`, `params/id`, `querystring/limit`),
 * a body that is not JSON 400 with field `/`, an oversized body 413, an unknown route 404, and
 * anything else 500 `internal` (logged). Bodies are {@link ApiError}.
 */
export function installErrorHandlers(app: FastifyInstance, o: ErrorHandlerOptions): void {
  app.setErrorHandler((err: FastifyError, req, reply) => {
    const url = req.routeOptions.url;
    const isReport = url !== undefined && REPORT_ROUTES.has(url);
    let status = err.statusCode ?? 500;
    let body: ApiError;
    let reason: RefusalReason | undefined;
    const refusal: unknown = err;
    if (refusal instanceof Refused) {
      status = refusal.status;
      body = { error: refusal.code, ...(refusal.field ? { field: refusal.field } : {}), message: refusal.message };
    } else if (err.validation) {
      status = 400;
      const e = describeErrors(err.validation as unknown as RawError[]);
      const field =
        err.validationContext === 'body' ? e.field : `${err.validationContext}${e.field === '/' ? '' : e.field}`;
      body = badRequest(field, `${field} ${e.message}`);
      reason = 'schema';
    } else if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      body = { error: 'payload_too_large', message: `body larger than ${o.bodyLimit} bytes` };
      reason = 'too_large';
    } else if (err.code === JSON_TOO_DEEP) {
      body = badRequest('/', err.message);
      reason = 'too_deep';
      o.onTooDeep?.();
    } else if (status === 400) {
      body = badRequest('/', err.message);
      reason = 'json';
    } else if (status < 500) {
      body = { error: 'bad_request', message: err.message };
    } else {
      o.log.error({ err: err.message, url }, 'request failed');
      body = { error: 'internal', message: 'internal error' };
    }
    if (isReport) o.onReportRefused?.(req.ip, url as ReportUrl, reason, body.message);
    return reply.code(status).send(body);
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ error: 'not_found', message: `no route ${req.method} ${req.url}` } satisfies ApiError),
  );
}
