/**
 * The web console API of the original specification (docs/dashboard.md "Console API"), at
 * `/console/` on the API listener: the seed's paths and bodies, answered from muster's own state
 * (the registry, the history, the alerts) behind the same login as /api/v1 (the access check of
 * manager/auth/guard.ts, session cookie with its CSRF rule or a bearer token).
 *
 * Every refusal — a bad body, no or bad credentials, a role too small, an unknown path, a feature
 * this manager does not have — answers the seed's `"NG"` with the HTTP status that says why and
 * the reason in the `X-Muster-Error` header. exec, screen, command_set and file need the remote
 * execution, file and screen services: until the manager has them they validate the body and
 * answer `"NG"` with 501.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { AlertView } from '../../common/api/alerts.js';
import { LOGIN_BODY_LIMIT } from '../../common/api/auth.js';
import {
  CONSOLE_ERROR_HEADER,
  type ConsoleAlertRecord,
  ConsoleAlertRecordSchema,
  ConsoleAnswerSchema,
  ConsoleCommandSetBodySchema,
  ConsoleExecBodySchema,
  ConsoleFileBodySchema,
  ConsoleHistoryQuerySchema,
  ConsoleLoginBodySchema,
  type ConsoleNodeRecord,
  ConsoleNodeRecordSchema,
  ConsoleScreenBodySchema,
  ConsoleStatusSchema,
} from '../../common/api/console.js';
import type { HistoryEntry } from '../../common/api/history.js';
import { DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT } from '../../common/api/paging.js';
import type { Access } from '../auth/access.js';
import { installAccessGuard, sessionCookie } from '../auth/guard.js';
import type { NodeRegistry } from '../registry.js';
import type { Store } from '../store/store.js';
import { ERROR_RESPONSES } from './shared.js';

/** What the console routes use. */
export interface ConsoleRoutesOptions {
  access: Access;
  registry: NodeRegistry;
  store: Pick<Store, 'listHistory' | 'listAlerts'>;
}

const two = (n: number) => String(n).padStart(2, '0');

/** `YYYY/MM/DD` and `HH:MM:SS:mmm` of an ISO time, in UTC (docs/dashboard.md "Console API"). */
export function consoleTime(iso: string): { date: string; timestamp: string } {
  const d = new Date(iso);
  return {
    date: `${d.getUTCFullYear()}/${two(d.getUTCMonth() + 1)}/${two(d.getUTCDate())}`,
    timestamp: `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())}:${String(d.getUTCMilliseconds()).padStart(3, '0')}`,
  };
}

/** A history entry's arguments as the seed's comma-joined text: values of a list, key=value of an object. */
export function joinArguments(args: Record<string, unknown> | null): string {
  if (!args) return '';
  const text = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));
  if (Array.isArray(args)) return args.map(text).join(',');
  return Object.entries(args)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${text(v)}`)
    .join(',');
}

/** A history entry as a node_history record: result OK unless a result says it failed. */
export function nodeRecord(h: HistoryEntry): ConsoleNodeRecord {
  const failed =
    (h.result !== null && h.result !== 0 && h.kind === 'operation' && h.operation !== 'query') ||
    (h.kind === 'component' && h.operation === 'FAILED');
  return {
    node: h.node ?? '',
    ...consoleTime(h.at),
    operation: h.operation,
    arguments: joinArguments(h.args),
    result: failed ? 'NG' : 'OK',
  };
}

/** An alert as an alert_history record (the seed's `disconnection` for an offline node). */
export function alertRecord(a: AlertView): ConsoleAlertRecord {
  return {
    node: a.node ?? '',
    ...consoleTime(a.first_seen),
    alert: a.kind === 'node_offline' ? 'disconnection' : a.kind === 'threshold' || a.kind === 'agent' ? a.rule : a.kind,
    content: a.message,
  };
}

/** Header-safe text: printable ASCII only, at most 300 characters. */
const headerText = (s: string) => s.replace(/[^\x20-\x7e]/g, '?').slice(0, 300);

/** The NG answer of a feature this manager does not have yet. */
const NOT_AVAILABLE = (what: string) =>
  `${what} needs the manager's remote execution and file services, which this manager does not have yet (docs/dashboard.md "Console API")`;

/** Registers the /console routes (register with `prefix: '/console'`). */
export const consoleRoutes: FastifyPluginAsyncTypebox<ConsoleRoutesOptions> = async (
  app,
  { access, registry, store },
) => {
  installAccessGuard(app, access);

  // Every refusal becomes the seed's "NG", the reason moved to a header.
  app.addHook('onSend', async (_req, reply, payload) => {
    if (reply.statusCode < 400) {
      // A handler's "OK" goes out as the JSON string the seed shows.
      if (payload === 'OK') {
        void reply.header('content-type', 'application/json; charset=utf-8');
        return '"OK"';
      }
      return payload;
    }
    let message = `HTTP ${reply.statusCode}`;
    try {
      const body = JSON.parse(String(payload)) as { message?: unknown; error?: unknown };
      if (typeof body.message === 'string') message = body.message;
      else if (typeof body.error === 'string') message = body.error;
    } catch {
      // not JSON: the status says it
    }
    void reply.header(CONSOLE_ERROR_HEADER, headerText(message));
    void reply.header('content-type', 'application/json; charset=utf-8');
    return '"NG"';
  });
  app.setNotFoundHandler({}, (req, reply) =>
    reply.code(404).send({ error: 'not_found', message: `no console route ${req.method} ${req.url}` }),
  );

  const answer = { 200: ConsoleAnswerSchema, ...ERROR_RESPONSES };
  const page = (q: { limit?: string | undefined; before?: string | undefined }) => {
    const limit = q.limit === undefined ? DEFAULT_PAGE_LIMIT : Number(q.limit);
    if (limit < 1 || limit > MAX_PAGE_LIMIT) return null;
    return { limit, ...(q.before !== undefined ? { before: Number(q.before) } : {}) };
  };

  app.post(
    '/login',
    {
      config: { role: 'public' },
      bodyLimit: LOGIN_BODY_LIMIT,
      schema: { body: ConsoleLoginBodySchema, response: answer },
    },
    async (req, reply) => {
      const r = await access.login(req.body.username, req.body.password, req.ip);
      if (!r.ok) {
        if (r.reason === 'locked') {
          const s = Math.ceil(r.retryAfterMs / 1000);
          return reply
            .code(429)
            .header('retry-after', String(s))
            .send({ error: 'locked', message: `too many failed logins: try again in ${s} s` });
        }
        return reply.code(401).send({ error: 'unauthorized', message: 'wrong user name or password' });
      }
      const maxAge = Math.max(1, Math.floor((r.expiresAt - Date.now()) / 1000));
      void reply.header('set-cookie', sessionCookie(r.token, maxAge, req.protocol === 'https'));
      return 'OK' as const;
    },
  );

  app.post('/logout', { config: { role: 'viewer' }, schema: { response: answer } }, async (req, reply) => {
    if (req.principal) access.logout(req.principal);
    void reply.header('set-cookie', sessionCookie('', 0, req.protocol === 'https'));
    return 'OK' as const;
  });

  app.get(
    '/status',
    { config: { role: 'viewer' }, schema: { response: { 200: ConsoleStatusSchema, ...ERROR_RESPONSES } } },
    async () => {
      const nodes = [...registry.nodes.values()]
        .sort((a, b) => a.box_id - b.box_id || a.slot_id - b.slot_id || a.cpu_id - b.cpu_id)
        .map((n) => {
          const r = registry.boardOf(n)?.resource?.resource;
          return {
            nodename: n.id,
            memory_used: r ? String(r.memory.used) : '',
            memory_max: r ? String(r.memory.total) : '',
            cpu: r && r.cpu.usage_percent !== null ? String(r.cpu.usage_percent) : '',
          };
        });
      return { nodes };
    },
  );

  app.get(
    '/node_history',
    {
      config: { role: 'viewer' },
      schema: {
        querystring: ConsoleHistoryQuerySchema,
        response: { 200: Type.Array(ConsoleNodeRecordSchema), ...ERROR_RESPONSES },
      },
    },
    async (req, reply) => {
      const p = page(req.query);
      if (!p)
        return reply
          .code(400)
          .send({ error: 'bad_request', field: 'limit', message: `limit must be 1..${MAX_PAGE_LIMIT}` });
      return store.listHistory({ ...p, node: req.query.node }).items.map(nodeRecord);
    },
  );

  app.get(
    '/alert_history',
    {
      config: { role: 'viewer' },
      schema: {
        querystring: ConsoleHistoryQuerySchema,
        response: { 200: Type.Array(ConsoleAlertRecordSchema), ...ERROR_RESPONSES },
      },
    },
    async (req, reply) => {
      const p = page(req.query);
      if (!p)
        return reply
          .code(400)
          .send({ error: 'bad_request', field: 'limit', message: `limit must be 1..${MAX_PAGE_LIMIT}` });
      return store.listAlerts({ ...p, node: req.query.node }).items.map(alertRecord);
    },
  );

  const unavailable = (what: string) => async (_req: unknown, reply: import('fastify').FastifyReply) =>
    reply.code(501).send({ error: 'not_implemented', message: NOT_AVAILABLE(what) });

  app.post(
    '/exec',
    { config: { role: 'operator' }, schema: { body: ConsoleExecBodySchema, response: answer } },
    unavailable('exec'),
  );
  app.post(
    '/screen',
    { config: { role: 'operator' }, schema: { body: ConsoleScreenBodySchema, response: answer } },
    unavailable('screen'),
  );
  app.post(
    '/command_set',
    { config: { role: 'admin' }, schema: { body: ConsoleCommandSetBodySchema, response: answer } },
    unavailable('command_set'),
  );
  app.post(
    '/file',
    { config: { role: 'operator' }, schema: { body: ConsoleFileBodySchema, response: answer } },
    unavailable('file'),
  );
};
