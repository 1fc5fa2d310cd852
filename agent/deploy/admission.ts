/**
 * Admission of a start (docs/operations.md "Admission"; docs/protocol.md "Request": `require`): whole cores allocated exclusively, memory in bytes
 * as a hard limit counted against what the board has, GPUs as a count of free devices. Pure.
 */
import type { Require } from '../../common/protocol.js';

/** What the board offers to workloads. */
export interface Capacity {
  /** Core ids that may be given out (online cores minus reserved ones). */
  cores: number[];
  /** Memory that may be promised to workloads, bytes. */
  memoryBytes: number;
  /** GPU indexes present. */
  gpus: number[];
}

/** What running components hold. */
export interface Holding {
  cpus: readonly number[];
  gpus: readonly number[];
  memory: number;
}

/** An admitted start: the exact cores and GPUs to give it. */
export interface Grant {
  cpus: number[];
  gpus: number[];
}

/** Formats bytes for messages: `64 MiB`. */
export function fmtBytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let x = n;
  let i = 0;
  while (x >= 1024 && i < u.length - 1) {
    x /= 1024;
    i++;
  }
  return `${Number.isInteger(x) ? x : x.toFixed(1)} ${u[i]}`;
}

/**
 * Decides whether `req` fits next to `held`.
 * @returns the grant (lowest free core ids and GPU indexes first), or `short`: every resource
 *   that does not fit, e.g. `cpu: need 2 cores, 1 free (of 4 allocatable)`
 */
export function admit(cap: Capacity, held: readonly Holding[], req: Require): Grant | { short: string } {
  const usedCores = new Set(held.flatMap((h) => h.cpus));
  const usedGpus = new Set(held.flatMap((h) => h.gpus));
  const freeCores = cap.cores.filter((c) => !usedCores.has(c));
  const freeGpus = cap.gpus.filter((g) => !usedGpus.has(g));
  const usedMem = held.reduce((s, h) => s + h.memory, 0);
  const freeMem = Math.max(0, cap.memoryBytes - usedMem);
  const short: string[] = [];
  if (req.cpu > freeCores.length)
    short.push(`cpu: need ${req.cpu} cores, ${freeCores.length} free (of ${cap.cores.length} allocatable)`);
  if (req.memory > freeMem)
    short.push(
      `memory: need ${fmtBytes(req.memory)}, ${fmtBytes(freeMem)} free (of ${fmtBytes(cap.memoryBytes)} allocatable)`,
    );
  if (req.gpu > freeGpus.length) short.push(`gpu: need ${req.gpu}, ${freeGpus.length} free (of ${cap.gpus.length})`);
  if (short.length > 0) return { short: short.join('; ') };
  return { cpus: freeCores.slice(0, req.cpu), gpus: freeGpus.slice(0, req.gpu) };
}

/** `0-3,6`: a cpuset list for docker CpusetCpus, cgroup cpuset.cpus and taskset. */
export function cpuList(cpus: readonly number[]): string {
  const s = [...cpus].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < s.length; ) {
    let j = i;
    while (j + 1 < s.length && (s[j + 1] as number) === (s[j] as number) + 1) j++;
    out.push(i === j ? `${s[i]}` : `${s[i]}-${s[j]}`);
    i = j + 1;
  }
  return out.join(',');
}
