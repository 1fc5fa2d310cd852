/**
 * Starts a bar workload so that it never runs outside its limits: the child is a tiny shell in a
 * new session and process group (detached: setsid, so pgid = sid = pid) that waits for a line on
 * fd 3, a pipe from the agent. Meanwhile the driver moves it into the workload's cgroups and reads
 * its start time; then it writes `go` and the shell closes fd 3 and `exec`s taskset (core
 * pinning) and the command. Children inherit the cgroups, the affinity and the process group.
 * Had the agent died before `go`, the pipe's EOF makes the shell exit (125) instead of running
 * the workload unconfined or hanging forever (which a self-SIGSTOP would).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, open, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { DeployError, RESULT } from '../../deploy/results.js';
import { groupAlive, isDeadState, readStat, signalGroup, sleep } from './proc.js';

/** How a workload process ended. */
export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** What to start. */
export interface LaunchSpec {
  /** argv of the workload. */
  command: string[];
  /** The bundle directory. */
  cwd: string;
  /** The workload's whole environment. */
  env: Record<string, string>;
  stdoutPath: string;
  stderrPath: string;
  /** taskset binary and core list (`2,3`), or null for no affinity pinning. */
  taskset: { bin: string; cpus: string } | null;
  /** Runs while the process is stopped and before the workload runs (moves it into its cgroups). */
  beforeRun: (pid: number) => Promise<void>;
}

/** A started workload. */
export interface Launched {
  child: ChildProcess;
  pid: number;
  /** /proc/<pid>/stat field 22, clock ticks since boot. */
  startTicks: number;
  /** Resolves when the process ends (the exit event). */
  exited: Promise<ExitInfo>;
}

/** The wrapper script: wait for `go` on fd 3, then become the workload; EOF → exit 125. */
const WRAPPER = 'IFS= read -r go <&3; exec 3<&-; [ "$go" = go ] || exit 125; exec "$@"';

/** True when `p` is a regular file the agent may execute. */
export async function isExecutable(p: string): Promise<boolean> {
  const st = await stat(p).catch(() => null);
  if (!st?.isFile()) return false;
  return access(p, constants.X_OK).then(
    () => true,
    () => false,
  );
}

/**
 * Finds `cmd` as the kernel would: a path containing `/` relative to `cwd`, else on `PATH`.
 * @throws DeployError RUNTIME_ERROR when it is missing or not executable
 */
export async function resolveCommand(cmd: string, cwd: string, pathVar: string): Promise<string> {
  const candidates = cmd.includes('/')
    ? [path.resolve(cwd, cmd)]
    : pathVar
        .split(':')
        .filter(Boolean)
        .map((d) => path.resolve(cwd, d, cmd));
  for (const c of candidates) {
    const st = await stat(c).catch(() => null);
    if (!st?.isFile()) continue;
    if (await isExecutable(c)) return c;
    throw new DeployError(RESULT.RUNTIME_ERROR, `command ${JSON.stringify(cmd)}: ${c} is not executable`);
  }
  throw new DeployError(
    RESULT.RUNTIME_ERROR,
    cmd.includes('/')
      ? `command ${JSON.stringify(cmd)}: no such file in the bundle`
      : `command ${JSON.stringify(cmd)}: not found on PATH (${pathVar}); use ./${cmd} for a file in the bundle`,
  );
}

/** SIGKILLs process group `pgid` and waits up to `waitMs` ms for it to be gone (zombies aside). */
export async function killGroupNow(pgid: number, waitMs = 3000): Promise<boolean> {
  signalGroup(pgid, 'SIGKILL');
  const until = Date.now() + waitMs;
  while (await groupAlive(pgid)) {
    if (Date.now() >= until) return false;
    await sleep(20);
  }
  return true;
}

/**
 * Starts the workload stopped, runs `beforeRun`, then lets it go.
 * @throws DeployError RUNTIME_ERROR when the process cannot be started; nothing is left running
 */
export async function launch(spec: LaunchSpec): Promise<Launched> {
  const inner = [...(spec.taskset ? [spec.taskset.bin, '-c', spec.taskset.cpus] : []), ...spec.command];
  const out = await open(spec.stdoutPath, 'a');
  const err = await open(spec.stderrPath, 'a').catch(async (e) => {
    await out.close();
    throw e;
  });
  let child: ChildProcess;
  try {
    child = spawn('/bin/sh', ['-c', WRAPPER, 'muster-bar', ...inner], {
      cwd: spec.cwd,
      env: spec.env,
      detached: true,
      stdio: ['ignore', out.fd, err.fd, 'pipe'],
    });
  } catch (e) {
    await out.close();
    await err.close();
    throw new DeployError(RESULT.RUNTIME_ERROR, `cannot spawn /bin/sh: ${(e as Error).message}`);
  }
  // Listeners first (synchronously): 'spawn' / 'error' / 'exit' may fire during the awaits below.
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  // The child has its own copies of the fds once spawn() has returned.
  await out.close();
  await err.close();
  try {
    await spawned;
  } catch (e) {
    throw new DeployError(RESULT.RUNTIME_ERROR, `cannot spawn /bin/sh: ${(e as Error).message}`);
  }
  child.on('error', () => undefined);
  const pid = child.pid as number;
  const gate = child.stdio[3] as Writable;
  gate.on('error', () => undefined);
  try {
    const st = await readStat(pid);
    if (!st || isDeadState(st.state)) throw new Error('the wrapper shell exited before the workload ran');
    await spec.beforeRun(pid);
    await new Promise<void>((resolve, reject) => gate.write('go\n', (e) => (e ? reject(e) : resolve())));
    gate.destroy();
    child.unref();
    return { child, pid, startTicks: st.startTicks, exited };
  } catch (e) {
    gate.destroy();
    await killGroupNow(pid);
    throw e instanceof DeployError
      ? e
      : new DeployError(RESULT.RUNTIME_ERROR, `cannot start ${spec.command[0]}: ${(e as Error).message}`);
  }
}
