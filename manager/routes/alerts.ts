/**
 * Alerts and alert rules (docs/operations.md "Alerts and history"), under the API prefix:
 *
 *   GET    /alerts?open=&node=&since=&kind=&severity=&limit=&before= → `{ alerts, next }`, newest first
 *   GET    /alerts/:id → `{ alert }`
 *   GET    /alert-rules → `{ rules }`
 *   PUT    /alert-rules/:name `{ metric, op, threshold, for_ms?, severity?, enabled? }` → `{ rule }`
 *   DELETE /alert-rules/:name → 204
 *   GET    /metrics-catalog → `{ metrics }`: what a rule may name
 *
 * An agent's own alert (POST /alert) is a wire-protocol route: manager/routes/reports.ts.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { Type } from 'typebox';
import {
  AlertListQuerySchema,
  AlertListReplySchema,
  AlertParamsSchema,
  AlertReplySchema,
  AlertRuleBodySchema,
  CatalogReplySchema,
  RuleListReplySchema,
  RuleParamsSchema,
  RuleReplySchema,
} from '../../common/api/alerts.js';
import { metricCatalog } from '../alerts/catalog.js';
import { type AlertEngine, RuleError } from '../alerts/engine.js';
import type { Store } from '../store/store.js';
import { type ApiError, ERROR_RESPONSES, notFound, readPage, whoOf } from './shared.js';

/** What the alert routes use. */
export interface AlertRoutesOptions {
  alerts: Pick<AlertEngine, 'listRules' | 'putRule' | 'deleteRule'>;
  store: Pick<Store, 'listAlerts' | 'getAlert' | 'addHistory'>;
}

/** The answer to a refused rule: 400, 404 or 409 naming the field. @throws err when it is not a RuleError */
function ruleError(reply: FastifyReply, err: unknown) {
  if (!(err instanceof RuleError)) throw err;
  return reply.code(err.status).send({
    error: err.status === 404 ? 'not_found' : err.status === 409 ? 'conflict' : 'bad_request',
    field: err.field,
    message: err.message,
  } satisfies ApiError);
}

/** Registers the alert, alert-rule and metrics-catalog routes. */
export const alertRoutes: FastifyPluginAsyncTypebox<AlertRoutesOptions> = async (app, { alerts, store }) => {
  app.get(
    '/alerts',
    {
      config: { role: 'viewer' },
      schema: { querystring: AlertListQuerySchema, response: { 200: AlertListReplySchema, ...ERROR_RESPONSES } },
    },
    async (req, reply) => {
      const q = req.query;
      const p = readPage(q, reply);
      if (!p) return reply;
      const page = store.listAlerts({
        ...p,
        node: q.node,
        kind: q.kind,
        severity: q.severity,
        open: q.open === undefined ? undefined : q.open === 'true',
      });
      return { alerts: page.items, next: page.next };
    },
  );

  app.get(
    '/alerts/:id',
    {
      config: { role: 'viewer' },
      schema: { params: AlertParamsSchema, response: { 200: AlertReplySchema, ...ERROR_RESPONSES } },
    },
    async (req, reply) => {
      const { id } = req.params;
      const alert = store.getAlert(Number(id));
      if (!alert) return reply.code(404).send(notFound(`no alert ${id}`));
      return { alert };
    },
  );

  app.get(
    '/alert-rules',
    { config: { role: 'viewer' }, schema: { response: { 200: RuleListReplySchema, ...ERROR_RESPONSES } } },
    async () => ({
      rules: alerts.listRules(),
    }),
  );

  app.put(
    '/alert-rules/:name',
    {
      config: { role: 'admin' },
      schema: {
        params: RuleParamsSchema,
        body: AlertRuleBodySchema,
        response: { 200: RuleReplySchema, ...ERROR_RESPONSES },
      },
    },
    async (req, reply) => {
      const { name } = req.params;
      const body = req.body;
      const at = Date.now();
      try {
        const rule = alerts.putRule(name, body, at);
        store.addHistory({
          at,
          node: null,
          kind: 'operation',
          operation: 'alert-rule.put',
          args: { name, ...body },
          result: 0,
          message: `alert rule ${name}: ${rule.metric} ${rule.op} ${rule.threshold} for ${rule.for_ms} ms (${rule.severity}${rule.enabled ? '' : ', disabled'})`,
          who: whoOf(req),
        });
        return { rule };
      } catch (err) {
        return ruleError(reply, err);
      }
    },
  );

  app.delete(
    '/alert-rules/:name',
    {
      config: { role: 'admin' },
      schema: { params: RuleParamsSchema, response: { 204: Type.Null(), ...ERROR_RESPONSES } },
    },
    async (req, reply) => {
      const { name } = req.params;
      const at = Date.now();
      try {
        alerts.deleteRule(name, at);
      } catch (err) {
        return ruleError(reply, err);
      }
      store.addHistory({
        at,
        node: null,
        kind: 'operation',
        operation: 'alert-rule.delete',
        args: { name },
        result: 0,
        message: `alert rule ${name} deleted`,
        who: whoOf(req),
      });
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/metrics-catalog',
    { config: { role: 'viewer' }, schema: { response: { 200: CatalogReplySchema, ...ERROR_RESPONSES } } },
    async () => ({
      metrics: metricCatalog(),
    }),
  );
};
