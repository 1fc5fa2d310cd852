/** Collector of the components the agent runs (seed 003 "component") and `core_allocated`. */
import type { WorkloadSnapshot, WorkloadSource } from '../workloads.js';
import type { Collector } from './collector.js';

/**
 * Samples the agent's workloads on the fast cadence.
 * @param source the workload supervisor (or `noWorkloads`)
 */
export function createComponentsCollector(source: WorkloadSource): Collector<WorkloadSnapshot> {
  return {
    name: 'components',
    cadence: 'fast',
    initial: { components: [], coreAllocated: 0 },
    collect: (signal) => source.snapshot(signal),
  };
}
