/** Memory figures from `/proc/meminfo` (proc(5)); the kernel's kB are KiB (1024 bytes). */
import type { MemoryResource } from '../../common/protocol.js';
import { type Collector, type CollectorContext, defineCollector } from './collector.js';
import { readProcFile } from './procfile.js';

const round2 = (x: number): number => Math.round(x * 100) / 100;

/**
 * Parses the text of /proc/meminfo into a memory resource, all sizes in bytes:
 * total = MemTotal; free = MemAvailable, or MemFree + Buffers + Cached on kernels older than
 * 3.14 that lack it; used = total - free; usage_percent = used / total * 100 (%, 2 decimals).
 * @throws Error when MemTotal is missing, or MemAvailable and MemFree are both missing
 */
export function parseMeminfo(text: string): MemoryResource {
  const kb = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([^:\s]+):\s+(\d+)/.exec(line);
    if (m?.[1] && m[2]) kb.set(m[1], Number(m[2]));
  }
  const totalKb = kb.get('MemTotal');
  if (totalKb === undefined) throw new Error('no MemTotal in /proc/meminfo');
  let freeKb = kb.get('MemAvailable');
  if (freeKb === undefined) {
    const memFree = kb.get('MemFree');
    if (memFree === undefined) throw new Error('neither MemAvailable nor MemFree in /proc/meminfo');
    freeKb = memFree + (kb.get('Buffers') ?? 0) + (kb.get('Cached') ?? 0);
  }
  const total = totalKb * 1024;
  const free = Math.min(freeKb, totalKb) * 1024;
  const used = total - free;
  return { total, used, free, usage_percent: total > 0 ? round2((used / total) * 100) : 0 };
}

/**
 * The `memory` collector (every `collect.interval_ms`): reads `${ctx.procRoot}/meminfo`.
 * @returns a collector whose `collect` throws when the file cannot be read or parsed
 */
export function createMemoryCollector(ctx: CollectorContext): Collector<MemoryResource> {
  const file = `${ctx.procRoot}/meminfo`;
  return {
    name: 'memory',
    initial: { total: 0, used: 0, free: 0, usage_percent: 0 },
    async collect(_signal: AbortSignal): Promise<MemoryResource> {
      return parseMeminfo(readProcFile(file));
    },
  };
}

/** Registration of `memory`: `resource.memory` (docs/protocol.md "resource.memory"). */
export const memoryCollector = defineCollector<MemoryResource>({
  name: 'memory',
  interval: 'interval_ms',
  create: createMemoryCollector,
  resource(s, data) {
    data.resource.memory = s;
  },
});
