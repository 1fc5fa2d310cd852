/**
 * Alerts and alert rules over REST (docs/operations.md "Alerts and history", its "REST API"):
 *
 *   GET    /api/v1/alerts?open=&node=&since=&kind=&severity=&limit=&before= → `{ alerts, next }`, newest first
 *   GET    /api/v1/alerts/:id → `{ alert }`
 *   GET    /api/v1/alert-rules → `{ rules }`
 *   PUT    /api/v1/alert-rules/:name `{ metric, op, threshold, for_ms?, severity?, enabled? }` → `{ rule }`
 *   DELETE /api/v1/alert-rules/:name → 204
 *   GET    /api/v1/metrics-catalog → `{ metrics }`: what a rule may name
 *
 * Times are ISO-8601 strings; values keep the metric's unit (%, °C, V, A, W, bytes).
 */
import { type Static, Type } from 'typebox';
import { NextSchema, PageQueryFields } from './paging.js';
import { literalUnion, SeveritySchema } from './primitives.js';

/** What raises an alert. */
export const ALERT_KINDS = [
  'node_offline',
  'identity_conflict',
  'component_failed',
  'threshold',
  'agent',
  'host_key_changed',
] as const;
/** What raised an alert. */
export type AlertKind = (typeof ALERT_KINDS)[number];
/** Schema of {@link AlertKind}. */
export const AlertKindSchema = literalUnion(ALERT_KINDS);

/** Comparison operators of a threshold rule. */
export const RULE_OPS = ['>', '>=', '<', '<='] as const;
/** A comparison operator of a threshold rule. */
export type RuleOp = (typeof RULE_OPS)[number];
/** Schema of {@link RuleOp}. */
export const RuleOpSchema = literalUnion(RULE_OPS, { description: 'comparison: > >= < <=' });

/** Name of an alert rule: lower case, digits and _ (used in keys and the REST path). */
export const RULE_NAME_PATTERN = '^[a-z][a-z0-9_]{0,63}$';

/**
 * A threshold rule as written in the config (alerts.rules, docs/configuration.md) and in
 * PUT /api/v1/alert-rules/:name: fires when `metric op threshold` has held for `for_ms` on a
 * board; resolved when it no longer holds. Unknown keys are refused.
 */
export const AlertRuleBodySchema = Type.Object(
  {
    enabled: Type.Optional(Type.Boolean({ description: 'default true' })),
    metric: Type.String({ minLength: 1, description: 'a reported metric, e.g. cpu.temperature, disk.usage_percent' }),
    op: RuleOpSchema,
    threshold: Type.Number({ description: "in the metric's unit (%, °C, V, A, W, bytes)" }),
    for_ms: Type.Optional(
      Type.Integer({
        minimum: 0,
        description: 'hold time: how long the condition must hold before the alert fires (default 0), ms',
      }),
    ),
    severity: Type.Optional(SeveritySchema),
  },
  { additionalProperties: false },
);
/** A threshold rule as written. */
export type AlertRuleBody = Static<typeof AlertRuleBodySchema>;

/** One alert, open or resolved. */
export const AlertViewSchema = Type.Object({
  id: Type.Integer({ description: 'row id; ids grow with time, pages go by id' }),
  kind: AlertKindSchema,
  rule: Type.String({ description: "rule name for threshold, the agent's alert name for agent, else the kind" }),
  severity: SeveritySchema,
  node: Type.Union([Type.String(), Type.Null()], { description: 'node id box-slot-cpu; null when not about one node' }),
  metric: Type.Union([Type.String(), Type.Null()]),
  instance: Type.Union([Type.String(), Type.Null()], {
    description: "which one of several: a disk's mount point, a GPU index, a component uuid, an interface",
  }),
  value: Type.Union([Type.Number(), Type.Null()], {
    description: "the latest value seen while open, the metric's unit",
  }),
  threshold: Type.Union([Type.Number(), Type.Null()]),
  op: Type.Union([RuleOpSchema, Type.Null()]),
  message: Type.String(),
  source: Type.Union([Type.Literal('manager'), Type.Literal('agent')]),
  state: Type.Union([Type.Literal('open'), Type.Literal('resolved')]),
  first_seen: Type.String(),
  last_seen: Type.String(),
  resolved_at: Type.Union([Type.String(), Type.Null()]),
});
/** One alert, open or resolved. */
export type AlertView = Static<typeof AlertViewSchema>;

/** A threshold rule as the API shows it. */
export const RuleViewSchema = Type.Object({
  name: Type.String(),
  metric: Type.String(),
  op: RuleOpSchema,
  threshold: Type.Number(),
  for_ms: Type.Integer({ minimum: 0, description: 'hold time, ms' }),
  severity: SeveritySchema,
  enabled: Type.Boolean(),
  source: Type.Union([Type.Literal('config'), Type.Literal('api')], {
    description: "config rules come from the manager's YAML and change there; api rules were PUT",
  }),
  updated_at: Type.String(),
});
/** A threshold rule as the API shows it. */
export type RuleView = Static<typeof RuleViewSchema>;

/** One metric a rule may name (GET /api/v1/metrics-catalog). */
export const CatalogMetricSchema = Type.Object({
  name: Type.String(),
  description: Type.String({ description: 'what the figure is and its unit' }),
  unit: Type.String({ description: "%, °C, V, A, W, bytes, or '' for a count" }),
  instance: Type.Union([Type.String(), Type.Null()], {
    description: 'the field that tells instances apart (mount_point, index, interface, uuid); null for one per board',
  }),
});
/** One metric a rule may name. */
export type CatalogMetric = Static<typeof CatalogMetricSchema>;

/** Query string of GET /api/v1/alerts. */
export const AlertListQuerySchema = Type.Object(
  {
    ...PageQueryFields,
    open: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')])),
    kind: Type.Optional(AlertKindSchema),
    severity: Type.Optional(SeveritySchema),
  },
  { additionalProperties: false },
);
/** Query string of GET /api/v1/alerts. */
export type AlertListQuery = Static<typeof AlertListQuerySchema>;

/** Answer of GET /api/v1/alerts. */
export const AlertListReplySchema = Type.Object({ alerts: Type.Array(AlertViewSchema), next: NextSchema });
/** Answer of GET /api/v1/alerts. */
export type AlertListReply = Static<typeof AlertListReplySchema>;

/** `:id` of GET /api/v1/alerts/:id. */
export const AlertParamsSchema = Type.Object({ id: Type.String({ pattern: '^[0-9]{1,15}$' }) });
/** Answer of GET /api/v1/alerts/:id. */
export const AlertReplySchema = Type.Object({ alert: AlertViewSchema });

/** `:name` of the alert-rule routes. */
export const RuleParamsSchema = Type.Object({ name: Type.String({ pattern: RULE_NAME_PATTERN }) });
/** Answer of GET /api/v1/alert-rules. */
export const RuleListReplySchema = Type.Object({ rules: Type.Array(RuleViewSchema) });
/** Answer of PUT /api/v1/alert-rules/:name. */
export const RuleReplySchema = Type.Object({ rule: RuleViewSchema });
/** Answer of GET /api/v1/metrics-catalog. */
export const CatalogReplySchema = Type.Object({ metrics: Type.Array(CatalogMetricSchema) });
