/**
 * Remote execution over REST (docs/exec.md "REST API"): tasks of steps run on the nodes a target
 * selects, in batches, with live output.
 *
 *   POST /api/v1/tasks `{ target, steps, async?, batch?, batch_wait?, timeout?, fail_fast? }`
 *        (operator) → 202 `{ task }`; the target is resolved now and kept with the task
 *   GET  /api/v1/tasks?limit=&before= → `{ tasks, next }` newest first, without per-node results
 *   GET  /api/v1/tasks/:id → `{ task }` with per-node results (exit codes, output tails, times)
 *   GET  /api/v1/tasks/:id/events?since= → text/event-stream: `line` events `{ seq, node, step,
 *        stream, at, line }`, `node` events (a node's result when it ends), then one `summary`
 *        event (the task with its results) and the end of the stream
 *   GET  /api/v1/tasks/:id/file?node=&step= → `{ file }` a generate_file fetched back
 *   POST /api/v1/tasks/:id/kill `{ node? }` (operator) → `{ task }`
 *
 * Times are ISO-8601; durations in ms unless named otherwise.
 */
import { type Static, Type } from 'typebox';
import { STEP_STATES, StepSpecSchema, TASK_STATES } from '../exec.js';
import { MAX_TARGET_LENGTH } from '../target.js';
import { NextSchema } from './paging.js';
import { literalUnion, NodeIdSchema } from './primitives.js';

/** `batch` of a task: a number of nodes at a time, or a share of the target (`"25%"`). */
export const BATCH_PATTERN = '^(?:[1-9][0-9]{0,5}|(?:100|[1-9][0-9]?(?:\\.[0-9]+)?)%)$';
/** A duration as a number of seconds or a Go-style text (`30s`, `5m`, `1h30m`, `500ms`). */
export const DurationSchema = Type.Union(
  [Type.Integer({ minimum: 0, maximum: 31_536_000 }), Type.String({ maxLength: 32, pattern: '^[0-9a-z.]+$' })],
  { description: 'seconds, or a duration such as 500ms, 30s, 5m, 1h30m' },
);

/** Body of POST /api/v1/tasks. */
export const TaskBodySchema = Type.Object(
  {
    target: Type.String({ minLength: 1, maxLength: MAX_TARGET_LENGTH, description: 'docs/exec.md "Targets"' }),
    steps: Type.Array(StepSpecSchema, { minItems: 1, maxItems: 256 }),
    async: Type.Optional(Type.Boolean({ description: 'run all steps at once (seed ansync=true)' })),
    batch: Type.Optional(
      Type.Union([Type.Integer({ minimum: 1 }), Type.String({ pattern: BATCH_PATTERN })], {
        description: 'nodes at a time (10) or a share of the target ("25%"); a sliding window; default all',
      }),
    ),
    batch_wait: Type.Optional(DurationSchema),
    timeout: Type.Optional(DurationSchema),
    fail_fast: Type.Optional(Type.Boolean({ description: 'start no further node after the first failure' })),
  },
  { additionalProperties: false },
);
/** Body of POST /api/v1/tasks. */
export type TaskBody = Static<typeof TaskBodySchema>;

/** States of one node's part of a task: the agent's task states plus `pending`, `skipped`, `error`. */
export const NODE_RUN_STATES = [
  'pending',
  'running',
  'done',
  'failed',
  'killed',
  'interrupted',
  'timeout',
  'skipped',
  'error',
] as const;
/** State of one node's part of a task. */
export type NodeRunState = (typeof NODE_RUN_STATES)[number];

/** One step's result on one node (the agent's record, output tails bounded by exec.max_tail_bytes). */
export const StepResultSchema = Type.Object({
  step: Type.Integer({ minimum: 0 }),
  name: Type.String(),
  state: literalUnion(STEP_STATES),
  exit_code: Type.Union([Type.Integer(), Type.Null()]),
  signal: Type.Union([Type.String(), Type.Null()]),
  begin: Type.Union([Type.String(), Type.Null()]),
  end: Type.Union([Type.String(), Type.Null()]),
  stdout_tail: Type.String(),
  stderr_tail: Type.String(),
  stdout_cut_bytes: Type.Integer({ minimum: 0 }),
  stderr_cut_bytes: Type.Integer({ minimum: 0 }),
  message: Type.String(),
});
/** One step's result on one node. */
export type StepResult = Static<typeof StepResultSchema>;

/** A file a command-set step produced (its `generate_file`), fetched back after the run. */
export const GeneratedFileSchema = Type.Object({
  step: Type.Integer({ minimum: 0 }),
  path: Type.String(),
  size: Type.Integer({ minimum: 0 }),
  sha256: Type.String(),
  /** Whether the content is kept (GET /api/v1/tasks/:id/file); false with `message` when it was not fetched. */
  kept: Type.Boolean(),
  message: Type.String(),
});
/** A generate_file fetched back. */
export type GeneratedFile = Static<typeof GeneratedFileSchema>;

/** One node's part of a task. */
export const NodeResultSchema = Type.Object({
  node: Type.String(),
  host_ip: Type.String(),
  state: literalUnion(NODE_RUN_STATES),
  exit_code: Type.Union([Type.Integer(), Type.Null()], {
    description: 'the first non-zero exit code of its steps, else 0; null when none ended',
  }),
  begin: Type.Union([Type.String(), Type.Null()]),
  end: Type.Union([Type.String(), Type.Null()]),
  duration_ms: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
  message: Type.String({ description: 'why it failed, was skipped, killed or could not run; "" when done' }),
  steps: Type.Array(StepResultSchema),
  files: Type.Array(GeneratedFileSchema),
  lines_dropped: Type.Integer({ minimum: 0, description: 'live lines lost (agent ring or manager buffer)' }),
});
/** One node's part of a task. */
export type NodeResult = Static<typeof NodeResultSchema>;

/** Counts of a task's nodes by how they ended. */
export const TaskSummarySchema = Type.Object({
  nodes: Type.Integer({ minimum: 0 }),
  done: Type.Integer({ minimum: 0 }),
  failed: Type.Integer({ minimum: 0, description: 'failed, killed, interrupted, timeout or error' }),
  skipped: Type.Integer({ minimum: 0 }),
  running: Type.Integer({ minimum: 0 }),
  pending: Type.Integer({ minimum: 0 }),
});
/** Counts of a task's nodes. */
export type TaskSummary = Static<typeof TaskSummarySchema>;

/** A task as recorded (and stored). */
export const TaskRecordSchema = Type.Object({
  id: Type.String({ description: 'uuid v4; also the task id on every agent' }),
  who: Type.String({ description: 'who ran it: the authenticated user, or user/token' }),
  at: Type.String(),
  finished_at: Type.Union([Type.String(), Type.Null()]),
  state: literalUnion(TASK_STATES),
  message: Type.String(),
  target: Type.String({ description: 'the target as given' }),
  nodes: Type.Array(Type.String(), { description: 'the nodes it resolved to at submit time, in order' }),
  steps: Type.Array(StepSpecSchema),
  async: Type.Boolean(),
  batch: Type.Union([Type.Integer(), Type.String(), Type.Null()]),
  batch_size: Type.Integer({ minimum: 1, description: 'nodes at a time' }),
  batch_wait_ms: Type.Integer({ minimum: 0 }),
  timeout_ms: Type.Integer({ minimum: 0, description: 'task time limit; 0 = none' }),
  fail_fast: Type.Boolean(),
  summary: TaskSummarySchema,
  /** Per-node results (GET /api/v1/tasks/:id and the summary event; absent in lists). */
  results: Type.Optional(Type.Array(NodeResultSchema)),
});
/** A task as recorded. */
export type TaskRecord = Static<typeof TaskRecordSchema>;

/** Answer of POST /api/v1/tasks, GET /api/v1/tasks/:id and POST /api/v1/tasks/:id/kill. */
export const TaskReplySchema = Type.Object({ task: TaskRecordSchema });
/** Answer with one task. */
export type TaskReply = Static<typeof TaskReplySchema>;

/** Query string of GET /api/v1/tasks. */
export const TaskListQuerySchema = Type.Object(
  {
    limit: Type.Optional(Type.String({ pattern: '^[0-9]+$', description: 'page size 1..1000, default 50' })),
    before: Type.Optional(Type.String({ pattern: '^[0-9]+$', description: 'a `next` of an earlier page' })),
  },
  { additionalProperties: false },
);
/** Answer of GET /api/v1/tasks: newest first. */
export const TaskListReplySchema = Type.Object({ tasks: Type.Array(TaskRecordSchema), next: NextSchema });
/** Answer of GET /api/v1/tasks. */
export type TaskListReply = Static<typeof TaskListReplySchema>;

/** `:id` of the task routes. */
export const TaskParamsSchema = Type.Object({ id: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }) });

/** Query string of GET /api/v1/tasks/:id/events: lines after `since` (a line's seq). */
export const TaskEventsQuerySchema = Type.Object(
  { since: Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$' })) },
  { additionalProperties: false },
);

/** Body of POST /api/v1/tasks/:id/kill: one node's part, or the whole task. */
export const TaskKillBodySchema = Type.Object(
  { node: Type.Optional(Type.String({ maxLength: 128 })) },
  {
    additionalProperties: false,
  },
);
/** Body of POST /api/v1/tasks/:id/kill. */
export type TaskKillBody = Static<typeof TaskKillBodySchema>;

/** A live line of a task (event `line`): numbered per task from 1 by the manager. */
export const TaskLineSchema = Type.Object({
  seq: Type.Integer({ minimum: 1 }),
  node: Type.String(),
  step: Type.Integer({ minimum: 0 }),
  stream: literalUnion(['stdout', 'stderr'] as const),
  at: Type.Number({ description: 'when the agent read it, ms since the epoch' }),
  line: Type.String(),
});
/** A live line of a task. */
export type TaskLine = Static<typeof TaskLineSchema>;

/** Event `dropped` of the stream: lines after `since` the manager no longer holds (exec.max_buffered_lines). */
export const TaskDroppedSchema = Type.Object({ lines: Type.Integer({ minimum: 1 }) });

/** The server-sent events of GET /api/v1/tasks/:id/events, by event name. */
export const TASK_EVENTS = ['line', 'node', 'dropped', 'summary'] as const;

/** Query string of GET /api/v1/tasks/:id/file. */
export const TaskFileQuerySchema = Type.Object(
  { node: NodeIdSchema, step: Type.String({ pattern: '^[0-9]{1,3}$' }) },
  { additionalProperties: false },
);
/** Answer of GET /api/v1/tasks/:id/file. */
export const TaskFileReplySchema = Type.Object({
  file: Type.Object({
    task: Type.String(),
    node: Type.String(),
    step: Type.Integer(),
    path: Type.String(),
    size: Type.Integer({ minimum: 0 }),
    sha256: Type.String(),
    content_b64: Type.String(),
  }),
});
/** Answer of GET /api/v1/tasks/:id/file. */
export type TaskFileReply = Static<typeof TaskFileReplySchema>;
