/**
 * The agent's collectors, in report order. Adding a sensor: one file `agent/collectors/<name>.ts`
 * exporting a `defineCollector(...)` (agent/collectors/collector.ts), its test, and one line here.
 */
import type { CollectorDef } from './collector.js';
import { componentsCollector } from './components.js';
import { cpuCollector } from './cpu.js';
import { diskCollector } from './disk.js';
import { gpuCollector } from './gpu.js';
import { identityCollector } from './identity.js';
import { loadCollector } from './load.js';
import { memoryCollector } from './memory.js';
import { networkCollector } from './network.js';
import { sensorsCollector } from './sensors.js';

/** Every collector of the agent. */
export const COLLECTORS: readonly CollectorDef<unknown>[] = [
  cpuCollector,
  loadCollector,
  memoryCollector,
  networkCollector,
  diskCollector,
  sensorsCollector,
  gpuCollector,
  identityCollector,
  componentsCollector,
];
