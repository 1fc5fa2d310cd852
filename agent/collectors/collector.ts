/**
 * The one interface every metric source implements (one collector per file, as in Prometheus
 * node_exporter's collector/). The agent's sampler (agent/sampler.ts) runs each collector on its
 * own interval and keeps the latest sample; reports are assembled from those samples, so a query
 * never waits on a collector.
 */
import type { Logger } from '../../common/log.js';
import type { AgentConfig } from '../config.js';

/** What a collector may read: roots are configurable so tests can feed recorded trees. */
export interface CollectorContext {
  /** procfs root, normally `/proc`. */
  procRoot: string;
  /** sysfs root, normally `/sys`. */
  sysRoot: string;
  /** The agent's `collect` config section. */
  config: AgentConfig['collect'];
  log: Logger;
}

/**
 * A metric source.
 * - `collect` reads with async I/O only (fs/promises, execFile with a timeout) and never blocks
 *   the event loop; it may keep state between calls (e.g. the previous /proc/stat for usage).
 * - A missing source is not an error: return the empty value (`[]`, or null readings).
 * - Throwing marks this round's sample failed; the previous good sample stays in use.
 */
export interface Collector<T> {
  /** Name in metrics and logs, e.g. `cpu`. */
  readonly name: string;
  /** Which sampling interval applies: `fast` (collect.interval_ms), `disk` or `gpu`. */
  readonly cadence: 'fast' | 'disk' | 'gpu';
  /** The value used before the first sample completes. */
  readonly initial: T;
  /** Takes one sample. `signal` aborts when collect.timeout_ms passes. */
  collect(signal: AbortSignal): Promise<T>;
}
