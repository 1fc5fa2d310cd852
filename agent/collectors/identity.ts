/**
 * What the board is: cpu type, os type and cpu architecture, reported in heartbeats.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { promisify } from 'node:util';
import { type Collector, type CollectorContext, defineCollector } from './collector.js';

const execFileAsync = promisify(execFile);

/** Detected identity strings; `unknown` where nothing could be found. */
export interface IdentitySample {
  /** e.g. `Phytium,D2000/8`. */
  cpu_type: string;
  /** e.g. `Kylin Linux Advanced Server V10 (Sword)`. */
  os_type: string;
  /** `os.machine()`, e.g. `aarch64`, `x86_64`. */
  cpu_arch: string;
}

/** Options of {@link createIdentityCollector}; the overrides are the config's `identity` section. */
export interface IdentityOptions {
  /** identity.cpu_type: when non-empty, reported as is instead of detecting. */
  cpuTypeOverride?: string;
  /** identity.os_type: when non-empty, reported as is instead of detecting. */
  osTypeOverride?: string;
  /** os-release file; default `/etc/os-release`, then `/usr/lib/os-release`. */
  osReleasePath?: string;
  /** cpuinfo file; default `${ctx.procRoot}/cpuinfo`. */
  cpuinfoPath?: string;
  /** lscpu command; default `lscpu`. */
  lscpuCommand?: string;
}

/**
 * The cpu type in /proc/cpuinfo text: the first `model name` (x86, and Kylin's aarch64 kernels),
 * else the `Hardware` line (older arm kernels); undefined when neither is there.
 */
export function cpuTypeFromCpuinfo(text: string): string | undefined {
  let hardware: string | undefined;
  for (const line of text.split('\n')) {
    const m = /^([^:]+?)\s*:\s*(.*)$/.exec(line);
    if (!m?.[1] || !m[2]?.trim()) continue;
    if (m[1] === 'model name') return m[2].trim();
    if (m[1] === 'Hardware' && hardware === undefined) hardware = m[2].trim();
  }
  return hardware;
}

/** The `Model name:` value in `lscpu` output (LC_ALL=C); undefined when absent or `-`. */
export function cpuTypeFromLscpu(text: string): string | undefined {
  const m = /^Model name:\s*(.+)$/m.exec(text);
  const v = m?.[1]?.trim();
  return v && v !== '-' ? v : undefined;
}

/** PRETTY_NAME from os-release(5) text, quotes and backslash escapes removed; undefined when absent. */
export function prettyNameFromOsRelease(text: string): string | undefined {
  const m = /^PRETTY_NAME=(.*)$/m.exec(text);
  if (!m?.[1]) return undefined;
  let v = m[1].trim();
  if (v.length >= 2 && (v[0] === '"' || v[0] === "'") && v.at(-1) === v[0]) v = v.slice(1, -1);
  v = v.replace(/\\(.)/g, '$1').trim();
  return v || undefined;
}

async function readOptional(file: string, signal: AbortSignal): Promise<string | undefined> {
  try {
    return await readFile(file, { encoding: 'utf8', signal });
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    return undefined;
  }
}

/**
 * The `identity` collector (every `collect.disk_interval_ms`).
 * - cpu_type: `opts.cpuTypeOverride`, else `model name` / `Hardware` from cpuinfo, else
 *   `Model name` from `lscpu` (run once with LC_ALL=C and a collect.timeout_ms limit; a missing
 *   lscpu is tolerated), else `unknown`.
 * - os_type: `opts.osTypeOverride`, else PRETTY_NAME of os-release, else `${os.type()} ${os.release()}`.
 * - cpu_arch: `os.machine()`.
 * @returns a collector whose `collect` only throws when `signal` aborts
 */
export function createIdentityCollector(ctx: CollectorContext, opts: IdentityOptions = {}): Collector<IdentitySample> {
  const cpuinfoPath = opts.cpuinfoPath ?? `${ctx.procRoot}/cpuinfo`;
  const osReleasePaths = opts.osReleasePath ? [opts.osReleasePath] : ['/etc/os-release', '/usr/lib/os-release'];
  /** lscpu's answer, asked once: a string, null when it had none, undefined when not asked yet. */
  let lscpuAnswer: string | null | undefined;

  async function fromLscpu(signal: AbortSignal): Promise<string | undefined> {
    if (lscpuAnswer !== undefined) return lscpuAnswer ?? undefined;
    try {
      const { stdout } = await execFileAsync(opts.lscpuCommand ?? 'lscpu', [], {
        timeout: ctx.config.timeout_ms,
        signal,
        encoding: 'utf8',
        env: { ...process.env, LC_ALL: 'C' },
      });
      lscpuAnswer = cpuTypeFromLscpu(stdout) ?? null;
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.name === 'AbortError') throw err;
      if (e.code === 'ENOENT') lscpuAnswer = null;
      else ctx.log.debug({ err: e.message }, 'lscpu failed');
    }
    return lscpuAnswer ?? undefined;
  }

  async function cpuType(signal: AbortSignal): Promise<string> {
    if (opts.cpuTypeOverride) return opts.cpuTypeOverride;
    const cpuinfo = await readOptional(cpuinfoPath, signal);
    return (cpuinfo === undefined ? undefined : cpuTypeFromCpuinfo(cpuinfo)) ?? (await fromLscpu(signal)) ?? 'unknown';
  }

  async function osType(signal: AbortSignal): Promise<string> {
    if (opts.osTypeOverride) return opts.osTypeOverride;
    for (const file of osReleasePaths) {
      const text = await readOptional(file, signal);
      if (text === undefined) continue;
      const pretty = prettyNameFromOsRelease(text);
      if (pretty) return pretty;
    }
    return `${os.type()} ${os.release()}`;
  }

  return {
    name: 'identity',
    initial: { cpu_type: 'unknown', os_type: 'unknown', cpu_arch: 'unknown' },
    async collect(signal: AbortSignal): Promise<IdentitySample> {
      const [cpu_type, os_type] = await Promise.all([cpuType(signal), osType(signal)]);
      return { cpu_type, os_type, cpu_arch: os.machine() };
    },
  };
}

/**
 * Registration of `identity`: the heartbeat's `cpu_type`, `os_type` (config overrides
 * `identity.cpu_type` / `os_type` win) and `cpu_arch` (docs/protocol.md "2. Heartbeat").
 */
export const identityCollector = defineCollector<IdentitySample>({
  name: 'identity',
  interval: 'disk_interval_ms',
  create: (ctx) =>
    createIdentityCollector(ctx, {
      cpuTypeOverride: ctx.identity?.cpu_type ?? '',
      osTypeOverride: ctx.identity?.os_type ?? '',
      ...(ctx.osReleasePath ? { osReleasePath: ctx.osReleasePath } : {}),
    }),
  heartbeat(s, data) {
    data.cpu_type = s.cpu_type;
    data.os_type = s.os_type;
    data.cpu_arch = s.cpu_arch;
  },
});
