/**
 * The bar driver: runs "bundle archives" (docs/protocol.md "bar: what a bundle is", docs/operations.md "Supervision") as plain processes.
 *
 * start: fetch `<url>/<file>` into the sha256 cache (fetch.ts), unpack it into
 * `<workDir>/bundle` (unpack.ts, manifest.ts), create the component's cgroups (cgroup.ts) and
 * launch `command` stopped, move it into the cgroups, then let it run (launch.ts) in its own
 * process group, pinned with `taskset -c <cores>` when taskset exists, stdout/stderr appended to
 * `<workDir>/stdout.log` / `stderr.log` (bounded by logs.ts).
 * `<workDir>/run.json` remembers pid, start ticks, stop signal and grace for stop; the record's
 * driver state ({@link BarState}) holds pid and start ticks.
 *
 * Limits and their fallbacks:
 * - cgroups writable: cpuset (granted cores) and memory hard limit, both inherited by children.
 * - cgroups not usable (no hierarchy, read-only, not permitted): a warning is logged once per
 *   reason and workloads run with taskset pinning only: no memory limit, and a workload may
 *   change its own affinity. Without taskset as well, they run unpinned (warned once).
 *
 * Identity: a process is ours when /proc/<pid>/stat exists with the recorded start ticks
 * (field 22); a reused pid is never signalled.
 *
 * Reported figures (observe): cpu.load is % of one core over the interval between two observe
 * calls, from utime+stime of the workload's processes (those in its cgroup, else those in its
 * process group) plus the reaped children of its leader; null on the first call. mem_used is
 * the cgroup's usage (memory.usage_in_bytes v1, memory.current v2; page cache included), else
 * the sum of VmRSS. network tx/rx are null: Linux keeps no per-process network counters.
 *
 * Exit codes: for a process this agent started, from its exit event (a death by signal is
 * reported as 128 + signal number, as shells do); for a re-adopted process (started before an
 * agent restart) the exit code cannot be known: FAILED with exitCode null. When the leader ends,
 * what is left of its group and cgroup is killed, so the cores given back are really free.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { constants } from 'node:os';
import path from 'node:path';
import type { Logger } from '../../../common/log.js';
import type { Component } from '../../../common/protocol.js';
import { redactUrl } from '../../../common/redact.js';
import { cpuList } from '../../deploy/admission.js';
import { DeployError, RESULT } from '../../deploy/results.js';
import type { ComponentRecord, Observed, Progress, Started, StartSpec, WorkloadDriver } from '../driver.js';
import {
  addProcess,
  type CgroupLayout,
  CgroupUnavailable,
  cgroupProcs,
  cgroupsOf,
  createCgroups,
  detectLayout,
  memoryUsage,
  removeCgroups,
  type WorkloadCgroups,
} from './cgroup.js';
import { BundleCache } from './fetch.js';
import { type ExitInfo, isExecutable, killGroupNow, launch, resolveCommand } from './launch.js';
import { LOG_FILES, LogBound } from './logs.js';
import {
  clockTicksPerSecond,
  groupAlive,
  groupExists,
  groupMembers,
  identify,
  readStat,
  signalGroup,
  signalPid,
  sleep,
  vmRssBytes,
} from './proc.js';
import { BundleRefused, DEFAULT_UNPACK_LIMITS, type RefusalReason, type UnpackLimits, unpackBundle } from './unpack.js';

/** Settings of the bar driver. */
export interface BarDriverOptions {
  /** cgroup mount root, e.g. /sys/fs/cgroup (v1, hybrid or v2; see bar/cgroup.ts). */
  cgroupRoot: string;
  /** Time limit of one bundle fetch, body included, ms. */
  fetchTimeoutMs: number;
  /** Largest bundle fetched, bytes. */
  maxBundleBytes: number;
  /** Size above which a workload's stdout.log / stderr.log is rotated to `.1`, bytes. */
  logMaxBytes: number;
  /** Bundle cache directory (blobs named by sha256, index.json). */
  cacheDir: string;
  log: Logger;
  /**
   * Where the supervisor puts component workDirs (`<componentsDir>/<uuid>`), used to find
   * run.json and logs of components started before an agent restart. Default:
   * `<dirname(cacheDir)>/components`, the supervisor's layout (`<data_dir>/components`).
   */
  componentsDir?: string;
  /** Time between two log size checks, ms (default 5000). */
  logCheckMs?: number;
  /** Unpack bounds and the symlink rule (bar.max_unpacked_bytes, bar.max_files, bar.allow_symlinks). */
  unpack?: UnpackLimits;
  /** Largest total size of the bundle cache, bytes (bar.cache_max_bytes); default unbounded. */
  cacheMaxBytes?: number;
  /** Told of each refused bundle (muster_agent_bundles_refused_total{reason}). Must not throw. */
  onRefused?: (reason: RefusalReason) => void;
}

/**
 * The bar driver's state of a component (the record's `driverState`): the leader's pid and its
 * start time (clock ticks since boot, /proc/<pid>/stat field 22), which together say whether a
 * pid is still ours.
 */
export interface BarState {
  pid?: number | undefined;
  pidStartTicks?: number | undefined;
}

/** The {@link BarState} of a record; fields of the wrong type read as absent. */
export function barState(rec: Pick<ComponentRecord, 'driverState'>): BarState {
  const s = rec.driverState ?? {};
  const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isInteger(v) ? v : undefined);
  return { pid: num(s.pid), pidStartTicks: num(s.pidStartTicks) };
}

/** The minimal PATH a workload starts with (bar.yaml env may replace it). */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** What `<workDir>/run.json` holds. */
export interface RunInfo {
  pid: number;
  /** /proc/<pid>/stat field 22, clock ticks since boot. */
  pidStartTicks: number;
  stopSignal: NodeJS.Signals;
  /** ms before SIGKILL; absent = the agent's stop grace. */
  stopGraceMs?: number | undefined;
  name: string;
  version: string;
  sha256: string;
  /** cgroup directories created ([] when running without cgroups). */
  cgroups: string[];
  /** ISO time. */
  startedAt: string;
}

/** The bundle URL: `file` appended as one path segment to the base `url` (query kept). */
export function bundleUrl(url: string, file: string): string {
  const u = new URL(url);
  u.pathname = `${u.pathname.replace(/\/+$/, '')}/${encodeURIComponent(file)}`;
  u.hash = '';
  return u.toString();
}

/** Checks a bar start's `url` (http/https base URL) and `file` (a plain name); null when fine. */
export function validateBarSource(url: string, file: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `url ${JSON.stringify(url)}: not a valid URL (expected http://host[:port]/path)`;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    return `url ${JSON.stringify(url)}: must be an http:// or https:// base URL for a bar bundle`;
  }
  if (!u.hostname) return `url ${JSON.stringify(url)}: has no host`;
  if (file === '' || file === '.' || file === '..' || /[/\\\0]/.test(file)) {
    return `file ${JSON.stringify(file)}: must be a plain file name (no path)`;
  }
  return null;
}

/** Exit code as shells report it: the code, or 128 + signal number for a death by signal. */
function exitCodeOf(info: ExitInfo): number | null {
  if (info.code !== null) return info.code;
  const n = info.signal ? constants.signals[info.signal] : undefined;
  return n === undefined ? null : 128 + n;
}

const idle = (rec: ComponentRecord): Component['resource'] => ({
  cpu: { load: null },
  memory: { mem_used: null, mem_limit: rec.require.memory || null },
  network: { tx: null, rx: null },
});

/** How long stop waits for the zombies of a killed group to be reaped, ms (not an error after). */
const ZOMBIE_WAIT_MS = 2000;

/** Most remembered exit codes of ended workloads. */
const MAX_ENDED = 1000;

class BarDriver implements WorkloadDriver {
  readonly type = 'bar' as const;
  private readonly log: Logger;
  private readonly cache: BundleCache;
  private readonly logs: LogBound;
  private readonly componentsDir: string;
  private layoutP: Promise<CgroupLayout> | undefined;
  private tasksetP: Promise<string | null> | undefined;
  private readonly warned = new Set<string>();
  private readonly children = new Map<string, { pid: number; exited: Promise<ExitInfo> }>();
  private readonly ended = new Map<string, number | null>();
  private readonly runs = new Map<string, RunInfo>();
  private readonly workDirs = new Map<string, string>();
  private readonly samples = new Map<string, { pid: number; ticks: number; at: number }>();

  constructor(private readonly opts: BarDriverOptions) {
    this.log = opts.log;
    this.cache = new BundleCache({
      cacheDir: opts.cacheDir,
      timeoutMs: opts.fetchTimeoutMs,
      maxBytes: opts.maxBundleBytes,
      log: opts.log,
      ...(opts.cacheMaxBytes !== undefined ? { cacheMaxBytes: opts.cacheMaxBytes } : {}),
      // A running component's blob is kept: a restart of the same bundle needs no download.
      inUse: () => [...this.runs.values()].map((r) => r.sha256),
    });
    // Left-overs of a crash (.tmp-* downloads, orphan blobs) go at start, not at the first deploy.
    void this.cache.sweep();
    this.logs = new LogBound(opts.logMaxBytes, opts.log, opts.logCheckMs);
    this.componentsDir = opts.componentsDir ?? path.join(path.dirname(opts.cacheDir), 'components');
  }

  private warnOnce(key: string, fields: Record<string, unknown>, msg: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.log.warn(fields, msg);
  }

  private layout(): Promise<CgroupLayout> {
    this.layoutP ??= detectLayout(this.opts.cgroupRoot);
    return this.layoutP;
  }

  private async cgroupsFor(uuid: string): Promise<WorkloadCgroups | null> {
    return cgroupsOf(await this.layout(), uuid);
  }

  /** taskset's path (util-linux), or null. */
  private taskset(): Promise<string | null> {
    this.tasksetP ??= (async () => {
      const dirs = [...DEFAULT_PATH.split(':'), ...(process.env.PATH ?? '').split(':')].filter(Boolean);
      for (const d of dirs) {
        const p = path.join(d, 'taskset');
        if (await isExecutable(p)) return p;
      }
      return null;
    })();
    return this.tasksetP;
  }

  private workDirOf(uuid: string): string {
    return this.workDirs.get(uuid) ?? path.join(this.componentsDir, uuid);
  }

  private async runInfo(uuid: string): Promise<RunInfo | undefined> {
    const known = this.runs.get(uuid);
    if (known) return known;
    try {
      return JSON.parse(await readFile(path.join(this.workDirOf(uuid), 'run.json'), 'utf8')) as RunInfo;
    } catch {
      return undefined;
    }
  }

  private forget(uuid: string): void {
    this.children.delete(uuid);
    this.runs.delete(uuid);
    this.workDirs.delete(uuid);
    this.samples.delete(uuid);
    this.logs.unwatch(uuid);
  }

  validate(url: string, file: string): string | null {
    return validateBarSource(url, file);
  }

  /** A bar component's reply id is its pid, an int (docs/protocol.md "Reply"). */
  replyId(rec: ComponentRecord): string | number {
    return barState(rec).pid ?? rec.id;
  }

  /** Creates the component's cgroups; null (with a warning once) when cgroups are not usable. */
  private async makeCgroups(spec: StartSpec): Promise<WorkloadCgroups | null> {
    const layout = await this.layout();
    if (layout.kind === 'none') {
      this.warnOnce(
        'cgroups:none',
        { cgroupRoot: this.opts.cgroupRoot, why: layout.why },
        'no usable cgroups: bar workloads run with taskset core pinning only and without a memory limit',
      );
      return null;
    }
    try {
      return await createCgroups(layout, spec.uuid, spec.cpus, spec.require.memory);
    } catch (err) {
      if (err instanceof CgroupUnavailable) {
        this.warnOnce(
          `cgroups:${err.message}`,
          { cgroupRoot: this.opts.cgroupRoot, why: err.message },
          'cgroups not writable: bar workloads run with taskset core pinning only and without a memory limit',
        );
        return null;
      }
      throw new DeployError(RESULT.RUNTIME_ERROR, (err as Error).message);
    }
  }

  async start(spec: StartSpec, progress: Progress): Promise<Started> {
    const bundleDir = path.join(spec.workDir, 'bundle');
    const url = bundleUrl(spec.url, spec.file);
    const blob = await this.cache.fetch(url, progress);
    let manifest: Awaited<ReturnType<typeof unpackBundle>>['manifest'];
    try {
      this.log.info(
        { uuid: spec.uuid, url: redactUrl(url), sha256: blob.sha256, bytes: blob.size, reused: blob.reused },
        'bar bundle fetched',
      );
      progress(`unpacking ${spec.file} (sha256 ${blob.sha256})`);
      const out = await unpackBundle(blob.path, spec.file, bundleDir, this.opts.unpack ?? DEFAULT_UNPACK_LIMITS);
      manifest = out.manifest;
      progress(`unpacked ${out.files} entries, ${out.bytes} bytes`);
    } catch (err) {
      if (err instanceof BundleRefused) {
        // Refused by content: whatever URL serves this blob, it is refused again; keep none of it.
        await this.cache.discard(blob.sha256);
        this.opts.onRefused?.(err.reason);
        this.log.warn(
          { uuid: spec.uuid, url: redactUrl(url), sha256: blob.sha256, reason: err.reason, why: err.message },
          'bar bundle refused',
        );
      }
      throw err;
    } finally {
      blob.release();
    }
    const env: Record<string, string> = {
      PATH: DEFAULT_PATH,
      ...manifest.env,
      MUSTER_UUID: spec.uuid,
      MUSTER_INSTANCE_ID: spec.instance_id,
      MUSTER_INDEX: String(spec.index),
    };
    await resolveCommand(manifest.command[0] as string, bundleDir, env.PATH ?? DEFAULT_PATH);

    const cg = await this.makeCgroups(spec);
    const tasksetBin = spec.cpus.length > 0 ? await this.taskset() : null;
    if (spec.cpus.length > 0 && !tasksetBin && !cg?.cpusetDir) {
      this.warnOnce('unpinned', {}, 'neither taskset nor a cpuset cgroup: bar workloads run on all cores');
    }
    let launched: Awaited<ReturnType<typeof launch>>;
    try {
      await mkdir(spec.workDir, { recursive: true });
      launched = await launch({
        command: manifest.command,
        cwd: bundleDir,
        env,
        stdoutPath: path.join(spec.workDir, 'stdout.log'),
        stderrPath: path.join(spec.workDir, 'stderr.log'),
        taskset: tasksetBin ? { bin: tasksetBin, cpus: cpuList(spec.cpus) } : null,
        beforeRun: async (pid) => {
          if (cg) await addProcess(cg, pid);
        },
      });
    } catch (err) {
      await removeCgroups(cg).catch(() => undefined);
      throw err instanceof DeployError ? err : new DeployError(RESULT.RUNTIME_ERROR, (err as Error).message);
    }
    const { pid, startTicks } = launched;
    const run: RunInfo = {
      pid,
      pidStartTicks: startTicks,
      stopSignal: manifest.stopSignal,
      stopGraceMs: manifest.stopGraceMs,
      name: manifest.name,
      version: manifest.version,
      sha256: blob.sha256,
      cgroups: cg?.dirs ?? [],
      startedAt: new Date().toISOString(),
    };
    try {
      await writeFile(path.join(spec.workDir, 'run.json'), `${JSON.stringify(run, null, 2)}\n`);
    } catch (err) {
      await killGroupNow(pid);
      await removeCgroups(cg).catch(() => undefined);
      throw new DeployError(RESULT.RUNTIME_ERROR, `cannot write run.json: ${(err as Error).message}`);
    }
    this.children.set(spec.uuid, { pid, exited: launched.exited });
    this.ended.delete(spec.uuid);
    this.runs.set(spec.uuid, run);
    this.workDirs.set(spec.uuid, spec.workDir);
    this.logs.watch(
      spec.uuid,
      LOG_FILES.map((f) => path.join(spec.workDir, f)),
    );
    progress(`started ${manifest.name}${manifest.version ? ` ${manifest.version}` : ''} as pid ${pid}`);
    this.log.info(
      {
        uuid: spec.uuid,
        name: manifest.name,
        version: manifest.version,
        sha256: blob.sha256,
        pid,
        cpus: spec.cpus,
        memory: spec.require.memory,
        cgroups: run.cgroups,
        taskset: tasksetBin !== null,
      },
      'bar workload started',
    );
    const state: BarState = { pid, pidStartTicks: startTicks };
    return { id: String(pid), name: manifest.name, driverState: { ...state } };
  }

  /**
   * Sends `sig` to the workload: its process group (when the leader pid is verified ours or has
   * ended) and any process of its cgroups outside that group.
   */
  private async signalAll(pgid: number | undefined, cg: WorkloadCgroups | null, sig: NodeJS.Signals): Promise<void> {
    if (pgid !== undefined) signalGroup(pgid, sig);
    for (const p of await cgroupProcs(cg)) {
      if (pgid !== undefined && (await readStat(p))?.pgrp === pgid) continue;
      signalPid(p, sig);
    }
  }

  private async anyAlive(pgid: number | undefined, cg: WorkloadCgroups | null): Promise<boolean> {
    if (pgid !== undefined && (await groupAlive(pgid))) return true;
    return (await cgroupProcs(cg)).length > 0;
  }

  async stop(rec: ComponentRecord, graceMs: number): Promise<void> {
    const run = await this.runInfo(rec.uuid);
    const st = barState(rec);
    const pid = st.pid ?? run?.pid;
    const ticks = st.pidStartTicks ?? run?.pidStartTicks;
    const cg = await this.cgroupsFor(rec.uuid);
    let pgid: number | undefined;
    if (pid !== undefined) {
      if ((await identify(pid, ticks)) === 'reused') {
        this.log.warn({ uuid: rec.uuid, pid }, 'pid now belongs to another process; not signalled');
      } else {
        pgid = pid;
      }
    }
    const signal = run?.stopSignal ?? 'SIGTERM';
    const grace = run?.stopGraceMs ?? graceMs;
    if (await this.anyAlive(pgid, cg)) {
      await this.signalAll(pgid, cg, signal);
      const until = Date.now() + grace;
      while ((await this.anyAlive(pgid, cg)) && Date.now() < until) await sleep(50);
      if (await this.anyAlive(pgid, cg)) {
        this.log.info({ uuid: rec.uuid, pid, signal, graceMs: grace }, 'bar workload outlived its stop grace; SIGKILL');
        const killUntil = Date.now() + 5000;
        for (;;) {
          await this.signalAll(pgid, cg, 'SIGKILL');
          await sleep(20);
          if (!(await this.anyAlive(pgid, cg))) break;
          if (Date.now() >= killUntil) {
            throw new DeployError(RESULT.RUNTIME_ERROR, `bar workload ${pid ?? rec.uuid} still present after SIGKILL`);
          }
        }
      }
    }
    if (pgid !== undefined) {
      // Dead members may linger as zombies until their parent (pid 1 for orphans) reaps them;
      // give that a moment so that callers see the group gone from the process table too.
      const until = Date.now() + ZOMBIE_WAIT_MS;
      while (groupExists(pgid) && Date.now() < until) await sleep(50);
    }
    await removeCgroups(cg).catch((err: Error) =>
      this.log.warn({ uuid: rec.uuid, err: err.message }, 'cannot remove the workload cgroups'),
    );
    this.forget(rec.uuid);
    this.ended.delete(rec.uuid);
  }

  /** Kills what is left of a workload whose leader ended, and removes its cgroups. */
  private async reapLeftovers(rec: ComponentRecord, leaderGone: boolean): Promise<void> {
    const cg = await this.cgroupsFor(rec.uuid);
    // A pgid cannot be handed out again while a group uses it: a surviving group is ours.
    const pid = barState(rec).pid;
    const pgid = leaderGone ? pid : undefined;
    if (await this.anyAlive(pgid, cg)) {
      this.log.info({ uuid: rec.uuid, pid }, 'bar workload leader ended; killing what is left of it');
      const until = Date.now() + 3000;
      do {
        await this.signalAll(pgid, cg, 'SIGKILL');
        await sleep(20);
      } while ((await this.anyAlive(pgid, cg)) && Date.now() < until);
    }
    await removeCgroups(cg).catch((err: Error) =>
      this.log.warn({ uuid: rec.uuid, err: err.message }, 'cannot remove the workload cgroups'),
    );
  }

  private async observeOne(rec: ComponentRecord, clk: number): Promise<Observed> {
    const { pid, pidStartTicks } = barState(rec);
    const who = pid !== undefined ? await identify(pid, pidStartTicks) : 'ended';
    if (who === 'ours' && pid !== undefined) return { state: 'RUNNING', resource: await this.figures(rec, pid, clk) };
    if (this.ended.has(rec.uuid)) {
      const code = this.ended.get(rec.uuid) ?? null;
      return { state: code === 0 ? 'STOPPED' : 'FAILED', exitCode: code, resource: idle(rec) };
    }
    let exitCode: number | null = null;
    const child = this.children.get(rec.uuid);
    if (child && child.pid === pid) {
      // The exit event follows the reaping of the process closely; wait a little for it.
      const info = await Promise.race([child.exited, sleep(2000).then(() => null)]);
      if (info) exitCode = exitCodeOf(info);
    }
    await this.reapLeftovers(rec, who === 'ended');
    this.forget(rec.uuid);
    this.ended.set(rec.uuid, exitCode);
    if (this.ended.size > MAX_ENDED) this.ended.delete(this.ended.keys().next().value as string);
    this.log.info({ uuid: rec.uuid, pid, exitCode }, 'bar workload ended');
    return { state: exitCode === 0 ? 'STOPPED' : 'FAILED', exitCode, resource: idle(rec) };
  }

  private async figures(rec: ComponentRecord, pid: number, clk: number): Promise<Component['resource']> {
    const cg = await this.cgroupsFor(rec.uuid);
    let members = await cgroupProcs(cg);
    if (members.length === 0) members = await groupMembers(pid);
    if (!members.includes(pid)) members.push(pid);
    let ticks = 0;
    for (const p of members) {
      const st = await readStat(p);
      if (!st) continue;
      ticks += st.utime + st.stime + (p === pid ? st.cutime + st.cstime : 0);
    }
    const now = Date.now();
    const prev = this.samples.get(rec.uuid);
    this.samples.set(rec.uuid, { pid, ticks, at: now });
    let load: number | null = null;
    if (prev && prev.pid === pid && now > prev.at) {
      const pct = ((Math.max(0, ticks - prev.ticks) / clk) * 100_000) / (now - prev.at);
      load = Math.round(pct * 10) / 10;
    }
    let mem = await memoryUsage(cg);
    if (mem === null) {
      const rss = await Promise.all(members.map((p) => vmRssBytes(p)));
      mem = rss.some((r) => r !== null) ? rss.reduce<number>((s, r) => s + (r ?? 0), 0) : null;
    }
    return {
      cpu: { load },
      memory: { mem_used: mem, mem_limit: rec.require.memory || null },
      network: { tx: null, rx: null },
    };
  }

  async observe(recs: readonly ComponentRecord[], signal: AbortSignal): Promise<Map<string, Observed>> {
    const out = new Map<string, Observed>();
    const clk = await clockTicksPerSecond();
    for (const rec of recs) {
      if (signal.aborted) break;
      out.set(rec.uuid, await this.observeOne(rec, clk));
    }
    return out;
  }

  async adopt(recs: readonly ComponentRecord[]): Promise<Map<string, boolean>> {
    const out = new Map<string, boolean>();
    for (const rec of recs) {
      const { pid, pidStartTicks } = barState(rec);
      const who = pid !== undefined && pidStartTicks !== undefined ? await identify(pid, pidStartTicks) : 'ended';
      out.set(rec.uuid, who === 'ours');
      if (who === 'ours') {
        const dir = this.workDirOf(rec.uuid);
        this.workDirs.set(rec.uuid, dir);
        const run = await this.runInfo(rec.uuid);
        if (run) this.runs.set(rec.uuid, run);
        this.logs.watch(
          rec.uuid,
          LOG_FILES.map((f) => path.join(dir, f)),
        );
      } else {
        // Not running any more (or a start cut short by an agent crash): the supervisor marks it
        // FAILED and gives its cores back, so nothing of it may keep running or stay behind.
        await this.reapLeftovers(rec, who === 'ended' && pid !== undefined).catch((err: Error) =>
          this.log.warn({ uuid: rec.uuid, err: err.message }, 'cannot clean up after a vanished bar workload'),
        );
      }
    }
    return out;
  }
}

/**
 * The bar workload driver (see the module comment for what it does and its fallbacks).
 * @param opts fetch limits (ms, bytes), log bound (bytes), cgroup root, cache dir and logger
 */
export function createBarDriver(opts: BarDriverOptions): WorkloadDriver {
  return new BarDriver(opts);
}
