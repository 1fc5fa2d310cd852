/**
 * Registration of the agent's command handlers. Adding a command: one file
 * `agent/handlers/<name>.ts` exporting a CommandHandler factory, and one line below; every
 * transport (the HTTP command port, the node link) then serves it.
 */
import type { Logger } from '../../common/log.js';
import type { Supervisor } from '../deploy/supervisor.js';
import { deployHandler } from './deploy.js';
import { CommandRegistry } from './registry.js';

/** What the handlers are built from. */
export interface HandlerDeps {
  supervisor: Supervisor;
  log: Logger;
}

/** The registry with every command of this agent. */
export function createCommandRegistry(deps: HandlerDeps): CommandRegistry {
  const registry = new CommandRegistry(deps.log);
  registry.register(deployHandler(deps.supervisor, deps.log));
  return registry;
}
