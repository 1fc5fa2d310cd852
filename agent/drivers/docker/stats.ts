/**
 * Resource figures of a running container from one-shot `docker stats` (docs/protocol.md
 * "component[]": `resource`):
 * - `cpu.load`: % of one core (200 = two cores busy), from the CPU time the container used
 *   between two samples over the host CPU time in between (docker stats' formula). A one-shot
 *   stats call has no previous sample of its own (its precpu_stats is empty), so the tracker keeps
 *   each container's last sample and compares against it: the first observation of a container
 *   gives null, every later one the average load since the previous observation.
 * - `memory.mem_used`: bytes, usage minus page cache (cgroup v1 `cache`, v2 `inactive_file`);
 *   `memory.mem_limit`: bytes, the cgroup limit (require.memory).
 * - `network.tx` / `rx`: bytes since the container started, summed over its networks; null
 *   when it has none (network mode none/host).
 */
import type { Component } from '../../../common/protocol.js';

/** The docker stats fields read here (all optional: the engine omits what it lacks). */
export interface StatsSample {
  read?: string;
  cpu_stats?: CpuStats;
  precpu_stats?: CpuStats;
  memory_stats?: { usage?: number; limit?: number; stats?: Record<string, number> };
  networks?: Record<string, { rx_bytes?: number; tx_bytes?: number }>;
}
interface CpuStats {
  cpu_usage?: { total_usage?: number; percpu_usage?: number[] };
  system_cpu_usage?: number;
  online_cpus?: number;
}

/** Rounds a CPU load to 0.1 %. */
const round1 = (x: number): number => Math.round(x * 10) / 10;

/** Keeps the last CPU sample of each container, for the load between two observations. */
export class StatsTracker {
  private readonly lastCpu = new Map<string, { usage: number; system: number; at: number; cpus: number }>();

  /** Fills `resource` (in place) from sample `s` of container `id`. */
  apply(id: string, s: StatsSample, resource: Component['resource']): void {
    resource.cpu.load = this.cpuLoad(id, s);
    const mem = s.memory_stats;
    if (mem && typeof mem.usage === 'number') {
      const st = mem.stats ?? {};
      const cache = 'cache' in st ? st.cache : st.inactive_file;
      resource.memory.mem_used = Math.max(0, mem.usage - (cache ?? 0));
    }
    if (mem && typeof mem.limit === 'number' && mem.limit > 0) resource.memory.mem_limit = mem.limit;
    if (s.networks && Object.keys(s.networks).length > 0) {
      const nets = Object.values(s.networks);
      resource.network.tx = nets.reduce((a, n) => a + (n.tx_bytes ?? 0), 0);
      resource.network.rx = nets.reduce((a, n) => a + (n.rx_bytes ?? 0), 0);
    }
  }

  /** Forgets container `id` (stopped). */
  forget(id: string): void {
    this.lastCpu.delete(id);
  }

  /** Forgets every container not in `seen` (gone since the last observation). */
  keepOnly(seen: ReadonlySet<string>): void {
    for (const id of this.lastCpu.keys()) if (!seen.has(id)) this.lastCpu.delete(id);
  }

  /**
   * CPU load of a container, % of one core: from the sample's own precpu_stats when the engine
   * filled it (a streaming or two-sample stats call), else against the previous sample kept
   * here; null for the first sample of a container.
   */
  private cpuLoad(id: string, s: StatsSample): number | null {
    const cur = s.cpu_stats;
    const usage = cur?.cpu_usage?.total_usage;
    const system = cur?.system_cpu_usage;
    if (typeof usage !== 'number') return null;
    const cpus = cur?.online_cpus || cur?.cpu_usage?.percpu_usage?.length || 0;
    const at = s.read ? Date.parse(s.read) : Date.now();
    const pre = s.precpu_stats;
    const prev =
      pre?.cpu_usage?.total_usage && pre.system_cpu_usage
        ? { usage: pre.cpu_usage.total_usage, system: pre.system_cpu_usage, at: Number.NaN, cpus }
        : this.lastCpu.get(id);
    this.lastCpu.set(id, { usage, system: system ?? 0, at, cpus });
    if (!prev) return null;
    const dUsage = usage - prev.usage;
    if (dUsage < 0) return null;
    // Host CPU time elapsed (ns, all cores) when the engine reports it, else wall-clock time.
    if (typeof system === 'number' && prev.system > 0 && system > prev.system && cpus > 0) {
      return round1((dUsage / (system - prev.system)) * cpus * 100);
    }
    const dWallNs = (at - prev.at) * 1e6;
    return dWallNs > 0 ? round1((dUsage / dWallNs) * 100) : null;
  }
}
