/**
 * An immediate query (docs/operations.md "REST API", `muster query`), under the API prefix:
 *
 *   POST /query `{ url, wait_ms? }` → `{ url, sent_at, wait_ms, answers }`
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { QueryReplySchema, QueryRequestSchema } from '../../common/api/query.js';
import type { QueryRounds } from '../rounds.js';
import { ERROR_RESPONSES, whoOf } from './shared.js';

/** What the query route uses. */
export interface QueryRoutesOptions {
  rounds: Pick<QueryRounds, 'queryNow'>;
}

/** Registers POST /query. */
export const queryRoutes: FastifyPluginAsyncTypebox<QueryRoutesOptions> = async (app, { rounds }) => {
  app.post(
    '/query',
    {
      config: { role: 'operator' },
      schema: { body: QueryRequestSchema, response: { 200: QueryReplySchema, ...ERROR_RESPONSES } },
    },
    async (req) => rounds.queryNow(req.body.url, req.body.wait_ms, whoOf(req)),
  );
};
