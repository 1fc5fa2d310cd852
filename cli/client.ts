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

/**
 * Calls the manager and returns the parsed JSON body.
 * @throws CliError with exit code 3 when the manager cannot be reached, 1 with the API's message otherwise
 */
export async function api<T>(
  base: string,
  method: 'GET' | 'POST',
  pathname: string,
  body?: unknown,
  timeoutMs = 10_000,
): Promise<T> {
  let res: Awaited<ReturnType<typeof request>>;
  try {
    res = await request(`${base}${pathname}`, {
      method,
      ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
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
