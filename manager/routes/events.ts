/**
 * The live event stream (docs/dashboard.md "Live updates"), under the API prefix:
 *
 *   GET /events (viewer) → `text/event-stream`: `nodes`, `alerts` and `ping` events
 *       (common/api/events.ts) from the EventHub (manager/events.ts); 503 when
 *       dashboard.events.max_clients streams are open already.
 *
 * The stream outlives the request's usual lifecycle: the reply is hijacked and written raw. A
 * session that ends (logout, expiry, user removed) is not cut here: the page's next API call
 * answers 401 and the page goes to its login form; the stream's events are read-only views.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { EventHub } from '../events.js';
import { ERROR_RESPONSES } from './shared.js';

/** What the events route uses. */
export interface EventRoutesOptions {
  events: EventHub;
}

/** Registers GET /events. */
export const eventRoutes: FastifyPluginAsyncTypebox<EventRoutesOptions> = async (app, { events }) => {
  app.get(
    '/events',
    {
      config: { role: 'viewer' },
      schema: { response: { ...ERROR_RESPONSES } },
    },
    async (req, reply) => {
      if (!events.admit()) {
        return reply.code(503).send({
          error: 'unavailable',
          message: `${events.size} event streams open already (dashboard.events.max_clients): close a page or raise the limit`,
        });
      }
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      // Reconnect after 2 s when the stream drops (the page's own backoff also applies).
      res.write('retry: 2000\n\n');
      if (!events.subscribe(res)) {
        res.end();
        return;
      }
      const done = () => events.unsubscribe(res);
      req.raw.on('close', done);
      res.on('close', done);
      res.on('error', done);
    },
  );
};
