/**
 * The command-set catalog over REST (docs/exec.md "Command-set catalog"), under the API prefix;
 * the contract is common/api/commands.ts. Operators list (they run the entries); admins add and
 * remove (an entry runs as root on every board).
 *
 *   GET    /commands (operator) → `{ commands }`
 *   POST   /commands (admin) `{ exec, argument_count, generate_file?, content_b64 }` → 201 `{ command }`
 *   DELETE /commands/:name (admin) → `{ command }`
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import {
  CommandBodySchema,
  CommandListReplySchema,
  CommandParamsSchema,
  CommandReplySchema,
} from '../../common/api/commands.js';
import type { CommandCatalog } from '../tasks/catalog.js';
import { ERROR_RESPONSES, notFound, whoOf } from './shared.js';

/** What the catalog routes use. */
export interface CommandRoutesOptions {
  catalog: Pick<CommandCatalog, 'list' | 'add' | 'remove'>;
}

/** Registers the catalog routes. */
export const commandRoutes: FastifyPluginAsyncTypebox<CommandRoutesOptions> = async (app, { catalog }) => {
  app.get(
    '/commands',
    { config: { role: 'operator' }, schema: { response: { 200: CommandListReplySchema, ...ERROR_RESPONSES } } },
    async () => ({ commands: catalog.list() }),
  );

  app.post(
    '/commands',
    {
      config: { role: 'admin' },
      schema: { body: CommandBodySchema, response: { 201: CommandReplySchema, ...ERROR_RESPONSES } },
    },
    async (req, reply) => {
      // A CatalogRefused is answered by the error handler (manager/refused.ts).
      return reply.code(201).send({ command: catalog.add(req.body, whoOf(req)) });
    },
  );

  app.delete(
    '/commands/:name',
    {
      config: { role: 'admin' },
      schema: { params: CommandParamsSchema, response: { 200: CommandReplySchema, ...ERROR_RESPONSES } },
    },
    async (req, reply) => {
      const command = catalog.remove(req.params.name, whoOf(req));
      if (!command) return reply.code(404).send(notFound(`no command ${req.params.name} in the catalog`));
      return { command };
    },
  );
};
