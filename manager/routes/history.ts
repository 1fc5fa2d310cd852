/**
 * The history (docs/operations.md "`muster history`"), under the API prefix: state transitions,
 * operations (deploys, queries, rule changes), component state changes, manager starts and stops.
 *
 *   GET /history?node=&since=&kind=&limit=&before= → `{ history, next }`, newest first
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { HistoryQuerySchema, HistoryReplySchema } from '../../common/api/history.js';
import type { Store } from '../store/store.js';
import { ERROR_RESPONSES, readPage } from './shared.js';

/** What the history route uses. */
export interface HistoryRoutesOptions {
  store: Pick<Store, 'listHistory'>;
}

/** Registers GET /history. */
export const historyRoutes: FastifyPluginAsyncTypebox<HistoryRoutesOptions> = async (app, { store }) => {
  app.get(
    '/history',
    {
      config: { role: 'viewer' },
      schema: { querystring: HistoryQuerySchema, response: { 200: HistoryReplySchema, ...ERROR_RESPONSES } },
    },
    async (req, reply) => {
      const q = req.query;
      const p = readPage(q, reply);
      if (!p) return reply;
      const page = store.listHistory({ ...p, node: q.node, kind: q.kind });
      return { history: page.items, next: page.next };
    },
  );
};
