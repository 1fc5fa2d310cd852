/**
 * Files on boards (docs/files.md "REST API"; the contract is common/api/files.ts), under the API
 * prefix. Roles: uploading, pushing, removing and pulling a file's content need `operator` (a
 * pulled file may hold a board's secrets); a push's progress and a directory listing need
 * `viewer`. Viewers never write.
 *
 *   POST /files/uploads?name=   (octet-stream body, streamed to disk)  → 201 { upload }
 *   POST /files/pushes { target, files, to, mode?, owner? }           → 202 { push }
 *   GET  /files/pushes/:id                                            → { push }
 *   POST /files/remove { target, paths, recursive? }                  → { results }
 *   GET  /nodes/:id/files?path=                                       → the agent's listing
 *   GET  /nodes/:id/files/content?path=                               → the bytes, streamed through
 *
 * The upload route lives in its own plugin context whose content-type parser hands the raw
 * request stream over unparsed, so http.body_limit_bytes does not apply (files.max_upload_bytes
 * does) and a file is never held in memory.
 */
import { createHash } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import {
  ListReplySchema,
  NodePathQuerySchema,
  PushBodySchema,
  PushParamsSchema,
  PushReplySchema,
  RemoveBodySchema,
  RemoveReplySchema,
  UploadQuerySchema,
  UploadReplySchema,
} from '../../common/api/files.js';
import { NodeParamsSchema } from '../../common/api/nodes.js';
import { chunkReleaser } from '../../common/gc.js';
import type { AgentClient, FileCall } from '../agents/client.js';
import { agentTargetOf, FilesRefused, type Pusher } from '../files/push.js';
import { type Staging, UploadRefused } from '../files/staging.js';
import type { NodeRegistry } from '../registry.js';
import type { NewHistory } from '../store/store.js';
import { type ApiError, ERROR_RESPONSES, notFound, whoOf } from './shared.js';

/** What the file routes use. */
export interface FileRoutesOptions {
  pusher: Pick<Pusher, 'push' | 'get' | 'remove'>;
  staging: Pick<Staging, 'receive'>;
  registry: NodeRegistry;
  agents: Pick<AgentClient, 'fileList' | 'fileGet' | 'screen'>;
  history: (e: NewHistory) => void;
  /** files.max_pull_bytes. */
  maxPullBytes: number;
  metrics: Registry;
}

/** Sends a board's refusal (its status and code) or 502 agent_unreachable. */
export function agentFailure(reply: FastifyReply, r: Extract<FileCall<unknown>, { ok: false }>): FastifyReply {
  const status = r.status === 0 || r.status === 401 || r.error === 'bad_reply' ? 502 : r.status;
  const error = r.status === 0 ? 'agent_unreachable' : r.status === 401 ? 'agent_unauthorized' : r.error;
  return reply.code(status).send({ error, message: r.message } satisfies ApiError);
}

/** Sends a FilesRefused or UploadRefused; rethrows anything else. */
export function refusal(reply: FastifyReply, err: unknown): FastifyReply {
  if (err instanceof FilesRefused)
    return reply
      .code(err.status)
      .send({ error: err.code, ...(err.field ? { field: err.field } : {}), message: err.message } satisfies ApiError);
  if (err instanceof UploadRefused) return reply.code(err.status).send({ error: err.code, message: err.message });
  throw err;
}

/** `muster_manager_files_refused_total`, once per registry. */
export function filesRefusedCounter(metrics: Registry): Counter<'reason'> {
  const name = 'muster_manager_files_refused_total';
  return (
    (metrics.getSingleMetric(name) as Counter<'reason'> | undefined) ??
    new Counter({
      name,
      help: 'File uploads, pushes, pulls and screens refused by the manager or answered with an error by a board, by reason',
      labelNames: ['reason'],
      registers: [metrics],
    })
  );
}

/** Registers the file routes. */
export const fileRoutes: FastifyPluginAsyncTypebox<FileRoutesOptions> = async (app, o) => {
  const refused = filesRefusedCounter(o.metrics);
  for (const r of ['too_large', 'no_space', 'bad_request', 'stalled', 'not_found', 'node_offline', 'agent_unreachable'])
    refused.inc({ reason: r }, 0);
  const fail = (reply: FastifyReply, err: unknown) => {
    if (err instanceof FilesRefused || err instanceof UploadRefused) refused.inc({ reason: err.code });
    return refusal(reply, err);
  };
  const failAgent = (reply: FastifyReply, r: Extract<FileCall<unknown>, { ok: false }>) => {
    refused.inc({ reason: r.status === 0 ? 'agent_unreachable' : r.error });
    return agentFailure(reply, r);
  };

  await app.register(async (scope) => {
    const raw = scope.withTypeProvider<TypeBoxTypeProvider>();
    raw.removeAllContentTypeParsers();
    raw.addContentTypeParser('*', (_req, _payload, done) => done(null));
    raw.post(
      '/files/uploads',
      {
        config: { role: 'operator' },
        schema: { querystring: UploadQuerySchema, response: { 201: UploadReplySchema, ...ERROR_RESPONSES } },
      },
      async (req, reply) => {
        const declared = req.headers['content-length'];
        try {
          const upload = await o.staging.receive(
            req.query.name,
            req.raw,
            declared === undefined ? undefined : Number(declared),
          );
          return reply.code(201).send({ upload });
        } catch (err) {
          if (!req.raw.readableEnded) void reply.header('connection', 'close');
          return fail(reply, err);
        }
      },
    );
  });

  app.post(
    '/files/pushes',
    {
      config: { role: 'operator' },
      schema: { body: PushBodySchema, response: { 202: PushReplySchema, ...ERROR_RESPONSES } },
    },
    async (req, reply) => {
      try {
        return reply.code(202).send({ push: o.pusher.push(req.body, whoOf(req)) });
      } catch (err) {
        return fail(reply, err);
      }
    },
  );

  app.get(
    '/files/pushes/:id',
    {
      config: { role: 'viewer' },
      schema: { params: PushParamsSchema, response: { 200: PushReplySchema, ...ERROR_RESPONSES } },
    },
    async (req, reply) => {
      const push = o.pusher.get(req.params.id);
      if (!push) return reply.code(404).send(notFound(`no push ${req.params.id}`));
      return { push };
    },
  );

  app.post(
    '/files/remove',
    {
      config: { role: 'operator' },
      schema: { body: RemoveBodySchema, response: { 200: RemoveReplySchema, ...ERROR_RESPONSES } },
    },
    async (req, reply) => {
      try {
        return await o.pusher.remove(req.body, whoOf(req));
      } catch (err) {
        return fail(reply, err);
      }
    },
  );

  app.get(
    '/nodes/:id/files',
    {
      config: { role: 'viewer' },
      schema: {
        params: NodeParamsSchema,
        querystring: NodePathQuerySchema,
        response: { 200: ListReplySchema, ...ERROR_RESPONSES },
      },
    },
    async (req, reply) => {
      try {
        const r = await o.agents.fileList(agentTargetOf(o.registry, req.params.id), req.query.path);
        return r.ok ? r.value : failAgent(reply, r);
      } catch (err) {
        return fail(reply, err);
      }
    },
  );

  app.get(
    '/nodes/:id/files/content',
    {
      config: { role: 'operator' },
      schema: { params: NodeParamsSchema, querystring: NodePathQuerySchema, response: ERROR_RESPONSES },
    },
    async (req, reply) => {
      const node = req.params.id;
      const p = req.query.path;
      const who = whoOf(req);
      let r: Awaited<ReturnType<typeof o.agents.fileGet>>;
      try {
        r = await o.agents.fileGet(agentTargetOf(o.registry, node), p);
      } catch (err) {
        return fail(reply, err);
      }
      const record = (result: number, message: string, args: Record<string, unknown> = {}) =>
        o.history({
          at: Date.now(),
          node,
          kind: 'operation',
          operation: 'files.pull',
          args: { path: p, ...args },
          result,
          message,
          who,
        });
      if (!r.ok) {
        record(-1, `${r.error}: ${r.message}`);
        return failAgent(reply, r);
      }
      const { size, body } = r.value;
      if (size > o.maxPullBytes) {
        body.destroy();
        refused.inc({ reason: 'too_large' });
        record(-1, `${size} bytes is over files.max_pull_bytes`);
        return reply.code(413).send({
          error: 'too_large',
          message: `${p} is ${size} bytes, over files.max_pull_bytes (${o.maxPullBytes})`,
        });
      }
      // Streamed through: hashed and counted on the way, never held.
      const hash = createHash('sha256');
      let bytes = 0;
      const tap = new PassThrough();
      tap.on('data', (c: Buffer) => {
        bytes += c.length;
        hash.update(c);
        chunkReleaser.add(c.length);
      });
      pipeline(body, tap).then(
        () => record(bytes === size ? 0 : -1, `${bytes} bytes`, { size: bytes, sha256: hash.digest('hex') }),
        (err: Error) => record(-1, `broke off after ${bytes} bytes: ${err.message}`),
      );
      // Bytes, not JSON: sent as they are (the error schemas do not apply).
      return (reply as FastifyReply)
        .header('content-type', 'application/octet-stream')
        .header('content-length', size)
        .header('cache-control', 'no-store')
        .send(tap);
    },
  );
};
