/**
 * The manager's own state (docs/operations.md "REST API", "Health checks"): `GET /api/v1/status`
 * (`muster status`) and `GET /healthz`.
 */
import { type Static, type TInteger, Type } from 'typebox';
import { NODE_STATES } from './nodes.js';
import { SEVERITIES } from './primitives.js';
import { TelemetryStatusSchema } from './telemetry.js';

/** An object with one count per key. */
const counts = <K extends string>(keys: readonly K[], description: string) =>
  Type.Object(Object.fromEntries(keys.map((k) => [k, Type.Integer({ minimum: 0 })])) as { [P in K]: TInteger }, {
    description,
  });

/** Answer of GET /api/v1/status. */
export const StatusReplySchema = Type.Object({
  version: Type.String(),
  uptime_s: Type.Integer({ minimum: 0, description: 'seconds since the manager process started' }),
  round: Type.Integer({ minimum: 0, description: 'number of the heartbeat round under way' }),
  manager_ip: Type.String({ description: 'manager_ip written into queries' }),
  manager_port: Type.Integer({ description: 'manager_port written into queries (http.port)' }),
  nodes: counts(NODE_STATES, 'nodes by liveness state'),
  alerts_open: counts(SEVERITIES, 'open alerts by severity'),
  database: Type.String({ description: 'the SQLite database file' }),
  telemetry: TelemetryStatusSchema,
});
/** Answer of GET /api/v1/status. */
export type StatusReply = Static<typeof StatusReplySchema>;

/** Answer of GET /healthz. */
export const HealthReplySchema = Type.Object({ status: Type.Literal('ok'), version: Type.String() });
/** Answer of GET /healthz. */
export type HealthReply = Static<typeof HealthReplySchema>;
