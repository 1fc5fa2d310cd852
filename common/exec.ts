/**
 * Remote execution between the manager and an agent (docs/exec.md "Agent commands"): the task and
 * step formats and the agent commands `exec`, `exec_status`, `exec_kill`, `exec_file` and
 * `command_set`, as JSON schemas — the one source of truth for the agent's task runner, its
 * seed-compatible executor API on `exec.osreapi.port`, the manager's fan-out, and the node link.
 *
 * Each command travels like `/deploy` (docs/protocol.md "5. Load command"): `POST /<command>` on
 * the agent's service port with `Authorization: Bearer <token>` and the envelope
 * `{ api_version: 1, data }`; the reply's `data` holds `result` (0 = success, the agent's result
 * codes of agent/deploy/results.ts) and `message` plus the fields named below. Over the node link
 * the same `data` is carried in the link's envelope.
 *
 * Times are ISO-8601 strings with the board's offset; durations are ms unless named `_s`; sizes
 * are bytes.
 */
import { type Static, Type } from 'typebox';
import { literalUnion } from './api/primitives.js';
import { API_VERSION } from './constants.js';

const ApiVersion = Type.Literal(API_VERSION);
function envelope<T extends Parameters<typeof Type.Object>[0]>(data: ReturnType<typeof Type.Object<T>>) {
  return Type.Object({ api_version: ApiVersion, data });
}

/** Pattern of a task id: a UUID or any id of letters, digits, `_` and `-`, 1..64 characters. */
export const TASK_ID_PATTERN = '^[A-Za-z0-9_-]{1,64}$';
/** Schema of a task id. */
export const TaskIdSchema = Type.String({
  pattern: TASK_ID_PATTERN,
  description: 'task id (a UUID v4 when the agent or manager makes one)',
});

/** Pattern of a step name and of a command-set entry's name. */
export const STEP_NAME_PATTERN = '^[A-Za-z0-9_.:-]{1,128}$';
/** Pattern of a command-set entry's name (a file name in exec.commands_dir). */
export const COMMAND_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$';

/**
 * The interpreters a Linux board runs a step's `command_content` with, each on a temp script file
 * (docs/exec.md "Command types"). `cmd` and `powershell` (the seed's Windows types) are refused
 * with a clear message by the agent, so the schema takes any string and the runner decides.
 */
export const LINUX_COMMAND_TYPES = ['sh', 'bash', 'python3'] as const;
/** A Linux command type. */
export type LinuxCommandType = (typeof LINUX_COMMAND_TYPES)[number];

/**
 * One step of a task: the seed executor's fields (`name`, `command_type`, `command_content`,
 * `env_vars` as `K=V`, `depends_on`) plus muster's `timeout` and the command-set call
 * (`command` with `args` / `kwargs` instead of `command_content`). A step without a name is named
 * `<task id>-<n>` (n from 0).
 */
export const StepSpecSchema = Type.Object({
  name: Type.Optional(Type.String({ pattern: STEP_NAME_PATTERN })),
  command_type: Type.Optional(Type.String({ maxLength: 32, description: 'sh (default), bash, python3' })),
  command_content: Type.Optional(Type.String({ maxLength: 1 << 20, description: 'the script text' })),
  command: Type.Optional(
    Type.String({
      pattern: COMMAND_NAME_PATTERN,
      description: 'a command-set entry to run instead of command_content',
    }),
  ),
  args: Type.Optional(Type.Array(Type.String({ maxLength: 4096 }), { maxItems: 256 })),
  kwargs: Type.Optional(
    Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]{0,63}$' }), Type.String({ maxLength: 4096 })),
  ),
  env_vars: Type.Optional(Type.Array(Type.String({ maxLength: 32768 }), { maxItems: 256 })),
  depends_on: Type.Optional(Type.Array(Type.String({ pattern: STEP_NAME_PATTERN }), { maxItems: 256 })),
  timeout: Type.Optional(
    Type.Union([Type.Integer({ minimum: 1 }), Type.String({ maxLength: 32 })], {
      description: 'seconds, or a Go duration such as 30s, 5m, 1h30m; default exec.step_timeout',
    }),
  ),
});
/** One step of a task. */
export type StepSpec = Static<typeof StepSpecSchema>;

/** Largest number of steps in one task. */
export const MAX_STEPS = 256;

/**
 * Data of the `exec` command: submit a task. Steps run in order, or all at once when `async`
 * (the seed's `?ansync=true`), or as a DAG when any names `depends_on`.
 */
export const ExecRequestData = Type.Object({
  task_id: TaskIdSchema,
  steps: Type.Array(StepSpecSchema, { minItems: 1, maxItems: MAX_STEPS }),
  async: Type.Optional(Type.Boolean({ description: 'run all steps at once (seed ansync=true)' })),
  timeout_s: Type.Optional(Type.Integer({ minimum: 1, description: 'whole task time limit, s' })),
});
export type ExecRequestData = Static<typeof ExecRequestData>;
export const ExecRequestBody = envelope(ExecRequestData);
export type ExecRequestBody = Static<typeof ExecRequestBody>;

/** Reply `data` of `exec`: accepted (result 0, `count` steps) or refused (result ≠ 0, message says why). */
export const ExecReplyData = Type.Object({
  task_id: Type.String(),
  count: Type.Integer({ minimum: 0 }),
  result: Type.Integer(),
  message: Type.String(),
});
export type ExecReplyData = Static<typeof ExecReplyData>;

/** States of a task. */
export const TASK_STATES = ['queued', 'running', 'done', 'failed', 'killed', 'interrupted', 'timeout'] as const;
export type TaskState = (typeof TASK_STATES)[number];
/** States of a step: `skipped` when a dependency did not succeed (or a sequence stopped before it). */
export const STEP_STATES = [
  'pending',
  'running',
  'done',
  'failed',
  'skipped',
  'killed',
  'interrupted',
  'timeout',
] as const;
export type StepState = (typeof STEP_STATES)[number];

/** Result of one step as the agent keeps it. */
export const StepStatusSchema = Type.Object({
  step: Type.Integer({ minimum: 0 }),
  name: Type.String(),
  state: literalUnion(STEP_STATES),
  exit_code: Type.Union([Type.Integer(), Type.Null()], {
    description: 'null until it ended, or when killed by a signal',
  }),
  signal: Type.Union([Type.String(), Type.Null()]),
  begin: Type.Union([Type.String(), Type.Null()]),
  end: Type.Union([Type.String(), Type.Null()]),
  stdout_tail: Type.String({ description: 'the last exec.max_output_bytes of stdout' }),
  stderr_tail: Type.String(),
  stdout_cut_bytes: Type.Integer({ minimum: 0, description: 'bytes of stdout dropped from the head' }),
  stderr_cut_bytes: Type.Integer({ minimum: 0 }),
  message: Type.String({ description: 'why it failed, was skipped, killed or interrupted; "" when done' }),
});
export type StepStatus = Static<typeof StepStatusSchema>;

/** One line of live output: numbered per task from 1, so a reader asks for what follows `since`. */
export const OutputLineSchema = Type.Object({
  seq: Type.Integer({ minimum: 1 }),
  step: Type.Integer({ minimum: 0 }),
  stream: literalUnion(['stdout', 'stderr'] as const),
  at: Type.Number({ description: 'when the agent read it, ms since the epoch' }),
  line: Type.String({ description: 'without the newline; a line longer than 16 KiB is cut' }),
});
export type OutputLine = Static<typeof OutputLineSchema>;

/**
 * Data of `exec_status`: a task's state and the output lines after `since`. With `wait_ms` the
 * agent holds the request (long poll, at most 25 s) until a new line or the task's end.
 */
export const ExecStatusRequestData = Type.Object({
  task_id: TaskIdSchema,
  since: Type.Optional(Type.Integer({ minimum: 0 })),
  wait_ms: Type.Optional(Type.Integer({ minimum: 0, maximum: 25000 })),
});
export type ExecStatusRequestData = Static<typeof ExecStatusRequestData>;

/** Reply `data` of `exec_status`; result ≠ 0 (and `state` null) for an unknown or expired task. */
export const ExecStatusReplyData = Type.Object({
  task_id: Type.String(),
  result: Type.Integer(),
  message: Type.String(),
  state: Type.Union([literalUnion(TASK_STATES), Type.Null()]),
  begin: Type.Union([Type.String(), Type.Null()]),
  end: Type.Union([Type.String(), Type.Null()]),
  steps: Type.Array(StepStatusSchema),
  output: Type.Array(OutputLineSchema, { description: 'lines after since (at most 1000 per answer)' }),
  next: Type.Integer({ minimum: 0, description: 'seq of the last line sent; ask since=next' }),
  lines_dropped: Type.Integer({ minimum: 0, description: 'lines after since no longer held (ring buffer)' }),
});
export type ExecStatusReplyData = Static<typeof ExecStatusReplyData>;

/** Data of `exec_kill`: kill a task (or one step) with its process groups. */
export const ExecKillRequestData = Type.Object({
  task_id: TaskIdSchema,
  step: Type.Optional(Type.String({ description: 'a step name; all running steps when absent' })),
});
export type ExecKillRequestData = Static<typeof ExecKillRequestData>;

/** Data of `exec_file`: fetch the `generate_file` a command-set step produced. */
export const ExecFileRequestData = Type.Object({ task_id: TaskIdSchema, step: Type.Integer({ minimum: 0 }) });
export type ExecFileRequestData = Static<typeof ExecFileRequestData>;
/** Reply `data` of `exec_file`: the file base64-encoded (bounded by exec.max_generate_file_bytes). */
export const ExecFileReplyData = Type.Object({
  task_id: Type.String(),
  step: Type.Integer(),
  result: Type.Integer(),
  message: Type.String(),
  path: Type.Optional(Type.String()),
  size: Type.Optional(Type.Integer({ minimum: 0 })),
  sha256: Type.Optional(Type.String()),
  content_b64: Type.Optional(Type.String()),
});
export type ExecFileReplyData = Static<typeof ExecFileReplyData>;

/**
 * A command-set entry (docs/exec.md "Command sets"): a named executable in exec.commands_dir,
 * called with `argument_count` positional args (-1: any number) and `kwargs` as `--key=value`;
 * `generate_file` is a path the command writes, fetched back by the manager after the run.
 */
export const CommandEntrySchema = Type.Object({
  name: Type.String({ pattern: COMMAND_NAME_PATTERN }),
  argument_count: Type.Integer({ minimum: -1, maximum: 256 }),
  generate_file: Type.Union([Type.String({ maxLength: 4096 }), Type.Null()]),
  sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
  size: Type.Integer({ minimum: 0 }),
});
export type CommandEntry = Static<typeof CommandEntrySchema>;

/** Data of `command_set`: `put` an entry (its file base64, checked against `sha256`), `rm` one, or `list`. */
export const CommandSetRequestData = Type.Object({
  action: literalUnion(['put', 'rm', 'list'] as const),
  name: Type.Optional(Type.String({ pattern: COMMAND_NAME_PATTERN })),
  argument_count: Type.Optional(Type.Integer({ minimum: -1, maximum: 256 })),
  generate_file: Type.Optional(Type.Union([Type.String({ maxLength: 4096 }), Type.Null()])),
  content_b64: Type.Optional(Type.String({ maxLength: 1400000, description: 'the script, at most 1 MiB decoded' })),
  sha256: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$' })),
});
export type CommandSetRequestData = Static<typeof CommandSetRequestData>;
/** Reply `data` of `command_set`: the entries after the change. */
export const CommandSetReplyData = Type.Object({
  result: Type.Integer(),
  message: Type.String(),
  entries: Type.Array(CommandEntrySchema),
});
export type CommandSetReplyData = Static<typeof CommandSetReplyData>;

/** The agent commands of remote execution, by name (the HTTP path `/<name>`, the link's type). */
export const EXEC_COMMANDS = ['exec', 'exec_status', 'exec_kill', 'exec_file', 'command_set'] as const;
