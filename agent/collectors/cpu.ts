/**
 * CPU usage and core count from `/proc/stat` (proc(5)).
 *
 * The aggregate `cpu` line holds jiffies since boot: user nice system idle iowait irq softirq
 * steal guest guest_nice. guest and guest_nice are already counted in user and nice, so the
 * total is the sum of the first eight; idle time is idle + iowait. Usage is the busy share of
 * the time between two consecutive samples (the first sample uses the totals since boot).
 */
import { type Collector, type CollectorContext, defineCollector } from './collector.js';
import { readProcFile } from './procfile.js';

/** One CPU sample: usage in % (0..100, 2 decimals) and the number of online cores. */
export interface CpuSample {
  /** Busy share of all cores since the previous sample, %, 2 decimals. */
  usage_percent: number;
  /** Number of `cpuN` lines in /proc/stat (online cores). */
  core_count: number;
}

/** Jiffy counters of the aggregate `cpu` line. */
export interface CpuTimes {
  /** Sum of user, nice, system, idle, iowait, irq, softirq, steal. */
  total: number;
  /** idle + iowait. */
  idle: number;
}

/** Parsed /proc/stat: the aggregate counters and the number of per-core lines. */
export interface ProcStat {
  times: CpuTimes;
  coreCount: number;
}

const round2 = (x: number): number => Math.round(x * 100) / 100;

/**
 * Parses the text of /proc/stat.
 * @throws Error when there is no aggregate `cpu` line or it has fewer than 4 counters
 */
export function parseProcStat(text: string): ProcStat {
  let times: CpuTimes | undefined;
  let coreCount = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith('cpu')) continue;
    const fields = line.trim().split(/\s+/);
    const label = fields[0] ?? '';
    if (label === 'cpu') {
      const v = fields.slice(1, 9).map(Number);
      if (v.length < 4 || v.some((x) => !Number.isFinite(x)))
        throw new Error(`malformed cpu line in /proc/stat: ${line}`);
      const total = v.reduce((a, b) => a + b, 0);
      times = { total, idle: (v[3] ?? 0) + (v[4] ?? 0) };
    } else if (/^cpu\d+$/.test(label)) {
      coreCount++;
    }
  }
  if (!times) throw new Error('no aggregate cpu line in /proc/stat');
  return { times, coreCount };
}

/**
 * Busy share between two counter snapshots, % (0..100, 2 decimals). When `prev` is absent or
 * the total did not grow (counters reset, e.g. a cpu went offline), `cur` is taken as is (since
 * boot). The idle delta is clamped to [0, total delta]: iowait may decrease between two reads
 * (proc(5)), which must not discard the interval.
 */
export function cpuUsage(cur: CpuTimes, prev?: CpuTimes): number {
  let total = cur.total;
  let idle = cur.idle;
  if (prev && cur.total > prev.total) {
    total = cur.total - prev.total;
    idle = Math.min(total, Math.max(0, cur.idle - prev.idle));
  }
  if (total <= 0) return 0;
  return round2(Math.min(100, Math.max(0, ((total - idle) / total) * 100)));
}

/**
 * The `cpu` collector (every `collect.interval_ms`): reads `${ctx.procRoot}/stat` each sample and keeps the
 * previous counters for the usage delta.
 * @returns a collector whose `collect` throws when /proc/stat cannot be read or parsed
 */
export function createCpuCollector(ctx: CollectorContext): Collector<CpuSample> {
  const file = `${ctx.procRoot}/stat`;
  let prev: CpuTimes | undefined;
  return {
    name: 'cpu',
    initial: { usage_percent: 0, core_count: 0 },
    async collect(_signal: AbortSignal): Promise<CpuSample> {
      const { times, coreCount } = parseProcStat(readProcFile(file));
      const usage_percent = cpuUsage(times, prev);
      prev = times;
      return { usage_percent, core_count: coreCount };
    },
  };
}

/** Registration of `cpu`: `resource.cpu.usage_percent` and `core_count` (docs/protocol.md "resource.cpu"). */
export const cpuCollector = defineCollector<CpuSample>({
  name: 'cpu',
  interval: 'interval_ms',
  create: createCpuCollector,
  resource(s, data) {
    data.resource.cpu.usage_percent = s.usage_percent;
    data.resource.cpu.core_count = s.core_count;
  },
});
