/**
 * API tokens (docs/operations.md "Users and access"), under the API prefix; admin only:
 *
 *   GET    /tokens → `{ tokens }` (names, prefixes, roles, never the secrets)
 *   POST   /tokens `{ name, role, expires_in_ms? }` → 201 `{ token, info }`: the token is shown
 *          this once; 403 for a role above the caller's, 409 for a name taken
 *   DELETE /tokens/:name → 204: revoked at once
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import {
  TokenCreateBodySchema,
  TokenCreateReplySchema,
  TokenListReplySchema,
  TokenParamsSchema,
} from '../../common/api/auth.js';
import type { Access } from '../auth/access.js';
import type { Store } from '../store/store.js';
import { ERROR_RESPONSES, whoOf } from './shared.js';
import { sendAccessError } from './users.js';

/** What the token routes use. */
export interface TokenRoutesOptions {
  access: Access;
  store: Pick<Store, 'addHistory'>;
}

/** Registers the token routes. */
export const tokenRoutes: FastifyPluginAsyncTypebox<TokenRoutesOptions> = async (app, { access, store }) => {
  const record = (who: string, operation: string, args: Record<string, unknown>, message: string) =>
    store.addHistory({ at: Date.now(), node: null, kind: 'operation', operation, args, result: 0, message, who });

  app.get(
    '/tokens',
    { config: { role: 'admin' }, schema: { response: { 200: TokenListReplySchema, ...ERROR_RESPONSES } } },
    async () => ({ tokens: access.listTokens() }),
  );

  app.post(
    '/tokens',
    {
      config: { role: 'admin' },
      schema: { body: TokenCreateBodySchema, response: { 201: TokenCreateReplySchema, ...ERROR_RESPONSES } },
    },
    async (req, reply) => {
      const p = req.principal;
      if (!p) throw new Error('no principal past the access check');
      try {
        const r = access.createToken(p, req.body.name, req.body.role, req.body.expires_in_ms);
        record(
          whoOf(req),
          'token_create',
          { token: r.info.name, prefix: r.info.prefix, role: r.info.role, expires_at: r.info.expires_at },
          `API token ${r.info.name} created (${r.info.role})`,
        );
        return reply.code(201).send(r);
      } catch (err) {
        return sendAccessError(reply, err);
      }
    },
  );

  app.delete(
    '/tokens/:name',
    {
      config: { role: 'admin' },
      schema: { params: TokenParamsSchema, response: { 204: Type.Null(), ...ERROR_RESPONSES } },
    },
    async (req, reply) => {
      try {
        access.revokeToken(req.params.name);
        record(whoOf(req), 'token_revoke', { token: req.params.name }, `API token ${req.params.name} revoked`);
        return reply.code(204).send(null);
      } catch (err) {
        return sendAccessError(reply, err);
      }
    },
  );
};
