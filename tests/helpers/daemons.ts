/** Starting real muster daemons (child processes) for end-to-end tests, and polling helpers. */
import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The CLI entry point. */
export const MUSTER = path.join(ROOT, 'bin', 'muster.js');

/** A running daemon or CLI process. */
export interface Proc {
  proc: ChildProcess;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** Resolves with the exit code (or signal name) when it exits. */
  exited: Promise<number | string | null>;
  /** Sends `signal` (default SIGTERM) and waits for the exit, SIGKILL after 5 s. */
  stop(signal?: NodeJS.Signals): Promise<number | string | null>;
}

/**
 * Starts `cmd args` with its output captured. The process is killed when the test process exits.
 */
export function startProcess(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Proc {
  const proc = spawn(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  proc.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | string | null>((resolve) => proc.on('exit', (code, sig) => resolve(code ?? sig)));
  const kill = () => proc.kill('SIGKILL');
  process.once('exit', kill);
  proc.once('exit', () => process.off('exit', kill));
  return {
    proc,
    output: () => out,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode ?? proc.signalCode;
      proc.kill(signal);
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      const r = await exited;
      clearTimeout(t);
      return r;
    },
  };
}

/** Starts `muster <args>`, optionally inside network namespace `netns` (`ip netns exec`). */
export function startMuster(args: string[], opts: { netns?: string; env?: NodeJS.ProcessEnv } = {}): Proc {
  const env = { ...process.env, MUSTER_FROM_SOURCE: '1', ...opts.env };
  return opts.netns
    ? startProcess('ip', ['netns', 'exec', opts.netns, process.execPath, MUSTER, ...args], env)
    : startProcess(process.execPath, [MUSTER, ...args], env);
}

/**
 * Runs `muster <args>` to completion; resolves with its exit code and output. With `timeoutMs`,
 * a command still running after it is killed and the call throws (with its output).
 */
export async function runMuster(
  args: string[],
  opts: { netns?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<{ code: number | string | null; output: string }> {
  const p = startMuster(args, opts);
  let t: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((r) => {
    if (opts.timeoutMs !== undefined) t = setTimeout(() => r('timeout'), opts.timeoutMs);
  });
  const code = await Promise.race([p.exited, timedOut]);
  clearTimeout(t);
  if (code === 'timeout') {
    await p.stop('SIGKILL');
    throw new Error(`muster ${args.join(' ')} still running after ${opts.timeoutMs} ms:\n${p.output()}`);
  }
  return { code, output: p.output() };
}

/**
 * Polls `fn` until it returns a truthy value.
 * @throws after `timeoutMs` with `what` and the last error in the message
 */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  timeoutMs = 15_000,
  intervalMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`,
      );
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Failure handling for tests that run several daemons: `withLogs` appends the daemons' output to
 * any failure and refuses to run when one has died; `until` is waitFor that fails at once when a
 * daemon in `running()` exits, so a crash fails fast instead of timing out.
 * @param running the daemons that must stay up, by name
 * @param logs the output to attach to failures
 */
export function watchDaemons(running: () => [string, Proc][], logs: () => string) {
  const withLogs = async (fn: () => Promise<void>): Promise<void> => {
    try {
      const dead = running().filter(([, p]) => p.proc.exitCode !== null || p.proc.signalCode !== null);
      if (dead.length > 0) throw new Error(`daemons not running: ${dead.map(([n]) => n).join(', ')}`);
      await fn();
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      e.message += `\n\ndaemon output:\n${logs()}`;
      throw e;
    }
  };
  const died = (): Promise<never> => {
    const p = new Promise<never>((_, reject) => {
      for (const [name, d] of running()) void d.exited.then((code) => reject(new Error(`${name} exited (${code})`)));
    });
    p.catch(() => {});
    return p;
  };
  const until = <T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 15_000, everyMs = 250) =>
    Promise.race([waitFor(what, fn, timeoutMs, everyMs), died()]);
  return { withLogs, until };
}

/** GETs a URL and parses JSON; throws on a non-2xx status. */
export async function getJson<T = unknown>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

/** `--set path=value` arguments for a daemon, one pair per key. */
export function sets(kv: Record<string, string | number>): string[] {
  return Object.entries(kv).flatMap(([k, v]) => ['--set', `${k}=${v}`]);
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Reads one counter or gauge (summing matching label sets) from a Prometheus text page. */
export function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const set = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => set.includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}
