/**
 * What the agent runs, as the resource report sees it: the supervisor (agent/deploy/supervisor.ts)
 * is the agent's WorkloadSource; `noWorkloads` serves tests and tools that run nothing.
 */
import type { Component } from '../common/protocol.js';

/** A snapshot of the components the agent supervises. */
export interface WorkloadSnapshot {
  /** Components in the spec's shape (docs/protocol.md "component[]"). */
  components: Component[];
  /** Whole cores held by running components (`core_allocated`). */
  coreAllocated: number;
}

/** Source of the component list; `snapshot` may sample a runtime (docker stats) asynchronously. */
export interface WorkloadSource {
  snapshot(signal: AbortSignal): Promise<WorkloadSnapshot>;
}

/** The source of an agent that runs nothing. */
export const noWorkloads: WorkloadSource = {
  snapshot: async () => ({ components: [], coreAllocated: 0 }),
};
