/**
 * POST /deploy on the agent's service port (seed 003 "加载命令"). The body is validated against
 * common/protocol.ts; every answer, refusals included, has the spec's reply shape: the request's
 * fields plus `result` and `message` (agent/deploy/results.ts), with the matching HTTP status.
 * `/deploy` runs code as root, so it requires `Authorization: Bearer <token>` unless auth is
 * explicitly disabled in config for a legacy manager.
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { API_VERSION } from '../../common/constants.js';
import { type Logger, RateLimitedLog } from '../../common/log.js';
import { DeployRequestBody, type DeployRequestData } from '../../common/protocol.js';
import { describeErrors, type RawError } from '../../common/validate.js';
import { HTTP_STATUS, RESULT, type ResultCode } from './results.js';
import type { Supervisor } from './supervisor.js';

/** How /deploy is protected. */
export interface DeployAuth {
  /** The shared token, or null when none is configured (then every deploy is refused). */
  token: string | null;
  /** Accept requests without a token (explicit config switch for legacy managers). */
  disabled: boolean;
}

/** Echoes what can be read of a (possibly bad) request with a result and message. */
function refusal(body: unknown, result: ResultCode, message: string) {
  const data = (body as { data?: unknown } | null)?.data;
  const echo =
    typeof data === 'object' && data !== null && !Array.isArray(data) ? (data as Record<string, unknown>) : {};
  return { api_version: API_VERSION, data: { ...echo, result, message } };
}

function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? '');
  if (!m) return false;
  const a = Buffer.from((m[1] as string).trim());
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Registers POST /deploy (and GET /deploy/:uuid, muster's progress extension). */
export function deployRoutes(app: FastifyInstance, sup: Supervisor, auth: DeployAuth, log: Logger): void {
  const rl = new RateLimitedLog(log);
  const checkAuth = async (req: FastifyRequest, reply: FastifyReply) => {
    if (auth.disabled) return;
    const why =
      auth.token === null
        ? 'no token is configured on this agent (auth.token or auth.token_file)'
        : !req.headers.authorization
          ? 'missing Authorization: Bearer token'
          : tokenMatches(req.headers.authorization, auth.token)
            ? null
            : 'wrong token';
    if (why === null) return;
    rl.warn(`auth:${req.ip}`, { from: req.ip, why }, '/deploy refused: unauthorized');
    return reply
      .code(HTTP_STATUS[RESULT.UNAUTHORIZED])
      .send(refusal(req.body, RESULT.UNAUTHORIZED, `unauthorized: ${why}`));
  };

  app.post(
    '/deploy',
    {
      schema: { body: DeployRequestBody },
      // Auth before validation, so an unauthenticated caller learns nothing about the schema.
      preValidation: checkAuth,
      errorHandler: (err: FastifyError, req, reply) => {
        if (err.validation) {
          const e = describeErrors(err.validation as unknown as RawError[]);
          return reply.code(400).send(refusal(req.body, RESULT.BAD_REQUEST, `bad request: ${e.field} ${e.message}`));
        }
        const status = err.statusCode ?? 500;
        const result = status === 413 || status === 400 || status === 415 ? RESULT.BAD_REQUEST : RESULT.RUNTIME_ERROR;
        return reply
          .code(status)
          .send(refusal(req.body, result, status < 500 ? `bad request: ${err.message}` : 'internal error'));
      },
    },
    async (req, reply) => {
      const data = (req.body as DeployRequestBody).data as DeployRequestData;
      const out = await sup.handle(data);
      log.info(
        {
          from: req.ip,
          mode: data.mode,
          type: data.type,
          uuid: data.uuid,
          result: out.reply.result,
          message: out.reply.message,
        },
        'deploy',
      );
      return reply.code(out.status).send({ api_version: API_VERSION, data: out.reply });
    },
  );

  app.get('/deploy/:uuid', { preValidation: checkAuth }, async (req, reply) => {
    const { uuid } = req.params as { uuid: string };
    const rec = sup.list().find((r) => r.uuid === uuid);
    if (!rec) return reply.code(404).send({ error: 'not_found', message: `no component ${uuid}` });
    return { ...rec, progress: sup.progressOf(uuid) };
  });
}
