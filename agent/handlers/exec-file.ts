/**
 * The `exec_file` command (docs/exec.md "Command sets"): the `generate_file` a command-set step
 * produced, base64-encoded with its sha256, bounded by exec.max_generate_file_bytes. Result 5 when
 * the task, step or file does not exist, 7 while the step runs, 1 when the file is too large.
 */
import { Type } from 'typebox';
import { API_VERSION } from '../../common/constants.js';
import { type ExecFileRequestData, ExecFileRequestData as Schema } from '../../common/exec.js';
import type { ExecRunner } from '../exec/runner.js';
import type { CommandHandler, CommandReply } from './handler.js';

const Body = Type.Object({ api_version: Type.Literal(API_VERSION), data: Schema });
type Body = { api_version: number; data: ExecFileRequestData };

/** The exec_file handler over `runner`. */
export function execFileHandler(runner: ExecRunner): CommandHandler<Body> {
  return {
    name: 'exec_file',
    request: Body,
    async handle(request: Body): Promise<CommandReply> {
      const data = await runner.file(request.data.task_id, request.data.step);
      return { api_version: API_VERSION, data: data as unknown as CommandReply['data'] };
    },
  };
}
