/**
 * The agent's workload drivers by WorkloadType (docs/protocol.md "/deploy": `type`;
 * docs/configuration.md `deploy.*`). Adding a runtime: a folder `agent/drivers/<type>/` whose
 * `driver.ts` exports a factory, its type in WORKLOAD_TYPES (common/api/primitives.ts), and one
 * line in {@link DRIVER_FACTORIES} (the Record type makes that line required).
 */
import path from 'node:path';
import type { WorkloadType } from '../../common/api/primitives.js';
import type { Logger } from '../../common/log.js';
import type { AgentConfig } from '../config.js';
import { createBarDriver } from './bar/driver.js';
import type { RefusalReason } from './bar/unpack.js';
import { createDockerDriver } from './docker/driver.js';
import type { WorkloadDriver } from './driver.js';

/** The drivers of one agent; a type without one refuses starts with result 4. */
export type DriverRegistry = Partial<Record<WorkloadType, WorkloadDriver>>;

/** What a driver factory is given. */
export interface DriverContext {
  cfg: AgentConfig;
  log: Logger;
  /** Told of each refused bar bundle, by reason (muster_agent_bundles_refused_total). */
  onBundleRefused?: (reason: RefusalReason) => void;
}

/** One factory per WorkloadType; null = this board has no such runtime (by its config). */
export const DRIVER_FACTORIES: Record<WorkloadType, (ctx: DriverContext) => WorkloadDriver | null> = {
  // dockerode itself is imported on the first engine call (agent/drivers/docker/engine.ts).
  docker: ({ cfg, log }) =>
    cfg.deploy.docker_socket
      ? createDockerDriver({
          socketPath: cfg.deploy.docker_socket,
          fetchTimeoutMs: cfg.deploy.fetch_timeout_ms,
          maxBundleBytes: cfg.deploy.max_bundle_bytes,
          log,
        })
      : null,
  bar: ({ cfg, log, onBundleRefused }) =>
    createBarDriver({
      fetchTimeoutMs: cfg.deploy.fetch_timeout_ms,
      maxBundleBytes: cfg.deploy.max_bundle_bytes,
      cgroupRoot: cfg.deploy.cgroup_root,
      logMaxBytes: cfg.deploy.log_max_bytes,
      cacheDir: path.join(cfg.data_dir, 'cache'),
      // The supervisor gives each component <data_dir>/components/<uuid> as its workDir.
      componentsDir: path.join(cfg.data_dir, 'components'),
      log,
      unpack: {
        maxBytes: cfg.bar.max_unpacked_bytes,
        maxFiles: cfg.bar.max_files,
        allowSymlinks: cfg.bar.allow_symlinks,
      },
      cacheMaxBytes: cfg.bar.cache_max_bytes,
      ...(onBundleRefused ? { onRefused: onBundleRefused } : {}),
    }),
};

/** The drivers this board's config asks for: bar always, docker when deploy.docker_socket is set. */
export function createDrivers(ctx: DriverContext): DriverRegistry {
  const out: DriverRegistry = {};
  for (const [type, make] of Object.entries(DRIVER_FACTORIES) as [
    WorkloadType,
    (c: DriverContext) => WorkloadDriver | null,
  ][]) {
    const d = make(ctx);
    if (d) out[type] = d;
  }
  return out;
}
