/**
 * What the agent runs, as the resource report sees it. The deploy side (workload drivers) fills
 * this in; until a driver is configured the agent runs nothing and reports `component: []`.
 */
import type { Component } from '../common/protocol.js';

/** A snapshot of the components the agent supervises. */
export interface WorkloadSnapshot {
  /** Components in the spec's shape (seed 003 "component"). */
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
