/** The CLI's HTTP client for the manager's REST API (/api/v1/...). */
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Dispatcher } from 'undici';
import YAML from 'yaml';
import { MANAGER_PORT } from '../common/constants.js';
import { loadUndici } from '../common/undici.js';

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

/** The CLI's config file: $MUSTER_CLI_CONFIG, else ~/.config/muster/cli.yaml. */
export function cliConfigFile(): string {
  return process.env.MUSTER_CLI_CONFIG ?? path.join(os.homedir(), '.config', 'muster', 'cli.yaml');
}

/** The CLI config file's keys the CLI reads: `manager` (base URL), `token`, `user`, `expires_at` (set by muster login). */
export interface CliConfig {
  manager?: string;
  token?: string;
  user?: string;
  expires_at?: string;
  [key: string]: unknown;
}

/** The CLI config file's content ({} when it is missing or not YAML). */
export function readCliConfig(): CliConfig {
  try {
    const doc = YAML.parse(readFileSync(cliConfigFile(), 'utf8')) as unknown;
    return doc && typeof doc === 'object' && !Array.isArray(doc) ? (doc as CliConfig) : {};
  } catch {
    return {};
  }
}

/**
 * Writes the CLI config file with mode 0600 in a directory of mode 0700 (it holds a token),
 * keeping its other keys; a key set to undefined is removed.
 */
export function writeCliConfig(update: Partial<CliConfig>): string {
  const file = cliConfigFile();
  const doc: CliConfig = { ...readCliConfig(), ...update };
  for (const k of Object.keys(doc)) if (doc[k] === undefined) delete doc[k];
  const dir = path.dirname(file);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (path.basename(dir) === 'muster') chmodSync(dir, 0o700);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, YAML.stringify(doc), { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
  return file;
}

/**
 * The manager's base URL: `--manager`, else $MUSTER_MANAGER_URL, else `manager:` in
 * $MUSTER_CLI_CONFIG or ~/.config/muster/cli.yaml, else http://127.0.0.1:3926.
 */
export function managerUrl(flag?: string): string {
  if (flag) return flag.replace(/\/+$/, '');
  if (process.env.MUSTER_MANAGER_URL) return process.env.MUSTER_MANAGER_URL.replace(/\/+$/, '');
  const m = readCliConfig().manager;
  if (typeof m === 'string' && m) return m.replace(/\/+$/, '');
  return `http://127.0.0.1:${MANAGER_PORT}`;
}

/** Where the token comes from when given for this run: `--token` or `--token-file` (set by cli/main.ts). */
let tokenOverride: { token?: string | undefined; file?: string | undefined } = {};

/** Sets (or clears, with {}) this run's `--token` / `--token-file` (cli/main.ts calls it before every verb). */
export function setTokenOverride(o: { token?: string | undefined; file?: string | undefined }): void {
  tokenOverride = o;
}

/**
 * The token sent as `Authorization: Bearer`: `--token`, else the content of `--token-file`, else
 * $MUSTER_TOKEN, else `token:` in the CLI config file (muster login); undefined when none.
 * @throws CliError when --token-file cannot be read
 */
export function cliToken(): string | undefined {
  if (tokenOverride.token) return tokenOverride.token.trim();
  if (tokenOverride.file) {
    try {
      return readFileSync(tokenOverride.file, 'utf8').trim();
    } catch (err) {
      throw new CliError(`--token-file ${tokenOverride.file}: ${(err as Error).message}`);
    }
  }
  const env = process.env.MUSTER_TOKEN?.trim();
  if (env) return env;
  const t = readCliConfig().token;
  return typeof t === 'string' && t ? t : undefined;
}

/** Exit code of a refusal by the manager's access control (401, 403, or a login locked out). */
export const EXIT_AUTH = 5;

/**
 * Calls the manager and returns the parsed JSON body (null for an empty one, e.g. 204), with the
 * token of {@link cliToken} as `Authorization: Bearer` (unless `headers` has one). `headers` are
 * sent as given.
 * @throws CliError with exit code 3 when the manager cannot be reached; 5 (EXIT_AUTH) for 401
 *   ("not logged in: run muster login") and 403 ("your role viewer cannot ..."); 4 for 404; 1 with
 *   the API's message otherwise
 */
export async function api<T>(
  base: string,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  pathname: string,
  body?: unknown,
  timeoutMs = 10_000,
  headers: Record<string, string> = {},
): Promise<T> {
  let res: Dispatcher.ResponseData;
  const token = headers.authorization === undefined ? cliToken() : undefined;
  try {
    // undici is imported by the verbs that call the API, not by `muster agent` / `muster manager`.
    const { request } = await loadUndici();
    res = await request(`${base}${pathname}`, {
      method,
      headers: {
        ...Object.fromEntries(Object.entries(headers).filter(([, v]) => v !== '')),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
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
    if (res.statusCode === 401 && pathname !== '/api/v1/login') {
      throw new CliError(
        token
          ? `not logged in: the token was refused (${msg}); run muster login`
          : `not logged in: run muster login (or set MUSTER_TOKEN, or --token-file)`,
        EXIT_AUTH,
      );
    }
    if (res.statusCode === 401 || res.statusCode === 403 || res.statusCode === 429) throw new CliError(msg, EXIT_AUTH);
    throw new CliError(msg, res.statusCode === 404 ? 4 : 1);
  }
  return doc as T;
}
