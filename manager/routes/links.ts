/**
 * Link tokens (docs/links.md "Link tokens"), under the API prefix; admin only:
 *
 *   GET    /links/tokens → `{ tokens }` (ids, bound nodes, times; never the secrets)
 *   POST   /links/tokens `{ node?, value? }` → 201 `{ id, token, node }`: the token is shown this
 *          once and stored as its sha256; 409 when a token of that value exists
 *   DELETE /links/tokens/:id → 204: revoked for new connections (open ones stay until they close)
 */
import { randomBytes } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import {
  LinkTokenCreateBodySchema,
  LinkTokenCreateReplySchema,
  LinkTokenListReplySchema,
  LinkTokenParamsSchema,
} from '../../common/api/links.js';
import { hashLinkToken } from '../link/hub.js';
import type { Store } from '../store/store.js';
import { ERROR_RESPONSES, notFound, whoOf } from './shared.js';

/** What the link routes use. */
export interface LinkRoutesOptions {
  store: Pick<Store, 'linkTokens' | 'addHistory'>;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** Registers the link token routes. */
export const linkRoutes: FastifyPluginAsyncTypebox<LinkRoutesOptions> = async (app, { store }) => {
  const record = (who: string, operation: string, args: Record<string, unknown>, message: string) =>
    store.addHistory({ at: Date.now(), node: null, kind: 'operation', operation, args, result: 0, message, who });

  app.get(
    '/links/tokens',
    { config: { role: 'admin' }, schema: { response: { 200: LinkTokenListReplySchema, ...ERROR_RESPONSES } } },
    async () => ({
      tokens: store.linkTokens.list().map((r) => ({
        id: r.id,
        node: r.node,
        created_by: r.created_by,
        created_at: new Date(r.created_at).toISOString(),
        last_used_at: iso(r.last_used_at),
      })),
    }),
  );

  app.post(
    '/links/tokens',
    {
      config: { role: 'admin' },
      schema: { body: LinkTokenCreateBodySchema, response: { 201: LinkTokenCreateReplySchema, ...ERROR_RESPONSES } },
    },
    async (req, reply) => {
      const token = req.body.value ?? `mlk_${randomBytes(32).toString('base64url')}`;
      const id = `lt_${randomBytes(4).toString('hex')}`;
      const node = req.body.node ?? null;
      const who = whoOf(req);
      const ok = store.linkTokens.add({
        id,
        hash: hashLinkToken(token),
        node,
        created_by: who,
        created_at: Date.now(),
        last_used_at: null,
      });
      if (!ok) return reply.code(409).send({ error: 'conflict', message: 'a link token of that value exists already' });
      record(
        who,
        'link_token_create',
        { id, node, chosen_value: req.body.value !== undefined },
        `link token ${id} created`,
      );
      return reply.code(201).send({ id, token, node });
    },
  );

  app.delete(
    '/links/tokens/:id',
    {
      config: { role: 'admin' },
      schema: { params: LinkTokenParamsSchema, response: { 204: Type.Null(), ...ERROR_RESPONSES } },
    },
    async (req, reply) => {
      if (!store.linkTokens.remove(req.params.id))
        return reply.code(404).send(notFound(`no link token ${req.params.id}`));
      record(whoOf(req), 'link_token_revoke', { id: req.params.id }, `link token ${req.params.id} revoked`);
      return reply.code(204).send(null);
    },
  );
};
