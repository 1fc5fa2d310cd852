/** All of the agent's metric collectors, built from one context. */
import type { CollectorContext } from './collector.js';
import { createCpuCollector } from './cpu.js';
import { createDiskCollector } from './disk.js';
import { createGpuCollector } from './gpu.js';
import { createIdentityCollector } from './identity.js';
import { createLoadCollector } from './load.js';
import { createMemoryCollector } from './memory.js';
import { createNetworkCollector } from './network.js';
import { createSensorsCollector } from './sensors.js';

/** Inputs of the identity collector: the config's `identity.cpu_type` / `os_type` ("" = detect). */
export interface IdentityInputs {
  cpuTypeOverride: string;
  osTypeOverride: string;
  /** os-release file; default `/etc/os-release`. */
  osReleasePath?: string;
}

/**
 * Creates the collectors `{ cpu, load, memory, network, disk, sensors, gpu, identity }`, each a
 * `Collector` of its own sample type (see the individual files for shapes and units). Never throws.
 */
export function createCollectors(ctx: CollectorContext, identity: IdentityInputs) {
  return {
    cpu: createCpuCollector(ctx),
    load: createLoadCollector(ctx),
    memory: createMemoryCollector(ctx),
    network: createNetworkCollector(ctx),
    disk: createDiskCollector(ctx),
    sensors: createSensorsCollector(ctx),
    gpu: createGpuCollector(ctx),
    identity: createIdentityCollector(ctx, {
      cpuTypeOverride: identity.cpuTypeOverride,
      osTypeOverride: identity.osTypeOverride,
      ...(identity.osReleasePath ? { osReleasePath: identity.osReleasePath } : {}),
    }),
  };
}

/** The collectors object returned by {@link createCollectors}. */
export type Collectors = ReturnType<typeof createCollectors>;
