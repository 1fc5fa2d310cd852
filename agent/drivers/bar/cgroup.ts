/**
 * cgroups for bar workloads: one cpuset (the granted cores) and one memory cgroup (the hard
 * limit) per component, at `muster/<uuid>` under the configured root.
 *
 * Layouts, picked once per agent from `cgroupRoot` (e.g. /sys/fs/cgroup):
 * - v1 (also hybrid systems, and Kylin V10's default): `<root>/cpuset` and `<root>/memory` are
 *   separate hierarchies; each present one is used. Preferred whenever it exists, because a
 *   controller bound to a v1 hierarchy is unavailable in the v2 one.
 * - v2: `<root>/cgroup.controllers` exists (unified mount), or `<root>/unified/cgroup.controllers`
 *   lists cpuset or memory (hybrid); one directory holds cpuset.cpus, memory.max, cgroup.procs.
 * - none: neither; the driver then pins with taskset only (see bar.ts).
 */
import { access, mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { cpuList } from '../../deploy/admission.js';
import { sleep } from './proc.js';

/** Where the workload cgroups go. */
export type CgroupLayout =
  | { kind: 'v1'; cpuset: string | null; memory: string | null }
  | { kind: 'v2'; root: string }
  | { kind: 'none'; why: string };

/** The cgroup directories of one workload. */
export interface WorkloadCgroups {
  version: 1 | 2;
  /** Every directory created for the workload (cgroup.procs lives in each). */
  dirs: string[];
  /** The cpuset directory (v1) or the one v2 directory; null when there is none. */
  cpusetDir: string | null;
  /** The memory directory (v1) or the one v2 directory; null when there is none. */
  memoryDir: string | null;
}

/** The cgroup hierarchy cannot be used here (not mounted, read-only, not permitted). */
export class CgroupUnavailable extends Error {
  override readonly name = 'CgroupUnavailable';
}

const exists = (p: string): Promise<boolean> =>
  access(p).then(
    () => true,
    () => false,
  );

const readTrim = async (p: string): Promise<string> => (await readFile(p, 'utf8')).trim();

/** Sub-directory of every layout that holds muster's workload cgroups. */
export const PARENT = 'muster';

/** Picks the layout under `root` (see the module comment). */
export async function detectLayout(root: string): Promise<CgroupLayout> {
  const cpuset = path.join(root, 'cpuset');
  const memory = path.join(root, 'memory');
  const v1cpuset = await exists(path.join(cpuset, 'cpuset.cpus'));
  const v1memory = await exists(path.join(memory, 'memory.limit_in_bytes'));
  if (v1cpuset || v1memory) return { kind: 'v1', cpuset: v1cpuset ? cpuset : null, memory: v1memory ? memory : null };
  for (const dir of [root, path.join(root, 'unified')]) {
    try {
      const ctl = (await readTrim(path.join(dir, 'cgroup.controllers'))).split(/\s+/);
      if (ctl.includes('cpuset') || ctl.includes('memory')) return { kind: 'v2', root: dir };
    } catch {
      // not a v2 mount
    }
  }
  return { kind: 'none', why: `no cpuset or memory cgroup hierarchy under ${root}` };
}

/** The directories a workload's cgroups have (or would have) in `layout`; null for `none`. */
export function cgroupsOf(layout: CgroupLayout, uuid: string): WorkloadCgroups | null {
  if (layout.kind === 'none') return null;
  if (layout.kind === 'v2') {
    const dir = path.join(layout.root, PARENT, uuid);
    return { version: 2, dirs: [dir], cpusetDir: dir, memoryDir: dir };
  }
  const cpusetDir = layout.cpuset ? path.join(layout.cpuset, PARENT, uuid) : null;
  const memoryDir = layout.memory ? path.join(layout.memory, PARENT, uuid) : null;
  return { version: 1, dirs: [cpusetDir, memoryDir].filter((d): d is string => d !== null), cpusetDir, memoryDir };
}

function unavailable(err: unknown, what: string): never {
  const code = (err as NodeJS.ErrnoException).code;
  throw new CgroupUnavailable(`${what}: ${code ?? (err as Error).message}`);
}

/** Makes `<hierarchy>/muster`; failure here means the hierarchy is unusable (CgroupUnavailable). */
async function ensureParent(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    unavailable(err, `cannot create ${dir}`);
  }
}

/** v1 cpuset: a new cgroup starts with empty cpus/mems; the parent gets the root's (best effort). */
async function fillV1CpusetParent(hierarchy: string, parent: string): Promise<void> {
  for (const f of ['cpuset.cpus', 'cpuset.mems']) {
    const want = await readTrim(path.join(hierarchy, f)).catch(() => '');
    const have = await readTrim(path.join(parent, f)).catch(() => '');
    if (want && have !== want) {
      // Widening always works; narrowing below a child's cores fails (EBUSY) and is harmless.
      await writeFile(path.join(parent, f), want).catch(() => undefined);
    }
  }
}

/** v2: enables cpuset and memory (those available) for the children of `dir`. */
async function enableV2Controllers(dir: string): Promise<void> {
  const available = (await readTrim(path.join(dir, 'cgroup.controllers')).catch(() => '')).split(/\s+/);
  const wanted = ['cpuset', 'memory'].filter((c) => available.includes(c));
  if (wanted.length === 0) return;
  const enabled = (await readTrim(path.join(dir, 'cgroup.subtree_control')).catch(() => '')).split(/\s+/);
  const missing = wanted.filter((c) => !enabled.includes(c));
  if (missing.length === 0) return;
  try {
    await writeFile(path.join(dir, 'cgroup.subtree_control'), missing.map((c) => `+${c}`).join(' '));
  } catch (err) {
    unavailable(err, `cannot enable ${missing.join(', ')} in ${dir}/cgroup.subtree_control`);
  }
}

/**
 * Creates the cgroups of one workload with its limits: cpuset.cpus = `cpus` (left as the
 * parent's when empty) and the memory hard limit = `memoryBytes` (none when 0). On v1 the
 * memory+swap limit (memory.memsw.limit_in_bytes, when the kernel has it) is set to the same
 * value, and on v2 memory.swap.max to 0, so that the limit cannot be dodged by swapping.
 * @throws CgroupUnavailable when the hierarchy cannot be written at all (the caller degrades);
 *   any other error after something was created (it removes what it made first)
 */
export async function createCgroups(
  layout: CgroupLayout,
  uuid: string,
  cpus: readonly number[],
  memoryBytes: number,
): Promise<WorkloadCgroups | null> {
  const cg = cgroupsOf(layout, uuid);
  if (!cg || layout.kind === 'none') return null;
  if (layout.kind === 'v2') {
    await enableV2Controllers(layout.root);
    await ensureParent(path.join(layout.root, PARENT));
    await enableV2Controllers(path.join(layout.root, PARENT));
  } else {
    if (layout.cpuset) {
      await ensureParent(path.join(layout.cpuset, PARENT));
      await fillV1CpusetParent(layout.cpuset, path.join(layout.cpuset, PARENT));
    }
    if (layout.memory) await ensureParent(path.join(layout.memory, PARENT));
  }
  try {
    for (const d of cg.dirs) await mkdir(d, { recursive: true });
    if (cg.cpusetDir) {
      if (cg.version === 1) {
        const mems = await readTrim(path.join(path.dirname(cg.cpusetDir), 'cpuset.mems'));
        await writeFile(path.join(cg.cpusetDir, 'cpuset.mems'), mems);
      }
      if (cpus.length > 0 && (cg.version === 1 || (await exists(path.join(cg.cpusetDir, 'cpuset.cpus'))))) {
        await writeFile(path.join(cg.cpusetDir, 'cpuset.cpus'), cpuList(cpus));
      }
    }
    if (cg.memoryDir && memoryBytes > 0) {
      if (cg.version === 1) {
        await writeFile(path.join(cg.memoryDir, 'memory.limit_in_bytes'), String(memoryBytes));
        const memsw = path.join(cg.memoryDir, 'memory.memsw.limit_in_bytes');
        if (await exists(memsw)) await writeFile(memsw, String(memoryBytes));
      } else if (await exists(path.join(cg.memoryDir, 'memory.max'))) {
        await writeFile(path.join(cg.memoryDir, 'memory.max'), String(memoryBytes));
        const swap = path.join(cg.memoryDir, 'memory.swap.max');
        if (await exists(swap)) await writeFile(swap, '0');
      }
    }
    return cg;
  } catch (err) {
    await removeCgroups(cg, 0).catch(() => undefined);
    throw new Error(`cannot set up cgroup ${cg.dirs.join(', ')}: ${(err as Error).message}`);
  }
}

/** Moves process `pid` (all its threads) into every cgroup of the workload. */
export async function addProcess(cg: WorkloadCgroups, pid: number): Promise<void> {
  for (const d of cg.dirs) await writeFile(path.join(d, 'cgroup.procs'), String(pid));
}

/** Pids in the workload's cgroups (union over the directories); [] when there are none. */
export async function cgroupProcs(cg: WorkloadCgroups | null): Promise<number[]> {
  if (!cg) return [];
  const pids = new Set<number>();
  for (const d of cg.dirs) {
    const text = await readFile(path.join(d, 'cgroup.procs'), 'utf8').catch(() => '');
    for (const line of text.split('\n')) if (line.trim()) pids.add(Number(line));
  }
  return [...pids];
}

/** Memory charged to the workload's cgroup (memory.usage_in_bytes v1, memory.current v2), bytes. */
export async function memoryUsage(cg: WorkloadCgroups | null): Promise<number | null> {
  if (!cg?.memoryDir) return null;
  const file = cg.version === 1 ? 'memory.usage_in_bytes' : 'memory.current';
  try {
    const n = Number(await readTrim(path.join(cg.memoryDir, file)));
    return Number.isFinite(n) ? n : null;
  } catch {
    return null;
  }
}

/** True when any of the workload's cgroup directories exists. */
export async function anyExists(cg: WorkloadCgroups | null): Promise<boolean> {
  if (!cg) return false;
  for (const d of cg.dirs) if (await exists(d)) return true;
  return false;
}

/**
 * Removes the workload's cgroup directories. A cgroup is removable once its last process has
 * been reaped, which may lag a SIGKILL by a little: EBUSY is retried for up to `waitMs` ms.
 * A directory that does not exist is fine.
 */
export async function removeCgroups(cg: WorkloadCgroups | null, waitMs = 3000): Promise<void> {
  if (!cg) return;
  const until = Date.now() + waitMs;
  for (const d of cg.dirs) {
    for (;;) {
      try {
        await rmdir(d);
        break;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') break;
        if (code !== 'EBUSY' || Date.now() >= until) throw new Error(`cannot remove cgroup ${d}: ${code}`);
        await sleep(50);
      }
    }
  }
}
