/** Load averages from `/proc/loadavg` (proc(5)): `1.25 0.87 0.64 3/612 28734`. */
import { type Collector, type CollectorContext, defineCollector } from './collector.js';
import { readProcFile } from './procfile.js';

/** Load averages over 1, 5 and 15 minutes (runnable + uninterruptible tasks; no unit). */
export interface LoadSample {
  load_avg_1m: number;
  load_avg_5m: number;
  load_avg_15m: number;
}

/**
 * Parses the text of /proc/loadavg.
 * @throws Error when the first three fields are not numbers
 */
export function parseLoadavg(text: string): LoadSample {
  const [a, b, c] = text.trim().split(/\s+/).map(Number);
  if (![a, b, c].every((x) => x !== undefined && Number.isFinite(x) && x >= 0)) {
    throw new Error(`malformed /proc/loadavg: ${text.trim()}`);
  }
  return { load_avg_1m: a ?? 0, load_avg_5m: b ?? 0, load_avg_15m: c ?? 0 };
}

/**
 * The `load` collector (every `collect.interval_ms`): reads `${ctx.procRoot}/loadavg`.
 * @returns a collector whose `collect` throws when the file cannot be read or parsed
 */
export function createLoadCollector(ctx: CollectorContext): Collector<LoadSample> {
  const file = `${ctx.procRoot}/loadavg`;
  return {
    name: 'load',
    initial: { load_avg_1m: 0, load_avg_5m: 0, load_avg_15m: 0 },
    async collect(_signal: AbortSignal): Promise<LoadSample> {
      return parseLoadavg(readProcFile(file));
    },
  };
}

/** Registration of `load`: `resource.cpu.load_avg_*` (docs/protocol.md "resource.cpu"). */
export const loadCollector = defineCollector<LoadSample>({
  name: 'load',
  interval: 'interval_ms',
  create: createLoadCollector,
  resource(s, data) {
    Object.assign(data.resource.cpu, s);
  },
});
