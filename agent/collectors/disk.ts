/**
 * Mounted filesystems: the mount table from `/proc/self/mounts` (proc(5), fstab(5) format) and
 * sizes from statfs(2), like df.
 *
 * A dead mount (an NFS server gone, a hung USB disk) can make statfs block for minutes inside a
 * libuv thread. Each statfs is therefore raced against a deadline; a mount that misses it is
 * left out of the sample and marked stuck, and while that statfs is still pending the mount is
 * not queried again, so one dead mount holds at most one libuv thread. When the pending call
 * finally answers, the mount is queried normally again.
 */
import type { BigIntStatsFs } from 'node:fs';
import { statfs as fsStatfs, readFile } from 'node:fs/promises';
import type { DiskResource } from '../../common/protocol.js';
import { type Collector, type CollectorContext, defineCollector } from './collector.js';
import { globMatchAny } from './glob.js';

/** The statfs fields the disk collector uses (block counts, and the block size in bytes). */
export type StatfsResult = Pick<BigIntStatsFs, 'blocks' | 'bfree' | 'bavail' | 'bsize'>;

/** A statfs implementation: resolves with the filesystem's counters, rejects on errors. */
export type StatfsFn = (mountPoint: string) => Promise<StatfsResult>;

/** Test hooks of {@link createDiskCollector}. */
export interface DiskCollectorOptions {
  /** statfs to use; default `fs.promises.statfs(path, { bigint: true })`. */
  statfs?: StatfsFn;
}

/** One line of the mount table, escapes decoded. */
export interface MountEntry {
  device: string;
  mountPoint: string;
  fstype: string;
}

const round2 = (x: number): number => Math.round(x * 100) / 100;

/** Decodes the octal escapes of the mount table (`\040` space, `\011` tab, `\012` newline, `\134` backslash). */
export function decodeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

/**
 * Parses a mount table (/proc/self/mounts) into entries in file order; malformed lines are skipped.
 */
export function parseMounts(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 3 || !f[0] || !f[1] || !f[2]) continue;
    out.push({ device: decodeMountField(f[0]), mountPoint: decodeMountField(f[1]), fstype: f[2] });
  }
  return out;
}

/**
 * Selects the mounts to report: for a mount point mounted over several times only the topmost
 * (last) entry counts; then excluded fstypes and mount points matching `excludeMounts` globs are
 * dropped; then one entry per device remains (its first mount; later bind mounts are skipped).
 * The result keeps file order.
 */
export function selectMounts(
  entries: readonly MountEntry[],
  excludeFstypes: readonly string[],
  excludeMounts: readonly string[],
): MountEntry[] {
  const top = new Map<string, number>();
  entries.forEach((e, i) => {
    top.set(e.mountPoint, i);
  });
  const fstypes = new Set(excludeFstypes);
  const devices = new Set<string>();
  const out: MountEntry[] = [];
  entries.forEach((e, i) => {
    if (top.get(e.mountPoint) !== i) return;
    if (fstypes.has(e.fstype) || globMatchAny(excludeMounts, e.mountPoint)) return;
    if (devices.has(e.device)) return;
    devices.add(e.device);
    out.push(e);
  });
  return out;
}

/**
 * Converts statfs counters to a disk resource, like df: total = blocks * bsize, free = bavail *
 * bsize (available to unprivileged users), used = (blocks - bfree) * bsize, all bytes;
 * usage_percent = used / (used + free) * 100 (%, 2 decimals; 0 for an empty filesystem).
 */
export function diskFromStatfs(device: string, mountPoint: string, s: StatfsResult): DiskResource {
  const bsize = BigInt(s.bsize);
  const total = BigInt(s.blocks) * bsize;
  const free = BigInt(s.bavail) * bsize;
  const usedBig = (BigInt(s.blocks) - BigInt(s.bfree)) * bsize;
  const used = usedBig > 0n ? usedBig : 0n;
  const denom = used + free;
  const usage_percent = denom > 0n ? round2((Number(used) / Number(denom)) * 100) : 0;
  return {
    device,
    mount_point: mountPoint,
    total: Number(total),
    used: Number(used),
    free: Number(free),
    usage_percent,
  };
}

const defaultStatfs: StatfsFn = (mountPoint) => fsStatfs(mountPoint, { bigint: true });

/**
 * The `disk` collector (every `collect.disk_interval_ms`): reads `${ctx.procRoot}/self/mounts` (or
 * `${ctx.procRoot}/mounts` when absent), applies `ctx.config.disk_exclude_fstypes` and
 * `disk_exclude_mounts`, and runs statfs on each mount in parallel. statfs answers are awaited
 * until 90% of `ctx.config.timeout_ms` (ms) has passed since the sample began, or `signal`
 * aborts, so the sample itself finishes inside the sampler's time limit; mounts still pending are
 * left out and marked stuck (logged once with ctx.log.warn per episode) until their call
 * returns. Mounts whose statfs fails (EACCES, ENOENT, ...) are left out. Sorted by mount_point.
 * @returns a collector whose `collect` gives `[]` when neither mount table exists and throws on
 *   other errors reading it
 */
export function createDiskCollector(ctx: CollectorContext, opts: DiskCollectorOptions = {}): Collector<DiskResource[]> {
  const statfs = opts.statfs ?? defaultStatfs;
  /** Mount points whose statfs missed a deadline and has not returned yet. */
  const stuck = new Set<string>();

  async function readMountTable(signal: AbortSignal): Promise<string | undefined> {
    for (const file of [`${ctx.procRoot}/self/mounts`, `${ctx.procRoot}/mounts`]) {
      try {
        return await readFile(file, { encoding: 'utf8', signal });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    return undefined;
  }

  return {
    name: 'disk',
    initial: [],
    async collect(signal: AbortSignal): Promise<DiskResource[]> {
      const budgetMs = Math.max(1, Math.floor(ctx.config.timeout_ms * 0.9));
      const started = Date.now();
      const text = await readMountTable(signal);
      if (text === undefined) return [];
      const mounts = selectMounts(parseMounts(text), ctx.config.disk_exclude_fstypes, ctx.config.disk_exclude_mounts);

      // One deadline for the whole sample: the statfs calls run in parallel.
      let timer: NodeJS.Timeout | undefined;
      let onAbort: (() => void) | undefined;
      const TIMED_OUT = Symbol('timed out');
      const deadline = new Promise<typeof TIMED_OUT>((resolve) => {
        // Not unref'd: the sample awaits this timer, and it is cleared as soon as the sample ends.
        timer = setTimeout(() => resolve(TIMED_OUT), Math.max(0, budgetMs - (Date.now() - started)));
        onAbort = () => resolve(TIMED_OUT);
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
      });

      const FAILED = Symbol('failed');
      const results = await Promise.all(
        mounts.map(async (m): Promise<DiskResource | undefined> => {
          if (stuck.has(m.mountPoint)) return undefined;
          let call: Promise<StatfsResult | typeof FAILED>;
          try {
            call = statfs(m.mountPoint).catch((err: NodeJS.ErrnoException) => {
              ctx.log.debug({ mount: m.mountPoint, err: err.message }, 'statfs failed; mount left out');
              return FAILED;
            });
          } catch (err) {
            ctx.log.debug({ mount: m.mountPoint, err: (err as Error).message }, 'statfs failed; mount left out');
            return undefined;
          }
          const r = await Promise.race([call, deadline]);
          if (r === TIMED_OUT) {
            stuck.add(m.mountPoint);
            ctx.log.warn(
              { mount: m.mountPoint, device: m.device, timeout_ms: ctx.config.timeout_ms },
              'statfs did not answer in time; mount left out until it does',
            );
            void call.then(() => {
              stuck.delete(m.mountPoint);
              ctx.log.info({ mount: m.mountPoint }, 'statfs of a stuck mount answered; querying it again');
            });
            return undefined;
          }
          if (r === FAILED) return undefined;
          return diskFromStatfs(m.device, m.mountPoint, r);
        }),
      );
      clearTimeout(timer);
      if (onAbort) signal.removeEventListener('abort', onAbort);

      return results
        .filter((d): d is DiskResource => d !== undefined)
        .sort((a, b) => (a.mount_point < b.mount_point ? -1 : a.mount_point > b.mount_point ? 1 : 0));
    },
  };
}

/** Registration of `disk`: `resource.disk[]` (docs/protocol.md "resource.disk[]"). */
export const diskCollector = defineCollector<DiskResource[]>({
  name: 'disk',
  interval: 'disk_interval_ms',
  create: (ctx) => createDiskCollector(ctx),
  resource(s, data) {
    data.resource.disk = s;
  },
});
