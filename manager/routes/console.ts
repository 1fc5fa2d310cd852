/**
 * The web console API of the original specification (docs/dashboard.md "Console API"), at
 * `/console/` on the API listener: the seed's paths and bodies, answered from muster's own state
 * (the registry, the history, the alerts) behind the same login as /api/v1 (the access check of
 * manager/auth/guard.ts, session cookie with its CSRF rule or a bearer token).
 *
 * Every refusal — a bad body, no or bad credentials, a role too small, an unknown path, a feature
 * this manager does not have — answers the seed's `"NG"` with the HTTP status that says why and
 * the reason in the `X-Muster-Error` header.
 *
 * exec, screen, command_set and file are mapped onto /api/v1 (POST /tasks, GET /nodes/:id/screen,
 * POST and DELETE /commands, POST /files/pushes and /files/remove) by calling those routes inside
 * the server with the caller's own credentials, so the roles, bounds, history and metrics are the
 * API's. exec and file wait for the task or push to end, at most `dashboard.console_wait_ms`.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { AlertView } from '../../common/api/alerts.js';
import { LOGIN_BODY_LIMIT } from '../../common/api/auth.js';
import {
  CONSOLE_ERROR_HEADER,
  CONSOLE_PUSH_HEADER,
  CONSOLE_TASK_HEADER,
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
import type { PushRecord, RemoveReply } from '../../common/api/files.js';
import type { HistoryEntry } from '../../common/api/history.js';
import { DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT } from '../../common/api/paging.js';
import type { TaskRecord } from '../../common/api/tasks.js';
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
  /** The prefix of muster's own API the console calls (`/api/v1`). */
  apiPrefix: string;
  /** dashboard.console_wait_ms: how long exec and file wait for their task or push to end. */
  waitMs: number;
  /** How often exec and file look whether their task or push ended, ms (default 200). */
  pollMs?: number;
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

/** Registers the /console routes (register with `prefix: '/console'`). */
export const consoleRoutes: FastifyPluginAsyncTypebox<ConsoleRoutesOptions> = async (
  app,
  { access, registry, store, apiPrefix, waitMs, pollMs = 200 },
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

  /** The headers of the caller that carry its credentials and its CSRF proof, for the inner call. */
  const FORWARDED = ['cookie', 'authorization', 'sec-fetch-site', 'origin', 'host', 'user-agent', 'accept'] as const;

  /**
   * Calls muster's own API inside the server as the caller (its cookie or token), so the API's
   * role checks, bounds, history and metrics apply.
   * @returns the status, the parsed JSON body (null when not JSON), the raw bytes and the content type
   */
  const call = async (req: FastifyRequest, method: 'GET' | 'POST' | 'DELETE', url: string, payload?: unknown) => {
    const headers: Record<string, string> = {};
    for (const h of FORWARDED) {
      const v = req.headers[h];
      if (typeof v === 'string') headers[h] = v;
    }
    const r = await app.inject({
      method,
      url: `${apiPrefix}${url}`,
      headers,
      remoteAddress: req.ip,
      ...(payload === undefined ? {} : { payload: payload as object }),
    });
    let body: unknown = null;
    try {
      body = r.json();
    } catch {
      body = null;
    }
    return { status: r.statusCode, body, raw: r.rawPayload, type: String(r.headers['content-type'] ?? '') };
  };
  type Answer = Awaited<ReturnType<typeof call>>;
  /** Passes a refusal of the API on: its status and message (the onSend hook makes it "NG"). */
  const refuse = (reply: FastifyReply, r: Answer) => {
    const b = (r.body ?? {}) as { error?: string; message?: string };
    return reply
      .code(r.status)
      .send({ error: b.error ?? 'error', message: b.message ?? `the API answered HTTP ${r.status}` });
  };
  /** Reads `url` every pollMs until `done` says so or console_wait_ms passed; the last answer. */
  const waitFor = async <T>(req: FastifyRequest, url: string, done: (x: T) => boolean): Promise<Answer> => {
    const until = Date.now() + waitMs;
    for (;;) {
      const r = await call(req, 'GET', url);
      if (r.status !== 200 || done(r.body as T) || Date.now() >= until) return r;
      await new Promise((res) => setTimeout(res, pollMs));
    }
  };

  app.post(
    '/exec',
    { config: { role: 'operator' }, schema: { body: ConsoleExecBodySchema, response: answer } },
    async (req, reply) => {
      const { exec, args, kwargs, target } = req.body;
      const started = await call(req, 'POST', '/tasks', {
        target: target ?? 'all',
        steps: [{ command: exec, args, kwargs }],
      });
      if (started.status !== 202) return refuse(reply, started);
      const id = (started.body as { task: TaskRecord }).task.id;
      void reply.header(CONSOLE_TASK_HEADER, id);
      const r = await waitFor<{ task: TaskRecord }>(req, `/tasks/${id}`, (x) => x.task.finished_at !== null);
      if (r.status !== 200) return refuse(reply, r);
      const task = (r.body as { task: TaskRecord }).task;
      if (task.finished_at === null)
        return reply.code(504).send({
          error: 'timeout',
          message: `task ${id} still running after ${waitMs} ms (dashboard.console_wait_ms); see /api/v1/tasks/${id}`,
        });
      if (task.state === 'done' && task.summary.failed === 0) return 'OK' as const;
      const bad = (task.results ?? []).find((n) => n.state !== 'done' && n.state !== 'skipped');
      const why = bad
        ? `${bad.node}: ${bad.state}${bad.exit_code !== null ? ` exit ${bad.exit_code}` : ''} ${bad.message}`
        : task.message;
      return reply.code(502).send({
        error: 'task_failed',
        message: `task ${id} ${task.state}: ${task.summary.failed} of ${task.summary.nodes} nodes failed (${why.trim()})`,
      });
    },
  );

  app.post(
    '/screen',
    { config: { role: 'viewer' }, schema: { body: ConsoleScreenBodySchema, response: answer } },
    async (req, reply) => {
      const url = `/nodes/${encodeURIComponent(req.body.node)}/screen`;
      const r = await call(req, 'GET', url);
      if (r.status !== 200) return refuse(reply, r);
      if (/\bimage\/png\b/.test(String(req.headers.accept ?? '')))
        return reply.header('content-type', 'image/png').send(r.raw as never);
      void reply.header('location', `${apiPrefix}${url}`);
      return 'OK' as const;
    },
  );

  app.post(
    '/command_set',
    { config: { role: 'admin' }, schema: { body: ConsoleCommandSetBodySchema, response: answer } },
    async (req, reply) => {
      const b = req.body;
      if (b.operation === 'delete') {
        const r = await call(req, 'DELETE', `/commands/${encodeURIComponent(b.exec)}`);
        return r.status === 200 ? ('OK' as const) : refuse(reply, r);
      }
      if (b.content_b64 === undefined)
        return reply.code(400).send({
          error: 'bad_request',
          field: 'content_b64',
          message: 'add needs the script: content_b64 (base64 of an executable with its #! line)',
        });
      const r = await call(req, 'POST', '/commands', {
        exec: b.exec,
        argument_count: b.argument_count ?? -1,
        ...(b.generate_file ? { generate_file: b.generate_file } : {}),
        content_b64: b.content_b64,
      });
      return r.status === 201 || r.status === 200 ? ('OK' as const) : refuse(reply, r);
    },
  );

  app.post(
    '/file',
    { config: { role: 'operator' }, schema: { body: ConsoleFileBodySchema, response: answer } },
    async (req, reply) => {
      const b = req.body;
      const bad = (field: string, message: string) => reply.code(400).send({ error: 'bad_request', field, message });
      const unknown = b.node.find((n) => !registry.nodes.has(n));
      if (unknown !== undefined) return reply.code(404).send({ error: 'not_found', message: `no node ${unknown}` });
      const target = [...new Set(b.node)].join(',');
      if (b.operation === 'add') {
        if (!b.uploads) return bad('uploads', 'add needs uploads: the ids of files sent to POST /api/v1/files/uploads');
        if (b.uploads.length !== b.file_num)
          return bad('file_num', `file_num is ${b.file_num} but ${b.uploads.length} uploads are named`);
        if (b.file_num === 0) return bad('file_num', 'add needs at least one file');
        const started = await call(req, 'POST', '/files/pushes', {
          target,
          files: b.uploads.map((upload) => ({ upload })),
          to: b.target_dir,
        });
        if (started.status !== 202) return refuse(reply, started);
        const id = (started.body as { push: PushRecord }).push.id;
        void reply.header(CONSOLE_PUSH_HEADER, id);
        const r = await waitFor<{ push: PushRecord }>(req, `/files/pushes/${id}`, (x) => x.push.finished_at !== null);
        if (r.status !== 200) return refuse(reply, r);
        const push = (r.body as { push: PushRecord }).push;
        if (push.finished_at === null)
          return reply.code(504).send({
            error: 'timeout',
            message: `push ${id} still under way after ${waitMs} ms (dashboard.console_wait_ms); see /api/v1/files/pushes/${id}`,
          });
        if (push.failed === 0) return 'OK' as const;
        const f = push.nodes.find((n) => n.state === 'failed');
        return reply.code(502).send({
          error: 'push_failed',
          message: `push ${id}: ${push.failed} of ${push.nodes.length} boards failed${f ? ` (${f.node}: ${f.message ?? ''})` : ''}`,
        });
      }
      if (b.names && b.names.length !== b.file_num)
        return bad('file_num', `file_num is ${b.file_num} but ${b.names.length} names are given`);
      const dir = b.target_dir.replace(/\/+$/, '') || '/';
      const paths = b.names ? b.names.map((n) => `${dir === '/' ? '' : dir}/${n}`) : [b.target_dir];
      const r = await call(req, 'POST', '/files/remove', { target, paths });
      if (r.status !== 200) return refuse(reply, r);
      const failed = (r.body as RemoveReply).results.filter((x) => !x.ok);
      if (failed.length === 0) return 'OK' as const;
      return reply.code(502).send({
        error: 'remove_failed',
        message: `${failed.length} removals failed (${failed[0]!.node} ${failed[0]!.path}: ${failed[0]!.message})`,
      });
    },
  );
};
