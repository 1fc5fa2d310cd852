/**
 * The command-set catalog over REST (docs/exec.md "Command-set catalog"): named scripts kept by the
 * manager and pushed to every agent's exec.commands_dir with their sha256; a task step names one
 * with `command`, `args` and `kwargs`.
 *
 *   GET    /api/v1/commands (operator) → `{ commands }` by name, without the content
 *   POST   /api/v1/commands (admin) `{ exec, argument_count, generate_file?, content_b64 }`
 *          (the seed's 添加命令集 fields; `operation: "add"` may be given) → 201 `{ command }`
 *   DELETE /api/v1/commands/:name (admin) → `{ command }` the entry removed
 */
import { type Static, Type } from 'typebox';
import { COMMAND_NAME_PATTERN } from '../exec.js';

/** Largest script of a command-set entry, bytes (decoded). */
export const MAX_COMMAND_BYTES = 1 << 20;

/** Body of POST /api/v1/commands. */
export const CommandBodySchema = Type.Object(
  {
    operation: Type.Optional(Type.Literal('add')),
    exec: Type.String({ pattern: COMMAND_NAME_PATTERN, description: 'the entry name (a file name on the boards)' }),
    argument_count: Type.Integer({ minimum: -1, maximum: 256, description: 'positional args it takes; -1 = any' }),
    generate_file: Type.Optional(
      Type.Union([Type.String({ minLength: 1, maxLength: 4096 }), Type.Null()], {
        description: 'a file the command writes, fetched back after each run',
      }),
    ),
    content_b64: Type.String({ maxLength: 1_400_000, description: 'the script (an executable: #! line), base64' }),
  },
  { additionalProperties: false },
);
/** Body of POST /api/v1/commands. */
export type CommandBody = Static<typeof CommandBodySchema>;

/** A catalog entry as the API shows it. */
export const CommandViewSchema = Type.Object({
  name: Type.String(),
  argument_count: Type.Integer(),
  generate_file: Type.Union([Type.String(), Type.Null()]),
  sha256: Type.String(),
  size: Type.Integer({ minimum: 0 }),
  who: Type.String({ description: 'who added it' }),
  updated_at: Type.String(),
});
/** A catalog entry. */
export type CommandView = Static<typeof CommandViewSchema>;

/** Answer of POST and DELETE. */
export const CommandReplySchema = Type.Object({ command: CommandViewSchema });
/** Answer of GET /api/v1/commands. */
export const CommandListReplySchema = Type.Object({ commands: Type.Array(CommandViewSchema) });
/** Answer of GET /api/v1/commands. */
export type CommandListReply = Static<typeof CommandListReplySchema>;
/** `:name` of DELETE /api/v1/commands/:name. */
export const CommandParamsSchema = Type.Object({ name: Type.String({ pattern: COMMAND_NAME_PATTERN }) });
