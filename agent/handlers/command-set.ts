/**
 * The `command_set` command (docs/exec.md "Command sets"): `put` a named command into
 * exec.commands_dir (its content base64, checked against `sha256`), `rm` one, or `list` them.
 * The reply lists the entries after the change. Result 1 for a bad entry (no name, no content,
 * wrong checksum, too large, relative generate_file), 5 for `rm` of an unknown name.
 */
import { Type } from 'typebox';
import { API_VERSION } from '../../common/constants.js';
import { type CommandSetRequestData, CommandSetRequestData as Schema } from '../../common/exec.js';
import type { Logger } from '../../common/log.js';
import { RESULT } from '../deploy/results.js';
import { type CommandSet, CommandSetError } from '../exec/commands.js';
import type { CommandContext, CommandHandler, CommandReply } from './handler.js';

const Body = Type.Object({ api_version: Type.Literal(API_VERSION), data: Schema });
type Body = { api_version: number; data: CommandSetRequestData };

/** The command_set handler over the command set `set`; logs each change at info. */
export function commandSetHandler(set: CommandSet, log: Logger): CommandHandler<Body> {
  return {
    name: 'command_set',
    request: Body,
    async handle(request: Body, ctx: CommandContext): Promise<CommandReply> {
      const d = request.data;
      const reply = (result: (typeof RESULT)[keyof typeof RESULT], message: string): CommandReply => ({
        api_version: API_VERSION,
        data: { result, message, entries: set.list() },
      });
      if (d.action === 'list') return reply(RESULT.OK, '');
      if (d.name === undefined) return reply(RESULT.BAD_REQUEST, `bad request: ${d.action} needs a name`);
      if (d.action === 'rm') {
        const had = await set.rm(d.name);
        log.info({ from: ctx.from, command: d.name, action: 'rm', had }, 'command set');
        return had ? reply(RESULT.OK, `removed ${d.name}`) : reply(RESULT.NOT_FOUND, `no command ${d.name}`);
      }
      if (d.content_b64 === undefined || d.sha256 === undefined)
        return reply(RESULT.BAD_REQUEST, 'bad request: put needs content_b64 and sha256');
      try {
        await set.put(
          d.name,
          Buffer.from(d.content_b64, 'base64'),
          d.sha256,
          d.argument_count ?? -1,
          d.generate_file ?? null,
        );
      } catch (err) {
        if (err instanceof CommandSetError) return reply(RESULT.BAD_REQUEST, `bad request: ${err.message}`);
        return reply(RESULT.RUNTIME_ERROR, `cannot write ${d.name}: ${(err as Error).message}`);
      }
      log.info({ from: ctx.from, command: d.name, action: 'put', sha256: d.sha256 }, 'command set');
      return reply(RESULT.OK, `put ${d.name}`);
    },
  };
}
