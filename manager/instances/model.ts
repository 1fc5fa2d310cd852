/**
 * The business-instance model (docs/scheduling.md "Instances"): an instance's desired state, the
 * components it manages (allocs), the policies with their defaults, and the group version that
 * tells a rolling update from a scale. Pure types and helpers.
 */
import { createHash } from 'node:crypto';
import type { AllocPhase, GroupSpec, InstanceSpec, RestartPolicy, UpdatePolicy } from '../../common/api/instances.js';
import type { WorkloadType } from '../../common/api/primitives.js';

/** The restart policy when a group names none (docs/scheduling.md "Restart policy"). */
export const DEFAULT_RESTART: RestartPolicy = {
  attempts: 3,
  interval_ms: 300_000,
  delay_ms: 5_000,
  backoff: 2,
  max_delay_ms: 60_000,
};

/** The update policy when a group names none (docs/scheduling.md "Rolling updates"). */
export const DEFAULT_UPDATE: UpdatePolicy = { max_parallel: 1, min_healthy_ms: 5_000 };

/** The restart policy of `g`, defaults filled in. */
export const restartOf = (g: GroupSpec): RestartPolicy => ({ ...DEFAULT_RESTART, ...g.restart });
/** The update policy of `g`, defaults filled in. */
export const updateOf = (g: GroupSpec): UpdatePolicy => ({ ...DEFAULT_UPDATE, ...g.update });

/** Desired state of an instance. */
export type InstanceStatus = 'running' | 'stopped' | 'removing';

/** Restart bookkeeping of one slot (group/index). */
export interface SlotRestarts {
  /** Times (ms) restarts were started, within the last interval. */
  times: number[];
  /** When the slot's component last failed (ms), null when it has not since its last start. */
  failed_at: number | null;
}

/** What the controller keeps per instance beside the spec (stored as JSON with it). */
export interface InstanceState {
  /** Per group: the instance version at which its component-defining fields last changed. */
  versions: Record<string, number>;
  /** Per group: hash of those fields. */
  hashes: Record<string, string>;
  /** Last uuid serial used (uuids are `<instance>.<group>.<index>.<serial>`). */
  serial: number;
  /** Per slot `group/index`. */
  restarts: Record<string, SlotRestarts>;
}

/** An instance as the controller holds it. */
export interface Instance {
  id: string;
  status: InstanceStatus;
  version: number;
  spec: InstanceSpec;
  state: InstanceState;
  who: string;
  created_at: number;
  updated_at: number;
}

/** A component the instance manages. Times in ms since the epoch. */
export interface Alloc {
  uuid: string;
  instance_id: string;
  group: string;
  index: number;
  node: string;
  /** Workload type (to stop it even when its group is gone from the spec). */
  type: WorkloadType;
  /** Version of its group when it was started. */
  version: number;
  phase: AllocPhase;
  /** When it entered its phase. */
  phase_at: number;
  created_at: number;
  /** When it was first reported RUNNING in this phase, null before. */
  running_since: number | null;
  reason: string | null;
  /** The alloc of the same slot this one replaces (rolling update), null otherwise. */
  replaces: string | null;
}

/** `group/index`: the key of a slot. */
export const slotKey = (group: string, index: number): string => `${group}/${index}`;

/**
 * The hash of the fields that define a group's components (type, url, file, require,
 * constraints, distinct, scoring): when it changes the components are replaced (rolling update);
 * count, restart, update and reschedule_after changes apply in place.
 */
export function groupHash(g: GroupSpec): string {
  const core = {
    type: g.type,
    url: g.url,
    file: g.file,
    require: { cpu: g.require.cpu, memory: g.require.memory, gpu: g.require.gpu },
    constraints: g.constraints ?? [],
    distinct: g.distinct ?? null,
    scoring: g.scoring ?? null,
  };
  return createHash('sha256').update(JSON.stringify(core)).digest('hex').slice(0, 16);
}

/** The fields of a group that differ between two specs of it, for plan messages. */
export function changedFields(a: GroupSpec, b: GroupSpec): string[] {
  const keys = ['type', 'url', 'file', 'require', 'constraints', 'distinct', 'scoring'] as const;
  return keys.filter((k) => JSON.stringify(a[k] ?? null) !== JSON.stringify(b[k] ?? null));
}

/** A fresh state for a new instance. */
export function newState(): InstanceState {
  return { versions: {}, hashes: {}, serial: 0, restarts: {} };
}

/**
 * Brings `state` in line with `spec` applied as `version`: a group whose hash changed (or is new)
 * gets `version`. Returns the groups whose components must be replaced.
 */
export function applyVersions(state: InstanceState, spec: InstanceSpec, version: number): string[] {
  const changed: string[] = [];
  for (const [name, g] of Object.entries(spec.groups)) {
    const h = groupHash(g);
    if (state.hashes[name] !== h) {
      if (state.hashes[name] !== undefined) changed.push(name);
      state.hashes[name] = h;
      state.versions[name] = version;
    }
  }
  for (const name of Object.keys(state.hashes)) {
    if (!(name in spec.groups)) {
      delete state.hashes[name];
      delete state.versions[name];
    }
  }
  return changed;
}
