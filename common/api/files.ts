/**
 * Files and the screen over REST (docs/files.md "REST API"). A push uploads each file once to the
 * manager (streamed to its data directory, sha256 computed), then fans it out to every board of a
 * target (docs/exec.md "Targets"), resuming interrupted transfers.
 *
 *   POST /api/v1/files/uploads?name=   body = the file's bytes (application/octet-stream)
 *        → 201 { upload }                                                         operator
 *   POST /api/v1/files/pushes { target, files: [{ upload, name? }], to, mode?, owner? }
 *        → 202 { push } at once; the transfers go on in the background           operator
 *   GET  /api/v1/files/pushes/:id → { push } (per-board progress, then results)   viewer
 *   POST /api/v1/files/remove { target, paths, recursive? } → { results }          operator
 *   GET  /api/v1/nodes/:id/files?path= → { path, entries, truncated }             viewer
 *   GET  /api/v1/nodes/:id/files/content?path= → the file's bytes (streamed)      operator
 *   GET  /api/v1/nodes/:id/screen → image/png                                     viewer
 *
 * A board's refusal keeps the agent's code (common/files.ts FILE_ERRORS) and HTTP status; an
 * agent that cannot be reached is 502 `agent_unreachable`.
 */
import { type Static, Type } from 'typebox';
import { MAX_PATH_BYTES } from '../files.js';
import { literalUnion, NodeIdSchema } from './primitives.js';

/** The states of a board in a push. */
export const PUSH_STATES = ['queued', 'sending', 'retrying', 'done', 'failed'] as const;
/** The state of a board in a push. */
export type PushState = (typeof PUSH_STATES)[number];

/** An absolute path on a board. */
export const BoardPathSchema = Type.String({
  minLength: 1,
  maxLength: MAX_PATH_BYTES,
  pattern: '^/',
  description: 'absolute path on the board, inside its files.roots',
});

/** A file name (no directory part). */
export const FileNameSchema = Type.String({
  minLength: 1,
  maxLength: 255,
  pattern: '^[^/\\x00]+$',
  description: 'file name without a directory',
});

/** Query string of POST /api/v1/files/uploads. */
export const UploadQuerySchema = Type.Object({ name: FileNameSchema }, { additionalProperties: false });

/** A file held by the manager for pushes. */
export const UploadSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  size: Type.Integer({ minimum: 0, description: 'bytes' }),
  sha256: Type.String(),
  created_at: Type.String({ description: 'ISO time' }),
  expires_at: Type.String({ description: 'ISO time it is deleted unless a push is using it (files.upload_ttl_ms)' }),
});
/** A file held by the manager for pushes. */
export type Upload = Static<typeof UploadSchema>;
/** Answer of POST /api/v1/files/uploads. */
export const UploadReplySchema = Type.Object({ upload: UploadSchema });
/** Answer of POST /api/v1/files/uploads. */
export type UploadReply = Static<typeof UploadReplySchema>;

/** Body of POST /api/v1/files/pushes. */
export const PushBodySchema = Type.Object(
  {
    target: Type.String({ minLength: 1, maxLength: 4096, description: 'the boards (docs/exec.md "Targets")' }),
    files: Type.Array(
      Type.Object(
        {
          upload: Type.String({ minLength: 1, maxLength: 64 }),
          name: Type.Optional(FileNameSchema),
        },
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: 1000 },
    ),
    to: BoardPathSchema,
    mode: Type.Optional(Type.String({ pattern: '^0?[0-7]{3}$', description: 'permission bits, e.g. 0644' })),
    owner: Type.Optional(Type.String({ pattern: '^\\d{1,10}(:\\d{1,10})?$', description: 'numeric uid or uid:gid' })),
  },
  { additionalProperties: false },
);
/** Body of POST /api/v1/files/pushes. */
export type PushBody = Static<typeof PushBodySchema>;

/** A board's part of a push. */
export const PushNodeSchema = Type.Object({
  node: NodeIdSchema,
  host_ip: Type.String(),
  state: literalUnion(PUSH_STATES, {
    description: 'queued, sending, retrying (after a failed attempt, waiting), done, failed',
  }),
  bytes: Type.Integer({ description: 'bytes the board holds or was sent so far, all files' }),
  total: Type.Integer({ description: 'bytes of all files' }),
  file: Type.Union([Type.String(), Type.Null()], { description: 'the path being sent now' }),
  attempts: Type.Integer({ description: 'transfer attempts, all files' }),
  resumed_from: Type.Array(Type.Integer(), {
    description: 'offsets transfers resumed from (the bytes the board held)',
  }),
  message: Type.Union([Type.String(), Type.Null()]),
});
/** A board's part of a push. */
export type PushNode = Static<typeof PushNodeSchema>;

/** A push as recorded. */
export const PushRecordSchema = Type.Object({
  id: Type.String(),
  who: Type.String(),
  target: Type.String(),
  to: Type.String(),
  mode: Type.String(),
  owner: Type.Union([Type.String(), Type.Null()]),
  files: Type.Array(
    Type.Object({ name: Type.String(), path: Type.String(), size: Type.Integer(), sha256: Type.String() }),
  ),
  nodes: Type.Array(PushNodeSchema),
  at: Type.String({ description: 'ISO time' }),
  finished_at: Type.Union([Type.String(), Type.Null()], { description: 'null while under way' }),
  done: Type.Integer({ description: 'boards that have every file' }),
  failed: Type.Integer({ description: 'boards that failed' }),
});
/** A push as recorded. */
export type PushRecord = Static<typeof PushRecordSchema>;
/** Answer of POST /api/v1/files/pushes and GET /api/v1/files/pushes/:id. */
export const PushReplySchema = Type.Object({ push: PushRecordSchema });
/** Answer of the push routes. */
export type PushReply = Static<typeof PushReplySchema>;
/** `:id` of GET /api/v1/files/pushes/:id. */
export const PushParamsSchema = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

/** Body of POST /api/v1/files/remove. */
export const RemoveBodySchema = Type.Object(
  {
    target: Type.String({ minLength: 1, maxLength: 4096 }),
    paths: Type.Array(BoardPathSchema, { minItems: 1, maxItems: 1000 }),
    recursive: Type.Optional(Type.Boolean({ description: 'delete directories with what they hold' })),
  },
  { additionalProperties: false },
);
/** Body of POST /api/v1/files/remove. */
export type RemoveBody = Static<typeof RemoveBodySchema>;

/** One board's answer for one path. */
export const RemoveResultSchema = Type.Object({
  node: Type.String(),
  path: Type.String(),
  ok: Type.Boolean(),
  removed: Type.Union([Type.Literal('file'), Type.Literal('dir'), Type.Literal('absent'), Type.Null()]),
  error: Type.Union([Type.String(), Type.Null()]),
  message: Type.String(),
});
/** Answer of POST /api/v1/files/remove. */
export const RemoveReplySchema = Type.Object({ results: Type.Array(RemoveResultSchema) });
/** Answer of POST /api/v1/files/remove. */
export type RemoveReply = Static<typeof RemoveReplySchema>;

/** Query string of the node file routes. */
export const NodePathQuerySchema = Type.Object({ path: BoardPathSchema }, { additionalProperties: false });

/** Answer of GET /api/v1/nodes/:id/files (the agent's listing). */
export const ListReplySchema = Type.Object({
  path: Type.String(),
  entries: Type.Array(
    Type.Object({
      name: Type.String(),
      type: Type.Union([Type.Literal('file'), Type.Literal('dir'), Type.Literal('symlink'), Type.Literal('other')]),
      size: Type.Integer(),
      mode: Type.String(),
      mtime: Type.String(),
    }),
  ),
  truncated: Type.Boolean(),
});
/** Answer of GET /api/v1/nodes/:id/files. */
export type NodeListReply = Static<typeof ListReplySchema>;
