/**
 * Child processes, ports, polling and Prometheus text, shared by tests/ and bench/ (neither
 * imports the other): the repository root, `startProcess`, the `--set` argv builder, a free TCP
 * port, `waitFor`, and the counter/gauge reader `metric`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The CLI entry point. */
export const MUSTER = path.join(ROOT, 'bin', 'muster.js');

/** A running daemon or CLI process. */
export interface Proc {
  proc: ChildProcess;
  /** Everything it printed so far (stdout and stderr; only the last `keepBytes` when set). */
  output(): string;
  /** Resolves with the exit code (or signal name) when it exits. */
  exited: Promise<number | string | null>;
  /** Sends `signal` (default SIGTERM) and waits for the exit, SIGKILL after 5 s. */
  stop(signal?: NodeJS.Signals): Promise<number | string | null>;
}

/**
 * Starts `cmd args` in the repository root with its output captured. The process is killed when
 * this process exits.
 * @param opts.keepBytes keep only the last this many characters of output (long-running children)
 */
export function startProcess(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  opts: { keepBytes?: number } = {},
): Proc {
  const proc = spawn(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = opts.keepBytes;
  const add = (d: Buffer) => {
    out += d.toString();
    if (keep !== undefined && out.length > keep) out = out.slice(-keep);
  };
  proc.stdout?.on('data', add);
  proc.stderr?.on('data', add);
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
