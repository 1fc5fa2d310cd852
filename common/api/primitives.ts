/**
 * The small shared vocabulary of the REST contract and the daemons: one schema and one type for
 * each, used by the manager's routes, the agent, the CLI and the dashboard alike
 * (docs/architecture.md "One source of truth").
 */
import { type Static, Type } from 'typebox';

/** The workload kinds an agent runs (docs/protocol.md "/deploy": `type`). */
export const WORKLOAD_TYPES = ['docker', 'bar'] as const;
/** A workload kind: `docker` (a container) or `bar` (a native bundle). */
export type WorkloadType = (typeof WORKLOAD_TYPES)[number];
/** Schema of {@link WorkloadType}. */
export const WorkloadTypeSchema = Type.Union(
  WORKLOAD_TYPES.map((t) => Type.Literal(t)),
  { description: 'workload kind: docker (container) or bar (native bundle)' },
);

/** Pattern of a multicast board's node id: `box-slot-cpu`, e.g. `1-3-0`. */
export const NODE_ID_PATTERN = '^[0-9]{1,9}-[0-9]{1,9}-[0-9]{1,9}$';
/** The same pattern as a RegExp (for the CLI's argument checks). */
export const NODE_ID_RE = new RegExp(NODE_ID_PATTERN);
/** Schema of a node id (`box-slot-cpu`). */
export const NodeIdSchema = Type.String({ pattern: NODE_ID_PATTERN, description: 'node id box-slot-cpu, e.g. 1-3-0' });
/** A node id `box-slot-cpu`. */
export type NodeId = Static<typeof NodeIdSchema>;

/** Alert severities, most severe first (docs/configuration.md#alerts). */
export const SEVERITIES = ['critical', 'warning', 'info'] as const;
/** An alert severity. */
export type Severity = (typeof SEVERITIES)[number];
/** Schema of {@link Severity}. */
export const SeveritySchema = Type.Union(
  SEVERITIES.map((s) => Type.Literal(s)),
  { description: 'critical, warning or info' },
);
