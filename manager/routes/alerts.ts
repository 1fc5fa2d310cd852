/**
 * Alerts over HTTP (issue 4, seed 000 查看报警记录 and 向服务端报警):
 *
 *   GET    /api/v1/alerts?open=&node=&since=&kind=&severity=&limit=&before= → `{ alerts, next }`, newest first
 *   GET    /api/v1/alerts/:id → `{ alert }`
 *   GET    /api/v1/alert-rules → `{ rules }`
 *   PUT    /api/v1/alert-rules/:name `{ metric, op, threshold, for_ms?, severity?, enabled? }` → `{ rule }`
 *   DELETE /api/v1/alert-rules/:name → 204
 *   GET    /api/v1/metrics-catalog → `{ metrics }`: what a rule may name
 *   POST   /alert `{ api_version: 1, data: AgentAlertData }` → 200 `{ id, state }`: an agent's own alert
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { Type } from 'typebox';
import { AgentAlertBody } from '../../common/protocol.js';
import { parseSince } from '../../common/time.js';
import { metricCatalog } from '../alerts/catalog.js';
import { alertKey, RuleError } from '../alerts/engine.js';
import type { AlertKind, Severity } from '../alerts/types.js';
import { AlertRuleConfig, RULE_NAME_PATTERN, SEVERITIES } from '../config.js';
import type { Manager } from '../manager.js';
import { type ApiError, whoOf } from '../server.js';

const NodeId = Type.String({ pattern: '^[0-9]+-[0-9]+-[0-9]+$', description: 'node id box-slot-cpu' });
const KINDS: AlertKind[] = ['node_offline', 'identity_conflict', 'component_failed', 'threshold', 'agent'];

/** Query string of the list routes (alerts and history): the common paging fields. */
export const PageQuery = {
  node: Type.Optional(NodeId),
  since: Type.Optional(Type.String({ minLength: 1, description: 'duration back (2h), ISO time, or ms epoch' })),
  limit: Type.Optional(Type.String({ pattern: '^[0-9]+$', description: 'page size 1..1000, default 50' })),
  before: Type.Optional(Type.String({ pattern: '^[0-9]+$', description: 'id: only older entries' })),
};

const bad = (field: string, message: string): ApiError => ({ error: 'bad_request', field, message });

/**
 * Reads the paging fields; answers 400 naming the field when one is wrong.
 * @returns the parsed values, or null when the reply was sent
 */
export function readPage(
  q: { since?: string; limit?: string; before?: string },
  reply: FastifyReply,
): { since?: number; limit: number; before?: number } | null {
  const limit = q.limit === undefined ? 50 : Number(q.limit);
  if (limit < 1 || limit > 1000) {
    void reply.code(400).send(bad('limit', `limit ${q.limit}: must be 1..1000`));
    return null;
  }
  let since: number | undefined;
  if (q.since !== undefined) {
    try {
      since = parseSince(q.since, 'since');
    } catch (err) {
      void reply.code(400).send(bad('since', (err as Error).message));
      return null;
    }
  }
  return {
    limit,
    ...(since !== undefined ? { since } : {}),
    ...(q.before !== undefined ? { before: Number(q.before) } : {}),
  };
}

/** Registers the alert routes. */
export function alertRoutes(app: FastifyInstance, manager: Manager): void {
  app.get(
    '/api/v1/alerts',
    {
      schema: {
        querystring: Type.Object(
          {
            ...PageQuery,
            open: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')])),
            kind: Type.Optional(Type.Union(KINDS.map((k) => Type.Literal(k)))),
            severity: Type.Optional(Type.Union(SEVERITIES.map((s) => Type.Literal(s)))),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (req, reply) => {
      const q = req.query as {
        open?: 'true' | 'false';
        node?: string;
        kind?: AlertKind;
        severity?: Severity;
        since?: string;
        limit?: string;
        before?: string;
      };
      const p = readPage(q, reply);
      if (!p) return reply;
      const page = manager.store.listAlerts({
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
    '/api/v1/alerts/:id',
    { schema: { params: Type.Object({ id: Type.String({ pattern: '^[0-9]{1,15}$' }) }) } },
    async (req, reply) => {
      const { id } = req.params as { id: string };
      const alert = manager.store.getAlert(Number(id));
      if (!alert) return reply.code(404).send({ error: 'not_found', message: `no alert ${id}` } satisfies ApiError);
      return { alert };
    },
  );

  app.get('/api/v1/alert-rules', async () => ({ rules: manager.alerts.listRules() }));

  const RuleParams = Type.Object({ name: Type.String({ pattern: RULE_NAME_PATTERN }) });
  const ruleError = (reply: FastifyReply, err: unknown) => {
    if (!(err instanceof RuleError)) throw err;
    return reply.code(err.status).send({
      error: err.status === 404 ? 'not_found' : err.status === 409 ? 'conflict' : 'bad_request',
      field: err.field,
      message: err.message,
    } satisfies ApiError);
  };

  app.put(
    '/api/v1/alert-rules/:name',
    { schema: { params: RuleParams, body: AlertRuleConfig } },
    async (req, reply) => {
      const { name } = req.params as { name: string };
      const body = req.body as AlertRuleConfig;
      const at = Date.now();
      try {
        const rule = manager.alerts.putRule(name, body, at);
        manager.store.addHistory({
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

  app.delete('/api/v1/alert-rules/:name', { schema: { params: RuleParams } }, async (req, reply) => {
    const { name } = req.params as { name: string };
    const at = Date.now();
    try {
      manager.alerts.deleteRule(name, at);
    } catch (err) {
      return ruleError(reply, err);
    }
    manager.store.addHistory({
      at,
      node: null,
      kind: 'operation',
      operation: 'alert-rule.delete',
      args: { name },
      result: 0,
      message: `alert rule ${name} deleted`,
      who: whoOf(req),
    });
    return reply.code(204).send();
  });

  app.get('/api/v1/metrics-catalog', async () => ({ metrics: metricCatalog() }));

  // An agent's own alert (docs/protocol.md#post-alert). The node is the position the body names;
  // it need not have reported yet.
  app.post('/alert', { schema: { body: AgentAlertBody } }, async (req) => {
    const d = (req.body as AgentAlertBody).data;
    const node = `${d.box_id}-${d.slot_id}-${d.cpu_id}`;
    const at = Date.now();
    const name = d.name;
    const instance = d.instance ?? null;
    if (d.state === 'resolved') {
      const was = manager.alerts.resolve(alertKey('agent', node, name, instance), at, d.message);
      return { state: was ? 'resolved' : 'not_open' };
    }
    const a = manager.alerts.raise(
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
    return { id: a.id, state: 'open' };
  });
}
