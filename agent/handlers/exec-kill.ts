/**
 * The `exec_kill` command (docs/exec.md "Kill"): kill a task's running steps with their process
 * groups (SIGTERM, SIGKILL after exec.kill_grace; steps not started are skipped), or one step by
 * name. Result 0 (killing, or already ended), 5 (unknown task or step).
 */
import { Type } from 'typebox';
import { API_VERSION } from '../../common/constants.js';
import { type ExecKillRequestData, ExecKillRequestData as Schema } from '../../common/exec.js';
import type { ExecRunner } from '../exec/runner.js';
import type { CommandHandler, CommandReply } from './handler.js';

const Body = Type.Object({ api_version: Type.Literal(API_VERSION), data: Schema });
type Body = { api_version: number; data: ExecKillRequestData };

/** The exec_kill handler over `runner`. */
export function execKillHandler(runner: ExecRunner): CommandHandler<Body> {
  return {
    name: 'exec_kill',
    request: Body,
    async handle(request: Body): Promise<CommandReply> {
      const d = request.data;
      const r = runner.kill(d.task_id, d.step);
      return {
        api_version: API_VERSION,
        data: { task_id: d.task_id, ...(d.step !== undefined ? { step: d.step } : {}), ...r },
      };
    },
  };
}
