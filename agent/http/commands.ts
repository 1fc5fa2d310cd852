/**
 * The HTTP adapter of the command registry on the agent's service port (docs/protocol.md
 * "5. Load command (加载命令): POST /deploy", "Authorization", "Progress: GET /deploy/:uuid"):
 * `POST /<name>` for each registered command, answered with the handler's reply and the HTTP
 * status of its `result` (agent/deploy/results.ts). Commands run code as root, so each requires
 * `Authorization: Bearer <token>` unless auth is explicitly disabled in config for a legacy
 * manager (docs/configuration.md `auth.*`); the refusal has the spec's reply shape too. The token
 * is checked before any byte of the body is read or parsed (agent/http/server.ts `before`): an
 * unauthenticated request costs the agent no parsing (its refusal therefore echoes nothing of
 * the request: `mode`, `type` and `uuid` are empty strings).
 */

import type { ServerResponse } from 'node:http';
import { type Logger, RateLimitedLog } from '../../common/log.js';
import { nodeCrypto } from '../../common/node-crypto.js';
import { HTTP_STATUS, RESULT, type ResultCode } from '../deploy/results.js';
import type { Supervisor } from '../deploy/supervisor.js';
import { type CommandReply, refusal } from '../handlers/handler.js';
import type { CommandRegistry } from '../handlers/registry.js';
import {
  type AgentRequest,
  type AgentServer,
  type BodyBounds,
  DEFAULT_BODY_LIMIT,
  DEFAULT_MAX_JSON_DEPTH,
  readJsonBody,
  sendJson,
} from './server.js';

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
  return a.length === b.length && nodeCrypto().timingSafeEqual(a, b);
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
 * progress lines; or 404). Command bodies are bounded by `bounds` (http.body_limit_bytes: 413,
 * the connection closed; http.max_json_depth: 400) and refused when not JSON (400), each with the
 * spec's reply shape and result 1 (BAD_REQUEST).
 */
export function commandRoutes(
  app: AgentServer,
  registry: CommandRegistry,
  supervisor: Supervisor,
  auth: CommandAuth,
  log: Logger,
  bounds: BodyBounds = { bodyLimit: DEFAULT_BODY_LIMIT, maxJsonDepth: DEFAULT_MAX_JSON_DEPTH },
): void {
  const rl = new RateLimitedLog(log);
  const checkAuth = (req: AgentRequest, res: ServerResponse): boolean => {
    const why = unauthorized(auth, req.raw.headers.authorization);
    if (why === null) return false;
    rl.warn(`auth:${req.ip}`, { from: req.ip, path: req.url, why }, 'command refused: unauthorized');
    // Before the body is read: nothing of it is echoed (and nothing is parsed); the reply keeps
    // the spec's shape (mode, type, uuid are strings, empty here) so that a manager validating
    // it still reads result 6 and the message.
    sendJson(res, HTTP_STATUS[RESULT.UNAUTHORIZED], unread(RESULT.UNAUTHORIZED, `unauthorized: ${why}`));
    return true;
  };

  for (const name of registry.names()) {
    // Auth before anything is read of the body, so an unauthenticated caller costs no parsing
    // and learns nothing about the schema. The body is bounded here and validated by the registry.
    app.route(
      'POST',
      `/${name}`,
      async (req, res) => {
        const body = await readJsonBody(req.raw, bounds);
        if (!body.ok) {
          // What the registry never sees: a body that is not JSON, too deep, too large.
          return sendJson(
            res,
            body.status,
            unread(RESULT.BAD_REQUEST, `bad request: ${body.message}`),
            body.status === 413 ? { connection: 'close' } : {},
          );
        }
        const out = await registry.dispatch(name, body.value, { from: req.ip, transport: 'http' });
        let text: string;
        try {
          text = JSON.stringify(out);
        } catch (err) {
          // A reply that cannot be serialized (a bug): the spec's shape, result 4.
          log.error({ command: name, err: (err as Error).message }, 'command reply cannot be serialized');
          return sendJson(res, 500, unread(RESULT.RUNTIME_ERROR, 'internal error'));
        }
        res.writeHead(HTTP_STATUS[out.data.result], {
          'content-type': 'application/json; charset=utf-8',
          'content-length': Buffer.byteLength(text),
        });
        res.end(text);
      },
      checkAuth,
    );
  }

  app.route(
    'GET',
    '/deploy/:uuid',
    (req, res) => {
      const uuid = req.params.uuid as string;
      const rec = supervisor.list().find((r) => r.uuid === uuid);
      if (!rec) return sendJson(res, 404, { error: 'not_found', message: `no component ${uuid}` });
      // The documented shape keeps a driver's state at the top level (bar: `pid`, `pidStartTicks`);
      // the record's own fields win over a driver key of the same name.
      const { driverState, ...fields } = rec;
      sendJson(res, 200, { ...driverState, ...fields, progress: supervisor.progressOf(uuid) });
    },
    checkAuth,
  );
}
