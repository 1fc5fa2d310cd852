/**
 * Collector of the components the agent runs and `core_allocated` (docs/protocol.md
 * "component[]", "resource.cpu").
 */
import { noWorkloads, type WorkloadSnapshot, type WorkloadSource } from '../workloads.js';
import { type Collector, defineCollector } from './collector.js';

/**
 * Samples the agent's workloads (every `collect.interval_ms`).
 * @param source the workload supervisor (or `noWorkloads`)
 */
export function createComponentsCollector(source: WorkloadSource): Collector<WorkloadSnapshot> {
  return {
    name: 'components',
    initial: { components: [], coreAllocated: 0 },
    collect: (signal) => source.snapshot(signal),
  };
}

/** Registration of `components`: `component[]` and `resource.cpu.core_allocated`. */
export const componentsCollector = defineCollector<WorkloadSnapshot>({
  name: 'components',
  interval: 'interval_ms',
  create: (ctx) => createComponentsCollector(ctx.workloads ?? noWorkloads),
  resource(s, data) {
    data.component = s.components;
    data.resource.cpu.core_allocated = s.coreAllocated;
  },
});
