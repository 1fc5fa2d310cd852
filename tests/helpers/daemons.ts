/**
 * Starting real muster daemons (child processes) for end-to-end tests, and polling helpers. The
 * process, port, polling and Prometheus helpers live in testkit/process.ts (shared with bench/)
 * and are re-exported here, so a test needs one import.
 *
 * Access control (docs/operations.md "Users and access"): every manager started here gets the
 * test admin (`admin`, a random password in a 0600 file named by
 * MUSTER_MANAGER_AUTH_INITIAL_ADMIN_PASSWORD_FILE, never on a command line); `runMuster` logs the
 * CLI in as that admin (once per manager URL, again when the manager answers 401) and passes the
 * token as MUSTER_TOKEN; `apiFetch` and `getJson` send it as `Authorization: Bearer`.
 */

import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { MUSTER, type Proc, startProcess, waitFor } from '../../testkit/process.js';

export { freePort, MUSTER, metric, type Proc, ROOT, sets, startProcess, waitFor } from '../../testkit/process.js';

/** The test admin every manager started here gets: its user name, password and the 0600 file holding it. */
export interface TestAdmin {
  user: string;
  password: string;
  passwordFile: string;
}

let admin: TestAdmin | undefined;
/** The test admin (made once per test process, in a temporary directory). */
export function testAdmin(): TestAdmin {
  if (!admin) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'muster-admin-'));
    const password = randomBytes(18).toString('base64url');
    const passwordFile = path.join(dir, 'initial-admin-password');
    writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
    admin = { user: 'admin', password, passwordFile };
  }
  return admin;
}

/** The env var that names the test admin's password file to a manager. */
export const ADMIN_FILE_ENV = 'MUSTER_MANAGER_AUTH_INITIAL_ADMIN_PASSWORD_FILE';

/**
 * Starts `muster <args>`, optionally inside network namespace `netns` (`ip netns exec`). A
 * manager gets the test admin ({@link testAdmin}) unless `env` names another password file.
 */
export function startMuster(args: string[], opts: { netns?: string; env?: NodeJS.ProcessEnv } = {}): Proc {
  const env: NodeJS.ProcessEnv = { ...process.env, MUSTER_FROM_SOURCE: '1', ...opts.env };
  if (args[0] === 'manager' && !env[ADMIN_FILE_ENV]) env[ADMIN_FILE_ENV] = testAdmin().passwordFile;
  return opts.netns
    ? startProcess('ip', ['netns', 'exec', opts.netns, process.execPath, MUSTER, ...args], env)
    : startProcess(process.execPath, [MUSTER, ...args], env);
}

/** Verbs that call no API, or that handle credentials themselves. */
const NO_LOGIN = new Set(['manager', 'agent', 'login', 'logout', 'version', '--version', '--help', 'help']);

/** The manager URL a CLI run talks to: `--manager URL` in args, else $MUSTER_MANAGER_URL, else the default. */
function managerOf(args: string[], env?: NodeJS.ProcessEnv): string {
  const i = args.indexOf('--manager');
  return ((i >= 0 ? args[i + 1] : undefined) ?? env?.MUSTER_MANAGER_URL ?? 'http://127.0.0.1:3926').replace(/\/+$/, '');
}

const tokens = new Map<string, string>();

/**
 * A session token of the test admin on the manager at `base` (logged in with the CLI, inside
 * `netns` when given; cached per namespace and URL). Throws when the login fails.
 * @param fresh log in again (the cached token was refused: a new manager on the same URL)
 */
export async function adminToken(base: string, netns?: string, fresh = false): Promise<string> {
  const key = `${netns ?? ''}|${base}`;
  const cached = tokens.get(key);
  if (cached && !fresh) return cached;
  const a = testAdmin();
  const cfg = path.join(mkdtempSync(path.join(os.tmpdir(), 'muster-cli-')), 'cli.yaml');
  const p = startMuster(['--manager', base, 'login', '--user', a.user, '--password-file', a.passwordFile], {
    ...(netns ? { netns } : {}),
    env: { MUSTER_CLI_CONFIG: cfg, MUSTER_TOKEN: '' },
  });
  const code = await p.exited;
  if (code !== 0) throw new Error(`muster login on ${base} exited ${code}: ${p.output()}`);
  const token = (YAML.parse(readFileSync(cfg, 'utf8')) as { token: string }).token;
  tokens.set(key, token);
  return token;
}

/**
 * Runs `muster <args>` to completion; resolves with its exit code and output. With `timeoutMs`,
 * a command still running after it is killed and the call throws (with its output). A verb that
 * calls the API runs as the test admin (MUSTER_TOKEN from {@link adminToken}) unless `env` sets
 * MUSTER_TOKEN (even to ""); when the manager cannot be reached to log in, the verb runs without.
 */
export async function runMuster(
  args: string[],
  opts: { netns?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<{ code: number | string | null; output: string }> {
  const verb = args.find((a, i) => !a.startsWith('-') && args[i - 1] !== '--manager');
  if (opts.env?.MUSTER_TOKEN !== undefined || NO_LOGIN.has(verb ?? '') || args.includes('--help')) {
    return runOnce(args, opts);
  }
  const base = managerOf(args, opts.env);
  const login = (fresh: boolean) => adminToken(base, opts.netns, fresh).catch(() => '');
  let r = await runOnce(args, { ...opts, env: { ...opts.env, MUSTER_TOKEN: await login(false) } });
  if (r.code === 5 && /not logged in/.test(r.output)) {
    r = await runOnce(args, { ...opts, env: { ...opts.env, MUSTER_TOKEN: await login(true) } });
  }
  return r;
}

async function runOnce(
  args: string[],
  opts: { netns?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number },
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

/**
 * `fetch` as the test admin for a URL under /api/v1/ (other than /login) that has no
 * Authorization header: logs in once per manager (root namespace) and again when answered 401.
 * Any other request is sent as it is.
 */
export async function apiFetch(url: string, init: RequestInit = {}): Promise<Response> {
  const u = new URL(url);
  const headers = new Headers(init.headers);
  if (!u.pathname.startsWith('/api/v1/') || u.pathname === '/api/v1/login' || headers.has('authorization')) {
    return fetch(url, init);
  }
  const send = async (fresh: boolean) => {
    const token = await adminToken(u.origin, undefined, fresh).catch(() => '');
    const h = new Headers(headers);
    if (token) h.set('authorization', `Bearer ${token}`);
    return fetch(url, { ...init, headers: h });
  };
  const res = await send(false);
  return res.status === 401 ? send(true) : res;
}

/** GETs a URL (as the test admin under /api/v1/) and parses JSON; throws on a non-2xx status. */
export async function getJson<T = unknown>(url: string): Promise<T> {
  const res = await apiFetch(url, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return (await res.json()) as T;
}
