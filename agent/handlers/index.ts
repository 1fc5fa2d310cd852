/**
 * Registration of the agent's command handlers. Adding a command: one file
 * `agent/handlers/<name>.ts` exporting a CommandHandler factory, and one line below; every
 * transport (the HTTP command port, the node link) then serves it.
 */
import type { Logger } from '../../common/log.js';
import type { Supervisor } from '../deploy/supervisor.js';
import type { CommandSet } from '../exec/commands.js';
import type { ExecRunner } from '../exec/runner.js';
import { commandSetHandler } from './command-set.js';
import { deployHandler } from './deploy.js';
import { execHandler } from './exec.js';
import { execFileHandler } from './exec-file.js';
import { execKillHandler } from './exec-kill.js';
import { execStatusHandler } from './exec-status.js';
import { CommandRegistry } from './registry.js';

/** What the handlers are built from. */
export interface HandlerDeps {
  supervisor: Supervisor;
  /** The task runner of remote execution (docs/exec.md). */
  exec: ExecRunner;
  /** The board's command set (exec.commands_dir). */
  commands: CommandSet;
  log: Logger;
}

/** The registry with every command of this agent. */
export function createCommandRegistry(deps: HandlerDeps): CommandRegistry {
  const registry = new CommandRegistry(deps.log);
  registry.register(deployHandler(deps.supervisor, deps.log));
  registry.register(execHandler(deps.exec));
  registry.register(execStatusHandler(deps.exec));
  registry.register(execKillHandler(deps.exec));
  registry.register(execFileHandler(deps.exec));
  registry.register(commandSetHandler(deps.commands, deps.log));
  return registry;
}
