/** The fastify setup both daemons share: logging, strict ajv, and a lenient JSON body parser. */
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance, LogController } from 'fastify';
import type { Logger } from './log.js';

/**
 * A fastify instance that logs through `log` without per-request lines, validates with ajv
 * without type coercion (a spec `int` must be a JSON number), and parses every body as JSON
 * whatever its content type, since agents that follow only the spec may send any or none.
 * A body that is not JSON fails with status 400 and code FST_ERR_CTP_INVALID_JSON_BODY.
 * @param bodyLimit largest accepted body, bytes; a larger one fails with 413
 */
export function createHttpServer(log: Logger, bodyLimit: number): FastifyInstance {
  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
  }) as unknown as FastifyInstance;
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, body === '' ? undefined : JSON.parse(body as string));
    } catch {
      const err = new Error('body is not valid JSON') as FastifyError;
      err.statusCode = 400;
      err.code = 'FST_ERR_CTP_INVALID_JSON_BODY';
      done(err, undefined);
    }
  });
  return app;
}
