/**
 * The one interface every metric source implements (one collector per file, as in Prometheus
 * node_exporter's collector/). Each collector file exports a {@link CollectorDef}: its name, the
 * `collect.*` config key of its sampling interval, whether it runs by default, how to create it,
 * and the part of the reports it fills (docs/protocol.md "2. Heartbeat", "3. Resource report").
 * The sampler (agent/sampler.ts) runs each enabled collector on its own interval and keeps the
 * latest sample; reports are assembled from those samples (agent/link/report.ts), so a query
 * never waits on a collector. The list of collectors is agent/collectors/index.ts.
 */

import type { Logger } from '../../common/log.js';
import type { HeartbeatBody, ResourceBody } from '../../common/protocol.js';
import type { AgentConfig } from '../config.js';
import type { WorkloadSource } from '../workloads.js';

/** What a collector may read: roots are configurable so tests can feed recorded trees. */
export interface CollectorContext {
  /** procfs root, normally `/proc`. */
  procRoot: string;
  /** sysfs root, normally `/sys`. */
  sysRoot: string;
  /** The agent's `collect` config section. */
  config: AgentConfig['collect'];
  log: Logger;
  /** The config's `identity.cpu_type` / `os_type` overrides ("" = detect); absent = detect. */
  identity?: Pick<AgentConfig['identity'], 'cpu_type' | 'os_type'>;
  /** os-release file for the identity collector; default `/etc/os-release`. */
  osReleasePath?: string;
  /** What the agent runs (the supervisor); absent = nothing. */
  workloads?: WorkloadSource;
}

/**
 * A metric source.
 * - `collect` reads with async I/O (fs/promises, execFile with a timeout) and never blocks the
 *   event loop; the one exception is a procfs pseudo-file, read synchronously with
 *   agent/collectors/procfile.ts (generated from memory, microseconds, cheaper than async I/O).
 *   It may keep state between calls (e.g. the previous /proc/stat for usage).
 * - A missing source is not an error: return the empty value (`[]`, or null readings).
 * - Throwing marks this round's sample failed; the previous good sample stays in use.
 */
export interface Collector<T> {
  /** Name in metrics and logs, e.g. `cpu`. */
  readonly name: string;
  /** The value used before the first sample completes. */
  readonly initial: T;
  /** Takes one sample. `signal` aborts when collect.timeout_ms passes. */
  collect(signal: AbortSignal): Promise<T>;
}

type Collect = AgentConfig['collect'];
/** The `collect.*` keys that are sampling intervals (ms): `interval_ms`, `disk_interval_ms`, ... */
export type IntervalKey = { [K in keyof Collect]: K extends `${string}interval_ms` ? K : never }[keyof Collect];

/** The `data` of a heartbeat and of a resource report, as collectors fill them in. */
export type HeartbeatData = HeartbeatBody['data'];
export type ResourceData = ResourceBody['data'];

/**
 * A collector as the agent registers it.
 * - `interval`: the `collect.*` key of its sampling interval, ms (docs/configuration.md
 *   "collect: sampling"); a new collector with a cadence of its own adds its key to the schema
 *   (agent/config.ts), config/agent.yaml and that table.
 * - `enabled`: whether it runs with this config (default: always). A collector that does not run
 *   contributes its `initial` value.
 * - `heartbeat` / `resource`: write this collector's fields of the report from its latest sample
 *   (in place; pure, no I/O).
 */
export interface CollectorDef<T> {
  readonly name: string;
  readonly interval: IntervalKey;
  enabled?(config: Collect): boolean;
  create(ctx: CollectorContext): Collector<T>;
  heartbeat?(sample: T, data: HeartbeatData): void;
  resource?(sample: T, data: ResourceData): void;
}

/** Declares a collector (an identity function that fixes the sample type `T`). */
export function defineCollector<T>(def: CollectorDef<T>): CollectorDef<T> {
  return def;
}
