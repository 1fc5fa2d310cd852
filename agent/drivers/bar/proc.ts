/**
 * /proc readers for the bar driver: a process's identity (pid + start time, so that a reused pid
 * is never taken for ours), its state, CPU time and resident memory, and process-group members.
 */
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

/** The fields of `/proc/<pid>/stat` the driver uses. */
export interface ProcStat {
  pid: number;
  /** One letter: R running, S sleeping, D disk wait, T stopped, Z zombie, X dead, ... */
  state: string;
  ppid: number;
  /** Process group id (field 5). */
  pgrp: number;
  /** User and system CPU time of the process itself, clock ticks (fields 14, 15). */
  utime: number;
  stime: number;
  /** CPU time of its waited-for children, clock ticks (fields 16, 17). */
  cutime: number;
  cstime: number;
  /** Start time, clock ticks since boot (field 22): with the pid, the process's identity. */
  startTicks: number;
}

/**
 * Parses one `/proc/<pid>/stat` line. The comm field (2) is in parentheses and may itself hold
 * spaces and parentheses, so the fixed fields are split after the LAST `)`.
 * @returns the fields, or null when the text is not a stat line
 */
export function parseStat(text: string): ProcStat | null {
  const open = text.indexOf(' (');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return null;
  const pid = Number(text.slice(0, open));
  // rest[0] is field 3 (state); field n is rest[n - 3].
  const rest = text
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  const num = (field: number): number => Number(rest[field - 3]);
  const st: ProcStat = {
    pid,
    state: rest[0] ?? '',
    ppid: num(4),
    pgrp: num(5),
    utime: num(14),
    stime: num(15),
    cutime: num(16),
    cstime: num(17),
    startTicks: num(22),
  };
  if (!Number.isInteger(pid) || st.state === '' || !Number.isFinite(st.startTicks) || !Number.isFinite(st.stime)) {
    return null;
  }
  return st;
}

/** `/proc/<pid>/stat` parsed, or null when the process does not exist (any more). */
export async function readStat(pid: number, procRoot = '/proc'): Promise<ProcStat | null> {
  try {
    return parseStat(await readFile(path.join(procRoot, String(pid), 'stat'), 'utf8'));
  } catch {
    return null;
  }
}

/** True for the states of a process that has ended but was not yet reaped (Z) or is going (X). */
export const isDeadState = (state: string): boolean => state === 'Z' || state === 'X' || state === 'x';

/**
 * How a recorded pid relates to the process that has it now: `ours` (same start ticks, still
 * running), `ended` (ours but a zombie, or no such pid), or `reused` (another process has the pid).
 */
export async function identify(
  pid: number,
  startTicks: number | undefined,
  procRoot = '/proc',
): Promise<'ours' | 'ended' | 'reused'> {
  const st = await readStat(pid, procRoot);
  if (!st) return 'ended';
  if (startTicks === undefined || st.startTicks !== startTicks) return 'reused';
  return isDeadState(st.state) ? 'ended' : 'ours';
}

/** Resident memory of a process from `/proc/<pid>/status` (VmRSS), bytes; null when unknown. */
export async function vmRssBytes(pid: number, procRoot = '/proc'): Promise<number | null> {
  try {
    const text = await readFile(path.join(procRoot, String(pid), 'status'), 'utf8');
    const m = /^VmRSS:\s+(\d+)\s*kB/m.exec(text);
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Pids of all processes whose process group is `pgid` (a scan of /proc). */
export async function groupMembers(pgid: number, procRoot = '/proc'): Promise<number[]> {
  let names: string[];
  try {
    names = await readdir(procRoot);
  } catch {
    return [];
  }
  const out: number[] = [];
  await Promise.all(
    names
      .filter((n) => /^\d+$/.test(n))
      .map(async (n) => {
        const st = await readStat(Number(n), procRoot);
        if (st && st.pgrp === pgid && !isDeadState(st.state)) out.push(st.pid);
      }),
  );
  return out;
}

/** True while any process of group `pgid` exists (zombies included). */
export function groupExists(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * True while a live (not zombie) process of group `pgid` exists. Zombies hold no memory or CPU
 * and leave their cgroup at exit; they linger until their parent (often pid 1 for orphans) reaps
 * them, which some inits do only now and then. The /proc scan only runs while the group exists.
 */
export async function groupAlive(pgid: number, procRoot = '/proc'): Promise<boolean> {
  if (!groupExists(pgid)) return false;
  return (await groupMembers(pgid, procRoot)).length > 0;
}

/** Sends `signal` to process group `pgid`; a group that is already gone is not an error. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** Sends `signal` to one process; a process that is already gone is not an error. */
export function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

let clkTck: Promise<number> | undefined;

/** Clock ticks per second (USER_HZ) from `getconf CLK_TCK`; 100 (the Linux value) when unknown. */
export function clockTicksPerSecond(): Promise<number> {
  clkTck ??= new Promise((resolve) => {
    execFile('getconf', ['CLK_TCK'], { timeout: 2000 }, (err, stdout) => {
      const n = Number(String(stdout).trim());
      resolve(!err && Number.isInteger(n) && n > 0 ? n : 100);
    });
  });
  return clkTck;
}

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
