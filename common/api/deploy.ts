/**
 * Workloads over REST (docs/operations.md "REST API", "Deploying workloads"): deployments (a start
 * or stop the manager sends to a node's agent, docs/protocol.md "5. Load command") and their
 * records.
 *
 *   POST /api/v1/deployments `{ node?, constraints?, scoring?, mode, type, uuid?, id?, url?, file?, require?, instance_id?, index? }`
 *        → 202 `{ deployment }` at once; the agent call goes on in the background
 *   GET  /api/v1/deployments?node=&limit= → `{ deployments }`, oldest first
 *   GET  /api/v1/deployments/:id → `{ deployment }` (with progress, and result once done)
 */
import { type Static, Type } from 'typebox';
import { MAX_CONSTRAINT_LENGTH, MAX_CONSTRAINTS } from '../constraints.js';
import { DeployReplyData, DeployRequestData, Require } from '../protocol.js';
import { NodeIdSchema, openOrNull, openSchema, WorkloadTypeSchema } from './primitives.js';

/** Results the manager records when no valid agent reply arrived (the agent's own are ≥ 0). */
export const MANAGER_RESULT = {
  /** The agent could not be reached (connection refused, no route, reset). */
  UNREACHABLE: -1,
  /** The agent did not answer within deploy.timeout_ms. */
  TIMEOUT: -2,
  /** The agent answered with something that is not a spec deploy reply. */
  BAD_REPLY: -3,
  /** The manager restarted before the reply arrived (found unfinished in the store at start). */
  INTERRUPTED: -4,
} as const;

/** start or stop. */
export const DeployModeSchema = Type.Union([Type.Literal('start'), Type.Literal('stop')]);

/**
 * Body of POST /api/v1/deployments: the fields of the deploy request plus `node`. Conditional
 * rules (a start needs type, url, file and require; a stop needs uuid and node) are checked by
 * the route. A start without `node` is placed by the scheduler (docs/scheduling.md "Placement"),
 * honouring `constraints` and `scoring`; when none fits the answer is 409 `placement_failed`
 * whose message explains why.
 */
export const DeploymentBodySchema = Type.Object(
  {
    node: Type.Optional(NodeIdSchema),
    constraints: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: MAX_CONSTRAINT_LENGTH }), {
        maxItems: MAX_CONSTRAINTS,
        description: 'a start without node: placement constraints (docs/scheduling.md "Constraints")',
      }),
    ),
    scoring: Type.Optional(
      Type.Union([Type.Literal('binpack'), Type.Literal('spread')], {
        description: 'a start without node: how feasible nodes are ranked (default scheduler.default_scoring)',
      }),
    ),
    mode: DeployModeSchema,
    type: Type.Optional(WorkloadTypeSchema),
    uuid: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    id: Type.Optional(Type.Union([Type.String({ minLength: 1 }), Type.Integer({ minimum: 1 })])),
    url: Type.Optional(Type.String({ minLength: 1 })),
    file: Type.Optional(Type.String({ minLength: 1 })),
    require: Type.Optional(Require),
    instance_id: Type.Optional(Type.String()),
    index: Type.Optional(Type.Integer()),
  },
  { additionalProperties: false },
);
/** Body of POST /api/v1/deployments. */
export type DeploymentBody = Static<typeof DeploymentBodySchema>;

/**
 * How the manager chose the node of a start sent without one (docs/scheduling.md "Placement"):
 * the winner's score, how many nodes were feasible out of how many, the attempt (a start refused
 * by the agent for lack of resources is placed again elsewhere) and `next`, the id of the
 * deployment that retried it (set in memory when the retry is sent).
 */
export const PlacementInfoSchema = Type.Object({
  score: Type.Number({ description: 'score of the chosen node, 0..1' }),
  feasible: Type.Integer({ description: 'nodes that could take it' }),
  total: Type.Integer({ description: 'nodes in the registry' }),
  attempt: Type.Integer({ minimum: 1, description: '1 for the first placement, 2 for the first retry, ...' }),
  next: Type.Optional(Type.String({ description: 'id of the deployment that retried this one elsewhere' })),
});
/** How the node of a placed start was chosen. */
export type PlacementInfo = Static<typeof PlacementInfoSchema>;

/** A deploy operation as recorded (and persisted as is). Times are ISO-8601. */
export const DeploymentRecordSchema = Type.Object({
  id: Type.String({ description: 'uuid v4 of this operation' }),
  node: NodeIdSchema,
  mode: DeployModeSchema,
  type: WorkloadTypeSchema,
  uuid: Type.String({ description: 'component uuid' }),
  request: openSchema(DeployRequestData),
  who: Type.String({ description: 'who asked: the authenticated user, or user/token for an API token' }),
  at: Type.String({ description: 'ISO time the operation was asked for' }),
  finished_at: Type.Union([Type.String(), Type.Null()], { description: 'null while under way' }),
  result: Type.Union([Type.Integer(), Type.Null()], {
    description: "the agent's result (0 = success), a negative MANAGER_RESULT, or null while under way",
  }),
  message: Type.Union([Type.String(), Type.Null()]),
  reply: openOrNull(DeployReplyData),
  progress: Type.Array(Type.String(), { description: 'progress lines reported by the agent while it ran' }),
  placement: Type.Optional(PlacementInfoSchema),
});
/** A deploy operation as recorded. */
export type DeploymentRecord = Static<typeof DeploymentRecordSchema>;

/** Answer of POST /api/v1/deployments (202) and GET /api/v1/deployments/:id. */
export const DeploymentReplySchema = Type.Object({ deployment: DeploymentRecordSchema });
/** Answer of POST /api/v1/deployments and GET /api/v1/deployments/:id. */
export type DeploymentReply = Static<typeof DeploymentReplySchema>;

/** Query string of GET /api/v1/deployments. */
export const DeploymentListQuerySchema = Type.Object({
  node: Type.Optional(NodeIdSchema),
  limit: Type.Optional(Type.String({ pattern: '^[0-9]+$', description: 'newest N' })),
});
/** Answer of GET /api/v1/deployments, oldest first. */
export const DeploymentListReplySchema = Type.Object({ deployments: Type.Array(DeploymentRecordSchema) });
/** Answer of GET /api/v1/deployments. */
export type DeploymentListReply = Static<typeof DeploymentListReplySchema>;

/** `:id` of GET /api/v1/deployments/:id. */
export const DeploymentParamsSchema = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
