/**
 * The `exec` command (docs/exec.md "Agent commands"): submit a task of steps to the task runner
 * (agent/exec/runner.ts). The reply's `data` is common/exec.ts ExecReplyData: result 0 with the
 * step count when accepted (again for a task id already kept: never run twice), 1 naming the bad
 * step (cycle, unknown dependency, duplicate name, command type, raw command refused...), 7 when
 * exec.max_requests tasks are queued or running.
 */
import { API_VERSION } from '../../common/constants.js';
import { ExecRequestBody } from '../../common/exec.js';
import type { ExecRunner } from '../exec/runner.js';
import type { CommandContext, CommandHandler, CommandReply } from './handler.js';

/** The exec handler over `runner`. */
export function execHandler(runner: ExecRunner): CommandHandler<ExecRequestBody> {
  return {
    name: 'exec',
    request: ExecRequestBody,
    async handle(request: ExecRequestBody, _ctx: CommandContext): Promise<CommandReply> {
      const d = request.data;
      const r = runner.submit({
        task_id: d.task_id,
        steps: d.steps,
        ...(d.async !== undefined ? { async: d.async } : {}),
        ...(d.timeout_s !== undefined ? { timeout_s: d.timeout_s } : {}),
        source: 'manager',
      });
      const data = r.ok
        ? { task_id: r.id, count: r.count, result: 0 as const, message: r.existed ? 'already accepted' : 'accepted' }
        : { task_id: d.task_id, count: 0, result: r.result, message: r.message };
      return { api_version: API_VERSION, data };
    },
  };
}
