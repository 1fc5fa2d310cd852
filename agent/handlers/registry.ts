/**
 * The registry of the agent's command handlers (agent/handlers/handler.ts): validates a request
 * against the handler's schema with the one validation-error mapper of the daemons
 * (common/validate.ts: the first bad field, named) and dispatches it.
 */
import type { Logger } from '../../common/log.js';
import { type Checker, compile } from '../../common/validate.js';
import { RESULT } from '../deploy/results.js';
import { type CommandContext, type CommandHandler, type CommandReply, refusal } from './handler.js';

/** Handlers by name, each with its compiled request checker. */
export class CommandRegistry {
  private readonly handlers = new Map<string, { handler: CommandHandler; check: Checker<unknown> }>();

  constructor(private readonly log: Logger) {}

  /**
   * Adds a handler.
   * @throws Error when a handler of the same name is already registered
   */
  register<Req>(handler: CommandHandler<Req>): void {
    if (this.handlers.has(handler.name)) throw new Error(`command ${handler.name} is registered twice`);
    this.handlers.set(handler.name, {
      handler: handler as CommandHandler,
      check: compile<unknown>(handler.request),
    });
  }

  /** The registered command names, in registration order. */
  names(): string[] {
    return [...this.handlers.keys()];
  }

  /**
   * Validates `body` and runs the command `name`. Never throws.
   * @returns the handler's reply; a refusal with result 1 (BAD_REQUEST) naming the field for a body
   *   that does not match the schema, with result 4 (RUNTIME_ERROR) for an unknown command or a
   *   handler that threw (a bug, logged)
   */
  async dispatch(name: string, body: unknown, ctx: CommandContext): Promise<CommandReply> {
    const entry = this.handlers.get(name);
    if (!entry) return refusal(body, RESULT.RUNTIME_ERROR, `unknown command ${JSON.stringify(name)}`);
    const r = entry.check.check(body);
    if (!r.ok) return refusal(body, RESULT.BAD_REQUEST, `bad request: ${r.error.field} ${r.error.message}`);
    try {
      return await entry.handler.handle(r.value, ctx);
    } catch (err) {
      this.log.error({ command: name, err: (err as Error).stack ?? String(err) }, 'command handler threw');
      return refusal(body, RESULT.RUNTIME_ERROR, `internal error: ${(err as Error).message}`);
    }
  }
}
