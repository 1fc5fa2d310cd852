/**
 * Remote execution over REST (docs/exec.md "REST API"), under the API prefix; the contract is
 * common/api/tasks.ts.
 *
 *   POST /tasks (operator) → 202 `{ task }`; viewers get 403
 *   GET  /tasks?limit=&before= (viewer) → `{ tasks, next }` newest first, without per-node results
 *   GET  /tasks/:id (viewer) → `{ task }` with per-node results
 *   GET  /tasks/:id/events?since= (viewer) → text/event-stream of `line`, `node`, `dropped` events,
 *        then `summary`; at most exec.max_sse_clients streams at once (503 beyond, counted)
 *   GET  /tasks/:id/file?node=&step= (operator) → `{ file }` a generate_file fetched back
 *   POST /tasks/:id/kill `{ node? }` (operator) → `{ task }`
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Counter, Gauge, type Registry } from 'prom-client';
import { DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT } from '../../common/api/paging.js';
import {
  TaskBodySchema,
  TaskEventsQuerySchema,
  TaskFileQuerySchema,
  TaskFileReplySchema,
  TaskKillBodySchema,
  TaskListQuerySchema,
  TaskListReplySchema,
  TaskParamsSchema,
  type TaskRecord,
  TaskReplySchema,
} from '../../common/api/tasks.js';
import type { Store } from '../store/store.js';
import { type TaskEvent, TaskRefused, type TaskRunner } from '../tasks/runner.js';
import { type ApiError, badRequest, ERROR_RESPONSES, notFound, whoOf } from './shared.js';

/** How often a comment line keeps an idle event stream open through proxies, ms. */
const SSE_KEEPALIVE_MS = 15_000;

/** The bound on open event streams (exec.max_sse_clients) and its metrics. */
export class SseClients {
  private open = 0;
  private readonly gauge: Gauge;
  private readonly refusedCounter: Counter;

  /** @param max exec.max_sse_clients now */
  constructor(
    private readonly max: () => number,
    metrics: Registry,
  ) {
    this.gauge = new Gauge({
      name: 'muster_manager_task_sse_clients',
      help: 'Open task event streams (GET /api/v1/tasks/:id/events)',
      registers: [metrics],
    });
    this.refusedCounter = new Counter({
      name: 'muster_manager_task_sse_refused_total',
      help: 'Task event streams refused with 503: exec.max_sse_clients were open',
      registers: [metrics],
    });
  }

  /** Takes a slot; false (counted) when all are in use. */
  take(): boolean {
    if (this.open >= this.max()) {
      this.refusedCounter.inc();
      return false;
    }
    this.open++;
    this.gauge.set(this.open);
    return true;
  }

  /** Gives a slot back. */
  release(): void {
    this.open = Math.max(0, this.open - 1);
    this.gauge.set(this.open);
  }
}

/** What the task routes use. */
export interface TaskRoutesOptions {
  runner: Pick<TaskRunner, 'submit' | 'get' | 'kill' | 'subscribe'>;
  store: Pick<Store, 'tasks'>;
  sse: SseClients;
}

const refused = (err: TaskRefused): ApiError => ({
  error: err.code,
  ...(err.field ? { field: err.field } : {}),
  message: err.message,
});

/** A task without its per-node results, for lists. */
const head = (t: TaskRecord): TaskRecord => {
  const { results: _omit, ...rest } = t;
  return rest;
};

/** One server-sent event. */
const sse = (event: TaskEvent['type'], data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

/** Registers the task routes. */
export const taskRoutes: FastifyPluginAsyncTypebox<TaskRoutesOptions> = async (
  app,
  { runner, store, sse: clients },
) => {
  const find = (id: string): TaskRecord | undefined => runner.get(id) ?? store.tasks.get(id);

  app.post(
    '/tasks',
    {
      config: { role: 'operator' },
      schema: { body: TaskBodySchema, response: { 202: TaskReplySchema, ...ERROR_RESPONSES } },
    },
    async (req, reply) => {
      const task = runner.submit(req.body, whoOf(req)); // a TaskRefused is answered by the error handler
      return reply.code(202).send({ task });
    },
  );

  app.get(
    '/tasks',
    {
      config: { role: 'viewer' },
      schema: { querystring: TaskListQuerySchema, response: { 200: TaskListReplySchema, ...ERROR_RESPONSES } },
    },
    async (req, reply) => {
      const limit = req.query.limit === undefined ? DEFAULT_PAGE_LIMIT : Number(req.query.limit);
      if (limit < 1 || limit > MAX_PAGE_LIMIT) {
        return reply.code(400).send(badRequest('limit', `limit ${req.query.limit}: must be 1..${MAX_PAGE_LIMIT}`));
      }
      const page = store.tasks.list(limit, req.query.before === undefined ? undefined : Number(req.query.before));
      // A task under way: its live record (the stored one is from its start).
      return { tasks: page.items.map((t) => head(runner.get(t.id) ?? t)), next: page.next };
    },
  );

  app.get(
    '/tasks/:id',
    {
      config: { role: 'viewer' },
      schema: { params: TaskParamsSchema, response: { 200: TaskReplySchema, ...ERROR_RESPONSES } },
    },
    async (req, reply) => {
      const task = find(req.params.id);
      if (!task) return reply.code(404).send(notFound(`no task ${req.params.id}`));
      return { task };
    },
  );

  app.post(
    '/tasks/:id/kill',
    {
      config: { role: 'operator' },
      // No body at all (curl -X POST) is the whole task, as `{}` is.
      preValidation: async (req) => {
        if (req.body === undefined || req.body === null) (req as { body: unknown }).body = {};
      },
      schema: {
        params: TaskParamsSchema,
        body: TaskKillBodySchema,
        response: { 200: TaskReplySchema, ...ERROR_RESPONSES },
      },
    },
    async (req, reply) => {
      const { id } = req.params;
      try {
        return { task: runner.kill(id, req.body?.node) };
      } catch (err) {
        if (!(err instanceof TaskRefused)) throw err;
        // Not in memory: ended long ago (409) or unknown (404).
        const stored = err.status === 404 && err.field === undefined ? store.tasks.get(id) : undefined;
        if (stored) {
          return reply
            .code(409)
            .send({ error: 'conflict', message: `task ${id} already ended (${stored.state})` } satisfies ApiError);
        }
        req.log.info({ task: id, who: whoOf(req), node: req.body?.node }, 'task kill refused');
        return reply.code(err.status).send(refused(err));
      }
    },
  );

  app.get(
    '/tasks/:id/file',
    {
      config: { role: 'operator' },
      schema: {
        params: TaskParamsSchema,
        querystring: TaskFileQuerySchema,
        response: { 200: TaskFileReplySchema, ...ERROR_RESPONSES },
      },
    },
    async (req, reply) => {
      const { id } = req.params;
      const f = store.tasks.file(id, req.query.node, Number(req.query.step));
      if (!f)
        return reply.code(404).send(notFound(`no file of task ${id} step ${req.query.step} on ${req.query.node}`));
      return {
        file: {
          task: id,
          node: f.node,
          step: f.step,
          path: f.path,
          size: f.size,
          sha256: f.sha256,
          content_b64: Buffer.from(f.content).toString('base64'),
        },
      };
    },
  );

  app.get(
    '/tasks/:id/events',
    {
      config: { role: 'viewer' },
      schema: { params: TaskParamsSchema, querystring: TaskEventsQuerySchema, response: { ...ERROR_RESPONSES } },
    },
    async (req, reply) => {
      const { id } = req.params;
      const since = req.query.since === undefined ? 0 : Number(req.query.since);
      const known = find(id);
      if (!known) return reply.code(404).send(notFound(`no task ${id}`));
      if (!clients.take()) {
        return reply.code(503).send({
          error: 'too_many_streams',
          message: 'all exec.max_sse_clients task event streams are open; try again later',
        } satisfies ApiError);
      }
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      let closed = false;
      let keepalive: NodeJS.Timeout | undefined;
      let unsubscribe = () => {};
      const close = () => {
        if (closed) return;
        closed = true;
        if (keepalive) clearInterval(keepalive);
        unsubscribe();
        clients.release();
        res.end();
      };
      req.raw.on('close', close);
      res.on('error', close);
      const write = (e: TaskEvent) => {
        if (closed) return;
        if (e.type === 'line') res.write(sse('line', e.line));
        else if (e.type === 'node') res.write(sse('node', e.result));
        else if (e.type === 'dropped') res.write(sse('dropped', { lines: e.lines }));
        else {
          res.write(sse('summary', e.task));
          close();
        }
      };
      const sub = runner.subscribe(id, since, write);
      if (!sub) {
        // Ended and no longer in memory: only its stored summary.
        write({ type: 'summary', task: known });
        return;
      }
      if (sub.dropped > 0) write({ type: 'dropped', lines: sub.dropped });
      for (const line of sub.replay) write({ type: 'line', line });
      if (sub.ended) {
        write({ type: 'summary', task: sub.ended });
        return;
      }
      unsubscribe = sub.unsubscribe;
      keepalive = setInterval(() => {
        if (!closed) res.write(': keepalive\n\n');
      }, SSE_KEEPALIVE_MS);
      keepalive.unref();
    },
  );
};
