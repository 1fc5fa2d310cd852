/**
 * A board's screen (docs/files.md "Screen"), under the API prefix, for `muster screen` and the
 * dashboard; role `viewer` (it only reads).
 *
 *   GET /nodes/:id/screen → 200 image/png (the agent's capture, passed through, at most
 *       files.screen_max_bytes); 503 no_display when the board has no display
 *
 * Every capture is in the history (who, node, method, bytes, sha256, result).
 */
import { createHash } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import { NodeParamsSchema } from '../../common/api/nodes.js';
import type { AgentClient } from '../agents/client.js';
import { agentTargetOf } from '../files/push.js';
import type { NodeRegistry } from '../registry.js';
import type { NewHistory } from '../store/store.js';
import { agentFailure, refusal } from './files.js';
import { ERROR_RESPONSES, whoOf } from './shared.js';

/** What the screen route uses. */
export interface ScreenRoutesOptions {
  registry: NodeRegistry;
  agents: Pick<AgentClient, 'screen'>;
  history: (e: NewHistory) => void;
  metrics: Registry;
}

/** Registers the screen route. */
export const screenRoutes: FastifyPluginAsyncTypebox<ScreenRoutesOptions> = async (app, o) => {
  const name = 'muster_manager_screen_captures_total';
  const captures =
    (o.metrics.getSingleMetric(name) as Counter<'result'> | undefined) ??
    new Counter({
      name,
      help: 'Screen captures asked of boards, by result: ok, no_display, capture_failed, agent_unreachable, other',
      labelNames: ['result'],
      registers: [o.metrics],
    });
  for (const r of ['ok', 'no_display', 'capture_failed', 'agent_unreachable', 'other']) captures.inc({ result: r }, 0);
  app.get(
    '/nodes/:id/screen',
    { config: { role: 'viewer' }, schema: { params: NodeParamsSchema, response: ERROR_RESPONSES } },
    async (req, reply) => {
      const node = req.params.id;
      let r: Awaited<ReturnType<typeof o.agents.screen>>;
      try {
        r = await o.agents.screen(agentTargetOf(o.registry, node));
      } catch (err) {
        return refusal(reply, err);
      }
      const base = { at: Date.now(), node, kind: 'operation' as const, operation: 'screen', who: whoOf(req) };
      if (!r.ok) {
        captures.inc({
          result:
            r.status === 0
              ? 'agent_unreachable'
              : r.error === 'no_display' || r.error === 'capture_failed'
                ? r.error
                : 'other',
        });
        o.history({ ...base, args: { error: r.error }, result: -1, message: r.message });
        return agentFailure(reply, r);
      }
      const { png, method } = r.value;
      captures.inc({ result: 'ok' });
      o.history({
        ...base,
        args: { method, bytes: png.length, sha256: createHash('sha256').update(png).digest('hex') },
        result: 0,
        message: `${png.length} bytes by ${method}`,
      });
      // PNG bytes, not JSON: sent as they are.
      return (reply as FastifyReply)
        .header('content-type', 'image/png')
        .header('cache-control', 'no-store')
        .header('x-muster-screen-method', method)
        .send(png);
    },
  );
};
