/**
 * The `deploy` command (docs/protocol.md "5. Load command (加载命令): POST /deploy"): start or
 * stop a workload through the supervisor. The reply is the request's `data` plus `id`, `result`
 * and `message` ("Reply", "Result codes").
 */
import { API_VERSION } from '../../common/constants.js';
import type { Logger } from '../../common/log.js';
import { DeployRequestBody, type DeployRequestData } from '../../common/protocol.js';
import type { Supervisor } from '../deploy/supervisor.js';
import type { CommandContext, CommandHandler, CommandReply } from './handler.js';

/** The deploy handler over `sup`; logs each deploy (who, what, result) at info. */
export function deployHandler(sup: Supervisor, log: Logger): CommandHandler<DeployRequestBody> {
  return {
    name: 'deploy',
    request: DeployRequestBody,
    async handle(request: DeployRequestBody, ctx: CommandContext): Promise<CommandReply> {
      const data = request.data as DeployRequestData;
      const out = await sup.handle(data);
      log.info(
        {
          from: ctx.from,
          transport: ctx.transport,
          mode: data.mode,
          type: data.type,
          uuid: data.uuid,
          result: out.reply.result,
          message: out.reply.message,
        },
        'deploy',
      );
      return { api_version: API_VERSION, data: out.reply as CommandReply['data'] };
    },
  };
}
