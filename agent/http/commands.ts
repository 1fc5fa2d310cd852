/**
 * The HTTP adapter of the command registry on the agent's service port (docs/protocol.md
 * "5. Load command (加载命令): POST /deploy", "Authorization", "Progress: GET /deploy/:uuid"):
 * `POST /<name>` for each registered command, answered with the handler's reply and the HTTP
 * status of its `result` (agent/deploy/results.ts). Commands run code as root, so each requires
 * `Authorization: Bearer <token>` unless auth is explicitly disabled in config for a legacy
 * manager (docs/configuration.md `auth.*`); the refusal has the spec's reply shape too. The token
 * is checked in an `onRequest` hook, before any byte of the body is read or parsed: an
 * unauthenticated request costs the agent no parsing (its refusal therefore echoes nothing of
 * the request: `mode`, `type` and `uuid` are empty strings).
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type Logger, RateLimitedLog } from '../../common/log.js';
import { HTTP_STATUS, RESULT, type ResultCode } from '../deploy/results.js';
import type { Supervisor } from '../deploy/supervisor.js';
import { type CommandReply, refusal } from '../handlers/handler.js';
import type { CommandRegistry } from '../handlers/registry.js';

/** How the command port is protected. */
export interface CommandAuth {
  /** The shared token, or null when none is configured (then every command is refused). */
  token: string | null;
  /** Accept requests without a token (explicit config switch for legacy managers). */
  disabled: boolean;
}

/** Whether an Authorization header carries `Bearer <token>` (constant-time compare). */
export function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? '');
  if (!m) return false;
  const a = Buffer.from((m[1] as string).trim());
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Why a request with this Authorization header may not run a command, or null when it may (also
 * used by the file and screen routes, agent/http/files.ts).
 */
export function unauthorized(auth: CommandAuth, header: string | undefined): string | null {
  if (auth.disabled) return null;
  if (auth.token === null) return 'no token is configured on this agent (auth.token or auth.token_file)';
  if (!header) return 'missing Authorization: Bearer token';
  return tokenMatches(header, auth.token) ? null : 'wrong token';
}

/**
 * A refusal of a request whose body was not read or could not be parsed: the spec's reply shape
 * with `mode`, `type` and `uuid` empty (a manager validating the reply still reads `result`).
 */
function unread(result: ResultCode, message: string): CommandReply {
  const out = refusal(undefined, result, message);
  return { ...out, data: { mode: '', type: '', uuid: '', ...out.data } };
}

/**
 * Registers `POST /<name>` for every command of `registry`, and `GET /deploy/:uuid` (muster's
 * progress extension: the component record, its driver's state at the top level, and its
 * progress lines; or 404).
 */
export function commandRoutes(
  app: FastifyInstance,
  registry: CommandRegistry,
  supervisor: Supervisor,
  auth: CommandAuth,
  log: Logger,
): void {
  const rl = new RateLimitedLog(log);
  const checkAuth = async (req: FastifyRequest, reply: FastifyReply) => {
    const why = unauthorized(auth, req.headers.authorization);
    if (why === null) return;
    rl.warn(`auth:${req.ip}`, { from: req.ip, path: req.url, why }, 'command refused: unauthorized');
    // onRequest: the body has not been read, so nothing of it is echoed (and nothing is parsed);
    // the reply keeps the spec's shape (mode, type, uuid are strings, empty here) so that a
    // manager validating it still reads result 6 and the message.
    return reply.code(HTTP_STATUS[RESULT.UNAUTHORIZED]).send(unread(RESULT.UNAUTHORIZED, `unauthorized: ${why}`));
  };

  for (const name of registry.names()) {
    app.post(
      `/${name}`,
      {
        // Auth before anything is read of the body (onRequest runs before the body is read), so
        // an unauthenticated caller costs no parsing and learns nothing about the schema. The
        // body itself is bounded by the parser (server.ts) and validated by the registry.
        onRequest: checkAuth,
        errorHandler: (err: FastifyError, _req, reply) => {
          // What the registry never sees: a body that is not JSON, too large, of another type.
          const status = err.statusCode ?? 500;
          const result = status === 413 || status === 400 || status === 415 ? RESULT.BAD_REQUEST : RESULT.RUNTIME_ERROR;
          return reply
            .code(status)
            .send(unread(result, status < 500 ? `bad request: ${err.message}` : 'internal error'));
        },
      },
      async (req, reply) => {
        const out = await registry.dispatch(name, req.body, { from: req.ip, transport: 'http' });
        return reply.code(HTTP_STATUS[out.data.result]).send(out);
      },
    );
  }

  app.get('/deploy/:uuid', { onRequest: checkAuth }, async (req, reply) => {
    const { uuid } = req.params as { uuid: string };
    const rec = supervisor.list().find((r) => r.uuid === uuid);
    if (!rec) return reply.code(404).send({ error: 'not_found', message: `no component ${uuid}` });
    // The documented shape keeps a driver's state at the top level (bar: `pid`, `pidStartTicks`);
    // the record's own fields win over a driver key of the same name.
    const { driverState, ...fields } = rec;
    return { ...driverState, ...fields, progress: supervisor.progressOf(uuid) };
  });
}
