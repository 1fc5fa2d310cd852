/**
 * Business instances over REST (docs/scheduling.md "Instances", docs/operations.md "REST API"):
 * an instance (`instance_id`) is named groups of components the manager places and keeps running.
 *
 *   PUT    /api/v1/instances/:id         `InstanceSpec` → 200 `{ instance, plan }` (apply; operator)
 *   POST   /api/v1/instances/:id/plan    `InstanceSpec` → 200 `{ plan }` (what apply would do; operator)
 *   GET    /api/v1/instances             → `{ instances }` (viewer)
 *   GET    /api/v1/instances/:id         → `{ instance }` with its components (viewer)
 *   GET    /api/v1/instances/:id/history?limit=&before= → `{ events, next }`, newest first (viewer)
 *   POST   /api/v1/instances/:id/stop    → 200 `{ instance }`: every component is stopped (operator)
 *   DELETE /api/v1/instances/:id         → 202 `{ instance }`: stopped, then forgotten (operator)
 *
 * The spec keeps the protocol's spelling (type, url, file, require: cpu, memory in bytes, gpu);
 * times are ms. The CLI reads the same spec from YAML, where sizes (`64M`) and durations (`30s`)
 * may be written as text (cli/commands/instances.ts turns them into numbers).
 */
import { type Static, Type } from 'typebox';
import { MAX_CONSTRAINT_LENGTH, MAX_CONSTRAINTS } from '../constraints.js';
import { Require } from '../protocol.js';
import { NextSchema } from './paging.js';
import { literalUnion, WorkloadTypeSchema } from './primitives.js';

/** An instance id: letters, digits, `_`, `-`; it is part of every component uuid. */
export const INSTANCE_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$';
/** A group name. */
export const GROUP_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$';
/** Most groups of one instance. */
export const MAX_GROUPS = 16;
/** Most components of one group. */
export const MAX_GROUP_COUNT = 256;

/** Restart policy of a group's components (docs/scheduling.md "Restart policy"). */
export const RestartPolicySchema = Type.Object(
  {
    attempts: Type.Integer({
      minimum: 0,
      maximum: 1000,
      description: 'restarts allowed within interval_ms; default 3',
    }),
    interval_ms: Type.Integer({ minimum: 1000, description: 'window the attempts are counted in; default 300000' }),
    delay_ms: Type.Integer({ minimum: 0, description: 'wait after a failure before the first restart; default 5000' }),
    backoff: Type.Number({
      minimum: 1,
      maximum: 10,
      description: 'each further restart waits this many times longer; default 2',
    }),
    max_delay_ms: Type.Integer({ minimum: 0, description: 'longest wait between restarts; default 60000' }),
  },
  { additionalProperties: false },
);
/** Restart policy of a group. */
export type RestartPolicy = Static<typeof RestartPolicySchema>;

/** Update policy of a group (docs/scheduling.md "Rolling updates"). */
export const UpdatePolicySchema = Type.Object(
  {
    max_parallel: Type.Integer({ minimum: 1, maximum: 256, description: 'components replaced at a time; default 1' }),
    min_healthy_ms: Type.Integer({
      minimum: 0,
      description: 'a new component must be RUNNING this long before the one it replaces is stopped; default 5000',
    }),
  },
  { additionalProperties: false },
);
/** Update policy of a group. */
export type UpdatePolicy = Static<typeof UpdatePolicySchema>;

/** One group: `count` components alike. */
export const GroupSpecSchema = Type.Object(
  {
    count: Type.Integer({ minimum: 0, maximum: MAX_GROUP_COUNT }),
    type: WorkloadTypeSchema,
    url: Type.String({ minLength: 1, maxLength: 2048 }),
    file: Type.String({ minLength: 1, maxLength: 1024 }),
    require: Require,
    constraints: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: MAX_CONSTRAINT_LENGTH }), { maxItems: MAX_CONSTRAINTS }),
    ),
    distinct: Type.Optional(
      Type.Union([Type.Literal('node'), Type.Literal('box')], {
        description: 'no two components of the instance on one node (node) or in one box (box)',
      }),
    ),
    scoring: Type.Optional(Type.Union([Type.Literal('binpack'), Type.Literal('spread')])),
    restart: Type.Optional(Type.Partial(RestartPolicySchema, { additionalProperties: false })),
    update: Type.Optional(Type.Partial(UpdatePolicySchema, { additionalProperties: false })),
    reschedule_after_ms: Type.Optional(
      Type.Integer({
        minimum: 0,
        description:
          'a component on a node offline this long is started elsewhere; default instances.reschedule_after_ms',
      }),
    ),
  },
  { additionalProperties: false },
);
/** One group of an instance spec. */
export type GroupSpec = Static<typeof GroupSpecSchema>;

/** An instance spec: what `muster instance apply app.yaml` sends. */
export const InstanceSpecSchema = Type.Object(
  {
    instance_id: Type.String({ pattern: INSTANCE_ID_PATTERN }),
    groups: Type.Record(Type.String({ pattern: GROUP_NAME_PATTERN }), GroupSpecSchema, {
      minProperties: 1,
      maxProperties: MAX_GROUPS,
      additionalProperties: false,
    }),
  },
  { additionalProperties: false },
);
/** An instance spec. */
export type InstanceSpec = Static<typeof InstanceSpecSchema>;

/** Phases of a component the instance manages (docs/scheduling.md "Reconcile"). */
export const ALLOC_PHASES = ['starting', 'running', 'failed', 'lost', 'stopping'] as const;
/** Phase of a managed component. */
export type AllocPhase = (typeof ALLOC_PHASES)[number];

/** A component of an instance, as the manager tracks it. Times in ms since the epoch. */
export const AllocViewSchema = Type.Object({
  uuid: Type.String(),
  group: Type.String(),
  index: Type.Integer(),
  node: Type.String(),
  version: Type.Integer({ description: 'spec version of its group when it was started' }),
  phase: literalUnion(ALLOC_PHASES),
  reported: Type.Union([Type.String(), Type.Null()], {
    description: "state in its node's latest report, null when absent",
  }),
  created_at: Type.Integer(),
  running_since: Type.Union([Type.Integer(), Type.Null()]),
  reason: Type.Union([Type.String(), Type.Null()], { description: 'why it is in this phase' }),
});
/** A component of an instance. */
export type AllocView = Static<typeof AllocViewSchema>;

/** Counts of one group. */
export const GroupStatusSchema = Type.Object({
  count: Type.Integer({ description: 'wanted' }),
  running: Type.Integer(),
  starting: Type.Integer(),
  failed: Type.Integer(),
  lost: Type.Integer(),
  stopping: Type.Integer(),
  outdated: Type.Integer({ description: 'running an older version of the spec' }),
});

/** An instance: its spec, desired state and components. */
export const InstanceViewSchema = Type.Object({
  instance_id: Type.String(),
  status: Type.Union([Type.Literal('running'), Type.Literal('stopped'), Type.Literal('removing')], {
    description: 'desired state: running (kept at count), stopped, removing (stopped then forgotten)',
  }),
  version: Type.Integer({ description: 'bumped by each apply that changes the spec' }),
  spec: InstanceSpecSchema,
  created_at: Type.Integer(),
  updated_at: Type.Integer(),
  who: Type.String({ description: 'who applied the current version' }),
  groups: Type.Record(Type.String(), GroupStatusSchema),
  components: Type.Array(AllocViewSchema),
});
/** An instance. */
export type InstanceView = Static<typeof InstanceViewSchema>;

/** One step of a plan: what apply would do. */
export const PlanStepSchema = Type.Object({
  action: Type.Union([
    Type.Literal('create'),
    Type.Literal('start'),
    Type.Literal('stop'),
    Type.Literal('update'),
    Type.Literal('unchanged'),
  ]),
  group: Type.String(),
  index: Type.Union([Type.Integer(), Type.Null()]),
  node: Type.Union([Type.String(), Type.Null()], {
    description: 'node it would start on / is on, null when none fits',
  }),
  message: Type.String(),
});
/** One step of a plan. */
export type PlanStep = Static<typeof PlanStepSchema>;

/** A plan. */
export const PlanSchema = Type.Object({
  instance_id: Type.String(),
  version: Type.Integer({ description: 'the version apply would make (same as now when unchanged)' }),
  changed: Type.Boolean(),
  steps: Type.Array(PlanStepSchema),
});
/** A plan. */
export type Plan = Static<typeof PlanSchema>;

/** `:id` of the instance routes. */
export const InstanceParamsSchema = Type.Object({ id: Type.String({ pattern: INSTANCE_ID_PATTERN }) });

/** Answer of PUT /api/v1/instances/:id. */
export const InstanceApplyReplySchema = Type.Object({ instance: InstanceViewSchema, plan: PlanSchema });
/** Answer of POST /api/v1/instances/:id/plan. */
export const InstancePlanReplySchema = Type.Object({ plan: PlanSchema });
/** Answer of GET /api/v1/instances/:id, POST .../stop, DELETE. */
export const InstanceReplySchema = Type.Object({ instance: InstanceViewSchema });
/** Answer of GET /api/v1/instances. */
export const InstanceListReplySchema = Type.Object({ instances: Type.Array(InstanceViewSchema) });

/** One entry of an instance's history. */
export const InstanceEventSchema = Type.Object({
  id: Type.Integer(),
  at: Type.String({ description: 'ISO time' }),
  instance_id: Type.String(),
  action: Type.String({
    description:
      'apply, stop, rm, start, stop-component, running, failed, lost, restart, reschedule, stale, update, replaced, refused, placement-failed, removed',
  }),
  group: Type.Union([Type.String(), Type.Null()]),
  index: Type.Union([Type.Integer(), Type.Null()]),
  node: Type.Union([Type.String(), Type.Null()]),
  uuid: Type.Union([Type.String(), Type.Null()]),
  message: Type.String(),
  who: Type.String(),
});
/** One entry of an instance's history. */
export type InstanceEvent = Static<typeof InstanceEventSchema>;

/** Query of GET /api/v1/instances/:id/history. */
export const InstanceHistoryQuerySchema = Type.Object({
  limit: Type.Optional(Type.String({ pattern: '^[0-9]+$', description: 'page size 1..1000, default 50' })),
  before: Type.Optional(Type.String({ pattern: '^[0-9]+$', description: 'id: only older entries' })),
});
/** Answer of GET /api/v1/instances/:id/history. */
export const InstanceHistoryReplySchema = Type.Object({ events: Type.Array(InstanceEventSchema), next: NextSchema });
/** Answer of GET /api/v1/instances/:id/history. */
export type InstanceHistoryReply = Static<typeof InstanceHistoryReplySchema>;
