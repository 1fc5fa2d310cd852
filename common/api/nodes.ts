/**
 * The nodes over REST (docs/operations.md "REST API"): `GET /api/v1/nodes`,
 * `GET /api/v1/nodes/:id` and `GET /api/v1/components`; the node views the CLI renders. Times are
 * ISO-8601 strings; figures keep the protocol's units (%, °C, bytes).
 */
import { type Static, Type } from 'typebox';
import { Component, HeartbeatData, ResourceData } from '../protocol.js';
import { NodeIdSchema, openOrNull, openSchema } from './primitives.js';

/** `:id` of the node routes. */
export const NodeParamsSchema = Type.Object({ id: NodeIdSchema });
/** `:id` of the node routes. */
export type NodeParams = Static<typeof NodeParamsSchema>;

/** `?node=` of the lists that can be narrowed to one node. */
export const NodeFilterSchema = Type.Object({ node: Type.Optional(NodeIdSchema) });

/** The liveness states of a node (docs/operations.md "Liveness"), from best to worst. */
export const NODE_STATES = ['online', 'suspect', 'offline'] as const;
/** A node's liveness state. */
export type NodeState = (typeof NODE_STATES)[number];
/**
 * Schema of {@link NodeState}, as a string `enum`: the serializer writes it as it is (the
 * transitions put back from the history after a restart may name a conflict or a move too).
 */
export const NodeStateSchema = Type.Unsafe<NodeState>({
  type: 'string',
  enum: [...NODE_STATES],
  description: 'online, suspect or offline',
});

/** A change of liveness state with its reason. */
export const TransitionSchema = Type.Object({
  node: NodeIdSchema,
  from: Type.Union([NodeStateSchema, Type.Null()], { description: 'null for the first heartbeat' }),
  to: NodeStateSchema,
  at: Type.String({ description: 'ISO time of the change' }),
  reason: Type.String(),
});
/** A change of liveness state with its reason. */
export type Transition = Static<typeof TransitionSchema>;

const isoOrNull = (description: string) => Type.Union([Type.String(), Type.Null()], { description });
const numberOrNull = (description: string) => Type.Union([Type.Number(), Type.Null()], { description });

/** A board claiming a position, as shown in a conflict (docs/operations.md "Identity conflicts"). */
export const ClaimantViewSchema = Type.Object({
  host_ip: Type.String(),
  hostname: Type.Union([Type.String(), Type.Null()]),
  last_seen: isoOrNull('time of its latest heartbeat'),
  missed_rounds: Type.Integer({ minimum: 0 }),
});
/** A board claiming a position, as shown in a conflict. */
export type ClaimantView = Static<typeof ClaimantViewSchema>;

const summaryFields = {
  id: NodeIdSchema,
  box_id: Type.Integer(),
  slot_id: Type.Integer(),
  cpu_id: Type.Integer(),
  state: NodeStateSchema,
  state_since: Type.String({ description: 'ISO time of the last state change' }),
  host_ip: Type.String({ description: 'address of the board the node shows' }),
  hostname: Type.Union([Type.String(), Type.Null()]),
  last_seen: isoOrNull('time of the latest heartbeat'),
  missed_rounds: Type.Integer({ minimum: 0, description: 'rounds closed since the last heartbeat' }),
  cpu_percent: numberOrNull('cpu usage, %'),
  memory_percent: numberOrNull('memory usage, %'),
  temperature: numberOrNull('cpu temperature, °C'),
  gpu_count: Type.Integer({ minimum: 0 }),
  component_count: Type.Integer({ minimum: 0 }),
  resource_at: isoOrNull('time of the latest resource report'),
  conflict: Type.Union([Type.Array(ClaimantViewSchema), Type.Null()], {
    description: 'every claimant, the shown one first, when more than one board claims the position; else null',
  }),
  link: Type.Union([Type.Literal('mcast'), Type.Literal('ws')], {
    description: 'how the node reports: mcast (multicast queries) or ws (the WebSocket node link, docs/links.md)',
  }),
};

/** One row of `muster nodes`: identity, liveness and headline figures. */
export const NodeSummarySchema = Type.Object(summaryFields);
/** One row of `muster nodes`: identity, liveness and headline figures. */
export type NodeSummary = Static<typeof NodeSummarySchema>;

/**
 * What a node has left for workloads, from its latest resource report. `gpus` is always null: a
 * spec report does not say which GPUs the components hold (docs/operations.md "REST API").
 */
export const FreeResourcesSchema = Type.Object({
  cores: Type.Integer({ minimum: 0, description: 'core_count - core_allocated' }),
  memory_bytes: Type.Number({ minimum: 0, description: 'memory.free of the report, bytes' }),
  gpus: Type.Null({ description: 'free GPUs: unknown to the manager' }),
  gpus_total: Type.Integer({ minimum: 0, description: 'GPUs present on the board' }),
});
/** What a node has left for workloads. */
export type FreeResources = Static<typeof FreeResourcesSchema>;

/**
 * `muster node <id>`: the summary plus the last heartbeat's and resource report's `data`, exactly
 * as the board sent them (unknown fields included), what is left for workloads, the transitions.
 */
export const NodeDetailSchema = Type.Object({
  ...summaryFields,
  heartbeat: openOrNull(HeartbeatData),
  resource: openOrNull(ResourceData),
  free: Type.Union([FreeResourcesSchema, Type.Null()], { description: 'null before the first resource report' }),
  transitions: Type.Array(TransitionSchema, { description: 'the latest transitions, oldest first' }),
  link_info: Type.Union(
    [
      Type.Object({
        interval_ms: Type.Number({ description: "the node's heartbeat cadence over the link, ms" }),
        os_info: Type.Union([Type.String(), Type.Null()]),
        metrics: Type.Union([
          Type.Object({
            cpu_usage: Type.Optional(Type.Number()),
            memory_usage: Type.Optional(Type.Number()),
            disk_usage: Type.Optional(Type.Number()),
            load_average: Type.Optional(Type.Number()),
          }),
          Type.Null(),
        ]),
      }),
      Type.Null(),
    ],
    { description: 'the WebSocket link view (docs/links.md "Linked nodes"); null for a multicast node' },
  ),
});
/** `muster node <id>`. */
export type NodeDetail = Static<typeof NodeDetailSchema>;

/** Answer of GET /api/v1/nodes: the heartbeat round under way and every node, by box, slot, cpu. */
export const NodeListReplySchema = Type.Object({
  round: Type.Integer({ minimum: 0, description: 'number of the heartbeat round under way' }),
  nodes: Type.Array(NodeSummarySchema),
});
/** Query string of GET /api/v1/nodes: `target` keeps the nodes a target selects (docs/exec.md "Targets"). */
export const NodeListQuerySchema = Type.Object(
  { target: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: 'only the nodes it selects' })) },
  { additionalProperties: false },
);
/** Answer of GET /api/v1/nodes. */
export type NodeListReply = Static<typeof NodeListReplySchema>;

/** One row of GET /api/v1/components: a component of a node's latest resource report. */
export const ComponentViewSchema = openSchema(
  Type.Object({ node: NodeIdSchema, host_ip: Type.String(), ...Component.properties }),
);
/** One row of GET /api/v1/components. */
export type ComponentView = Static<typeof ComponentViewSchema>;

/** Answer of GET /api/v1/components. */
export const ComponentListReplySchema = Type.Object({ components: Type.Array(ComponentViewSchema) });
/** Answer of GET /api/v1/components. */
export type ComponentListReply = Static<typeof ComponentListReplySchema>;

/** Answer of DELETE /api/v1/nodes/:id (admin): the node forgotten and how many of its open alerts were resolved. */
export const NodeRemovedReplySchema = Type.Object({
  node: NodeIdSchema,
  alerts_resolved: Type.Integer({ minimum: 0, description: 'open alerts of the node resolved by the removal' }),
});
/** Answer of DELETE /api/v1/nodes/:id. */
export type NodeRemovedReply = Static<typeof NodeRemovedReplySchema>;
