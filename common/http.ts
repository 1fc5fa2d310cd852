/**
 * The fastify setup both daemons share: logging, strict ajv, and a lenient JSON body parser with
 * an optional nesting-depth bound checked by a linear scan before JSON.parse runs.
 */
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyRequest,
  type FastifyServerFactory,
  LogController,
} from 'fastify';
import type { Logger } from './log.js';

/**
 * ajv options of every fastify instance here (no type coercion: a spec `int` must be a JSON
 * number; nothing removed; first error only). The manager's lean report path compiles its
 * validators with the same options (manager/routes/reports-lean.ts).
 */
export const AJV_OPTIONS = { coerceTypes: false, removeAdditional: false, allErrors: false } as const;

/** The error code of a body refused for its nesting depth (status 400). */
export const JSON_TOO_DEEP = 'MUSTER_JSON_TOO_DEEP';

/**
 * Whether the JSON text `text` nests objects/arrays deeper than `max` (brackets inside strings
 * do not count). One linear pass (strings skipped with indexOf), no allocation; says nothing about
 * validity (JSON.parse does).
 */
export function jsonDepthExceeds(text: string, max: number): boolean {
  let depth = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // A string: jump to its closing quote (one not preceded by an odd run of backslashes).
      let j = text.indexOf('"', i + 1);
      while (j > 0) {
        let k = j - 1;
        while (text.charCodeAt(k) === 0x5c) k--;
        if ((j - k) % 2 === 1) break;
        j = text.indexOf('"', j + 1);
      }
      if (j < 0) return false; // unterminated: JSON.parse refuses it
      i = j;
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

/** The message of a body refused for its nesting depth (400, code {@link JSON_TOO_DEEP}). */
export const tooDeepMessage = (maxJsonDepth: number): string =>
  `body is nested too deep: more than ${maxJsonDepth} levels (http.max_json_depth)`;

/** The message of a body that is not JSON (400, code FST_ERR_CTP_INVALID_JSON_BODY). */
export const NOT_JSON_MESSAGE = 'body is not valid JSON';

/**
 * Installs the lenient JSON body parser on `app` (every content type): '' is no body; a body
 * nested deeper than `maxJsonDepth` fails with 400 and code {@link JSON_TOO_DEEP} naming
 * http.max_json_depth, before it is parsed; one that is not JSON with 400 and code
 * FST_ERR_CTP_INVALID_JSON_BODY.
 * @param maxJsonDepth deepest nesting of objects and arrays; undefined = no depth bound
 */
export function installJsonParser(app: FastifyInstance, maxJsonDepth?: number): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req: FastifyRequest, body, done) => {
    const text = body as string;
    const fail = (message: string, code: string) => {
      const err = new Error(message) as FastifyError;
      err.statusCode = 400;
      err.code = code;
      done(err, undefined);
    };
    if (text === '') return done(null, undefined);
    if (maxJsonDepth !== undefined && jsonDepthExceeds(text, maxJsonDepth)) {
      return fail(tooDeepMessage(maxJsonDepth), JSON_TOO_DEEP);
    }
    try {
      done(null, JSON.parse(text));
    } catch {
      fail(NOT_JSON_MESSAGE, 'FST_ERR_CTP_INVALID_JSON_BODY');
    }
  });
}

/**
 * A fastify instance that logs through `log` without per-request lines, validates with ajv
 * without type coercion (a spec `int` must be a JSON number), and parses every body as JSON
 * whatever its content type, since agents that follow only the spec may send any or none.
 * A body that is not JSON fails with status 400 and code FST_ERR_CTP_INVALID_JSON_BODY; one nested
 * deeper than `maxJsonDepth` with 400 and code {@link JSON_TOO_DEEP} (see {@link installJsonParser}).
 * @param bodyLimit largest accepted body, bytes; a larger one fails with 413
 * @param maxJsonDepth deepest nesting of a body (http.max_json_depth); undefined = no depth bound
 * @param serverFactory builds the node:http server fastify serves on (fastify's `serverFactory`);
 *   absent = fastify's own (the manager's report listener passes one with its lean report path)
 */
export function createHttpServer(
  log: Logger,
  bodyLimit: number,
  maxJsonDepth?: number,
  serverFactory?: FastifyServerFactory,
): FastifyInstance {
  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit,
    ajv: { customOptions: { ...AJV_OPTIONS } },
    ...(serverFactory ? { serverFactory } : {}),
  }) as unknown as FastifyInstance;
  installJsonParser(app, maxJsonDepth);
  return app;
}
