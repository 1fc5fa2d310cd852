/**
 * The agent's one bounded HTTP(S) downloader, used for bar bundles (agent/drivers/bar/fetch.ts)
 * and docker image tarballs (agent/drivers/docker/tarball.ts): docs/configuration.md
 * `deploy.fetch_timeout_ms` and `deploy.max_bundle_bytes`, docs/protocol.md "bar: what a bundle
 * is" and "docker: what url and file mean".
 *
 * Bounded in time by the caller's signal (connect, headers and body alike) and in size (refused
 * from Content-Length up front, else stopped as soon as the count passes the limit). The body
 * streams into `dest`, hashed on the way when asked; on any failure `dest` is removed. A server
 * that closes, resets, stalls, lies about Content-Length, sends an endless body or no HTTP at all
 * ends in a DownloadError, never in an exception out of a stream handler.
 */

import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { Dispatcher } from 'undici';
import { nodeCrypto } from '../../common/node-crypto.js';
import { loadUndici } from '../../common/undici.js';
import { fmtBytes } from '../deploy/admission.js';

/** Why a download failed. */
export type DownloadFailure = 'status' | 'too_large' | 'timeout' | 'network';

/** A failed download; `message` names no URL (callers put theirs in front). */
export class DownloadError extends Error {
  constructor(
    readonly reason: DownloadFailure,
    message: string,
  ) {
    super(message);
    this.name = 'DownloadError';
  }
}

/** What to download and within which bounds. */
export interface DownloadOptions {
  /** File the body is written to (mode 0600); removed when the download fails. */
  dest: string;
  /** Largest body accepted, bytes (deploy.max_bundle_bytes). */
  maxBytes: number;
  /** The caller's deadline: aborting it ends the download as a `timeout`. */
  signal: AbortSignal;
  /** The deadline's length, ms, for the message of a timeout. */
  timeoutMs: number;
  /** From {@link createDownloadDispatcher}. */
  dispatcher: DownloadDispatcher;
  /** Extra request headers (e.g. If-None-Match). */
  headers?: Record<string, string>;
  /** Accept a 304 Not Modified answer (a conditional GET) instead of failing on it. */
  accept304?: boolean;
  /** Hash the body with sha256 on the way. */
  sha256?: boolean;
  /** Receives `fetching <label>: <n> [of <total> (<p>%)]` at most every `progressEveryMs`. */
  progress?: (line: string) => void;
  /** What progress lines call the download, e.g. the URL or the file name. */
  progressLabel?: string;
  /** Least time between two progress lines, ms (default 1000). */
  progressEveryMs?: number;
}

/** A finished download: the whole body in `dest`, or a 304 (nothing written). */
export type Downloaded =
  | { status: 304; headers: Dispatcher.ResponseData['headers'] }
  | { status: 200; bytes: number; sha256: string | undefined; headers: Dispatcher.ResponseData['headers'] };

/** At most this many redirects are followed. */
const MAX_REDIRECTIONS = 5;

/**
 * The dispatcher of a driver's downloads, made on the first download: undici is imported then,
 * not when the agent starts (most boards never download; docs/operations.md "Agent footprint").
 */
export interface DownloadDispatcher {
  /** The undici dispatcher (created and cached on the first call). */
  get(): Promise<Dispatcher>;
}

/**
 * A dispatcher for downloads: connect time limit `connectTimeoutMs` (ms), redirects followed (at
 * most 5), no connection kept for later (each download asks with `Connection: close` semantics).
 * Nothing is loaded until the first {@link DownloadDispatcher.get}.
 */
export function createDownloadDispatcher(connectTimeoutMs: number): DownloadDispatcher {
  let made: Promise<Dispatcher> | undefined;
  return {
    get() {
      made ??= loadUndici().then(({ Agent, interceptors }) =>
        new Agent({ connect: { timeout: connectTimeoutMs } }).compose(
          interceptors.redirect({ maxRedirections: MAX_REDIRECTIONS }),
        ),
      );
      return made;
    },
  };
}

/** The first value of a header. */
export const headerValue = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

/** Why a request failed, in words (undici and node errors carry the useful part in `code`/`cause`). */
function describe(err: unknown): string {
  const e = err as Error & { code?: string; cause?: Error & { code?: string } };
  const code = e?.code ?? e?.cause?.code;
  const msg = e?.message || e?.cause?.message || String(err);
  return code && !msg.includes(code) ? `${code}: ${msg}` : msg;
}

const tooLarge = (maxBytes: number, what: string): DownloadError =>
  new DownloadError(
    'too_large',
    `${what} is larger than the bundle limit: more than the ${fmtBytes(maxBytes)} allowed (deploy.max_bundle_bytes)`,
  );

/**
 * A URL's userinfo as an HTTP Basic `Authorization` header (the credentials go into the request
 * only: never into a message, and undici does not send them by itself), and the URL without it.
 * (undici's redirect handling drops the header when a redirect leaves the origin.)
 */
export function splitCredentials(url: string): { target: string; authorization?: string } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return { target: url };
  }
  if (!u.username && !u.password) return { target: url };
  const user = decodeURIComponent(u.username);
  const pass = decodeURIComponent(u.password);
  u.username = '';
  u.password = '';
  return { target: u.toString(), authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` };
}

/**
 * GETs `url` into `opts.dest`, bounded in time and size. Credentials in `url` (`user:pass@`)
 * are sent as HTTP Basic authorization.
 * @returns the status (200, or 304 when `accept304`), bytes written and sha256 (hex) when asked
 * @throws DownloadError: `status` (any other HTTP status), `too_large` (Content-Length or the
 *   streamed count over `maxBytes`), `timeout` (the signal aborted), `network` (refused, reset,
 *   closed early, Content-Length mismatch, not HTTP, cannot write `dest`)
 */
export async function download(url: string, opts: DownloadOptions): Promise<Downloaded> {
  const { signal, maxBytes } = opts;
  const timedOut = (): DownloadError => new DownloadError('timeout', `timed out after ${opts.timeoutMs} ms`);
  const { target, authorization } = splitCredentials(url);
  let res: Dispatcher.ResponseData;
  try {
    const [{ request }, dispatcher] = await Promise.all([loadUndici(), opts.dispatcher.get()]);
    res = await request(target, {
      method: 'GET',
      headers: { 'user-agent': 'muster-agent', ...(authorization ? { authorization } : {}), ...opts.headers },
      signal,
      dispatcher,
      reset: true,
    });
  } catch (err) {
    throw signal.aborted ? timedOut() : new DownloadError('network', describe(err));
  }
  if (res.statusCode === 304 && opts.accept304) {
    await res.body.dump().catch(() => undefined);
    return { status: 304, headers: res.headers };
  }
  if (res.statusCode !== 200) {
    await res.body.dump().catch(() => undefined);
    throw new DownloadError('status', `HTTP ${res.statusCode}`);
  }
  const lenText = headerValue(res.headers['content-length']);
  const declared = lenText !== undefined && /^\d+$/.test(lenText) ? Number(lenText) : undefined;
  if (declared !== undefined && declared > maxBytes) {
    res.body.destroy();
    throw tooLarge(maxBytes, `Content-Length ${fmtBytes(declared)}`);
  }

  const hash = opts.sha256 ? nodeCrypto().createHash('sha256') : undefined;
  const every = opts.progressEveryMs ?? 1000;
  const label = opts.progressLabel ?? url;
  const progress = opts.progress;
  let bytes = 0;
  let lastLine = Date.now();
  try {
    await pipeline(
      res.body,
      async function* (src: AsyncIterable<Buffer>) {
        for await (const chunk of src) {
          bytes += chunk.length;
          if (bytes > maxBytes) throw tooLarge(maxBytes, 'the body');
          hash?.update(chunk);
          if (progress && Date.now() - lastLine >= every) {
            lastLine = Date.now();
            const of = declared
              ? ` of ${fmtBytes(declared)} (${Math.min(100, Math.round((bytes / declared) * 100))}%)`
              : '';
            progress(`fetching ${label}: ${fmtBytes(bytes)}${of}`);
          }
          yield chunk;
        }
      },
      createWriteStream(opts.dest, { mode: 0o600 }),
      { signal },
    );
  } catch (err) {
    res.body.destroy();
    await rm(opts.dest, { force: true }).catch(() => undefined);
    if (err instanceof DownloadError) throw err;
    throw signal.aborted ? timedOut() : new DownloadError('network', describe(err));
  }
  return { status: 200, bytes, sha256: hash?.digest('hex'), headers: res.headers };
}
