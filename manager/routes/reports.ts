/**
 * The wire-protocol routes the agents call (docs/protocol.md "2. Heartbeat", "3. Resource report",
 * "4. The manager's answers to reports", "4a. Agent alert"), unprefixed and outside the REST API
 * scope (no API hook covers them):
 *
 *   POST /heartbeat, POST /resource → 200 with an empty body; bodies validated against common/protocol.ts;
 *     400 `{ error, field: '/data/host_ip', message }` when host_ip is not the sender (Ingest.checkSource)
 *   POST /alert `{ api_version: 1, data: AgentAlertData }` → `{ id, state }`: an agent's own alert
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { AgentAlertReplySchema } from '../../common/api/reports.js';
import type { ReportUrl } from '../../common/constants.js';
import { AgentAlertBody, HeartbeatBody, ResourceBody } from '../../common/protocol.js';
import { type AlertEngine, alertKey } from '../alerts/engine.js';
import type { Ingest } from '../ingest.js';
import { type ApiError, badRequest, ERROR_RESPONSES } from './shared.js';

/** What the report routes use. */
export interface ReportRoutesOptions {
  /** `checkSource` absent = no report source check. */
  ingest: Pick<Ingest, 'heartbeat' | 'resource'> & Partial<Pick<Ingest, 'checkSource'>>;
  alerts: Pick<AlertEngine, 'raise' | 'resolve'>;
}

/** What a report route answers: the status and, unless 200, the error body. */
export interface ReportAnswer {
  status: 200 | 400 | 503;
  body?: ApiError;
}

/**
 * The answer to a validated report (docs/protocol.md "4. The manager's answers to reports"): the
 * source check, then the ingest; shared by the fastify routes below and the lean report path
 * (manager/routes/reports-lean.ts), so both answer alike.
 * @param peer the TCP peer address (`socket.remoteAddress`)
 * @param text the body's JSON text that parsed to `body` (the lean path), kept by the registry
 *   in place of a resource report's parsed tree
 */
export function answerReport(
  ingest: ReportRoutesOptions['ingest'],
  url: ReportUrl,
  body: HeartbeatBody | ResourceBody,
  peer: string | undefined,
  text?: string,
): ReportAnswer {
  const bad = ingest.checkSource?.(url, body.data.host_ip, peer);
  if (bad) return { status: 400, body: badRequest(bad.field, bad.message) };
  if (url === '/heartbeat') {
    const full = ingest.heartbeat((body as HeartbeatBody).data);
    if (full) return { status: 503, body: { error: 'registry_full', field: full.field, message: full.message } };
  } else ingest.resource((body as ResourceBody).data, text);
  return { status: 200 };
}

/** Registers POST /heartbeat, POST /resource and POST /alert. */
export const reportRoutes: FastifyPluginAsyncTypebox<ReportRoutesOptions> = async (app, { ingest, alerts }) => {
  app.post('/heartbeat', { schema: { body: HeartbeatBody } }, async (req, reply) => {
    const a = answerReport(ingest, '/heartbeat', req.body, req.socket.remoteAddress);
    return a.body ? reply.code(a.status).send(a.body) : reply.code(200).send();
  });

  app.post('/resource', { schema: { body: ResourceBody } }, async (req, reply) => {
    const a = answerReport(ingest, '/resource', req.body, req.socket.remoteAddress);
    return a.body ? reply.code(a.status).send(a.body) : reply.code(200).send();
  });

  // The node is the position the body names; it need not have reported yet.
  app.post(
    '/alert',
    { schema: { body: AgentAlertBody, response: { 200: AgentAlertReplySchema, ...ERROR_RESPONSES } } },
    async (req, reply) => {
      const d = req.body.data;
      const node = `${d.box_id}-${d.slot_id}-${d.cpu_id}`;
      const at = Date.now();
      const name = d.name;
      const instance = d.instance ?? null;
      if (d.state === 'resolved') {
        const was = alerts.resolve(alertKey('agent', node, name, instance), at, d.message);
        return { state: was ? ('resolved' as const) : ('not_open' as const) };
      }
      const a = alerts.raise(
        {
          kind: 'agent',
          rule: name,
          severity: d.severity ?? 'warning',
          node,
          metric: d.metric ?? null,
          instance,
          value: d.value ?? null,
          threshold: d.threshold ?? null,
          message: d.message,
          source: 'agent',
        },
        at,
      );
      // Not opened: the agent kind already has alerts.max_open_per_kind open (counted by the engine).
      if (!a)
        return reply
          .code(503)
          .send({ error: 'alerts_full', message: 'too many agent alerts are open (alerts.max_open_per_kind)' });
      return { id: a.id, state: 'open' as const };
    },
  );
};
