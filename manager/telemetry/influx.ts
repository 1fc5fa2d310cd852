/**
 * The real PointWriter: InfluxDB 1.x over HTTP (/write for points, /query through the `influx`
 * package for the database check). Answers are sorted into WriteOutcome kinds by `classify`;
 * retries are PointShipper's alone (the package's own are switched off).
 */
import { InfluxDB, type IPoolOptions, ResultError } from 'influx';
import type { ManagerConfig } from '../config.js';
import type { PointWriter, WriteOutcome } from './shipper.js';

type InfluxConfig = ManagerConfig['telemetry']['influxdb'];
type Backoff = NonNullable<IPoolOptions['backoff']>;

/** A backoff that never disables the host: retries are PointShipper's business. */
const NO_BACKOFF: Backoff = { getDelay: () => 0, next: () => NO_BACKOFF, reset: () => NO_BACKOFF };

/** `url` without credentials, for logs and the status API. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return url;
  }
}

/**
 * Host settings from a base URL: `http(s)://host[:port][/path]` (host as in a URL: `[::1]` for
 * IPv6). Without a port, the scheme's (80, 443), as for any URL. Credentials in the URL are used
 * when telemetry.influxdb.username is "".
 * @throws Error `telemetry.influxdb.url: ...` when it is not an http(s) URL (for a config check)
 */
export function hostOptions(url: string): {
  host: string;
  port: number;
  protocol: 'http' | 'https';
  path: string;
  username: string;
  password: string;
} {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`telemetry.influxdb.url: cannot read ${JSON.stringify(url)} as a URL (e.g. http://127.0.0.1:8086)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new Error(`telemetry.influxdb.url: ${JSON.stringify(url)} must be http:// or https://`);
  const protocol = u.protocol === 'https:' ? 'https' : 'http';
  return {
    host: u.hostname,
    port: u.port ? Number(u.port) : protocol === 'https' ? 443 : 80,
    protocol,
    path: u.pathname.replace(/\/+$/, ''),
    username: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
  };
}

/** The status (when InfluxDB answered) and a readable message of an error of the `influx` package. */
function describe(err: unknown): { status: number | null; message: string } {
  const e = err as { res?: { statusCode?: number }; message?: string; code?: string; cause?: { code?: string } };
  const status = typeof e?.res?.statusCode === 'number' ? e.res.statusCode : null;
  let message = String(e?.message ?? err);
  // RequestError: "A 400 Bad Request error occurred: {"error":"..."}" → keep InfluxDB's own words.
  const body = /error occurred: (\{.*\})\s*$/s.exec(message)?.[1];
  if (body) message = `HTTP ${status}: ${errorOf(body) ?? body}`;
  const code = e?.code ?? e?.cause?.code;
  if (status === null && code && !message.includes(code)) message = `${code}: ${message}`;
  if (message === '' || message === 'undefined') message = code ?? 'unknown error';
  return { status, message };
}

/** InfluxDB's `{"error": "..."}` body as its message, undefined when it is not one. */
function errorOf(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as { error?: unknown };
    return typeof parsed.error === 'string' ? parsed.error : undefined;
  } catch {
    return undefined;
  }
}

/** A fetch failure as a message naming the cause (ECONNREFUSED, a timeout, ...). */
function fetchError(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return `no answer within ${timeoutMs} ms (timeout_ms)`;
  const c = e?.cause;
  if (c?.code) return `${c.code}: ${c.message ?? e.message}`;
  return String(c?.message ?? e?.message ?? err);
}

/**
 * Sorts InfluxDB's answer to a write (`status` null = no answer) into a WriteOutcome:
 * - 404 "database not found" → `no_database` (created, retried);
 * - 401, 403, 408, 429, any other 404 and "retention policy not found" → `failed` (retried: a
 *   configuration or load problem someone can fix, the points are still good);
 * - no answer, a timeout or another 5xx → `unreachable` (retried);
 * - any other 4xx (a field type conflict, unparsable points, points beyond the retention policy)
 *   → `rejected`: the batch can never be written. A partial write's "dropped=N" says how many
 *   points were refused (the others were written).
 */
export function classify(status: number | null, message: string): WriteOutcome {
  if (status === 404 && /database not found/i.test(message)) return { kind: 'no_database', error: message };
  if (status !== null && /retention policy not found/i.test(message)) return { kind: 'failed', error: message };
  if (status === null || status >= 500 || status < 400) return { kind: 'unreachable', error: message };
  if (status === 401 || status === 403 || status === 404 || status === 408 || status === 429)
    return { kind: 'failed', error: message };
  const dropped = /dropped=(\d+)/.exec(message);
  const n = dropped ? Number(dropped[1]) : 0;
  return { kind: 'rejected', error: message, refused: n > 0 ? n : null };
}

/**
 * Writes line-protocol points to InfluxDB 1.x: POST /write?db=&rp=&precision=ms, one batch per
 * request. The database check uses the `influx` package (SHOW DATABASES, CREATE DATABASE, SHOW
 * RETENTION POLICIES); the write itself is a plain HTTP request, because the package's writePoints
 * takes point objects (the buffer would hold ~470 bytes per point instead of ~220 as a line),
 * serializes them again on each retry, and reports a 5xx without InfluxDB's reason.
 */
export class InfluxWriter implements PointWriter<string> {
  /** The package's client, for the database check. */
  readonly client: InfluxDB;
  private readonly writeUrl: string;
  private readonly auth: string | undefined;

  constructor(private readonly cfg: InfluxConfig) {
    const h = hostOptions(cfg.url);
    const username = cfg.username || h.username;
    const password = cfg.username ? cfg.password : h.password;
    const w = new URL(`${h.protocol}://${h.host}:${h.port}${h.path}/write`);
    w.searchParams.set('db', cfg.database);
    w.searchParams.set('precision', 'ms');
    if (cfg.retention_policy) w.searchParams.set('rp', cfg.retention_policy);
    this.writeUrl = w.toString();
    this.auth = username ? `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` : undefined;
    this.client = new InfluxDB({
      host: h.host,
      port: h.port,
      protocol: h.protocol,
      path: h.path,
      database: cfg.database,
      // The package sends root:root when given no username: send the configured ones, even empty
      // (an InfluxDB without auth ignores them).
      username,
      password,
      pool: { maxRetries: 0, requestTimeout: cfg.timeout_ms, backoff: NO_BACKOFF },
    });
  }

  async write(lines: string[]): Promise<WriteOutcome> {
    let res: Response;
    try {
      res = await fetch(this.writeUrl, {
        method: 'POST',
        body: lines.join('\n'),
        headers: { 'content-type': 'text/plain; charset=utf-8', ...(this.auth ? { authorization: this.auth } : {}) },
        signal: AbortSignal.timeout(this.cfg.timeout_ms),
      });
    } catch (err) {
      return { kind: 'unreachable', error: fetchError(err, this.cfg.timeout_ms) };
    }
    let body = '';
    try {
      body = await res.text();
    } catch (err) {
      if (res.ok) return { kind: 'ok' };
      body = fetchError(err, this.cfg.timeout_ms);
    }
    if (res.ok) return { kind: 'ok' };
    return classify(res.status, `HTTP ${res.status}: ${errorOf(body) ?? (body.trim() || res.statusText)}`);
  }

  /**
   * Creates the database when missing, and checks that the configured retention policy exists
   * (InfluxDB answers a write to a missing one with a bare 500, which the package reports without
   * the reason): a missing one is `failed`, so points are kept and the log says what to fix.
   */
  async ensureDatabase(): Promise<WriteOutcome> {
    const { database, retention_policy: rp } = this.cfg;
    try {
      const names = await this.client.getDatabaseNames();
      if (!names.includes(database)) await this.client.createDatabase(database);
      if (rp) {
        const rps = await this.client.showRetentionPolicies(database);
        if (!rps.some((r) => r.name === rp))
          return {
            kind: 'failed',
            error: `retention policy "${rp}" not found on database "${database}" (telemetry.influxdb.retention_policy)`,
          };
      }
      return { kind: 'ok' };
    } catch (err) {
      // InfluxDB answered with an error in the result (e.g. not allowed): write anyway.
      if (err instanceof ResultError) return { kind: 'rejected', error: err.message, refused: null };
      const d = describe(err);
      const o = classify(d.status, d.message);
      // Answered but not allowed (no admin right): write anyway, the database may exist.
      if (o.kind === 'failed' || o.kind === 'no_database') return { kind: 'rejected', error: o.error, refused: null };
      return o;
    }
  }
}
