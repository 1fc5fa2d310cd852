/**
 * The web console API of the original specification (docs/dashboard.md "Console API"), under
 * `/console/`: the seed's paths, bodies and answers kept exactly, mapped onto muster's own API.
 * Every answer but a list is the JSON string `"OK"` or `"NG"`; a refusal (bad body, not logged in,
 * role too small, not available) is `"NG"` with the HTTP status that says why and the reason in
 * the `X-Muster-Error` header (the seed has no room for it in the body).
 *
 *   POST /console/login         {@link ConsoleLoginBodySchema} → "OK" + the session cookie | "NG"
 *   POST /console/logout        → "OK"
 *   GET  /console/status        → {@link ConsoleStatusSchema}
 *   GET  /console/node_history  ?node=&limit=&before= → {@link ConsoleNodeRecordSchema}[] newest first
 *   GET  /console/alert_history ?node=&limit=&before= → {@link ConsoleAlertRecordSchema}[] newest first
 *   POST /console/exec          {@link ConsoleExecBodySchema} → "OK" | "NG" (a task, waited for)
 *   POST /console/screen        {@link ConsoleScreenBodySchema} → "OK" | "NG" (or the PNG on Accept: image/png)
 *   POST /console/command_set   {@link ConsoleCommandSetBodySchema} → "OK" | "NG"
 *   POST /console/file          {@link ConsoleFileBodySchema} → "OK" | "NG" (a push or a remove, waited for)
 *
 * The headers `X-Muster-Task` / `X-Muster-Push` name the task or push an exec or a file made, so
 * its details can be read from /api/v1.
 */
import { type Static, Type } from 'typebox';
import { MAX_PASSWORD, MAX_USERNAME } from './auth.js';
import { NodeIdSchema } from './primitives.js';

/** The prefix of the console API. */
export const CONSOLE_PREFIX = '/console';

/** The two answers of the seed. */
export const ConsoleAnswerSchema = Type.Union([Type.Literal('OK'), Type.Literal('NG')]);
/** "OK" or "NG". */
export type ConsoleAnswer = Static<typeof ConsoleAnswerSchema>;

/** The header carrying why an answer is "NG". */
export const CONSOLE_ERROR_HEADER = 'x-muster-error';
/** The header naming the task a POST /console/exec started (GET /api/v1/tasks/:id). */
export const CONSOLE_TASK_HEADER = 'x-muster-task';
/** The header naming the push a POST /console/file started (GET /api/v1/files/pushes/:id). */
export const CONSOLE_PUSH_HEADER = 'x-muster-push';

/** Body of POST /console/login. */
export const ConsoleLoginBodySchema = Type.Object(
  {
    username: Type.String({ minLength: 1, maxLength: MAX_USERNAME }),
    password: Type.String({ minLength: 1, maxLength: MAX_PASSWORD }),
  },
  { additionalProperties: false },
);

/** One node of GET /console/status: every figure a string, as the seed has it. */
export const ConsoleNodeSchema = Type.Object({
  nodename: Type.String({ description: 'the node id box-slot-cpu' }),
  memory_used: Type.String({ description: 'memory used, bytes, decimal; "" before the first resource report' }),
  memory_max: Type.String({ description: 'memory total, bytes, decimal; "" before the first resource report' }),
  cpu: Type.String({ description: 'cpu usage, %, decimal; "" when not reported' }),
});
/** Answer of GET /console/status. */
export const ConsoleStatusSchema = Type.Object({ nodes: Type.Array(ConsoleNodeSchema) });
/** Answer of GET /console/status. */
export type ConsoleStatus = Static<typeof ConsoleStatusSchema>;

/** `YYYY/MM/DD` in UTC. */
export const CONSOLE_DATE_PATTERN = '^[0-9]{4}/[0-9]{2}/[0-9]{2}$';
/** `HH:MM:SS:mmm` in UTC. */
export const CONSOLE_TIME_PATTERN = '^[0-9]{2}:[0-9]{2}:[0-9]{2}:[0-9]{3}$';

/** One record of GET /console/node_history. */
export const ConsoleNodeRecordSchema = Type.Object({
  node: Type.String({ description: 'the node id, "" for what concerns no single node' }),
  date: Type.String({ pattern: CONSOLE_DATE_PATTERN, description: 'YYYY/MM/DD, UTC' }),
  timestamp: Type.String({ pattern: CONSOLE_TIME_PATTERN, description: 'HH:MM:SS:mmm, UTC' }),
  operation: Type.String(),
  arguments: Type.String({ description: 'the arguments joined with commas (key=value for named ones)' }),
  result: ConsoleAnswerSchema,
});
/** One record of GET /console/node_history. */
export type ConsoleNodeRecord = Static<typeof ConsoleNodeRecordSchema>;

/** One record of GET /console/alert_history. */
export const ConsoleAlertRecordSchema = Type.Object({
  node: Type.String({ description: 'the node id, "" for what concerns no single node' }),
  date: Type.String({ pattern: CONSOLE_DATE_PATTERN, description: 'YYYY/MM/DD, UTC' }),
  timestamp: Type.String({ pattern: CONSOLE_TIME_PATTERN, description: 'HH:MM:SS:mmm, UTC (raised)' }),
  alert: Type.String({ description: 'disconnection for an offline node, else the rule or kind' }),
  content: Type.String({ description: 'the alert message' }),
});
/** One record of GET /console/alert_history. */
export type ConsoleAlertRecord = Static<typeof ConsoleAlertRecordSchema>;

/** Query string of the console's history lists. */
export const ConsoleHistoryQuerySchema = Type.Object(
  {
    node: Type.Optional(NodeIdSchema),
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$', description: '1..1000, default 50' })),
    before: Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$', description: 'only records older than this id' })),
  },
  { additionalProperties: false },
);
/** Query string of the console's history lists. */
export type ConsoleHistoryQuery = Static<typeof ConsoleHistoryQuerySchema>;

const Word = (description: string) => Type.String({ minLength: 1, maxLength: 256, description });

/** Most arguments of one exec. */
export const CONSOLE_MAX_ARGS = 64;

/** Body of POST /console/exec: a command of the command set with its arguments. */
export const ConsoleExecBodySchema = Type.Object(
  {
    exec: Word('the command (a command-set name)'),
    args: Type.Array(Type.String({ maxLength: 4096 }), { maxItems: CONSOLE_MAX_ARGS }),
    kwargs: Type.Record(Type.String({ maxLength: 256 }), Type.String({ maxLength: 4096 }), {
      maxProperties: CONSOLE_MAX_ARGS,
    }),
    target: Type.Optional(
      Type.String({ minLength: 1, maxLength: 1024, description: 'muster extension: target, default all' }),
    ),
  },
  { additionalProperties: false },
);

/** Body of POST /console/screen: which node (muster's choice: the seed names none). */
export const ConsoleScreenBodySchema = Type.Object({ node: NodeIdSchema }, { additionalProperties: false });

/** Body of POST /console/command_set (the seed leaves the path empty; muster names it command_set). */
export const ConsoleCommandSetBodySchema = Type.Object(
  {
    operation: Type.Union([Type.Literal('add'), Type.Literal('delete')]),
    exec: Word('the command name'),
    argument_count: Type.Optional(
      Type.Integer({ minimum: -1, maximum: 256, description: 'positional arguments it takes; -1 or absent = any' }),
    ),
    generate_file: Type.Optional(Type.String({ maxLength: 4096, description: 'the file the command writes' })),
    content_b64: Type.Optional(
      Type.String({
        maxLength: 1_400_000,
        description: 'muster extension, needed by add: the script (an executable with its #! line), base64',
      }),
    ),
  },
  { additionalProperties: false },
);

/** Body of POST /console/file. */
export const ConsoleFileBodySchema = Type.Object(
  {
    operation: Type.Union([Type.Literal('add'), Type.Literal('delete')]),
    node: Type.Array(NodeIdSchema, { minItems: 1, maxItems: 10_000 }),
    file_num: Type.Integer({ minimum: 0, maximum: 10_000 }),
    target_dir: Type.String({ minLength: 1, maxLength: 4096 }),
    uploads: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 64 }), {
        maxItems: 1000,
        description: 'muster extension, needed by add: the files (ids of POST /api/v1/files/uploads), file_num of them',
      }),
    ),
    names: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 255, pattern: '^[^/\\x00]+$' }), {
        maxItems: 1000,
        description:
          'muster extension for delete: the file names in target_dir, file_num of them; absent = target_dir itself',
      }),
    ),
  },
  { additionalProperties: false },
);
