/** The CLI's HTTP client for the manager's REST API (/api/v1/...). */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import YAML from 'yaml';
import { MANAGER_PORT } from '../common/constants.js';

/** An error the CLI prints as one line and exits with `exitCode`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/**
 * The manager's base URL: `--manager`, else $MUSTER_MANAGER_URL, else `manager:` in
 * $MUSTER_CLI_CONFIG or ~/.config/muster/cli.yaml, else http://127.0.0.1:3926.
 */
export function managerUrl(flag?: string): string {
  if (flag) return flag.replace(/\/+$/, '');
  if (process.env.MUSTER_MANAGER_URL) return process.env.MUSTER_MANAGER_URL.replace(/\/+$/, '');
  const file = process.env.MUSTER_CLI_CONFIG ?? path.join(os.homedir(), '.config', 'muster', 'cli.yaml');
  try {
    const doc = YAML.parse(readFileSync(file, 'utf8')) as { manager?: unknown } | null;
    if (typeof doc?.manager === 'string' && doc.manager) return doc.manager.replace(/\/+$/, '');
  } catch {
    // no CLI config file: use the default
  }
  return `http://127.0.0.1:${MANAGER_PORT}`;
}

/** Who runs the CLI: $MUSTER_USER, else the login name (`cli` when there is none). */
export function cliUser(): string {
  const env = process.env.MUSTER_USER?.trim();
  if (env) return env;
  try {
    return os.userInfo().username || 'cli';
  } catch {
    return 'cli'; // a uid without a passwd entry (some containers)
  }
}

/**
 * The header that names who ran an operation, for the manager's history (`who`). A header value
 * is ASCII: control characters are dropped and any other character is percent-encoded (UTF-8).
 */
export function userHeader(): Record<string, string> {
  const name = cliUser()
    .replace(/\p{Cc}/gu, '')
    .replace(/[^\x20-\x7e]+/gu, (s) => encodeURIComponent(s));
  return { 'x-muster-user': name || 'cli' };
}

/**
 * Calls the manager and returns the parsed JSON body (null for an empty one, e.g. 204).
 * `headers` are sent as given, e.g. `userHeader()` on the calls that change something.
 * @throws CliError with exit code 3 when the manager cannot be reached, 1 with the API's message otherwise
 */
export async function api<T>(
  base: string,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  pathname: string,
  body?: unknown,
  timeoutMs = 10_000,
  headers: Record<string, string> = {},
): Promise<T> {
  let res: Awaited<ReturnType<typeof request>>;
  try {
    res = await request(`${base}${pathname}`, {
      method,
      headers: { ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    const e = err as Error & { code?: string };
    throw new CliError(
      `cannot reach the manager at ${base} (${e.code ?? e.name}: ${e.message}); is 'muster manager' running? Point to it with --manager URL or MUSTER_MANAGER_URL.`,
      3,
    );
  }
  const text = await res.body.text();
  let doc: unknown;
  try {
    doc = text ? JSON.parse(text) : null;
  } catch {
    throw new CliError(`the manager at ${base} answered ${res.statusCode} with a body that is not JSON`);
  }
  if (res.statusCode >= 400) {
    const msg = (doc as { message?: string } | null)?.message ?? `HTTP ${res.statusCode}`;
    throw new CliError(msg, res.statusCode === 404 ? 4 : 1);
  }
  return doc as T;
}
