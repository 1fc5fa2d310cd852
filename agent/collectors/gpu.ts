/**
 * NVIDIA GPUs via `nvidia-smi --query-gpu=... --format=csv,noheader,nounits`, run asynchronously
 * with a time limit (never execSync). No nvidia-smi, or no devices, means no GPUs: `[]`.
 */
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { GpuResource } from '../../common/protocol.js';
import { type Collector, type CollectorContext, defineCollector } from './collector.js';

const execFileAsync = promisify(execFile);

/** The nvidia-smi query, in the column order {@link parseNvidiaSmiCsv} expects. */
export const NVIDIA_SMI_ARGS: readonly string[] = [
  '--query-gpu=index,name,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw',
  '--format=csv,noheader,nounits',
];

const MIB = 1024 * 1024;
/** A missing nvidia-smi is looked for again after this long, ms (no process is spawned meanwhile). */
export const GPU_MISSING_RECHECK_MS = 60_000;

/**
 * Whether `cmd` names an executable: itself when it has a `/`, else in one of `PATH`'s
 * directories. A few access(2) calls: much cheaper than spawning a process to learn it is missing.
 */
export async function executableExists(cmd: string, envPath = process.env.PATH ?? ''): Promise<boolean> {
  const candidates = cmd.includes('/')
    ? [cmd]
    : envPath
        .split(':')
        .filter(Boolean)
        .map((d) => path.join(d, cmd));
  for (const c of candidates) {
    try {
      await access(c, constants.X_OK);
      return true;
    } catch {
      // not here
    }
  }
  return false;
}

/** Extra time after collect.timeout_ms before an unkillable nvidia-smi is given up on, ms. */
const KILL_GRACE_MS = 500;

const round2 = (x: number): number => Math.round(x * 100) / 100;

/** A numeric csv field, or null for `[N/A]`, `[Not Supported]`, `N/A`, empty and any other text. */
function num(field: string | undefined): number | null {
  const f = (field ?? '').trim();
  if (!/^-?\d+(\.\d+)?$/.test(f)) return null;
  return Number(f);
}

/**
 * Parses nvidia-smi output for {@link NVIDIA_SMI_ARGS}: one line per GPU,
 * `index, name, utilization %, memory.used MiB, memory.total MiB, temperature °C, power W`.
 * The index is the first field and the last five are numbers; everything between is the name
 * (so a name with a comma survives). Results: compute_usage %, mem_used/mem_total bytes,
 * mem_usage = used / total * 100 (%, 2 decimals), temperature °C, power W (2 decimals); fields
 * that are `[N/A]`, `[Not Supported]`, `N/A` or empty are null; voltage and current are always
 * null (nvidia-smi reports neither). Blank lines are skipped.
 * @throws Error on a line with fewer than 7 fields or a non-integer index
 */
export function parseNvidiaSmiCsv(text: string): GpuResource[] {
  const out: GpuResource[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const f = line.split(',');
    const indexText = (f[0] ?? '').trim();
    if (f.length < 7 || !/^\d+$/.test(indexText)) throw new Error(`unexpected nvidia-smi output line: ${line}`);
    const [util, memUsed, memTotal, temp, power] = f.slice(-5).map(num);
    const mem_used = memUsed == null ? null : Math.round(memUsed * MIB);
    const mem_total = memTotal == null ? null : Math.round(memTotal * MIB);
    out.push({
      index: Number(indexText),
      name: f.slice(1, -5).join(',').trim(),
      compute_usage: util ?? null,
      mem_usage: memUsed != null && memTotal != null && memTotal > 0 ? round2((memUsed / memTotal) * 100) : null,
      mem_used,
      mem_total,
      temperature: temp ?? null,
      voltage: null,
      current: null,
      power: power == null ? null : round2(power),
    });
  }
  return out;
}

/**
 * The `gpu` collector (every `collect.gpu_interval_ms`): runs `ctx.config.nvidia_smi` with {@link NVIDIA_SMI_ARGS},
 * `timeout: ctx.config.timeout_ms` (ms, then SIGKILL) and `signal`. An empty command, a missing
 * binary (ENOENT) or "No devices were found" give `[]`; a binary found missing is not spawned
 * again, only looked for on `PATH` every {@link GPU_MISSING_RECHECK_MS}. A nvidia-smi that cannot be killed (stuck
 * in the driver) is given up on KILL_GRACE_MS later, and no second one is started until it exits.
 * @returns a collector whose `collect` throws on a timeout, an abort, another failure of
 *   nvidia-smi (e.g. "couldn't communicate with the NVIDIA driver") or unparsable output
 */
export function createGpuCollector(ctx: CollectorContext): Collector<GpuResource[]> {
  /** An nvidia-smi started by this collector has not exited yet. */
  let busy = false;
  let warnedStuck = false;
  /** Date.now() when the command was last found missing (0: not known missing), and which one. */
  let missingAt = 0;
  let missingCmd = '';

  async function run(signal: AbortSignal): Promise<string> {
    const { nvidia_smi: cmd, timeout_ms } = ctx.config;
    const child = execFileAsync(cmd, NVIDIA_SMI_ARGS, {
      timeout: timeout_ms,
      killSignal: 'SIGKILL',
      signal,
      encoding: 'utf8',
      maxBuffer: 1024 * 1024,
      windowsHide: true,
    });
    busy = true;
    const done = (): void => {
      busy = false;
      warnedStuck = false;
    };
    child.then(done, done);
    let timer: NodeJS.Timeout | undefined;
    const backstop = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`nvidia-smi did not exit within ${timeout_ms + KILL_GRACE_MS} ms`)),
        timeout_ms + KILL_GRACE_MS,
      );
      timer.unref();
    });
    try {
      const { stdout } = await Promise.race([child, backstop]);
      return stdout;
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stdout?: string; stderr?: string; killed?: boolean };
      if (e.code === 'ENOENT') return '';
      if (/No devices were found/i.test(`${e.stdout ?? ''}${e.stderr ?? ''}`)) return '';
      if (e.name === 'AbortError') throw new Error('nvidia-smi aborted');
      if (e.killed) throw new Error(`nvidia-smi timed out after ${timeout_ms} ms`);
      const detail = `${e.stderr ?? ''}${e.stdout ?? ''}`.trim().split('\n')[0] || e.message;
      throw new Error(`nvidia-smi failed: ${detail}`);
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    name: 'gpu',
    initial: [],
    async collect(signal: AbortSignal): Promise<GpuResource[]> {
      const cmd = ctx.config.nvidia_smi;
      if (!cmd) return [];
      // Most boards have no NVIDIA GPU: learn that with access(2), not a spawn every tick.
      if (missingCmd === cmd && Date.now() - missingAt < GPU_MISSING_RECHECK_MS) return [];
      if (!(await executableExists(cmd))) {
        missingAt = Date.now();
        missingCmd = cmd;
        return [];
      }
      missingCmd = '';
      if (busy) {
        if (!warnedStuck) {
          warnedStuck = true;
          ctx.log.warn({ cmd: ctx.config.nvidia_smi }, 'an earlier nvidia-smi has not exited; not starting another');
        }
        throw new Error('an earlier nvidia-smi has not exited yet');
      }
      const stdout = await run(signal);
      if (/No devices were found/i.test(stdout)) return [];
      return parseNvidiaSmiCsv(stdout);
    },
  };
}

/**
 * Registration of `gpu`: `resource.gpu[]` and the heartbeat's `gpu` (index and name of each;
 * docs/protocol.md "resource.gpu[]", "2. Heartbeat").
 */
export const gpuCollector = defineCollector<GpuResource[]>({
  name: 'gpu',
  interval: 'gpu_interval_ms',
  create: createGpuCollector,
  heartbeat(s, data) {
    data.gpu = s.map((g) => ({ index: g.index, name: g.name }));
  },
  resource(s, data) {
    data.resource.gpu = s;
  },
});
