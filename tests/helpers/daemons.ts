/**
 * Starting real muster daemons (child processes) for end-to-end tests, and polling helpers. The
 * process, port, polling and Prometheus helpers live in testkit/process.ts (shared with bench/)
 * and are re-exported here, so a test needs one import.
 */
import { MUSTER, type Proc, startProcess, waitFor } from '../../testkit/process.js';

export { freePort, MUSTER, metric, type Proc, ROOT, sets, startProcess, waitFor } from '../../testkit/process.js';

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
