/**
 * The `exec_status` command (docs/exec.md "Agent commands"): a task's state, its steps and the
 * output lines after `since`; with `wait_ms` (≤ 25 s) a long poll that answers at the first new
 * line or the task's end. Result 5 (state null) for an unknown or expired task.
 */

import { Type } from 'typebox';
import { API_VERSION } from '../../common/constants.js';
import { type ExecStatusRequestData, ExecStatusRequestData as Schema } from '../../common/exec.js';
import type { ExecRunner } from '../exec/runner.js';
import type { CommandHandler, CommandReply } from './handler.js';

const Body = Type.Object({ api_version: Type.Literal(API_VERSION), data: Schema });
type Body = { api_version: number; data: ExecStatusRequestData };

/** The exec_status handler over `runner`. */
export function execStatusHandler(runner: ExecRunner): CommandHandler<Body> {
  return {
    name: 'exec_status',
    request: Body,
    async handle(request: Body): Promise<CommandReply> {
      const d = request.data;
      const data = await runner.status(d.task_id, d.since ?? 0, d.wait_ms ?? 0);
      return { api_version: API_VERSION, data: data as unknown as CommandReply['data'] };
    },
  };
}
