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
import { JSON_TOO_DEEP, jsonDepthExceeds, NOT_JSON_MESSAGE, tooDeepMessage } from './json-depth.js';
import type { Logger } from './log.js';

// The depth scan and its messages live in common/json-depth.ts (no fastify: the agent's command
// port uses them without loading fastify); re-exported for the manager's modules.
export { JSON_TOO_DEEP, jsonDepthExceeds, NOT_JSON_MESSAGE, tooDeepMessage };

/**
 * ajv options of every fastify instance here (no type coercion: a spec `int` must be a JSON
 * number; nothing removed; first error only). The manager's lean report path compiles its
 * validators with the same options (manager/routes/reports-lean.ts).
 */
export const AJV_OPTIONS = { coerceTypes: false, removeAdditional: false, allErrors: false } as const;

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
